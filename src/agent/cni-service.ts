import { existsSync, readdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { CniSocketServer } from '../cni/agent-socket.js';
import { PluginPool } from '../cni/plugin-pool.js';
import { PodIpam } from '../ipam/pod-ipam.js';

/** The agent's side of the thick CNI plugin: its socket, and IPAM's start-up reconciliation. */
export interface CniService {
  close(): Promise<void>;
}

/**
 * Releases addresses of pods whose network namespace is gone (a pod deleted without a CNI DEL:
 * a crashed runtime, a node that lost power with dataDir on disk). Runs once at start, before
 * the socket serves anything; every network directory under `dataDir` is visited.
 */
export function reconcileCniAddresses(dataDir: string, log: Logger): void {
  if (!existsSync(dataDir)) return;
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    try {
      const { released, errors } = new PodIpam({ dataDir, network: entry.name }).reconcile();
      for (const r of released) log.info({ network: entry.name, containerId: r.containerId, ifname: r.ifname, ips: r.ips }, 'released the address of a pod whose namespace is gone');
      for (const err of errors) log.warn({ network: entry.name, err }, 'CNI address reconciliation: entry skipped');
    } catch (err) {
      log.warn({ network: entry.name, err }, 'CNI address reconciliation failed for this network');
    }
  }
}

/**
 * Serves CNI calls on `socketPath`; the shim forwards to it. The calls run on up to `workers`
 * threads with warm netlink and nft state (cni/plugin-pool.ts says why threads, and how many).
 */
export async function startCniService(opts: { socketPath: string; dataDir: string; workers?: number | undefined; log: Logger }): Promise<CniService> {
  const { log } = opts;
  reconcileCniAddresses(opts.dataDir, log);
  const pool = await PluginPool.start({ maxThreads: opts.workers }, {
    onWorkerExit: (err) => log.error({ err }, 'CNI worker thread died; its calls failed and it is being replaced'),
  });
  let server: CniSocketServer;
  try {
    server = await CniSocketServer.listen(opts.socketPath, async (call) => {
      const reply = await pool.run(call);
      if (reply.error) log.warn({ command: reply.command, containerId: call.env.CNI_CONTAINERID, ifname: call.env.CNI_IFNAME, err: reply.error }, 'CNI call failed');
      return reply;
    });
  } catch (err) {
    await pool.close();
    throw err;
  }
  server.on('call', (ev) => log.debug(ev, 'CNI call'));
  server.on('error', (err) => log.warn({ err }, 'CNI socket'));
  log.info({ socket: opts.socketPath, warmThreads: pool.size, maxThreads: pool.maxSize }, 'serving CNI calls');
  return {
    async close() {
      await server.close();
      await pool.close();
    },
  };
}
