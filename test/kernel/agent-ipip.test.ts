import { kernelHasIpip } from '../helpers/kernel-features.js';
import { overlaySuite } from '../helpers/overlay-suite.js';

// twilld with the ipip backend end to end, on a kernel that has IPIP: `npm run test:kernel --
// test/kernel/agent-ipip.test.ts` boots one (test/vm). A kernel without it fails the suite.
overlaySuite('ipip', async () => {
  if (!await kernelHasIpip()) throw new Error('this kernel has no IPIP: run this file with `npm run test:kernel` (test/vm)');
});
