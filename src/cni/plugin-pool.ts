import { Worker } from 'node:worker_threads';
import { InvalidArgumentError } from '../core/errors.js';
import type { PluginCall, PluginReply } from './plugin.js';
import { agentFailureStdout } from './spec/agent-failure.js';
import { WORKER_EXPIRE, WORKER_READY, WORKER_SHUTDOWN, type WorkerData, type WorkerReply, type WorkerRequest } from './plugin-worker-protocol.js';
import { CniCode } from './spec/errors.js';
import { replyVersion } from './spec/versions.js';
import { DEFAULT_TIMEOUT_MS, undoMs } from './timeouts.js';

// The agent serves CNI calls on worker threads rather than its main thread. A netlink request is
// handled by the kernel inside sendmsg(), on the sending thread, so one slow kernel operation
// (deleting a veth waits for an RCU grace period, ~20 ms) stalls every call queued behind it on
// that thread. Those waits are sleeps, not CPU, so what parallel pods need is one thread per call
// in progress, not one per core: the pool keeps a few threads warm and starts more (up to a
// maximum) when calls overlap, then lets the extra ones go after a quiet spell, since each
// thread costs about 17 MiB. The agent's pool (PluginPool.lazy) starts even its warm threads
// only with the first call: a node that creates no pods holds none. Each worker runs the same
// runPlugin() as the standalone plugin, on its own warm context, with the call's deadline
// (deadline.ts).
//
// A thread stuck in a system call (a file system that hangs) never gets back to its deadline.
// When a call has no answer well past it, the pool gives up on the thread: it answers the
// thread's calls itself (code 11, an ADD rolled back by a DEL on another thread), starts a
// replacement, and leaves the stuck one to end by itself if it ever wakes up (it then stops
// without touching anything: see mayRollBack). It cannot be terminated: Worker.terminate() under
// a thread's native netlink sockets crashes the process. process.exit() would wait for it
// forever, so the agent ends with _exit() while any is left (stuckThreads).

// The agent's flags name these (the agent imports only this file and agent-socket.ts of src/cni).
export { DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS } from './timeouts.js';
export { DEFAULT_DATA_DIR } from './config.js';

export interface PluginPoolOptions {
  /** Most threads at once; default {@link DEFAULT_MAX_THREADS}. */
  readonly maxThreads?: number | undefined;
  /**
   * Threads kept running even when idle (started before start() resolves, or by a lazy pool's
   * first call); default min(2, maxThreads).
   */
  readonly warmThreads?: number | undefined;
  /** How long a thread beyond the warm ones may sit idle before it is stopped; default 5 min. */
  readonly idleMs?: number | undefined;
  /** Each call's deadline (twilld --cni-timeout); default 60 s. */
  readonly callTimeoutMs?: number | undefined;
  /**
   * How long past a call's deadline and undo a silent thread has before it counts as stuck, and
   * how long close() lets calls in progress finish before cutting them short; default 5 s.
   */
  readonly graceMs?: number | undefined;
  /** The worker script; tests swap it. Default: plugin-worker.js next to this file. */
  readonly workerUrl?: URL | undefined;
}

/** Events a pool reports; it never logs. */
export interface PluginPoolEvents {
  /** A worker died (crash, or an exception escaping it); its calls were answered with an error and it was replaced. */
  readonly onWorkerExit?: ((err: Error) => void) | undefined;
  /** A worker stopped answering (stuck in the kernel); its calls were answered and rolled back, and it was replaced. */
  readonly onWorkerStuck?: ((err: Error) => void) | undefined;
}

interface PendingCall {
  readonly call: PluginCall;
  readonly resolve: (reply: PluginReply) => void;
  /** Gives up on the thread when the call is not answered in time. */
  watchdog: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  /** This worker's WorkerData.abandoned. */
  abandoned: Int32Array;
  readonly pending: Map<number, PendingCall>;
  /** Consecutive deaths before the worker said it was ready; drives the respawn delay. */
  failedStarts: number;
  /** The thread runs (false between its exit and its replacement). */
  alive: boolean;
  /** It said it was ready; calls go to ready threads first. */
  ready: boolean;
  /** One of the warm threads: replaced when it dies, never stopped for idling. */
  readonly warm: boolean;
  /** Stops an extra thread that stayed idle (see idleMs). */
  idleTimer: NodeJS.Timeout | undefined;
}

/** How long close() lets a worker end by itself before giving up on it. */
const SHUTDOWN_GRACE_MS = 5000;
/** PluginPoolOptions.graceMs. */
const DEFAULT_GRACE_MS = 5000;

const MAX_POOL = 64;
/** Eight calls in progress at once before they queue: measured on two cores (docs/benchmarks.md, bench cni). */
export const DEFAULT_MAX_THREADS = 8;
/** Long enough that steady pod churn keeps its threads; a quiet node gives the memory back. */
const DEFAULT_IDLE_MS = 5 * 60_000;

function threadCount(what: string, n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_POOL) throw new InvalidArgumentError(what, n, `must be an integer from 1 to ${MAX_POOL}`);
  return n;
}

function remoteError(e: NonNullable<WorkerReply['error']>): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) Object.assign(err, { code: e.code });
  return err;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs plugin calls on worker threads, each call on the least busy one (see the file comment). */
export class PluginPool {
  private readonly slots: Slot[] = [];
  private readonly workerUrl: URL;
  private readonly maxThreads: number;
  private readonly warmThreads: number;
  /** The warm threads have been started (they are replaced when they die, never stopped for idling). */
  private warmStarted = false;
  private readonly idleMs: number;
  private readonly callTimeoutMs: number;
  private readonly graceMs: number;
  private nextId = 1;
  private closed = false;
  /** Extra threads asked to stop for idling, until they have. */
  private readonly retiring = new Set<Promise<void>>();
  /** Threads given up on that have not ended. */
  private readonly stuck = new Set<Worker>();
  /** Answers the pool is working out itself (calls of a stuck thread). */
  private readonly answering = new Set<Promise<void>>();

  private readonly respawnTimers = new Set<NodeJS.Timeout>();

  private constructor(opts: PluginPoolOptions, private readonly events: PluginPoolEvents) {
    this.workerUrl = opts.workerUrl ?? new URL('./plugin-worker.js', import.meta.url);
    this.maxThreads = threadCount('CNI worker count', opts.maxThreads ?? DEFAULT_MAX_THREADS);
    this.warmThreads = threadCount('CNI warm worker count', opts.warmThreads ?? Math.min(2, this.maxThreads));
    if (this.warmThreads > this.maxThreads) throw new InvalidArgumentError('CNI warm worker count', this.warmThreads, `must not exceed the maximum of ${this.maxThreads}`);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isFinite(this.callTimeoutMs) || this.callTimeoutMs <= 0) throw new InvalidArgumentError('CNI call timeout (ms)', this.callTimeoutMs, 'must be positive');
    this.graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  }

  /**
   * Starts the warm threads and resolves once each has opened its context; rejects (and stops
   * them) when one cannot start, so the agent fails at start-up rather than on the first pod.
   */
  static async start(opts: PluginPoolOptions = {}, events: PluginPoolEvents = {}): Promise<PluginPool> {
    const pool = new PluginPool(opts, events);
    try {
      await Promise.all(pool.startWarm());
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /**
   * A pool with no thread yet: its first call starts the warm threads and goes to one of them,
   * which answers once it has loaded its modules (that call takes a few tenths of a second
   * longer), and from then on it behaves as a started pool. A worker that cannot load fails that call instead of the caller's start-up
   * (reported through onWorkerExit, and retried with a growing delay). Throws on bad options.
   */
  static lazy(opts: PluginPoolOptions = {}, events: PluginPoolEvents = {}): PluginPool {
    return new PluginPool(opts, events);
  }

  /** Starts the warm threads, once; each promise resolves when its thread is ready. */
  private startWarm(): Promise<void>[] {
    if (this.warmStarted) return [];
    this.warmStarted = true;
    return Array.from({ length: this.warmThreads }, () => this.addThread(true));
  }

  /**
   * Threads running now (the warm ones, once started, plus any extra ones still busy or not yet
   * idle long enough).
   */
  get size(): number {
    return this.slots.length;
  }

  get maxSize(): number {
    return this.maxThreads;
  }

  /** Threads kept running once started, even when idle. */
  get warmSize(): number {
    return this.warmThreads;
  }

  /** Threads the pool gave up on that are still stuck: the process cannot exit normally while any is. */
  get stuckThreads(): number {
    return this.stuck.size;
  }

  /** Never rejects: a worker that dies or gets stuck mid-call yields the CNI error JSON, as any failure does. */
  run(call: PluginCall): Promise<PluginReply> {
    if (this.closed) return Promise.resolve(failure(call, 'the agent is shutting down'));
    // A lazy pool's first call; a thread that cannot start fails its calls and is reported.
    for (const started of this.startWarm()) started.catch(() => { /* reported through onWorkerExit */ });
    return this.dispatch(call, undefined);
  }

  /**
   * Waits for the calls in progress (cut short after a grace period: the agent is stopping, and
   * they roll back), then stops the threads. Bounded: a thread that does not end is given up on.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.respawnTimers) clearTimeout(t);
    this.respawnTimers.clear();
    if (!(await this.idleWithin(this.graceMs))) {
      for (const slot of this.slots) this.expireCalls(slot);
      await this.idleWithin(Infinity);
    }
    await Promise.all([...this.slots.map((slot) => this.stopThread(slot)), ...this.retiring]);
  }

  /** True once no call is pending (checked every 10 ms), false if that takes longer than `ms`. */
  private async idleWithin(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (this.answering.size === 0 && this.slots.every((s) => s.pending.size === 0)) return true;
      if (Date.now() >= until) return false;
      await sleep(10);
    }
  }

  /** Its calls' deadlines pass now; the stuck-thread watch follows from here. */
  private expireCalls(slot: Slot): void {
    if (!slot.alive || slot.pending.size === 0) return;
    slot.worker.postMessage(WORKER_EXPIRE);
    for (const pending of slot.pending.values()) this.watch(slot, pending, 2 * undoMs(this.callTimeoutMs) + this.graceMs);
  }

  /** Sends the call to the least busy thread. */
  private dispatch(call: PluginCall, timeoutMs: number | undefined): Promise<PluginReply> {
    // Ready threads first; with none (a warm thread being replaced), one still starting takes
    // the call and answers it once it has loaded.
    const ready = this.slots.filter((s) => s.alive && s.ready);
    const live = ready.length > 0 ? ready : this.slots.filter((s) => s.alive);
    if (live.length === 0) return Promise.resolve(failure(call, 'no CNI worker thread is running (they keep failing to start; see the agent log)'));
    const slot = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    // Every thread is busy: this call queues behind another (a new thread takes longer to load
    // than most calls take), and one more thread starts for the calls that follow.
    if (slot.pending.size > 0 && this.slots.length < this.maxThreads && !this.closed) {
      this.addThread(false).catch(() => { /* reported through onWorkerExit; calls go to the others */ });
    }
    clearIdle(slot);
    const id = this.nextId++;
    const stdin = typeof call.stdin === 'string' ? Buffer.from(call.stdin) : call.stdin;
    return new Promise((resolve) => {
      const pending: PendingCall = { call, resolve, watchdog: undefined as unknown as NodeJS.Timeout };
      const deadline = timeoutMs ?? this.callTimeoutMs;
      this.watch(slot, pending, deadline + 2 * undoMs(deadline) + this.graceMs);
      slot.pending.set(id, pending);
      // A call in progress keeps the process alive; an idle pool does not (see spawn()).
      slot.worker.ref();
      const req: WorkerRequest = { id, env: call.env, stdin, callerPid: call.callerPid, timeoutMs };
      slot.worker.postMessage(req);
    });
  }

  /** (Re)arms the call's watch: no answer within `ms`, and its thread counts as stuck. */
  private watch(slot: Slot, pending: PendingCall, ms: number): void {
    clearTimeout(pending.watchdog);
    const worker = slot.worker;
    pending.watchdog = setTimeout(() => {
      if (slot.worker === worker) this.abandon(slot);
    }, ms);
    pending.watchdog.unref();
  }

  /** Gives up on a thread that stopped answering (see the file comment). */
  private abandon(slot: Slot): void {
    if (!slot.alive) return;
    const { worker } = slot;
    Atomics.store(slot.abandoned, 0, 1);
    slot.alive = false;
    slot.ready = false;
    clearIdle(slot);
    worker.removeAllListeners('message');
    worker.removeAllListeners('exit');
    this.stuck.add(worker);
    worker.once('exit', () => this.stuck.delete(worker));
    // If it ever wakes up, it finds its calls past their deadline and ends (plugin-worker.ts).
    worker.postMessage(WORKER_SHUTDOWN);
    worker.unref();
    const calls = [...slot.pending.values()];
    slot.pending.clear();
    this.events.onWorkerStuck?.(new Error(`a CNI worker thread stopped answering (${calls.length} call(s) in progress, the oldest past its ${this.callTimeoutMs} ms deadline); it was replaced`));
    for (const pending of calls) {
      clearTimeout(pending.watchdog);
      const answer = this.rollBack(pending.call).then(pending.resolve);
      this.answering.add(answer);
      void answer.finally(() => this.answering.delete(answer));
    }
    if (slot.warm && !this.closed) {
      this.spawn(slot).catch(() => { /* reported through onWorkerExit */ });
    } else {
      this.remove(slot);
    }
  }

  /** The answer to a call of a stuck thread; an ADD is first undone by a DEL on another thread. */
  private async rollBack(call: PluginCall): Promise<PluginReply> {
    const command = call.env.CNI_COMMAND ?? '';
    let note = '';
    if (command === 'ADD') {
      // Bounded like any call: by its deadline, and by the watch on its thread.
      const undone = (await this.dispatch({ ...call, env: { ...call.env, CNI_COMMAND: 'DEL' } }, undoMs(this.callTimeoutMs))).exitCode === 0;
      note = undone ? '; what it had done is undone' : '; undoing it failed: the runtime\'s DEL will';
    }
    return failure(call, `${command || 'the call'} did not finish: its thread got stuck and was replaced${note}`, CniCode.TRY_AGAIN_LATER);
  }

  /** Asks the thread to close its context and end; gives up on it (never terminates it) if it does not in time. */
  private async stopThread(slot: Slot): Promise<void> {
    clearIdle(slot);
    if (!slot.alive) return;
    const { worker } = slot;
    worker.removeAllListeners('exit');
    const exited = new Promise<boolean>((r) => worker.once('exit', () => r(true)));
    worker.ref();
    worker.postMessage(WORKER_SHUTDOWN);
    let timer: NodeJS.Timeout | undefined;
    const graceful = await Promise.race([exited, new Promise<boolean>((r) => { timer = setTimeout(() => r(false), SHUTDOWN_GRACE_MS); })]);
    clearTimeout(timer);
    slot.alive = false;
    if (!graceful) {
      this.stuck.add(worker);
      void exited.then(() => this.stuck.delete(worker));
      worker.unref();
    }
  }

  /** Adds a thread to the pool; resolves when it is ready. An extra one that cannot start is dropped. */
  private addThread(warm: boolean): Promise<void> {
    const slot: Slot = {
      worker: undefined as unknown as Worker, abandoned: new Int32Array(0), pending: new Map(), failedStarts: 0, alive: false, ready: false, warm, idleTimer: undefined,
    };
    this.slots.push(slot);
    return this.spawn(slot);
  }

  /**
   * The thread has no call left: it no longer keeps the process alive, and an extra one is
   * stopped once it has stayed so for idleMs.
   */
  private idle(slot: Slot): void {
    slot.worker.unref();
    if (slot.warm || this.closed || slot.idleTimer !== undefined) return;
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (slot.pending.size > 0 || this.closed) return;
      this.remove(slot);
      const stopping = this.stopThread(slot);
      this.retiring.add(stopping);
      void stopping.finally(() => this.retiring.delete(stopping));
    }, this.idleMs);
    // An idle thread's timer must not keep the agent alive.
    slot.idleTimer.unref();
  }

  private remove(slot: Slot): void {
    const at = this.slots.indexOf(slot);
    if (at >= 0) this.slots.splice(at, 1);
  }

  /** Resolves when the worker is ready; rejects when it dies first. */
  private spawn(slot: Slot): Promise<void> {
    const abandoned = new SharedArrayBuffer(4);
    const data: WorkerData = { timeoutMs: this.callTimeoutMs, abandoned };
    const worker = new Worker(this.workerUrl, { workerData: data });
    slot.worker = worker;
    slot.abandoned = new Int32Array(abandoned);
    slot.alive = true;
    slot.ready = false;
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const readyPromise = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
    worker.on('message', (reply: WorkerReply | typeof WORKER_READY) => {
      if (reply === WORKER_READY) {
        slot.ready = true;
        if (slot.pending.size === 0) this.idle(slot);
        slot.failedStarts = 0;
        settle.resolve();
        return;
      }
      const pending = slot.pending.get(reply.id);
      if (!pending) return;
      slot.pending.delete(reply.id);
      clearTimeout(pending.watchdog);
      if (slot.pending.size === 0) this.idle(slot);
      pending.resolve({
        exitCode: reply.exitCode, stdout: reply.stdout, command: reply.command, error: reply.error && remoteError(reply.error), warnings: reply.warnings ?? [],
      });
    });
    let lastError: Error | undefined;
    worker.on('error', (err) => { lastError = err; });
    worker.on('exit', (code) => {
      const ready = slot.ready;
      slot.alive = false;
      slot.ready = false;
      clearIdle(slot);
      const err = lastError ?? new Error(`CNI worker thread exited with code ${code}`);
      for (const pending of slot.pending.values()) {
        clearTimeout(pending.watchdog);
        pending.resolve({ ...failure(pending.call, err.message), error: err });
      }
      slot.pending.clear();
      this.events.onWorkerExit?.(err);
      if (!ready) {
        slot.failedStarts++;
        settle.reject(err);
      }
      if (this.closed) return;
      // An extra thread is not replaced: the next busy moment starts another.
      if (!slot.warm) return this.remove(slot);
      const respawn = (): void => { if (!this.closed) this.spawn(slot).catch(() => { /* reported through onWorkerExit */ }); };
      if (ready) return respawn();
      // A worker that cannot even start would otherwise be respawned in a tight loop.
      const delay = Math.min(30_000, 250 * 2 ** slot.failedStarts);
      const timer = setTimeout(() => {
        this.respawnTimers.delete(timer);
        respawn();
      }, delay);
      this.respawnTimers.add(timer);
    });
    // Referenced until ready (start() awaits it), then only while it has calls to answer.
    return readyPromise;
  }
}

function clearIdle(slot: Slot): void {
  if (slot.idleTimer !== undefined) clearTimeout(slot.idleTimer);
  slot.idleTimer = undefined;
}

/** The pool's own answer to a call it could not have a thread answer. */
function failure(call: PluginCall, msg: string, code: number = CniCode.INTERNAL): PluginReply {
  const command = call.env.CNI_COMMAND ?? '';
  const err = new Error(msg);
  return { exitCode: 1, stdout: agentFailureStdout(`twill agent: ${msg}`, code, replyVersion(call.stdin)), command, error: err, warnings: [] };
}
