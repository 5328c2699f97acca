import { readdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { CniSocketServer } from '../cni/agent-socket.js';
import { PluginPool } from '../cni/plugin-pool.js';
import { PodIpam } from '../ipam/pod-ipam.js';
import { PodMasquerade, podMasqueradeOwner } from '../nftables/index.js';
import { cniDataDirs } from './cni-data-dirs.js';

/** The agent's side of the thick CNI plugin: its socket, and IPAM's start-up reconciliation. */
export interface CniService {
  /** Worker threads stuck in a system call: while any is, only _exit(2) ends the process. */
  readonly stuckThreads: number;
  close(): Promise<void>;
}

export interface CniServiceOptions {
  readonly socketPath: string;
  /** The plugin's default dataDir (--cni-data-dir). */
  readonly dataDir: string;
  /** The runtime's CNI configuration directory, whose twill entries name more dataDirs (--cni-conf-dir). */
  readonly confDir?: string | undefined;
  readonly workers?: number | undefined;
  /** Each call's deadline (--cni-timeout). */
  readonly timeoutMs?: number | undefined;
  /** A group that may call besides root (--cni-socket-group). */
  readonly socketGroup?: number | undefined;
  readonly log: Logger;
}

/**
 * Releases addresses of pods whose network namespace is gone (a pod deleted without a CNI DEL:
 * a crashed runtime, a node that lost power with dataDir on disk), and their masquerade elements.
 * Runs once at start, before the socket serves anything, over every network directory of every
 * dataDir in use. Never throws: a dataDir that is a file, a stray entry, a network that cannot be
 * read are logged and skipped, and the agent goes on (routes do not depend on any of it).
 */
export async function reconcileCniAddresses(dataDirs: readonly string[], log: Logger, masquerade = new PodMasquerade()): Promise<void> {
  for (const dataDir of dataDirs) {
    let entries;
    try {
      entries = readdirSync(dataDir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      const problem = code === 'ENOTDIR' ? 'is a file, not a directory: CNI calls that use it fail until it is moved away' : 'cannot be read';
      log.error({ dataDir, err }, `CNI data directory ${dataDir} ${problem}`);
      continue;
    }
    for (const entry of entries) {
      const network = entry.name;
      if (!entry.isDirectory()) {
        log.warn({ dataDir, entry: network }, 'CNI address reconciliation: skipped an entry that is not a network directory');
        continue;
      }
      try {
        const { released, errors } = new PodIpam({ dataDir, network, onStray: (err) => log.warn({ dataDir, network, err }, 'CNI address reconciliation: stray entry skipped') }).reconcile();
        for (const r of released) log.info({ dataDir, network, containerId: r.containerId, ifname: r.ifname, ips: r.ips }, 'released the address of a pod whose namespace is gone');
        for (const err of errors) log.warn({ dataDir, network, err }, 'CNI address reconciliation: entry skipped');
        await unmasquerade(masquerade, released.flatMap((r) => r.ips), podMasqueradeOwner(dataDir, network));
      } catch (err) {
        log.warn({ dataDir, network, err }, 'CNI address reconciliation failed for this network');
      }
    }
  }
}

/** Drops the masquerade elements of released addresses: this store's, or untagged ones (older versions). */
async function unmasquerade(masquerade: PodMasquerade, cidrs: readonly string[], owner: string): Promise<void> {
  if (cidrs.length === 0) return;
  const released = new Set(cidrs.map((c) => c.split('/')[0]!));
  const stale = (await masquerade.list()).filter((m) => released.has(m.address) && (m.owner === undefined || m.owner === owner));
  await masquerade.remove(stale.map((m) => m.address));
}

/**
 * Serves CNI calls on `socketPath`; the shim forwards to it. The calls run on up to `workers`
 * threads with warm netlink and nft state (cni/plugin-pool.ts says why threads, and how many),
 * started by the first call.
 */
export async function startCniService(opts: CniServiceOptions): Promise<CniService> {
  const { log } = opts;
  const dataDirs = cniDataDirs(opts.dataDir, opts.confDir, (file, err) => log.warn({ file, err }, 'CNI configuration skipped while looking for twill dataDirs'));
  await reconcileCniAddresses(dataDirs, log);
  // No thread until the first call: each costs about 17 MiB, and many nodes create pods rarely.
  const pool = PluginPool.lazy({ maxThreads: opts.workers, callTimeoutMs: opts.timeoutMs }, {
    onWorkerExit: (err) => log.error({ err }, 'CNI worker thread died; its calls failed and it is being replaced'),
    onWorkerStuck: (err) => log.error({ err }, 'CNI worker thread stuck; its calls failed (ADDs rolled back) and it is being replaced'),
  });
  let server: CniSocketServer;
  try {
    server = await CniSocketServer.listen(opts.socketPath, async (call) => {
      const reply = await pool.run({ env: call.env, stdin: call.stdin, callerPid: call.caller?.pid });
      const about = { command: reply.command, containerId: call.env.CNI_CONTAINERID, ifname: call.env.CNI_IFNAME };
      for (const warning of reply.warnings) log.warn(about, warning);
      if (reply.error) log.warn({ ...about, err: reply.error }, 'CNI call failed');
      return reply;
    }, { group: opts.socketGroup });
  } catch (err) {
    await pool.close();
    throw err;
  }
  server.on('call', (ev) => log.debug(ev, 'CNI call'));
  server.on('error', (err) => log.warn({ err }, 'CNI socket'));
  server.on('refused', (caller) => log.warn({ ...caller, refusals: server.refusals }, 'CNI socket: refused a caller that is neither root nor in the trusted group'));
  log.info({ socket: opts.socketPath, dataDirs, warmThreads: pool.warmSize, maxThreads: pool.maxSize }, 'serving CNI calls (threads start with the first call)');
  return {
    get stuckThreads() {
      return pool.stuckThreads;
    },
    close: () => closeCniServing(server, pool),
  };
}

/**
 * Stops serving: the socket stops taking calls at once and waits for those in progress, while the
 * pool's grace period (5 s) bounds them (past it they are cut short and ADDs roll back). Closing
 * the socket first and the pool after it would let a hung call hold shutdown for its whole
 * deadline.
 */
export async function closeCniServing(server: { close(): Promise<void> }, pool: { close(): Promise<void> }): Promise<void> {
  const socketClosed = server.close();
  await Promise.all([pool.close(), socketClosed]);
}
