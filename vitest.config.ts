import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // System and e2e tests create network namespaces and spawn real peers; run files one by one
    // so two tests never race for the same privileged resources on a 2-core machine.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
