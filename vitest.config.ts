import { defineConfig } from 'vitest/config';
// scaled(): the kernel VM (test/vm) runs on emulated CPUs and stretches every limit by
// TWILL_TEST_TIME_SCALE (test/helpers/time-scale.ts); 1 elsewhere.
import { scaled } from './test/helpers/time-scale.js';

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
          testTimeout: scaled(30_000),
          hookTimeout: scaled(30_000),
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          pool: 'forks',
          testTimeout: scaled(120_000),
          hookTimeout: scaled(60_000),
          // One file at a time: each starts real daemons (etcd, BGP peers) on a 2-core machine.
          poolOptions: { forks: { singleFork: true } },
        },
      },
      {
        test: {
          // Suites that need a kernel feature this machine's kernel lacks (IPIP): run only inside
          // the VM that `npm run test:kernel` boots (test/vm), never by the tiers above.
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts'],
          pool: 'forks',
          testTimeout: scaled(120_000),
          hookTimeout: scaled(120_000),
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
});
