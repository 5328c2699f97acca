import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readlinkSync, statSync, unlinkSync, constants as fsc } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { NetlinkError } from './errors.js';
import { CLONE_NEWNET, MNT_DETACH, MS_BIND, MS_REC, MS_SHARED, mount, setns, umount2, unshare } from './libc.js';

/** Where `ip netns` keeps its named namespaces; Twill uses the same place so both see each other's. */
export const NETNS_RUN_DIR = '/run/netns';
const SELF_NETNS = '/proc/thread-self/ns/net';

export function netnsPath(name: string): string {
  return `${NETNS_RUN_DIR}/${validateNetnsName(name)}`;
}

function validateNetnsName(name: string): string {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || Buffer.byteLength(name) > 255) {
    throw new InvalidArgumentError('network namespace name', name, 'must be a non-empty file name without "/"');
  }
  return name;
}

/** Identifies the network namespace the calling thread is in, e.g. "net:[4026531840]". */
export function currentNetnsId(): string {
  return readlinkSync(SELF_NETNS);
}

const EINVAL = 22;

/**
 * Opens a namespace file (a /run/netns entry or /proc/<pid>/ns/net) without ever blocking or
 * touching anything but a namespace file. Namespace files (nsfs) are regular files, so anything
 * else is refused before it is opened: opening a FIFO waits for a writer forever (and would
 * wedge the thread), opening a device can have side effects. O_NONBLOCK covers a FIFO swapped in
 * after the check, and fstat(2) checks the type again on what was opened.
 */
function openNetnsFile(path: string): number {
  let fd: number;
  try {
    if (!statSync(path).isFile()) throw notNamespace(path);
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  } catch (err) {
    if (err instanceof NetlinkError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new NetlinkError({ op: 'netns.open', errno: Math.abs(e.errno ?? 2), target: path },
      e.code === 'ENOENT' ? 'no such network namespace' : undefined);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw notNamespace(path);
  }
  return fd;
}

function notNamespace(path: string): NetlinkError {
  return new NetlinkError({ op: 'netns.open', errno: EINVAL, target: path }, 'not a namespace file');
}

/**
 * Runs `fn` synchronously with the calling thread inside the namespace at `path`, and always
 * switches back, also when `fn` throws. Anything `fn` creates that is bound to a namespace at
 * creation (sockets, /proc/sys files it opens) stays in the target namespace afterwards.
 *
 * `fn` must not be async: the thread leaves the namespace as soon as `fn` returns, so awaited work
 * would run in the original namespace. Use `withNetns` (index.ts) for asynchronous netlink work.
 */
export function runInNetns<T>(path: string, fn: () => T): T {
  const target = openNetnsFile(path);
  let home: number | undefined;
  try {
    home = openSync(SELF_NETNS, fsc.O_RDONLY);
    setns(target, CLONE_NEWNET, path);
    try {
      const result = fn();
      if (result instanceof Promise) {
        throw new TypeError('runInNetns: fn must be synchronous (a Promise would continue in the wrong namespace)');
      }
      return result;
    } finally {
      switchBack(home);
    }
  } finally {
    closeSync(target);
    if (home !== undefined) closeSync(home);
  }
}

/**
 * Moves the calling thread into the namespace at `path` until the returned function moves it
 * back: `ip netns exec` for the rest of this process's work, for tools (benchmarks, the demo) whose
 * sockets must live on an underlay they created. Sockets opened meanwhile stay in that namespace.
 */
export function enterNetns(path: string): () => void {
  const target = openNetnsFile(path);
  const home = openSync(SELF_NETNS, fsc.O_RDONLY);
  try {
    setns(target, CLONE_NEWNET, path);
  } catch (err) {
    closeSync(home);
    throw err;
  } finally {
    closeSync(target);
  }
  let left = false;
  return () => {
    if (left) return;
    left = true;
    switchBack(home);
    closeSync(home);
  };
}

function switchBack(home: number): void {
  try {
    setns(home, CLONE_NEWNET, SELF_NETNS);
  } catch (err) {
    // The thread would keep running in the wrong namespace and every later kernel write would
    // land there. Nothing can safely continue: stop the process.
    process.stderr.write(`twill: fatal: cannot return to the original network namespace: ${String(err)}\n`);
    process.abort();
  }
}

/** Makes /run/netns a shared mount point, as iproute2 does, so namespace mounts propagate. */
function prepareRunDir(): void {
  mkdirSync(NETNS_RUN_DIR, { recursive: true, mode: 0o755 });
  try {
    mount('none', NETNS_RUN_DIR, 'none', MS_SHARED | MS_REC);
  } catch (err) {
    if (!(err instanceof NetlinkError) || err.code !== 'EINVAL') throw err;
    // Not a mount point yet: bind it onto itself, then mark it shared.
    mount(NETNS_RUN_DIR, NETNS_RUN_DIR, 'none', MS_BIND | MS_REC);
    mount('none', NETNS_RUN_DIR, 'none', MS_SHARED | MS_REC);
  }
}

/**
 * Creates a named network namespace the way `ip netns add` does: a new namespace pinned by a bind
 * mount of its nsfs file onto /run/netns/<name>. Returns its path. EEXIST if the name is taken.
 */
export function createNetns(name: string): string {
  const path = netnsPath(name);
  prepareRunDir();
  try {
    closeSync(openSync(path, fsc.O_RDONLY | fsc.O_CREAT | fsc.O_EXCL, 0o444));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new NetlinkError({ op: 'netns.create', errno: Math.abs(e.errno ?? 17), target: name });
  }
  const home = openSync(SELF_NETNS, fsc.O_RDONLY);
  try {
    try {
      unshare(CLONE_NEWNET);
      mount(SELF_NETNS, path, 'none', MS_BIND);
    } finally {
      switchBack(home);
    }
  } catch (err) {
    try { unlinkSync(path); } catch { /* already gone */ }
    throw err;
  } finally {
    closeSync(home);
  }
  return path;
}

/**
 * Deletes a named namespace as `ip netns del` does (lazy unmount, then unlink). The namespace
 * itself lives on while a process or socket still holds it. A missing name is not an error.
 */
export function deleteNetns(name: string): void {
  const path = netnsPath(name);
  if (!existsSync(path)) return;
  try {
    umount2(path, MNT_DETACH);
  } catch (err) {
    // EINVAL: the file exists but is not mounted (a half-created namespace): just unlink it.
    if (!(err instanceof NetlinkError) || err.code !== 'EINVAL') throw err;
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export function listNetns(): string[] {
  try {
    return readdirSync(NETNS_RUN_DIR).sort();
  } catch {
    return [];
  }
}
