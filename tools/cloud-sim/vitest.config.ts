import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: { name: 'cloud-sim', include: ['src/**/*.test.ts'], testTimeout: 30_000, hookTimeout: 30_000 },
});
