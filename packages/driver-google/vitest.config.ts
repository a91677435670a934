import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: {
    name: 'driver-google',
    include: ['src/**/*.test.ts'],
    testTimeout: 30_000,
    env: { METADATA_SERVER_DETECTION: 'none', AWS_EC2_METADATA_DISABLED: 'true', GOOGLE_APPLICATION_CREDENTIALS: '', GOOGLE_CLOUD_PROJECT: '' },
  },
});
