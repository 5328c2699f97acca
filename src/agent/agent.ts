import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Network, RemoteLease } from '../backends/backend.js';
import type { BackendRegistry } from '../backends/registry.js';
import { sleep } from '../core/backoff.js';
import { networkPrefix } from '../core/ip.js';
import { subnetEnvFromLease } from '../core/subnet-env.js';
import { parseNetworkConfigText, type NetworkConfig } from '../ipam/network-config.js';
import type { Netlink } from '../netlink/index.js';
import type { SubnetStore } from '../store/subnet-store.js';
import type { LeaseSetChange, SubnetLease } from '../store/types.js';
import { findExternalInterface } from './external-interface.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { AgentMetrics } from './metrics.js';
import { readSubnetFile, writeSubnetFile } from './subnet-file.js';
import { SyncLoop } from './sync-loop.js';

export interface AgentSettings {
  readonly iface: readonly string[];
  readonly publicIp: string | undefined;
  readonly subnetFile: string;
  readonly leaseTtlSeconds: number;
  readonly ipMasq: boolean;
  readonly resyncIntervalMs: number;
}

/** Twill's masquerading rules (src/nftables Masquerade), injected so tests can fake them. */
export interface MasqueradeRules {
  apply(spec: { clusterNetwork: string; podSubnet: string }): Promise<void>;
  remove(): Promise<void>;
}

export interface AgentDeps {
  readonly settings: AgentSettings;
  readonly masquerade: MasqueradeRules;
  readonly store: SubnetStore;
  readonly netlink: Netlink;
  readonly registry: BackendRegistry;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
}

/** What /healthz and /readyz report. */
export interface AgentHealth {
  readonly healthy: boolean;
  readonly ready: boolean;
  readonly reason: string;
  readonly subnet?: string | undefined;
}

/** How often to look for the network config while there is none (flannel: 1 s). */
const CONFIG_POLL_MS = 1000;

/**
 * twilld's main loop, the composition of the parts: config from the store, the external
 * interface, the backend, the lease, the subnet file, and the watch that feeds the backend the
 * full set of remote leases. On abort (SIGTERM) it stops its loops and leaves the lease and the
 * kernel state in place, so a restart does not disturb pods.
 */
export class Agent {
  private state: AgentHealth = { healthy: true, ready: false, reason: 'starting' };

  constructor(private readonly deps: AgentDeps) {}

  health(): AgentHealth {
    return this.state;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { deps } = this;
    const config = await this.waitForConfig(signal);
    if (!config) return;
    const ext = await findExternalInterface(deps.netlink, deps.settings.iface, deps.settings.publicIp);
    deps.log.info({ iface: ext.name, address: ext.address, publicIp: ext.publicIp, mtu: ext.mtu }, 'external interface');

    const backend = deps.registry.get(config.backend.type);
    const network = await backend.register({
      log: deps.log.child({ component: `backend-${backend.type}` }),
      netlink: deps.netlink,
      extIface: ext,
      clusterNetwork: config.network,
      stateDir: dirname(deps.settings.subnetFile),
      resyncIntervalMs: deps.settings.resyncIntervalMs,
    }, config.backend.options);

    const previous = await readSubnetFile(deps.settings.subnetFile).catch(() => undefined);
    const keeper = new LeaseKeeper({
      store: deps.store,
      config,
      record: { publicIp: ext.publicIp, backendType: backend.type, backendData: network.leaseData },
      ttlSeconds: deps.settings.leaseTtlSeconds,
      previousSubnet: previous?.subnet === undefined ? undefined : networkPrefix(previous.subnet, 'FLANNEL_SUBNET'),
      log: deps.log.child({ component: 'lease' }),
      metrics: deps.metrics,
    });
    this.state = { ...this.state, reason: 'acquiring a subnet' };
    const lease = await keeper.acquire(signal);
    if (!lease) return;
    await this.activate(network, config, lease);
    keeper.on('lease', (l) => {
      this.activate(network, config, l).catch((err: unknown) => deps.log.error({ err }, 'cannot apply the new lease'));
    });

    await Promise.all([
      keeper.run(signal),
      network.run(signal),
      this.watch(signal, network, backend.type, keeper),
      this.keepMasquerade(signal, config, keeper),
    ]);
  }

  /** Polls <prefix>/config until it exists and is valid; an invalid one is reported, not fatal. */
  private async waitForConfig(signal: AbortSignal): Promise<NetworkConfig | undefined> {
    let lastProblem = '';
    while (!signal.aborted) {
      let problem: string;
      try {
        const text = await this.deps.store.getNetworkConfig();
        if (text !== undefined) return parseNetworkConfigText(text, this.deps.registry.parseOptions);
        problem = 'no network config in the store yet (set it with `twillctl config set`)';
      } catch (err) {
        problem = (err as Error).message;
        if ((err as { code?: string }).code?.startsWith('ESTORE')) this.deps.metrics.etcdError('config');
      }
      if (problem !== lastProblem) this.deps.log.warn({ problem }, 'waiting for a usable network config');
      lastProblem = problem;
      this.state = { ...this.state, reason: problem };
      await sleep(CONFIG_POLL_MS, signal);
    }
    return undefined;
  }

  /** Tells the backend its lease and writes the subnet file; from then on the agent is ready. */
  private async activate(network: Network, config: NetworkConfig, lease: SubnetLease): Promise<void> {
    await network.start({ subnet: lease.subnet, publicIp: lease.record.publicIp });
    await this.syncMasquerade(config, lease.subnet);
    await writeSubnetFile(this.deps.settings.subnetFile,
      subnetEnvFromLease(config.network, lease.subnet, network.mtu, this.deps.settings.ipMasq));
    this.deps.log.info({ subnet: lease.subnet, file: this.deps.settings.subnetFile, mtu: network.mtu }, 'subnet file written');
    this.state = { healthy: true, ready: true, reason: 'lease held, subnet file written', subnet: lease.subnet };
  }

  /**
   * --ip-masq: Twill's nftables table, replaced atomically; without it, the table is removed (a
   * host switched from --ip-masq to none keeps no stale rules). A failure is logged, not fatal:
   * pod-to-pod traffic does not depend on it.
   */
  private async syncMasquerade(config: NetworkConfig, podSubnet: string): Promise<void> {
    try {
      if (this.deps.settings.ipMasq) await this.deps.masquerade.apply({ clusterNetwork: config.network, podSubnet });
      else await this.deps.masquerade.remove();
    } catch (err) {
      this.deps.log.error({ err, ipMasq: this.deps.settings.ipMasq }, 'cannot update the masquerading rules');
    }
  }

  /** Re-applies the masquerading table every resync interval, repairing drift. */
  private async keepMasquerade(signal: AbortSignal, config: NetworkConfig, keeper: LeaseKeeper): Promise<void> {
    if (!this.deps.settings.ipMasq) return;
    while (!signal.aborted) {
      await sleep(this.deps.settings.resyncIntervalMs, signal);
      const subnet = keeper.lease?.subnet;
      if (subnet !== undefined && !signal.aborted) await this.syncMasquerade(config, subnet);
    }
  }

  /** Feeds the backend the full desired set on every change; never stops on a bad lease. */
  private async watch(signal: AbortSignal, network: Network, type: string, keeper: LeaseKeeper): Promise<void> {
    const { log, metrics } = this.deps;
    // The loop gets the whole lease map and turns it into the desired set only when a sync
    // starts: thousands of leases arriving one event at a time cost one conversion per sync,
    // not one per event.
    const sync = new SyncLoop<ReadonlyMap<string, SubnetLease>>(async (leases) => {
      const desired = remoteLeases(leases, keeper.lease?.subnet, type);
      const started = performance.now();
      try {
        const report = await network.sync(desired);
        const ms = performance.now() - started;
        metrics.observeSync(type, ms / 1000);
        log.debug({ desired: desired.length, changes: report.changes, ms: Math.round(ms) }, 'backend synced');
        for (const s of report.skipped) log.warn({ subnet: s.subnet, reason: s.reason }, 'remote lease skipped');
      } catch (err) {
        log.error({ err }, 'backend sync failed; the next change or resync retries');
      }
    });
    const watcher = this.deps.store.watchLeases();
    watcher.on('change', (change: LeaseSetChange) => {
      const own = keeper.lease?.subnet;
      metrics.setLeasesKnown(change.leases.size);
      if (own !== undefined && change.removed.some((l) => l.subnet === own) && !signal.aborted) {
        void keeper.onOwnLeaseRemoved(signal);
      }
      log.debug({ cause: change.cause, added: change.added.length, removed: change.removed.length, updated: change.updated.length }, 'leases changed');
      void sync.update(change.leases);
    });
    watcher.on('malformed', (m: { key: string; reason: string }) => log.warn({ key: m.key, reason: m.reason }, 'malformed lease skipped'));
    watcher.on('restart', (reason: string) => {
      metrics.watchRestarted(reason.includes('compact') ? 'compacted' : 'error');
      log.warn({ reason }, 'lease watch restarted (re-listing)');
    });
    watcher.on('disconnected', () => log.warn('lease watch disconnected from etcd; resuming when it is back'));
    watcher.on('reconnected', () => log.info('lease watch reconnected'));
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await watcher.close();
    await sync.idle();
  }
}

/** The remote leases of this backend's type: what the backend must make reachable. */
function remoteLeases(leases: ReadonlyMap<string, SubnetLease>, own: string | undefined, type: string): RemoteLease[] {
  const desired: RemoteLease[] = [];
  for (const l of leases.values()) {
    // Leases of another backend type are not ours to program (flannel ignores them too).
    if (l.subnet === own || l.record.backendType !== type) continue;
    desired.push({ subnet: l.subnet, publicIp: l.record.publicIp, backendType: l.record.backendType, backendData: l.record.backendData });
  }
  return desired;
}
