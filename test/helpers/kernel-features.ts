/**
 * What the running kernel can do, asked the way Twill would use it: create the device in a
 * throwaway namespace (the kernel loads the module on demand, as it would for twilld). Tests
 * that need a feature this kernel lacks assert the clear refusal instead; the VM harness
 * (test/vm) runs them on a kernel that has it.
 */
import { createNetns, deleteNetns, UnsupportedByKernelError, withNetns } from '../../src/netlink/index.js';
import { trackNetns, untrackNetns } from './cleanup.js';
import { netnsName } from './names.js';

const cache = new Map<string, Promise<boolean>>();

/** True when this kernel can create IPIP tunnel devices. */
export function kernelHasIpip(): Promise<boolean> {
  return probe('ipip', async (path) => {
    try {
      await withNetns(path, (nl) => nl.createIpip({ name: 'probe0', localIp: '198.18.0.1' }));
      return true;
    } catch (err) {
      if (err instanceof UnsupportedByKernelError) return false;
      throw err;
    }
  });
}

function probe(feature: string, check: (netnsPath: string) => Promise<boolean>): Promise<boolean> {
  let result = cache.get(feature);
  if (result === undefined) {
    result = (async () => {
      const name = netnsName(`probe-${feature}`);
      trackNetns(name);
      const path = createNetns(name);
      try {
        return await check(path);
      } finally {
        deleteNetns(name);
        untrackNetns(name);
      }
    })();
    cache.set(feature, result);
  }
  return result;
}
