import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { InvalidArgumentError } from '../core/errors.js';
import type { PluginCall, PluginReply } from './plugin.js';
import { agentFailureStdout } from './spec/agent-failure.js';

// The agent serves CNI calls on a few worker threads rather than its main thread. A netlink
// request is handled by the kernel inside sendmsg(), on the sending thread, so one slow kernel
// operation (deleting a veth waits for an RCU grace period, ~20 ms) stalls every call queued
// behind it, and one thread uses one core while runtimes run several plugins at once. Each
// worker runs the same runPlugin() as the standalone plugin, on its own warm context.

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
  /** Threads; default min(4, available cores). */
  readonly size?: number | undefined;
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
}

/** The first message of a worker whose context is open. */
export const WORKER_READY = 'ready';
/** Asks a worker to close its context and end. */
export const WORKER_SHUTDOWN = 'shutdown';
/** How long close() lets a worker end by itself before terminating it. */
const SHUTDOWN_GRACE_MS = 5000;

const MAX_POOL = 64;

export function defaultPoolSize(): number {
  return Math.min(4, Math.max(1, availableParallelism()));
}

function remoteError(e: NonNullable<WorkerReply['error']>): Error {
  const err = new Error(e.message);
  err.name = e.name;
  if (e.code !== undefined) Object.assign(err, { code: e.code });
  return err;
}

/** Runs plugin calls on `size` worker threads, each call on the least busy one. */
export class PluginPool {
  private readonly slots: Slot[] = [];
  private readonly workerUrl: URL;
  private nextId = 1;
  private closed = false;

  private readonly respawnTimers = new Set<NodeJS.Timeout>();

  private constructor(opts: PluginPoolOptions, private readonly events: PluginPoolEvents) {
    this.workerUrl = opts.workerUrl ?? new URL('./plugin-worker.js', import.meta.url);
  }

  /**
   * Starts the threads and resolves once each has opened its context; rejects (and stops them)
   * when one cannot start, so the agent fails at start-up rather than on the first pod.
   */
  static async start(opts: PluginPoolOptions = {}, events: PluginPoolEvents = {}): Promise<PluginPool> {
    const size = opts.size ?? defaultPoolSize();
    if (!Number.isInteger(size) || size < 1 || size > MAX_POOL) throw new InvalidArgumentError('CNI worker count', size, `must be an integer from 1 to ${MAX_POOL}`);
    const pool = new PluginPool(opts, events);
    const started: Promise<void>[] = [];
    for (let i = 0; i < size; i++) {
      const slot: Slot = { worker: undefined as unknown as Worker, pending: new Map(), failedStarts: 0, alive: false };
      started.push(pool.spawn(slot));
      pool.slots.push(slot);
    }
    try {
      await Promise.all(started);
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  /** Never rejects: a worker that dies mid-call yields the CNI error JSON, as any failure does. */
  run(call: PluginCall): Promise<PluginReply> {
    const command = call.env.CNI_COMMAND ?? '';
    if (this.closed) return Promise.resolve(failure(command, new Error('the agent is shutting down')));
    const live = this.slots.filter((s) => s.alive);
    if (live.length === 0) return Promise.resolve(failure(command, new Error('no CNI worker thread is running (they keep failing to start; see the agent log)')));
    const slot = live.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
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
    await Promise.all(this.slots.map(async (slot) => {
      while (slot.pending.size > 0) await new Promise((r) => setTimeout(r, 10));
      if (!slot.alive) return;
      const { worker } = slot;
      worker.removeAllListeners('exit');
      const exited = new Promise<boolean>((r) => worker.once('exit', () => r(true)));
      worker.ref();
      worker.postMessage(WORKER_SHUTDOWN);
      let timer: NodeJS.Timeout | undefined;
      const graceful = await Promise.race([exited, new Promise<boolean>((r) => { timer = setTimeout(() => r(false), SHUTDOWN_GRACE_MS); })]);
      clearTimeout(timer);
      if (!graceful) await worker.terminate();
    }));
  }

  /** Resolves when the worker is ready; rejects when it dies first. */
  private spawn(slot: Slot): Promise<void> {
    const worker = new Worker(this.workerUrl);
    slot.worker = worker;
    slot.alive = true;
    let ready = false;
    let settle!: { resolve: () => void; reject: (err: Error) => void };
    const readyPromise = new Promise<void>((resolve, reject) => { settle = { resolve, reject }; });
    worker.on('message', (reply: WorkerReply | typeof WORKER_READY) => {
      if (reply === WORKER_READY) {
        ready = true;
        if (slot.pending.size === 0) worker.unref();
        slot.failedStarts = 0;
        settle.resolve();
        return;
      }
      const resolve = slot.pending.get(reply.id);
      if (!resolve) return;
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) worker.unref();
      resolve({ exitCode: reply.exitCode, stdout: reply.stdout, command: reply.command, error: reply.error && remoteError(reply.error) });
    });
    let lastError: Error | undefined;
    worker.on('error', (err) => { lastError = err; });
    worker.on('exit', (code) => {
      slot.alive = false;
      const err = lastError ?? new Error(`CNI worker thread exited with code ${code}`);
      for (const resolve of slot.pending.values()) resolve(failure('', err));
      slot.pending.clear();
      this.events.onWorkerExit?.(err);
      if (!ready) {
        slot.failedStarts++;
        settle.reject(err);
      }
      if (this.closed) return;
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

function failure(command: string, err: Error): PluginReply {
  return { exitCode: 1, stdout: agentFailureStdout(`twill agent: ${err.message}`), command, error: err };
}
