import type { BackendContext, LocalLease, Network, RemoteLease, SyncReport } from '../backend.js';
import { Reconciler } from '../reconciler.js';
import { splitRouteFailures, syncRoutes } from '../route-sync.js';
import { HostGwSyncError } from './errors.js';
import { planRoutes } from './plan.js';

/**
 * The host-gw network (flannel's host-gw over RouteNetwork): every remote subnet is routed via
 * its host's PublicIP on the external interface. No device, no encapsulation, no lease data;
 * the price is that all hosts must share one L2 segment. Its own part is the plan and the route
 * write; keeping the desired set, the write queue and the repair loop are the Reconciler's.
 */
export class HostGwNetwork implements Network {
  readonly leaseData = null;
  readonly mtu: number;
  private readonly reconciler: Reconciler;

  constructor(private readonly ctx: BackendContext) {
    this.mtu = ctx.extIface.mtu; // no encapsulation overhead
    this.reconciler = new Reconciler({ apply: (desired) => this.apply(desired) }, ctx.log, 'host-gw');
  }

  /** Nothing to create: routes arrive with sync(). */
  start(_lease: LocalLease): Promise<void> {
    return Promise.resolve();
  }

  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    return this.reconciler.sync(desired);
  }

  run(signal: AbortSignal): Promise<void> {
    const { netlink, extIface, resyncIntervalMs } = this.ctx;
    return this.reconciler.run(signal, { watchLinks: () => netlink.watchLinks(), extIndex: extIface.index, intervalMs: resyncIntervalMs });
  }

  private async apply(leases: readonly RemoteLease[]): Promise<SyncReport> {
    const { netlink, extIface, clusterNetwork } = this.ctx;
    // Read each time: the interface's addresses (so its connected networks) can change.
    const connected = (await netlink.listAddresses(extIface.index)).filter((a) => a.family === 4).map((a) => a.cidr);
    const plan = planRoutes({ leases, ext: extIface, connected, clusterNetwork });
    const result = await syncRoutes(netlink, clusterNetwork, plan.routes);
    const changes = result.replaced + result.deleted;
    // The failed-entry contract of backend.ts: a refused write skips its lease, a failed removal throws.
    const { writeFailed, removeFailed } = splitRouteFailures(result);
    if (removeFailed.length > 0) throw new HostGwSyncError(removeFailed, changes);
    return { changes, skipped: [...plan.skipped, ...writeFailed, ...result.refused] };
  }
}
