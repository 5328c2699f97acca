import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { ExternalInterface, HostBgpSettings, Network, RoutingStatus } from '../backends/backend.js';
import type { BackendRegistry } from '../backends/registry.js';
import { sleep } from '../core/backoff.js';
import { InvalidArgumentError } from '../core/errors.js';
import { networkPrefix } from '../core/ip.js';
import { subnetEnvFromLease } from '../core/subnet-env.js';
import { hasIpv4, parseNetworkConfigText, type NetworkConfig } from '../ipam/network-config.js';
import type { NetlinkHandle } from '../netlink/index.js';
import type { SubnetStore } from '../store/subnet-store.js';
import type { LeaseRecord, SubnetLease } from '../store/types.js';
import { checkConfig } from './config-check.js';
import { findExternalInterface } from './external-interface.js';
import { HealthState, type AgentHealth } from './health.js';
import { LeaseKeeper } from './lease-keeper.js';
import { LeaseSync } from './lease-sync.js';
import type { AgentMetrics } from './metrics.js';
import { readSubnetFile, writeSubnetFile } from './subnet-file.js';

export interface AgentSettings {
  readonly iface: readonly string[];
  readonly publicIp: string | undefined;
  /** --public-ipv6; else the interface's global IPv6 address is published in a dual-stack lease. */
  readonly publicIpv6?: string | undefined;
  readonly subnetFile: string;
  readonly leaseTtlSeconds: number;
  readonly ipMasq: boolean;
  readonly resyncIntervalMs: number;
  /** This host's BGP settings (--bgp-*), for the bgp backend. */
  readonly bgp?: HostBgpSettings | undefined;
  /** First delay before a failed backend sync is retried (default 1 s, doubling to 30 s). */
  readonly syncRetryInitialMs?: number | undefined;
}

/** What to masquerade, per family the lease has: its pod subnet leaving the cluster network. */
export interface MasqueradeSpec {
  readonly clusterNetwork?: string;
  readonly podSubnet?: string;
  readonly clusterNetworkV6?: string;
  readonly podSubnetV6?: string;
}

/** Twill's masquerading rules (src/nftables Masquerade), injected so tests can fake them. */
export interface MasqueradeRules {
  apply(spec: MasqueradeSpec): Promise<void>;
  remove(): Promise<void>;
}

export interface AgentDeps {
  readonly settings: AgentSettings;
  readonly masquerade: MasqueradeRules;
  readonly store: SubnetStore;
  readonly netlink: NetlinkHandle;
  readonly registry: BackendRegistry;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
}

/** How often to look for the network config while there is none (flannel: 1 s). */
const CONFIG_POLL_MS = 1000;
/** The longest the masquerading table goes unchecked, whatever the resync interval. */
const MASQUERADE_CHECK_MS = 10_000;

/**
 * twilld's main loop, the composition of the parts: the external interface, config from the
 * store, the backend, the lease, the subnet file, and the lease sync that feeds the backend the
 * full set of remote leases it may route. On abort (SIGTERM) it stops its loops and leaves the
 * lease and the kernel state in place, so a restart does not disturb pods.
 */
export class Agent {
  readonly #health: HealthState;
  #network: Network | undefined;
  /** The removal of a stale masquerading table (without --ip-masq), which runs beside the start. */
  #masqueradeRemoval: Promise<void> = Promise.resolve();

  constructor(private readonly deps: AgentDeps) {
    this.#health = new HealthState(deps.metrics);
  }

  health(): AgentHealth {
    return this.#health.report();
  }

  /** The backend's sessions and learned routes, when it is a routing-protocol backend (bgp) and running. */
  routing(): RoutingStatus | undefined {
    return this.#network?.routing?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { deps } = this;
    const ext = await findExternalInterface(deps.netlink, deps.settings.iface, deps.settings.publicIp, deps.settings.publicIpv6);
    deps.log.info({ iface: ext.name, address: ext.address, publicIp: ext.publicIp, publicIpv6: ext.publicIpv6, mtu: ext.mtu }, 'external interface');
    const config = await this.waitForConfig(signal, ext);
    if (!config) return;

    const backend = deps.registry.get(config.backend.type);
    const network = await backend.register({
      log: deps.log.child({ component: `backend-${backend.type}` }),
      netlink: deps.netlink,
      extIface: ext,
      clusterNetwork: config.network,
      clusterNetworkV6: config.ipv6?.network,
      stateDir: dirname(deps.settings.subnetFile),
      resyncIntervalMs: deps.settings.resyncIntervalMs,
      bgp: deps.settings.bgp,
    }, config.backend.options);
    this.#network = network;

    const previous = await readSubnetFile(deps.settings.subnetFile).catch(() => undefined);
    const keeper = new LeaseKeeper({
      store: deps.store,
      config,
      record: leaseRecord(config, ext, backend.type, network),
      ttlSeconds: deps.settings.leaseTtlSeconds,
      previousSubnet: previous?.subnet === undefined ? undefined : networkPrefix(previous.subnet, 'FLANNEL_SUBNET'),
      previousIpv6Subnet: previous?.ipv6Subnet === undefined ? undefined : networkPrefix(previous.ipv6Subnet, 'FLANNEL_IPV6_SUBNET'),
      log: deps.log.child({ component: 'lease' }),
      metrics: deps.metrics,
    });
    this.#health.probe('etcd_unreachable', () => keeper.renewalOverdue());
    this.#health.stage('acquiring a subnet');
    const lease = await keeper.acquire(signal);
    if (!lease) return;
    await this.activate(network, config, lease);

    const extCidrs = (await deps.netlink.listAddresses(ext.index)).filter((a) => a.family === 4).map((a) => a.cidr);
    const sync = new LeaseSync({
      store: deps.store, network, backendType: backend.type, keeper, config, ext, extCidrs,
      health: this.#health, log: deps.log, metrics: deps.metrics, retryInitialMs: deps.settings.syncRetryInitialMs,
    });
    keeper.on('lease', (l) => {
      this.activate(network, config, l)
        .then(() => sync.resync())
        .catch((err: unknown) => deps.log.error({ err }, 'cannot apply the new lease'));
    });
    keeper.on('lost', () => this.#health.leaseHeld(undefined));

    await Promise.all([
      keeper.run(signal),
      network.run(signal),
      sync.run(signal),
      this.keepMasquerade(signal, config, keeper),
    ]);
    await this.#masqueradeRemoval;
  }

  /**
   * Polls <prefix>/config until it exists, is valid, and this agent can use it on this host
   * (config-check.ts: the underlay, and the address families its backend routes). A refused
   * config is reported (the agent is then unhealthy, and not ready), not fatal: it is used as
   * soon as it is fixed.
   */
  private async waitForConfig(signal: AbortSignal, ext: ExternalInterface): Promise<NetworkConfig | undefined> {
    const { log, netlink } = this.deps;
    let lastProblem = '';
    while (!signal.aborted) {
      let problem: string;
      let refused = false;
      try {
        const text = await this.deps.store.getNetworkConfig();
        if (text === undefined) {
          problem = 'no network config in the store yet (set it with `twillctl config set`)';
        } else {
          const config = parseNetworkConfigText(text, this.deps.registry.parseOptions);
          const [addresses, routes4, routes6] = await Promise.all([netlink.listAddresses(ext.index), netlink.listRoutes({ family: 4, oif: ext.index }),
            config.ipv6 === undefined ? [] : netlink.listRoutes({ family: 6, oif: ext.index })]);
          const check = checkConfig(config, this.deps.registry.get(config.backend.type), { ext, addresses, routes: [...routes4, ...routes6] });
          if ('usable' in check) {
            this.#health.set('config_refused', undefined);
            return check.usable;
          }
          problem = check.refused;
          refused = true;
        }
      } catch (err) {
        problem = (err as Error).message;
        refused = err instanceof InvalidArgumentError;
        if ((err as { code?: string }).code?.startsWith('ESTORE')) this.deps.metrics.etcdError('config');
      }
      this.#health.set('config_refused', refused ? problem : undefined);
      this.#health.stage(problem);
      if (problem !== lastProblem) {
        if (refused) log.error({ problem }, 'network config refused; waiting for a usable one');
        else log.warn({ problem }, 'waiting for a usable network config');
      }
      lastProblem = problem;
      await sleep(CONFIG_POLL_MS, signal);
    }
    return undefined;
  }

  /** Tells the backend its lease and writes the subnet file; from then on the agent is ready. */
  private async activate(network: Network, config: NetworkConfig, lease: SubnetLease): Promise<void> {
    const v4 = hasIpv4(config);
    await network.start({
      subnet: v4 ? lease.subnet : undefined, publicIp: v4 ? lease.record.publicIp : undefined,
      ipv6Subnet: config.ipv6 ? lease.ipv6Subnet : undefined, publicIpv6: config.ipv6 ? lease.record.publicIpv6 ?? undefined : undefined,
    });
    // Without --ip-masq there is only a stale table to remove, which no pod's traffic waits for:
    // that nft run (~25 ms of a process start) goes on beside the first sync instead of before it.
    if (this.deps.settings.ipMasq) await this.syncMasquerade(config, lease);
    else this.#masqueradeRemoval = this.#masqueradeRemoval.then(() => this.syncMasquerade(config, lease));
    const ipv6 = config.ipv6 && lease.ipv6Subnet !== undefined ? { network: config.ipv6.network, leaseSubnet: lease.ipv6Subnet } : undefined;
    await writeSubnetFile(this.deps.settings.subnetFile,
      subnetEnvFromLease(config.network, v4 ? lease.subnet : undefined, network.mtu, this.deps.settings.ipMasq, ipv6));
    this.deps.log.info({ subnet: v4 ? lease.subnet : undefined, ipv6Subnet: lease.ipv6Subnet, file: this.deps.settings.subnetFile, mtu: network.mtu }, 'subnet file written');
    this.#health.leaseHeld(v4 ? lease.subnet : lease.ipv6Subnet);
  }

  /**
   * --ip-masq: Twill's nftables table, replaced atomically; without it, the table is removed (a
   * host switched from --ip-masq to none keeps no stale rules). A failure is logged, not fatal:
   * pod-to-pod traffic does not depend on it.
   */
  private async syncMasquerade(config: NetworkConfig, lease: SubnetLease): Promise<void> {
    const v4 = hasIpv4(config);
    const v6 = config.ipv6 !== undefined && lease.ipv6Subnet !== undefined ? { clusterNetworkV6: config.ipv6.network, podSubnetV6: lease.ipv6Subnet } : undefined;
    try {
      if (this.deps.settings.ipMasq) await this.deps.masquerade.apply({ ...(v4 && { clusterNetwork: config.network, podSubnet: lease.subnet }), ...v6 });
      else await this.deps.masquerade.remove();
    } catch (err) {
      this.deps.log.error({ err, ipMasq: this.deps.settings.ipMasq }, 'cannot update the masquerading rules');
    }
  }

  /**
   * Re-applies the masquerading table every resync interval, but at least every 10 s (Twill does
   * not watch nftables' notifications, and checking its two small tables is cheap), repairing drift.
   */
  private async keepMasquerade(signal: AbortSignal, config: NetworkConfig, keeper: LeaseKeeper): Promise<void> {
    if (!this.deps.settings.ipMasq) return;
    while (!signal.aborted) {
      await sleep(Math.min(this.deps.settings.resyncIntervalMs, MASQUERADE_CHECK_MS), signal);
      const lease = keeper.lease;
      if (lease !== undefined && !signal.aborted) await this.syncMasquerade(config, lease);
    }
  }
}

/**
 * This host's lease record. PublicIPv6 and BackendV6Data only when the config enables IPv6: an
 * IPv4-only lease stays exactly what flannel writes ("PublicIPv6":null, no BackendV6Data).
 */
function leaseRecord(config: NetworkConfig, ext: ExternalInterface, backendType: string, network: Network): LeaseRecord {
  return {
    // An IPv6-only lease's PublicIP is flannel's empty ip.IP4, which it writes as "0.0.0.0".
    publicIp: hasIpv4(config) ? ext.publicIp! : '0.0.0.0',
    ...(config.ipv6 && { publicIpv6: ext.publicIpv6 }),
    backendType,
    backendData: network.leaseData,
    ...(config.ipv6 && network.leaseDataV6 !== undefined && { backendV6Data: network.leaseDataV6 }),
  };
}
