import { parentPort, workerData } from 'node:worker_threads';
import { createPluginContext } from './context-factory.js';
import { runPluginWithin } from './deadline.js';
import { WORKER_EXPIRE, WORKER_READY, WORKER_SHUTDOWN, type WorkerData, type WorkerReply, type WorkerRequest } from './plugin-worker-protocol.js';

// One thread of the agent's CNI pool (plugin-pool.ts). It keeps its own warm context (host
// netlink socket, nft runner) for the life of the thread; IPAM and the kernel already cope with
// several plugin processes at once, so threads need no coordination beyond that. Each call runs
// with its deadline (deadline.ts); the pool watches for a thread that stops answering altogether.

if (!parentPort) throw new Error('plugin-worker.js runs only as a worker thread');
const port = parentPort;
const { timeoutMs, abandoned } = workerData as WorkerData;
const flag = new Int32Array(abandoned);
const ctx = createPluginContext();
const expire = new AbortController();
const inFlight = new Set<Promise<void>>();

port.on('message', (req: WorkerRequest | typeof WORKER_SHUTDOWN | typeof WORKER_EXPIRE) => {
  if (req === WORKER_EXPIRE) {
    expire.abort();
    return;
  }
  if (req === WORKER_SHUTDOWN) {
    // Calls still running settle within their deadline. Then close the native sockets here:
    // tearing a thread down under them (Worker.terminate()) crashes the process. Closing the port
    // lets the thread's event loop drain and end.
    expire.abort();
    void Promise.allSettled([...inFlight]).then(() => {
      ctx.close();
      port.close();
    });
    return;
  }
  const call = { env: req.env, stdin: Buffer.from(req.stdin), callerPid: req.callerPid };
  const running = runPluginWithin(ctx, call, {
    timeoutMs: req.timeoutMs ?? timeoutMs,
    setting: 'twilld --cni-timeout',
    // Set by the pool when it gave up on this thread: it answered (and rolled back) already.
    mayRollBack: () => Atomics.load(flag, 0) === 0,
    expire: expire.signal,
  }).then((reply) => {
    const error = reply.error && { name: reply.error.name, message: reply.error.message, code: (reply.error as { code?: unknown }).code };
    const out: WorkerReply = { id: req.id, exitCode: reply.exitCode, stdout: reply.stdout, command: reply.command, error, warnings: reply.warnings };
    port.postMessage(out);
  });
  inFlight.add(running);
  void running.finally(() => inFlight.delete(running));
});
port.postMessage(WORKER_READY);
