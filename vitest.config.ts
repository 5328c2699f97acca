import { defineConfig } from 'vitest/config';

// Three tiers (CONTRIBUTING.md): unit tests need no root; netns tests need root and create their own
// throwaway network namespaces; integration tests also start real daemons (etcd, BGP peers).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'netns',
          include: ['test/netns/**/*.test.ts'],
          // Namespace switching (setns) is per thread: run each file in its own forked process.
          pool: 'forks',
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // One file at a time: each starts real daemons (etcd, BGP peers) on a 2-core machine.
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
