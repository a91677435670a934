import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: { name: 'legacy-plugin', include: ['src/**/*.test.ts'], testTimeout: 60_000 },
});
