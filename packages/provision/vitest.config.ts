import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: {
    name: 'provision',
    include: ['src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    env: { AWS_EC2_METADATA_DISABLED: 'true', METADATA_SERVER_DETECTION: 'none' },
  },
});
