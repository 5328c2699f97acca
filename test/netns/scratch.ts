import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterEach } from 'vitest';
import { createNetns, deleteNetns, Netlink } from '../../src/netlink/index.js';

const run = promisify(execFile);

export interface Scratch {
  readonly name: string;
  readonly path: string;
  readonly nl: Netlink;
  /** `ip -j <args>` inside the namespace, parsed. */
  ipJson<T = unknown>(...args: string[]): Promise<T>;
  /** `bridge -j <args>` inside the namespace, parsed. */
  bridgeJson<T = unknown>(...args: string[]): Promise<T>;
}

/** True when this process may create namespaces (root with CAP_SYS_ADMIN/CAP_NET_ADMIN). */
export const canUseNetns = process.getuid?.() === 0;

/**
 * Throwaway namespaces for one test file: each call makes a fresh one with its own netlink handle;
 * afterEach deletes them all, whether the test passed, failed or timed out.
 */
export function useScratchNamespaces(): (tag?: string) => Scratch {
  const made: Scratch[] = [];
  afterEach(() => {
    for (const s of made.splice(0)) {
      s.nl.close();
      deleteNetns(s.name);
    }
  });
  return (tag = 'ns') => {
    const name = `twt-${tag}-${randomBytes(3).toString('hex')}`;
    const path = createNetns(name);
    const nl = Netlink.open(path);
    const json = async <T>(cmd: string, args: string[]): Promise<T> => {
      const { stdout } = await run(cmd, ['-n', name, '-j', ...args]);
      return JSON.parse(stdout === '' ? '[]' : stdout) as T;
    };
    const s: Scratch = { name, path, nl, ipJson: (...a) => json('ip', a), bridgeJson: (...a) => json('bridge', a) };
    made.push(s);
    return s;
  };
}
