import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: {
    name: 'driver-virtualbox',
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    env: {
      AWS_EC2_METADATA_DISABLED: 'true',
      METADATA_SERVER_DETECTION: 'none',
      VBOX_MANAGE_PATH: '',
      VBOX_MSI_INSTALL_PATH: '',
      VBOX_INSTALL_PATH: '',
    },
  },
});
