import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two test files at a time (2 cores). System and e2e files create their own uniquely named network
    // namespaces (test/helpers/netns.ts) and ports inside them, so two files never share one.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
