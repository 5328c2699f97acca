/**
 * Teardown for test resources, on success, failure and timeout, and as far as possible even when
 * the test process is interrupted or killed.
 *
 * Three layers:
 *
 * 1. {@link CleanupRegistry}: a LIFO stack of async/sync teardown functions. Helpers (createCluster,
 *    startEtcd, startDaemon, tempDir) push their teardown onto a registry, by default the
 *    process-wide {@link cleanup}. `runTo(mark)` unwinds everything pushed after `mark`, so scopes
 *    nest: a cluster made in `beforeAll` outlives the tests, one made inside a test does not.
 *    Every entry runs even when an earlier one fails or hangs (each has a time limit); failures are
 *    reported together at the end as a {@link CleanupError}.
 *
 * 2. Vitest: call `useCleanup()` from ./vitest.ts once at the top of a test file (or a describe):
 *
 *      import { useCleanup } from '../helpers/vitest.js';
 *      useCleanup();                       // beforeEach/afterEach + beforeAll/afterAll marks
 *      it('...', async () => {
 *        const c = await createCluster({ hosts: 2 });   // destroyed after this test
 *      });
 *
 *    or without the helper:
 *
 *      let mark = 0;
 *      beforeEach(() => { mark = cleanup.size; });
 *      afterEach(() => cleanup.runTo(mark));
 *      afterAll(() => cleanup.runAll());
 *
 *    Vitest runs after-hooks when a test fails or times out (the timed-out body may go on running
 *    and push more entries: they are unwound by the next afterEach/afterAll, or at exit).
 *    Outside vitest (benchmarks, scripts) use {@link withCleanup}. Concurrent tests
 *    (`test.concurrent`) must each use their own registry (withCleanup), since marks assume
 *    tests run one at a time.
 *
 * 3. Process exit: what cannot be awaited at exit is *tracked* synchronously: namespaces
 *    ({@link trackNetns}), processes ({@link trackProcess}) and temp paths ({@link trackPath}).
 *    On `exit`, SIGINT, SIGTERM and SIGHUP this module kills the tracked processes (SIGKILL to
 *    their process group), kills every process still inside a tracked namespace, deletes the
 *    namespaces (deleteNetns is synchronous) and removes the paths. Vitest's pool stops a worker
 *    with SIGTERM, so a worker that is torn down mid-test still cleans up. Only SIGKILL escapes
 *    all of this: for that, names carry the owner's pid (names.ts) and {@link sweepStale}, which
 *    `useCleanup()` calls once per file, removes whatever a dead test process left behind.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteNetns, listNetns, netnsPath } from '../../src/netlink/index.js';
import { NETNS_PREFIX, ownerPidOf, tempDirName } from './names.js';

// ---- 1. The registry -------------------------------------------------------------------------

export type Teardown = () => void | Promise<void>;

export interface DeferOptions {
  /** Give up waiting for this teardown after so long (it is reported as failed); default 20 s. */
  readonly timeoutMs?: number;
}

/** A pushed teardown: run it now (once) or drop it without running. */
export interface CleanupEntry {
  readonly label: string;
  /** Runs the teardown now and removes it from the registry; later calls return the same promise. */
  run(): Promise<void>;
  /** Removes the teardown without running it (the resource was released some other way). */
  cancel(): void;
}

/** One or more teardowns failed; `errors` holds each failure, `labels` which teardown it was. */
export class CleanupError extends AggregateError {
  constructor(readonly labels: readonly string[], errors: readonly unknown[]) {
    super(errors, `cleanup: ${errors.length} teardown(s) failed:\n${errors.map((e, i) =>
      `  - ${labels[i]}: ${e instanceof Error ? e.message : String(e)}`).join('\n')}`);
    this.name = 'CleanupError';
  }
}

const DEFAULT_TEARDOWN_TIMEOUT_MS = 20_000;

interface Entry {
  readonly label: string;
  readonly fn: Teardown;
  readonly timeoutMs: number;
  promise: Promise<void> | undefined;
}

export class CleanupRegistry {
  private readonly stack: Entry[] = [];

  constructor(readonly name = 'cleanup') {}

  /** Number of teardowns waiting; use it as a mark for {@link runTo}. */
  get size(): number {
    return this.stack.length;
  }

  /** Labels of the waiting teardowns, oldest first. */
  labels(): string[] {
    return this.stack.map((e) => e.label);
  }

  /** Pushes a teardown. It runs once: at unwind, or earlier through the returned entry. */
  defer(label: string, fn: Teardown, opts: DeferOptions = {}): CleanupEntry {
    const entry: Entry = { label, fn, timeoutMs: opts.timeoutMs ?? DEFAULT_TEARDOWN_TIMEOUT_MS, promise: undefined };
    this.stack.push(entry);
    return {
      label,
      run: () => this.runEntry(entry),
      cancel: () => this.remove(entry),
    };
  }

  /** Unwinds (LIFO) every teardown pushed after `mark`; throws a CleanupError if any failed. */
  async runTo(mark = 0): Promise<void> {
    const labels: string[] = [];
    const errors: unknown[] = [];
    while (this.stack.length > Math.max(0, mark)) {
      const entry = this.stack[this.stack.length - 1]!;
      try {
        await this.runEntry(entry);
      } catch (err) {
        labels.push(entry.label);
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new CleanupError(labels, errors);
  }

  /** Unwinds everything. */
  runAll(): Promise<void> {
    return this.runTo(0);
  }

  private remove(entry: Entry): void {
    const i = this.stack.lastIndexOf(entry);
    if (i >= 0) this.stack.splice(i, 1);
  }

  private runEntry(entry: Entry): Promise<void> {
    if (!entry.promise) {
      this.remove(entry);
      entry.promise = withTimeout(entry, Promise.resolve().then(entry.fn));
    }
    return entry.promise;
  }
}

function withTimeout(entry: Entry, p: Promise<void>): Promise<void> {
  if (entry.timeoutMs <= 0) return p;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`teardown "${entry.label}" did not finish within ${entry.timeoutMs} ms`)), entry.timeoutMs);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The process-wide registry every helper uses unless given another. */
export const cleanup = new CleanupRegistry('global');

/**
 * Runs `fn` with a fresh registry and unwinds it afterwards, whether `fn` returns or throws.
 * If both fail, the error names both (fn's error first).
 */
export async function withCleanup<T>(fn: (registry: CleanupRegistry) => Promise<T> | T): Promise<T> {
  const registry = new CleanupRegistry('scope');
  let result: T;
  try {
    result = await fn(registry);
  } catch (err) {
    try {
      await registry.runAll();
    } catch (cleanupErr) {
      throw new AggregateError([err, cleanupErr],
        `${err instanceof Error ? err.message : String(err)} (and cleanup failed: ${cleanupErr instanceof Error ? cleanupErr.message : String(cleanupErr)})`);
    }
    throw err;
  }
  await registry.runAll();
  return result;
}

// ---- 2. Synchronous tracking for exit/signal cleanup -------------------------------------------

interface TrackedProcess {
  readonly label: string;
  /** The pid leads its own process group (spawned detached): kill the whole group. */
  readonly group: boolean;
}

interface TrackingState {
  readonly netns: Set<string>;
  readonly processes: Map<number, TrackedProcess>;
  readonly paths: Set<string>;
  handlersInstalled: boolean;
}

// One state per process, not per module instance: vitest re-evaluates modules for each test file
// (isolate), also when files share one worker process (singleFork), while the exit handlers are
// installed once. Keeping the state on globalThis lets those handlers see every file's resources.
const STATE_KEY = Symbol.for('twill.test.cleanup.state');
const state: TrackingState = ((globalThis as Record<symbol, unknown>)[STATE_KEY] as TrackingState | undefined)
  ?? ((globalThis as Record<symbol, unknown>)[STATE_KEY] = {
    netns: new Set<string>(), processes: new Map<number, TrackedProcess>(), paths: new Set<string>(), handlersInstalled: false,
  } satisfies TrackingState) as TrackingState;
const trackedNetns = state.netns;
const trackedProcesses = state.processes;
const trackedPaths = state.paths;

/** Remember a namespace this process created, for deletion at exit. */
export function trackNetns(name: string): void { trackedNetns.add(name); }
export function untrackNetns(name: string): void { trackedNetns.delete(name); }

/** Remember a process this process started, for SIGKILL at exit. */
export function trackProcess(pid: number, opts: { label?: string; group?: boolean } = {}): void {
  trackedProcesses.set(pid, { label: opts.label ?? `pid ${pid}`, group: opts.group ?? false });
}
export function untrackProcess(pid: number): void { trackedProcesses.delete(pid); }

/** Remember a file or directory (removed recursively at exit). */
export function trackPath(path: string): void { trackedPaths.add(path); }
export function untrackPath(path: string): void { trackedPaths.delete(path); }

/** What is currently tracked for exit cleanup (for tests of the harness and for debugging). */
export function tracked(): { netns: string[]; pids: number[]; paths: string[] } {
  return { netns: [...trackedNetns], pids: [...trackedProcesses.keys()], paths: [...trackedPaths] };
}

/**
 * Sends `signal` to a pid, or with `group` to the process group it leads (a daemon spawned
 * detached, see daemon.ts); false when there is no such process/group. Never throws. There is
 * deliberately no fallback from the group to the bare pid: once a group is gone its number may
 * belong to an unrelated new process.
 */
export function signalProcess(pid: number, signal: NodeJS.Signals | number, group = false): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
  try {
    process.kill(group ? -pid : pid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True while a process with this pid runs (a zombie, dead but not yet reaped, counts as gone). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state ..."; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Pids of the processes whose network namespace is the named one, found as `ip netns pids` does:
 * by comparing the nsfs inode of /run/netns/<name> with /proc/<pid>/ns/net. Never includes this
 * process.
 */
export function pidsInNetns(name: string): number[] {
  let target: { dev: number; ino: number };
  try {
    target = statSync(netnsPath(name));
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      if (st.ino === target.ino && st.dev === target.dev) out.push(pid);
    } catch { /* exited meanwhile, or a kernel thread */ }
  }
  return out;
}

/** SIGKILLs every process inside the named namespace; returns their pids. */
export function killNetnsProcesses(name: string): number[] {
  const pids = pidsInNetns(name);
  for (const pid of pids) signalProcess(pid, 'SIGKILL');
  return pids;
}

/**
 * Synchronously removes a namespace this process made: kills what runs inside, deletes it
 * (deleteNetns: lazy unmount + unlink) and stops tracking it. A missing namespace is fine.
 */
export function destroyNetnsSync(name: string): void {
  killNetnsProcesses(name);
  deleteNetns(name);
  untrackNetns(name);
}

/**
 * Kills tracked processes, deletes tracked namespaces (after killing whatever runs inside) and
 * removes tracked paths. Synchronous and best effort (never throws): this is what runs at exit.
 */
export function emergencyCleanupSync(): void {
  for (const [pid, p] of [...trackedProcesses].reverse()) {
    signalProcess(pid, 'SIGKILL', p.group);
    trackedProcesses.delete(pid);
  }
  for (const name of [...trackedNetns].reverse()) {
    try {
      destroyNetnsSync(name);
    } catch (err) {
      process.stderr.write(`twill test cleanup: cannot delete namespace ${name}: ${String(err)}\n`);
    }
  }
  for (const path of [...trackedPaths].reverse()) {
    try {
      rmSync(path, { recursive: true, force: true });
      trackedPaths.delete(path);
    } catch (err) {
      process.stderr.write(`twill test cleanup: cannot remove ${path}: ${String(err)}\n`);
    }
  }
}

/**
 * Installs the exit/signal handlers (once per process; importing this module does it). On a
 * signal, after cleaning up, the signal is re-raised with its default action unless something
 * else (vitest, say) also listens for it.
 */
export function installExitHandlers(): void {
  if (state.handlersInstalled) return;
  state.handlersInstalled = true;
  process.on('exit', emergencyCleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      emergencyCleanupSync();
      if (process.listenerCount(signal) === 1) {
        process.off(signal, handler);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, handler);
  }
}

installExitHandlers();

// ---- 3. Temp dirs and leftovers of dead test processes -----------------------------------------

/**
 * Creates a private temp dir `<os.tmpdir()>/twt-<owner>.<id>-<label>`, removed by `registry`
 * (and at exit). Daemons keep their pid files (`*.pid`) here so {@link sweepStale} can find them.
 */
export function tempDir(label: string, registry: CleanupRegistry = cleanup): string {
  const path = join(tmpdir(), tempDirName(label));
  mkdirSync(path, { mode: 0o700 });
  trackPath(path);
  registry.defer(`rm -r ${path}`, () => {
    rmSync(path, { recursive: true, force: true });
    untrackPath(path);
  });
  return path;
}

export interface SweepResult {
  readonly netns: string[];
  readonly dirs: string[];
  readonly pids: number[];
}

/**
 * Removes what test processes that died without cleaning up (SIGKILL, OOM) left behind: `twt-`
 * namespaces and `twt-` temp dirs whose owner pid (names.ts) no longer runs, with the processes
 * inside those namespaces and those named by `*.pid` files in those dirs (only if their command
 * line mentions the dir, so a recycled pid is never killed). Namespaces of live processes, other
 * test files running in parallel included, are left alone.
 */
export function sweepStale(): SweepResult {
  const result: SweepResult = { netns: [], dirs: [], pids: [] };
  for (const name of listNetns()) {
    if (!name.startsWith(NETNS_PREFIX)) continue;
    const owner = ownerPidOf(name);
    if (owner === undefined || owner === process.pid || processAlive(owner)) continue;
    try {
      result.pids.push(...killNetnsProcesses(name));
      deleteNetns(name);
      result.netns.push(name);
    } catch { /* best effort */ }
  }
  const tmp = tmpdir();
  let entries: string[] = [];
  try { entries = readdirSync(tmp); } catch { /* no tmp dir */ }
  for (const entry of entries) {
    if (!entry.startsWith(NETNS_PREFIX)) continue;
    const owner = ownerPidOf(entry);
    if (owner === undefined || owner === process.pid || processAlive(owner)) continue;
    const dir = join(tmp, entry);
    result.pids.push(...killPidFiles(dir));
    try {
      rmSync(dir, { recursive: true, force: true });
      result.dirs.push(dir);
    } catch { /* best effort */ }
  }
  return result;
}

function killPidFiles(dir: string): number[] {
  const killed: number[] = [];
  let files: string[] = [];
  try { files = readdirSync(dir); } catch { return killed; }
  for (const file of files) {
    if (!file.endsWith('.pid')) continue;
    try {
      const pid = Number(readFileSync(join(dir, file), 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (!cmdline.includes(dir)) continue;
      // Its command line names our dir: it is the daemon we started (group leader), or at least ours.
      if (!signalProcess(pid, 'SIGKILL', true)) signalProcess(pid, 'SIGKILL');
      killed.push(pid);
    } catch { /* gone already */ }
  }
  return killed;
}

/** True if a namespace of this name exists in /run/netns. */
export function netnsExists(name: string): boolean {
  return existsSync(netnsPath(name));
}
