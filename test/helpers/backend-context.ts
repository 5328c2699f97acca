/**
 * The BackendContext the agent hands a backend, built for a test host: a netlink handle inside the
 * host (closed with it), eth0 as the external interface, a logger that is silent unless
 * TWILL_TEST_LOG names a level, and a state directory of the test's own.
 *
 *   const network = await vxlanBackend.register(await backendContext(host), vxlanBackend.parseOptions({}));
 */
import { pino } from 'pino';
import type { BackendContext, Network, RemoteLease } from '../../src/backends/backend.js';
import { Netlink } from '../../src/netlink/index.js';
import { tempDir, type CleanupRegistry } from './cleanup.js';
import type { Host, Pod } from './cluster.js';

export interface BackendContextOptions {
  /** Default 10.244.0.0/16. */
  readonly clusterNetwork?: string;
  /** Default 200 ms: drift is repaired quickly in tests. */
  readonly resyncIntervalMs?: number;
  /** Default a fresh temp dir per call (`vxlan-h<index>`). */
  readonly stateDir?: string;
}

export async function backendContext(host: Host, opts: BackendContextOptions = {}): Promise<BackendContext> {
  const nl = Netlink.open(host.netnsPath);
  host.onDestroy('close the backend\'s netlink handle', () => nl.close());
  const eth0 = await nl.requireLink('eth0');
  return {
    log: pino({ level: process.env['TWILL_TEST_LOG'] ?? 'silent' }, pino.destination(2)),
    netlink: nl,
    extIface: { name: 'eth0', index: eth0.index, mtu: eth0.mtu, address: host.underlayIp, publicIp: host.underlayIp },
    clusterNetwork: opts.clusterNetwork ?? '10.244.0.0/16',
    stateDir: opts.stateDir ?? tempDir(`vxlan-h${host.index}`),
    resyncIntervalMs: opts.resyncIntervalMs ?? 200,
  };
}

/** A test host's Network and the stop of its running run() loop, if any. */
export interface LoopHost {
  readonly host: { readonly name: string };
  readonly network: Network;
  stop: (() => Promise<void>) | undefined;
}

/** One host of a backend test cluster, as the agent would hold it. */
export interface BackendNode extends LoopHost {
  readonly host: Host;
  readonly ctx: BackendContext;
  readonly subnet: string;
  readonly pod: Pod<Host>;
  network: Network;
  /** This host's lease as the others see it (BackendData round-tripped through JSON, as via etcd). */
  lease: RemoteLease;
}

/**
 * Starts `node.network.run()` until `node.stop()` or until `loops` is unwound. run() loops outlive
 * the test that starts them, so they live in a registry of their own, which the file's teardown
 * unwinds before the namespaces go.
 */
export function runLoop(loops: CleanupRegistry, node: LoopHost): void {
  if (node.stop) throw new Error(`${node.host.name} already runs a loop`);
  const ac = new AbortController();
  const running = node.network.run(ac.signal);
  const entry = loops.defer(`stop run() in ${node.host.name}`, async () => {
    ac.abort();
    await running;
  });
  node.stop = async () => {
    await entry.run();
    node.stop = undefined;
  };
}
