import { Netlink } from '../../src/netlink/index.js';
import { exec, ipJson } from '../helpers/exec.js';
import { createTestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/**
 * A throwaway namespace plus one long-lived netlink handle in it, for tests of the netlink layer
 * itself: the harness (test/helpers) creates and always deletes the namespace; this only adds the
 * handle and `ip -j` / `bridge -j` readers for asserting what the kernel holds.
 */
export interface Scratch {
  readonly name: string;
  readonly path: string;
  readonly nl: Netlink;
  /** `ip -j <args>` inside the namespace, parsed. */
  ipJson<T = unknown>(...args: string[]): Promise<T>;
  /** `bridge -j <args>` inside the namespace, parsed. */
  bridgeJson<T = unknown>(...args: string[]): Promise<T>;
  /** `ip <args>` inside the namespace, as a user changing things by hand would run it. */
  ip(...args: string[]): Promise<string>;
}

export const canUseNetns = isRoot;

/** Registers cleanup hooks for the calling file; each call then makes a fresh namespace. */
export function useScratchNamespaces(): (tag?: string) => Promise<Scratch> {
  useCleanup();
  return async (tag = 'ns') => {
    const ns = await createTestNetns(tag);
    const nl = Netlink.open(ns.netnsPath);
    ns.onDestroy('close netlink handle', () => nl.close());
    return {
      name: ns.name,
      path: ns.netnsPath,
      nl,
      ipJson: (...args) => ns.json(args),
      bridgeJson: async (...args) => ipJson(ns.name, args, 'bridge'),
      ip: (...args) => exec('ip', ['-n', ns.name, ...args]),
    };
  };
}
