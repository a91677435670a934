import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: {
    name: 'driver-azure',
    include: ['src/**/*.test.ts'],
    testTimeout: 30_000,
    env: {
      AWS_EC2_METADATA_DISABLED: 'true',
      METADATA_SERVER_DETECTION: 'none',
      // The default credential chain must never find a developer's login or a metadata endpoint.
      AZURE_CLIENT_ID: '',
      AZURE_CLIENT_SECRET: '',
      AZURE_TENANT_ID: '',
      AZURE_SUBSCRIPTION_ID: '',
      IDENTITY_ENDPOINT: '',
      MSI_ENDPOINT: '',
    },
  },
});
