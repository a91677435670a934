import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: ['packages/*', 'tools/*'],
    // Most test files wait on processes, sockets and simulated clouds rather than the CPU: on a
    // 2-core CI machine the default (one worker per core less one) ran them one after the other.
    maxWorkers: 4,
  },
});
