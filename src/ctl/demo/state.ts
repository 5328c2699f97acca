import { mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';
import { deleteNetns, listNetns } from '../../netlink/index.js';
import { stopProcessesIn } from './processes.js';
import { DEMO_PREFIX } from './topology.js';

// What a demo leaves behind while it runs, so that `twillctl demo --down` (another process,
// perhaps much later) and the next demo can find and remove it: the namespaces (by their name
// prefix) and /run/twill-demo/state.json, which names the temp dir and the owning process.

export const STATE_DIR = '/run/twill-demo';
export const STATE_FILE = join(STATE_DIR, 'state.json');

export interface DemoState {
  readonly version: 1;
  /** twillctl's pid while the demo runs. */
  readonly pid: number;
  /** True once a --keep demo has finished: nobody owns it any more, --down removes it. */
  readonly keep: boolean;
  readonly startedAt: string;
  /** The temp dir: etcd's data, each host's subnet file, agent log and IPAM data. */
  readonly tmpDir: string;
  readonly backend: string;
  readonly hosts: number;
  readonly podsPerHost: number;
  readonly etcdEndpoint: string;
}

export function readState(): DemoState | undefined {
  try {
    const s = JSON.parse(readFileSync(STATE_FILE, 'utf8')) as Partial<DemoState>;
    return s.version === 1 && typeof s.pid === 'number' && typeof s.tmpDir === 'string' ? s as DemoState : undefined;
  } catch {
    return undefined;
  }
}

export function writeState(state: DemoState): void {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
  const tmp = `${STATE_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  renameSync(tmp, STATE_FILE);
}

function removeState(): void {
  rmSync(STATE_FILE, { force: true });
  try {
    rmdirSync(STATE_DIR);
  } catch { /* not empty or gone */ }
}

/** The demo namespaces that exist now. */
export function demoNamespaces(): string[] {
  return listNetns().filter((n) => n.startsWith(DEMO_PREFIX));
}

/** Whether the process that wrote `state` is still a running twillctl. */
export function ownerRunning(state: DemoState): boolean {
  if (state.pid === process.pid) return true;
  try {
    const cmdline = readFileSync(`/proc/${state.pid}/cmdline`, 'utf8');
    return /ctl|demo/.test(cmdline);
  } catch {
    return false;
  }
}

/** Only a directory we made (`<tmp>/twill-demo-XXXXXX`) is ever removed. */
function isDemoTmpDir(dir: string): boolean {
  return isAbsolute(dir) && basename(dir).startsWith(DEMO_PREFIX);
}

/** Pods first, then hosts, then the underlay: the order to stop and delete them in. */
function teardownOrder(names: readonly string[]): string[][] {
  const rank = (n: string): number => (n.includes('-pod') ? 0 : n.includes('-host') ? 1 : 2);
  return [0, 1, 2].map((r) => names.filter((n) => rank(n) === r));
}

export interface SweepResult {
  readonly namespaces: number;
  readonly processes: number;
  readonly tmpDir: string | undefined;
}

/**
 * Removes every demo namespace (stopping the processes inside first: agents before etcd),
 * the temp dir and the state file. Idempotent; also cleans up after a demo that was killed.
 */
export async function sweep(tmpDir: string | undefined): Promise<SweepResult> {
  const names = demoNamespaces();
  const [pods, hosts, rest] = teardownOrder(names) as [string[], string[], string[]];
  let processes = await stopProcessesIn(hosts);
  processes += await stopProcessesIn(pods);
  processes += await stopProcessesIn(rest);
  for (const group of [pods, hosts, rest]) {
    for (const name of group) {
      try {
        deleteNetns(name);
      } catch (err) {
        process.stderr.write(`twillctl demo: could not delete namespace ${name}: ${(err as Error).message}\n`);
      }
    }
  }
  let removed: string | undefined;
  if (tmpDir !== undefined && isDemoTmpDir(tmpDir)) {
    rmSync(tmpDir, { recursive: true, force: true });
    removed = tmpDir;
  }
  removeState();
  return { namespaces: names.length, processes, tmpDir: removed };
}
