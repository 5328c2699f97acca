import type { BackendContext, LocalLease, Network, RemoteLease, SyncReport } from '../backend.js';
import { Reconciler } from '../reconciler.js';
import { connectedNetworks } from '../on-link.js';
import { applyRoutes } from '../route-apply.js';
import { ownedNetworks } from '../lease-checks.js';
import { HOST_GW_TYPE, planRoutes } from './plan.js';

/**
 * The host-gw network (flannel's host-gw over RouteNetwork): every remote subnet is routed via
 * its host's PublicIP (an IPv6 subnet via its PublicIPv6) on the external interface. No device, no encapsulation, no lease data;
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
    return this.reconciler.run(signal, { watchLinks: (o) => netlink.watchLinks(o), netlink, extIndex: extIface.index, intervalMs: resyncIntervalMs });
  }

  private async apply(leases: readonly RemoteLease[]): Promise<SyncReport> {
    const { netlink, extIface, clusterNetwork, clusterNetworkV6 } = this.ctx;
    // Read each time: the interface's addresses (so its connected networks) can change.
    const connected = await connectedNetworks(netlink, extIface.index);
    return applyRoutes(netlink, HOST_GW_TYPE, ownedNetworks(this.ctx), planRoutes({ leases, ext: extIface, connected, clusterNetwork, clusterNetworkV6 }), 0, this.reconciler.written);
  }
}
