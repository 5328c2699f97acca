import { untilAborted, type Backend, type Network } from '../backend.js';
import { rejectUnknownOptions } from '../options.js';

/**
 * flannel's "alloc" backend: the agent leases and renews a subnet and writes the subnet file, but
 * programs nothing. Useful when something else routes (BIRD fed from the leases, a cloud router).
 */
export const allocBackend: Backend<Readonly<Record<string, never>>> = {
  type: 'alloc',
  parseOptions(raw) {
    rejectUnknownOptions('alloc', raw, []);
    return Object.freeze({});
  },
  register(ctx) {
    const network: Network = {
      leaseData: null,
      mtu: ctx.extIface.mtu,
      start: () => Promise.resolve(),
      sync: () => Promise.resolve({ changes: 0, skipped: [] }),
      run: (signal) => untilAborted(signal),
    };
    return Promise.resolve(network);
  },
};
