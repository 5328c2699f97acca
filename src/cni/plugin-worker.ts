import { parentPort } from 'node:worker_threads';
import { createPluginContext } from './context-factory.js';
import { runPlugin } from './plugin.js';
import { WORKER_READY, WORKER_SHUTDOWN, type WorkerReply, type WorkerRequest } from './plugin-pool.js';

// One thread of the agent's CNI pool (plugin-pool.ts). It keeps its own warm context (host
// netlink socket, nft runner) for the life of the thread; IPAM and the kernel already cope with
// several plugin processes at once, so threads need no coordination beyond that.

if (!parentPort) throw new Error('plugin-worker.js runs only as a worker thread');
const port = parentPort;
const ctx = createPluginContext();

port.on('message', (req: WorkerRequest | typeof WORKER_SHUTDOWN) => {
  if (req === WORKER_SHUTDOWN) {
    // Close the native sockets here: tearing a thread down under them (Worker.terminate())
    // crashes the process. Closing the port lets the thread's event loop drain and end.
    ctx.close();
    port.close();
    return;
  }
  void runPlugin(ctx, { env: req.env, stdin: Buffer.from(req.stdin) }).then((reply) => {
    const error = reply.error && { name: reply.error.name, message: reply.error.message, code: (reply.error as { code?: unknown }).code };
    const out: WorkerReply = { id: req.id, exitCode: reply.exitCode, stdout: reply.stdout, command: reply.command, error };
    port.postMessage(out);
  });
});
port.postMessage(WORKER_READY);
