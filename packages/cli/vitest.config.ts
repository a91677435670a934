import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: { name: 'cli', include: ['src/**/*.test.ts'], testTimeout: 30_000, globalSetup: ['./src/test-support/build-dist.ts'] },
});
