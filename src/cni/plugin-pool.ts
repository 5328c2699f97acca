import { Worker } from 'node:worker_threads';
import { InvalidArgumentError } from '../core/errors.js';
import type { PluginCall, PluginReply } from './plugin.js';
import { agentFailureStdout } from './spec/agent-failure.js';

// The agent serves CNI calls on worker threads rather than its main thread. A netlink request is
// handled by the kernel inside sendmsg(), on the sending thread, so one slow kernel operation
// (deleting a veth waits for an RCU grace period, ~20 ms) stalls every call queued behind it on
// that thread. Those waits are sleeps, not CPU, so what parallel pods need is one thread per call
// in progress, not one per core: the pool keeps a few threads warm and starts more (up to a
// maximum) when calls overlap, then lets the extra ones go after a quiet spell, since each
// thread costs about 17 MiB. Each worker runs the same runPlugin() as the standalone plugin, on
// its own warm context.

/** What the main thread sends a worker (structured-clone friendly). */
export interface WorkerRequest {
  readonly id: number;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: Uint8Array;
}

/** A worker's answer; the error is flattened (custom fields do not survive postMessage). */
export interface WorkerReply {
  readonly id: number;
  readonly exitCode: number;
  readonly stdout: string;
  readonly command: string;
  readonly error: { readonly name: string; readonly message: string; readonly code?: unknown } | undefined;
}

export interface PluginPoolOptions {
  /** Most threads at once; default {@link DEFAULT_MAX_THREADS}. */
  readonly maxThreads?: number | undefined;
  /** Threads kept running even when idle (started before start() resolves); default min(2, maxThreads). */
  readonly warmThreads?: number | undefined;
  /** How long a thread beyond the warm ones may sit idle before it is stopped; default 5 min. */
  readonly idleMs?: number | undefined;
  /** The worker script; tests swap it. Default: plugin-worker.js next to this file. */
  readonly workerUrl?: URL | undefined;
}

/** Events a pool reports; it never logs. */
export interface PluginPoolEvents {
  /** A worker died (crash, or an exception escaping it); its calls were answered with an error and it was replaced. */
  readonly onWorkerExit?: ((err: Error) => void) | undefined;
}

interface Slot {
  worker: Worker;
  readonly pending: Map<number, (reply: PluginReply) => void>;
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

/** The first message of a worker whose context is open. */
export const WORKER_READY = 'ready';
/** Asks a worker to close its context and end. */
export const WORKER_SHUTDOWN = 'shutdown';
/** How long close() lets a worker end by itself before terminating it. */
const SHUTDOWN_GRACE_MS = 5000;

const MAX_POOL = 64;
/** Eight calls in progress at once before they queue: measured on two cores (README, bench cni). */
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

/** Runs plugin calls on worker threads, each call on the least busy one (see the file comment). */
export class PluginPool {
  private readonly slots: Slot[] = [];
  private readonly workerUrl: URL;
  private readonly maxThreads: number;
  private readonly idleMs: number;
  private nextId = 1;
  private closed = false;
  /** Extra threads asked to stop for idling, until they have. */
  private readonly retiring = new Set<Promise<void>>();

  private readonly respawnTimers = new Set<NodeJS.Timeout>();

  private constructor(opts: PluginPoolOptions, private readonly events: PluginPoolEvents) {
    this.workerUrl = opts.workerUrl ?? new URL('./plugin-worker.js', import.meta.url);
    this.maxThreads = threadCount('CNI worker count', opts.maxThreads ?? DEFAULT_MAX_THREADS);
    this.idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
  }

  /**
   * Starts the warm threads and resolves once each has opened its context; rejects (and stops
   * them) when one cannot start, so the agent fails at start-up rather than on the first pod.
   */
  static async start(opts: PluginPoolOptions = {}, events: PluginPoolEvents = {}): Promise<PluginPool> {
    const pool = new PluginPool(opts, events);
    const warm = threadCount('CNI warm worker count', opts.warmThreads ?? Math.min(2, pool.maxThreads));
    if (warm > pool.maxThreads) throw new InvalidArgumentError('CNI warm worker count', warm, `must not exceed the maximum of ${pool.maxThreads}`);
    const started: Promise<void>[] = [];
    for (let i = 0; i < warm; i++) started.push(pool.addThread(true));
    try {
      await Promise.all(started);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Threads running now (the warm ones plus any extra ones still busy or not yet idle long enough). */
  get size(): number {
    return this.slots.length;
  }

  get maxSize(): number {
    return this.maxThreads;
  }

  /** Never rejects: a worker that dies mid-call yields the CNI error JSON, as any failure does. */
  run(call: PluginCall): Promise<PluginReply> {
    const command = call.env.CNI_COMMAND ?? '';
    if (this.closed) return Promise.resolve(failure(command, new Error('the agent is shutting down')));
    // Ready threads first; with none (a warm thread being replaced), one still starting takes
    // the call and answers it once it has loaded.
    const ready = this.slots.filter((s) => s.alive && s.ready);
    const live = ready.length > 0 ? ready : this.slots.filter((s) => s.alive);
    if (live.length === 0) return Promise.resolve(failure(command, new Error('no CNI worker thread is running (they keep failing to start; see the agent log)')));
    const slot = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    // Every thread is busy: this call queues behind another (a new thread takes longer to load
    // than most calls take), and one more thread starts for the calls that follow.
    if (slot.pending.size > 0 && this.slots.length < this.maxThreads) {
      this.addThread(false).catch(() => { /* reported through onWorkerExit; calls go to the others */ });
    }
    clearIdle(slot);
    const id = this.nextId++;
    const stdin = typeof call.stdin === 'string' ? Buffer.from(call.stdin) : call.stdin;
    return new Promise((resolve) => {
      slot.pending.set(id, resolve);
      // A call in progress keeps the process alive; an idle pool does not (see spawn()).
      slot.worker.ref();
      const req: WorkerRequest = { id, env: call.env, stdin };
      slot.worker.postMessage(req);
    });
  }

  /** Waits for the calls in progress, then stops the threads. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.respawnTimers) clearTimeout(t);
    this.respawnTimers.clear();
    await Promise.all([
      ...this.slots.map(async (slot) => {
        while (slot.pending.size > 0) await new Promise((r) => setTimeout(r, 10));
        await this.stopThread(slot);
      }),
      ...this.retiring,
    ]);
  }

  /** Asks the thread to close its context and end; terminates it if it does not in time. */
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
    if (!graceful) await worker.terminate();
  }

  /** Adds a thread to the pool; resolves when it is ready. An extra one that cannot start is dropped. */
  private addThread(warm: boolean): Promise<void> {
    const slot: Slot = { worker: undefined as unknown as Worker, pending: new Map(), failedStarts: 0, alive: false, ready: false, warm, idleTimer: undefined };
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
    const worker = new Worker(this.workerUrl);
    slot.worker = worker;
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
      const resolve = slot.pending.get(reply.id);
      if (!resolve) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) this.idle(slot);
      resolve({ exitCode: reply.exitCode, stdout: reply.stdout, command: reply.command, error: reply.error && remoteError(reply.error) });
    });
    let lastError: Error | undefined;
    worker.on('error', (err) => { lastError = err; });
    worker.on('exit', (code) => {
      const ready = slot.ready;
      slot.alive = false;
      slot.ready = false;
      clearIdle(slot);
      const err = lastError ?? new Error(`CNI worker thread exited with code ${code}`);
      for (const resolve of slot.pending.values()) resolve(failure('', err));
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

function failure(command: string, err: Error): PluginReply {
  return { exitCode: 1, stdout: agentFailureStdout(`twill agent: ${err.message}`), command, error: err };
}
