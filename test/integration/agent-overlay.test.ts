import { overlaySuite } from '../helpers/overlay-suite.js';

// twilld end to end on this kernel (test/helpers/overlay-suite.ts); ipip runs in test/kernel.
overlaySuite('vxlan');
overlaySuite('host-gw');
