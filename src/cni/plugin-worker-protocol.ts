// The messages between the agent's CNI thread pool (plugin-pool.ts) and each of its threads
// (plugin-worker.ts). Everything here crosses postMessage, so it is structured-clone friendly.

/** What the main thread sends a worker (structured-clone friendly). */
export interface WorkerRequest {
  readonly id: number;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: Uint8Array;
  readonly callerPid: number | undefined;
  /** This call's deadline when it is not the pool's (a rollback DEL gets a short one). */
  readonly timeoutMs: number | undefined;
}

/** A worker's answer; the error is flattened (custom fields do not survive postMessage). */
export interface WorkerReply {
  readonly id: number;
  readonly exitCode: number;
  readonly stdout: string;
  readonly command: string;
  readonly error: { readonly name: string; readonly message: string; readonly code?: unknown } | undefined;
  readonly warnings: readonly string[];
}

/** A worker's workerData. */
export interface WorkerData {
  /** Each call's deadline. */
  readonly timeoutMs: number;
  /** One Int32; the pool sets it to 1 when it gives up on the thread. */
  readonly abandoned: SharedArrayBuffer;
}

/** The first message of a worker whose context is open. */
export const WORKER_READY = 'ready';
/** Asks a worker to close its context and end once its calls are answered. */
export const WORKER_SHUTDOWN = 'shutdown';
/** Asks a worker to treat every call in progress as past its deadline (the agent is stopping). */
export const WORKER_EXPIRE = 'expire';
