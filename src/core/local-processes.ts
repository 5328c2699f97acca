import { readdirSync, readFileSync, statSync } from 'node:fs';
import { TwillError } from './errors.js';

/**
 * Which processes run in a given network namespace, read from /proc. Used to refuse a takeover
 * while flanneld still runs (it would recreate flannel.<VNI> under Twill's feet: flannel.md §3,
 * "Repair") and by `twillctl uninstall` to refuse while twilld runs.
 *
 * Only the namespace counts: the test hosts of this project, or the nodes of a machine that runs
 * several network namespaces, each have their own flanneld, and one in another namespace owns
 * nothing here. Namespaces are compared by the device and inode of their /proc/<pid>/ns/net
 * file (the identity the kernel gives a namespace, namespaces(7)). A process in another PID
 * namespace is invisible in our /proc: in a container without hostPID the check sees nothing,
 * which the README's migration steps say.
 */
export interface LocalProcess {
  readonly pid: number;
  /** /proc/<pid>/comm: the executable's name, at most 15 bytes (what `ps -o comm` prints). */
  readonly comm: string;
  /** /proc/<pid>/cmdline split at NUL: for a Node program, ["node", "/usr/local/bin/twilld", ...]. */
  readonly argv: readonly string[];
}

/** The namespace file of this process, which the kernel resolves to the calling thread's namespace. */
export const OWN_NETNS_FILE = '/proc/self/ns/net';

function identity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

function describe(pid: number): LocalProcess | undefined {
  try {
    const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').replace(/\n$/, '');
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
    return { pid, comm, argv };
  } catch {
    return undefined; // exited meanwhile
  }
}

/**
 * The processes (other than this one) in the network namespace at `netnsFile` (a /run/netns
 * entry, or our own by default) that `match` accepts. Kernel threads and processes that exit
 * while we read are skipped. Throws only when `netnsFile` itself cannot be read.
 */
export function processesInNetns(match: (p: LocalProcess) => boolean, netnsFile: string = OWN_NETNS_FILE): LocalProcess[] {
  const want = identity(netnsFile);
  if (want === undefined) throw new TwillError('ENETNS', `cannot read the network namespace ${netnsFile}`);
  const found: LocalProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || identity(`/proc/${pid}/ns/net`) !== want) continue;
    const p = describe(pid);
    if (p && match(p)) found.push(p);
  }
  return found;
}
