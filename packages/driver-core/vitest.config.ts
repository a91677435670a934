import { defineProject } from 'vitest/config';

export default defineProject({
  resolve: { conditions: ['@machine/source'] },
  ssr: { resolve: { conditions: ['@machine/source'] } },
  test: { name: 'driver-core', include: ['src/**/*.test.ts'], testTimeout: 20_000 },
});
