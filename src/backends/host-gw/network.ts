import type { Logger } from 'pino';
import type { BackendContext, LocalLease, Network, RemoteLease, SyncReport } from '../backend.js';
import { syncRoutes } from '../route-sync.js';
import { HostGwSyncError } from './errors.js';
import { planRoutes } from './plan.js';
import { runRepairLoop } from './repair-loop.js';

/**
 * The host-gw network (flannel's host-gw over RouteNetwork): every remote subnet is routed via
 * its host's PublicIP on the external interface. No device, no encapsulation, no lease data;
 * the price is that all hosts must share one L2 segment.
 */
export class HostGwNetwork implements Network {
  readonly leaseData = null;
  readonly mtu: number;
  private readonly log: Logger;
  /** The last set sync() was given; undefined until the first sync. */
  private desired: readonly RemoteLease[] | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly ctx: BackendContext) {
    this.mtu = ctx.extIface.mtu; // no encapsulation overhead
    this.log = ctx.log;
  }

  /** Nothing to create: routes arrive with sync(). */
  start(_lease: LocalLease): Promise<void> {
    return Promise.resolve();
  }

  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    this.desired = desired;
    return this.serial(() => this.apply(desired));
  }

  run(signal: AbortSignal): Promise<void> {
    return runRepairLoop(signal, {
      netlink: this.ctx.netlink,
      ifindex: this.ctx.extIface.index,
      intervalMs: this.ctx.resyncIntervalMs,
      repair: () => this.resync(),
      log: this.log,
    });
  }

  /**
   * Re-applies the last desired set. Before the first sync it does nothing: an empty set would
   * delete the routes a restarted agent found in place, cutting traffic until the leases arrive.
   */
  private async resync(): Promise<void> {
    const desired = this.desired;
    if (desired === undefined) return;
    const report = await this.serial(() => this.apply(desired));
    if (report.changes > 0) this.log.info({ changes: report.changes }, 'resync repaired routes');
  }

  /** One sync at a time: two interleaved route diffs could undo each other's writes. */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.tail.then(op, op);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async apply(leases: readonly RemoteLease[]): Promise<SyncReport> {
    const { netlink, extIface, clusterNetwork } = this.ctx;
    // Read each time: the interface's addresses (so its connected networks) can change.
    const connected = (await netlink.listAddresses(extIface.index)).filter((a) => a.family === 4).map((a) => a.cidr);
    const plan = planRoutes({ leases, ext: extIface, connected, clusterNetwork });
    const result = await syncRoutes(netlink, clusterNetwork, plan.routes);
    const changes = result.replaced + result.deleted;
    if (result.failed.length > 0) throw new HostGwSyncError(result.failed, changes);
    return { changes, skipped: [...plan.skipped, ...result.refused] };
  }
}
