import { statSync } from 'node:fs';
import { fileKind } from '../core/regular-file.js';
import { isNetlinkError, type Netlink } from '../netlink/index.js';
import { CniCode, CniError } from './spec/errors.js';

/**
 * CNI_NETNS comes from the runtime, so it is checked before anything is done with it, at the
 * cost of one stat(2). A namespace file (a /run/netns bind mount, /proc/<pid>/ns/net) is a
 * regular file on nsfs, the one file system every namespace file lives on, so its device number
 * is the plugin's own namespace file's; and it names the plugin's own namespace exactly when its
 * inode does too (how `ip netns identify` compares them). Whether an nsfs file is a *network*
 * namespace only setns(2) tells: openPodNetlink maps its refusal.
 */

/** A namespace file's identity: its device and inode number. */
export interface NetnsIdentity {
  readonly dev: number;
  readonly ino: number;
}

/**
 * The calling thread's network namespace: where the plugin's host netlink socket lives, taken
 * when the context is made. (/proc/self would name the main thread's, which a worker does not
 * follow, and which is briefly elsewhere while the main thread runs runInNetns.)
 */
export function currentNetnsIdentity(): NetnsIdentity {
  const st = statSync('/proc/thread-self/ns/net');
  return { dev: st.dev, ino: st.ino };
}

export interface PodNetnsProblem {
  /** missing: nothing at the path; foreign: not a namespace file; host: the plugin's own namespace. */
  readonly kind: 'missing' | 'foreign' | 'host';
  /** Completes "CNI_NETNS <path> ...". */
  readonly detail: string;
}

/** Why CNI_NETNS cannot be a pod's namespace, or undefined when it can. */
export function podNetnsProblem(path: string, host: NetnsIdentity): PodNetnsProblem | undefined {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing', detail: 'does not exist' };
    return { kind: 'foreign', detail: `cannot be examined: ${(err as Error).message}` };
  }
  if (!st.isFile() || st.dev !== host.dev) return { kind: 'foreign', detail: `is not a network namespace (a ${st.isFile() ? 'file outside nsfs' : fileKind(st)})` };
  if (st.ino === host.ino) return { kind: 'host', detail: 'is the plugin\'s own (the host\'s) network namespace: pods get their own' };
  return undefined;
}

function badNetns(path: string, detail: string): CniError {
  // Code 4 names the variable, as the spec asks of environment errors.
  return new CniError(CniCode.INVALID_ENV, `CNI_NETNS ${JSON.stringify(path)} ${detail}`);
}

/** Throws the CNI error (code 4) for a CNI_NETNS an ADD or CHECK cannot use. */
export function requirePodNetns(path: string, host: NetnsIdentity): void {
  const problem = podNetnsProblem(path, host);
  if (problem) throw badNetns(path, problem.detail);
}

/**
 * Netlink inside the pod's namespace. A namespace file of another kind (a mount namespace, say)
 * passes the stat check; setns(2) refuses it with EINVAL, reported as code 4 too.
 */
export function openPodNetlink(open: (netnsPath: string) => Netlink, path: string): Netlink {
  try {
    return open(path);
  } catch (err) {
    if (isNetlinkError(err, 'EINVAL')) throw badNetns(path, 'is not a network namespace');
    if (isNetlinkError(err, 'ENOENT')) throw badNetns(path, 'does not exist');
    throw err;
  }
}
