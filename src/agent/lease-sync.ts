import type { Logger } from 'pino';
import { untilAborted, type ExternalInterface, type Network, type RemoteLease, type SkippedLease } from '../backends/backend.js';
import { Backoff } from '../core/backoff.js';
import { hasIpv4, type NetworkConfig } from '../ipam/network-config.js';
import { parseIpv4Prefix } from '../ipam/ipv4.js';
import { parseIpv6Prefix } from '../ipam/ipv6.js';
import { compareRevisions, type LeaseSetChange, type SubnetLease, type SubnetStore } from '../store/index.js';
import { FirstSeen } from './first-seen.js';
import type { HealthState } from './health.js';
import type { LeaseKeeper } from './lease-keeper.js';
import { broadcastAddresses, LeaseScreen, type LeaseRejection } from './lease-screen.js';
import type { AgentMetrics } from './metrics.js';
import { SyncLoop } from './sync-loop.js';

/** Consecutive failed syncs after which /healthz reports the backend as failing. */
export const SYNC_FAILURES_UNHEALTHY = 3;

export interface LeaseSyncDeps {
  readonly store: SubnetStore;
  readonly network: Network;
  readonly backendType: string;
  readonly keeper: LeaseKeeper;
  readonly config: NetworkConfig;
  readonly ext: ExternalInterface;
  /** The external interface's IPv4 addresses with prefix, for their broadcast addresses. */
  readonly extCidrs: readonly string[];
  readonly health: HealthState;
  readonly log: Logger;
  readonly metrics: AgentMetrics;
  /** First delay before retrying a failed sync (doubling to 30 s); tests shorten it. */
  readonly retryInitialMs?: number | undefined;
}

/**
 * Feeds the backend the full set of remote leases that may be routed, on every change: watches
 * the lease set, screens it (lease-screen.ts: what a hostile or broken record must not steer),
 * logs and counts each refusal once, and syncs. A failed sync is retried with backoff rather
 * than waiting for the next change; repeated failures make the agent unhealthy. It also hands
 * the keeper every sighting of this host's own key, so an overwrite or a delete is answered.
 */
export class LeaseSync {
  private readonly loop: SyncLoop<ReadonlyMap<string, SubnetLease>>;
  /** One screen per family the config enables: IPv4's, IPv6's. */
  private readonly screen4: LeaseScreen | undefined;
  private readonly screen6: LeaseScreen | undefined;
  private readonly rejections = new FirstSeen<LeaseRejection>((r) => `${r.key}|${r.reason}|${r.conflictsWith ?? ''}`);
  private readonly skips = new FirstSeen<SkippedLease>((s) => `${s.subnet}|${s.reason}`);
  private readonly backoff: Backoff;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private latest: ReadonlyMap<string, SubnetLease> | undefined;

  constructor(private readonly deps: LeaseSyncDeps) {
    const { config, ext } = deps;
    const own = (addresses: readonly (string | undefined)[]): string[] => [...new Set(addresses.filter((a): a is string => a !== undefined))];
    this.screen4 = hasIpv4(config)
      ? new LeaseScreen({
        network: parseIpv4Prefix(config.network, 'cluster network'),
        subnetLen: config.subnetLen,
        localAddresses: own([ext.address, ext.publicIp]),
        broadcastAddresses: broadcastAddresses(deps.extCidrs),
      })
      : undefined;
    this.screen6 = config.ipv6
      ? new LeaseScreen({
        family: 6,
        network: parseIpv6Prefix(config.ipv6.network, 'IPv6 cluster network'),
        subnetLen: config.ipv6.subnetLen,
        localAddresses: own([ext.ipv6Address, ext.publicIpv6]),
      })
      : undefined;
    this.backoff = new Backoff({ initialMs: deps.retryInitialMs ?? 1000, maxMs: 30_000 });
    this.loop = new SyncLoop((leases) => this.syncOnce(leases));
  }

  /** Watches and syncs until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { log, metrics } = this.deps;
    const watcher = this.deps.store.watchLeases(this.deps.keeper.takeListing());
    watcher.on('change', (change: LeaseSetChange) => {
      metrics.setLeasesKnown(change.leases.size);
      if (!signal.aborted) this.watchOwnKey(change, signal);
      log.debug({ cause: change.cause, added: change.added.length, removed: change.removed.length, updated: change.updated.length }, 'leases changed');
      this.update(change.leases);
    });
    watcher.on('malformed', (m: { key: string; reason: string }) => log.warn({ key: m.key, reason: m.reason }, 'malformed lease skipped'));
    watcher.on('restart', (reason: string) => {
      metrics.watchRestarted(reason.includes('compact') ? 'compacted' : 'error');
      log.warn({ reason }, 'lease watch restarted (re-listing)');
    });
    watcher.on('disconnected', () => log.warn('lease watch disconnected from etcd; resuming when it is back'));
    watcher.on('reconnected', () => log.info('lease watch reconnected'));
    await untilAborted(signal);
    clearTimeout(this.retryTimer);
    await watcher.close();
    await this.loop.idle();
  }

  /** Syncs the last known lease set again (the own lease changed, so the screening did too). */
  resync(): void {
    if (this.latest) this.update(this.latest);
  }

  private update(leases: ReadonlyMap<string, SubnetLease>): void {
    this.latest = leases;
    void this.loop.update(leases);
  }

  private watchOwnKey(change: LeaseSetChange, signal: AbortSignal): void {
    const held = this.deps.keeper.lease;
    if (!held) return;
    const seen = change.leases.get(held.key);
    if (seen) void this.deps.keeper.onOwnLeaseSeen(seen, signal);
    else if (change.removed.some((l) => l.key === held.key)) void this.deps.keeper.onOwnLeaseRemoved(signal);
  }

  private async syncOnce(leases: ReadonlyMap<string, SubnetLease>): Promise<void> {
    const { network, backendType, keeper, health, log, metrics } = this.deps;
    const own = keeper.lease;
    const desired: RemoteLease[] = [];
    const rejected: LeaseRejection[] = [];
    // Each family on its own; a dual-stack lease becomes one entry per family it may be routed over.
    // Leases of another backend type are not ours to program (flannel ignores them too).
    if (this.screen4) {
      const screened = this.screen4.screen(leases.values(), own && { key: own.key, subnet: parseIpv4Prefix(own.subnet, 'own subnet') });
      rejected.push(...screened.rejected);
      for (const l of screened.accepted) {
        if (l.record.backendType === backendType) desired.push({ subnet: l.subnet, publicIp: l.record.publicIp, backendType, backendData: l.record.backendData });
      }
    }
    if (this.screen6) {
      const ownV6 = own && { key: own.key, subnet: own.ipv6Subnet === undefined ? undefined : parseIpv6Prefix(own.ipv6Subnet, 'own IPv6 subnet') };
      const screened = this.screen6.screen(leases.values(), ownV6);
      rejected.push(...screened.rejected);
      for (const l of screened.accepted) {
        if (l.record.backendType === backendType) {
          desired.push({ subnet: l.ipv6Subnet!, publicIp: l.record.publicIpv6!, backendType, backendData: l.record.backendV6Data });
        }
      }
    }
    for (const r of this.rejections.update(rejected)) this.reportRejection(r, leases, own);
    const started = performance.now();
    try {
      const report = await network.sync(desired);
      const ms = performance.now() - started;
      metrics.observeSync(backendType, ms / 1000);
      log.debug({ desired: desired.length, changes: report.changes, ms: Math.round(ms) }, 'backend synced');
      for (const s of this.skips.update(report.skipped)) {
        metrics.entrySkipped(s.code ?? 'invalid');
        log.warn({ subnet: s.subnet, reason: s.reason, code: s.code }, 'remote lease skipped');
      }
      this.failures = 0;
      this.backoff.reset();
      health.set('backend_sync_failing', undefined);
      if (own) health.synced(this.screen4 ? own.subnet : own.ipv6Subnet ?? own.subnet);
    } catch (err) {
      this.failures++;
      const retryInMs = Math.round(this.backoff.next());
      log.error({ err, failures: this.failures, retryInMs }, 'backend sync failed; retrying');
      if (this.failures >= SYNC_FAILURES_UNHEALTHY) {
        health.set('backend_sync_failing', `${this.failures} syncs in a row failed, the last with: ${(err as Error).message}`);
      }
      if (this.retryTimer === undefined) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.resync();
        }, retryInMs);
      }
    }
  }

  private reportRejection(r: LeaseRejection, leases: ReadonlyMap<string, SubnetLease>, own: SubnetLease | undefined): void {
    const { log, metrics } = this.deps;
    metrics.leaseRejected(r.reason);
    log.warn({ key: r.key, subnet: r.subnet, reason: r.reason, conflictsWith: r.conflictsWith }, `lease not routed: ${r.detail}`);
    const rival = leases.get(r.key);
    if (r.reason === 'overlaps_own_subnet' && own && rival && compareRevisions(rival.createRevision, own.createRevision) < 0) {
      // Every other host routes the older key's holder: this host's pods are unreachable from them.
      metrics.ownLeaseConflict('contested');
      log.error({ key: r.key, ownKey: own.key, subnet: own.subnet },
        'an older lease holds this host\'s own subnet: the other hosts route it there, not here (remove the stray key)');
    }
  }
}
