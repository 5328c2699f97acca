import { InvalidArgumentError } from '../../core/errors.js';
import { parseIp } from '../../core/ip.js';
import { ipv4ClusterNetwork, ipv4Lease, ipv4Underlay, type Backend, type BackendContext, type LocalLease, type Network, type RemoteLease, type SyncReport } from '../backend.js';
import { ensureDeviceAddress } from '../device-address.js';
import { connectedNetworks, onLinkMatcher } from '../on-link.js';
import { Reconciler } from '../reconciler.js';
import { deviceNeedsRepair } from '../repair-loop.js';
import { applyRoutes } from '../route-apply.js';
import { tunnelMtuWarning } from '../tunnel-mtu.js';
import { DEVICE_NAME, IPIP_OVERHEAD, ipipMtu, parseIpipOptions, TYPE, type IpipOptions } from './config.js';
import { ensureIpipDevice, type IpipDeviceSpec } from './device.js';
import { planIpipRoutes } from './plan.js';

/**
 * The ipip backend (flannel's pkg/backend/ipip): pod traffic to another node is wrapped in an
 * outer IPv4 header (RFC 2003) on twill.ipip and sent to that node's PublicIP; 20 bytes of
 * overhead against vxlan's 50, no MAC, neighbour or FDB entry, but IPv4 only and not through
 * NAT or networks that drop IP protocol 4. The lease carries no BackendData, as flannel's.
 * Its own parts are the device and the plan; the rest is shared (Reconciler, applyRoutes).
 */
export const ipipBackend: Backend<IpipOptions> = {
  type: TYPE,
  // As flannel's ipip: an IPIP tunnel is IPv4 in IPv4. IPv6 pods would need another tunnel kind
  // (sit or ip6tnl) and flannel has no lease format for it, so a dual-stack config is refused.
  ipv6Unsupported: 'carries IPv4 pods only (IPv4-in-IPv4, as flannel\'s ipip); for IPv6 pods use vxlan, host-gw or bgp',
  parseOptions: parseIpipOptions,
  async register(ctx, options) {
    const network = new IpipNetwork(ctx, options);
    await network.register();
    return network;
  },
};

/** The ipip network on this node: twill.ipip and a route per peer. */
export class IpipNetwork implements Network {
  readonly leaseData = null;
  readonly mtu: number;
  readonly device: IpipDeviceSpec;
  private lease: LocalLease | undefined;
  /** IPIP carries IPv4 pods only (supportsIpv6 is false), so the network is always IPv4's. */
  private readonly clusterNetwork: string;
  private readonly reconciler: Reconciler;

  constructor(private readonly ctx: BackendContext, private readonly options: IpipOptions) {
    const { extIface } = ctx;
    const { address } = ipv4Underlay(extIface, TYPE);
    if (parseIp(address, 'external interface address').family !== 4) {
      throw new InvalidArgumentError(`${TYPE} backend external interface address`, address, 'IPIP carries IPv4 only');
    }
    this.clusterNetwork = ipv4ClusterNetwork(ctx, TYPE);
    this.mtu = ipipMtu(options, extIface.mtu);
    this.device = { localIp: address, underlayIndex: extIface.index, mtu: this.mtu };
    this.reconciler = new Reconciler({ apply: (desired) => this.reconcile(desired), beforeFirstSet: (why) => this.repairDevice(why) }, ctx.log, TYPE);
  }

  /** Creates the device before the lease exists, so a kernel without IPIP fails the start, not the first sync. */
  async register(): Promise<void> {
    const { log, extIface } = this.ctx;
    const mtuWarning = tunnelMtuWarning(TYPE, IPIP_OVERHEAD, this.mtu, extIface);
    if (mtuWarning !== undefined) log.warn({ mtu: this.mtu, iface: extIface.name, ifaceMtu: extIface.mtu }, mtuWarning);
    if (extIface.publicIp !== extIface.address) {
      log.warn({ publicIp: extIface.publicIp, address: extIface.address },
        'the PublicIP differs from the interface\'s address: IPIP has no ports, so only a one-to-one NAT that passes IP protocol 4 carries it');
    }
    const { link, changes } = await this.reconciler.serial(() => ensureIpipDevice(this.ctx.netlink, this.device));
    log.info({ device: link.name, index: link.index, local: this.device.localIp, mtu: this.mtu, changes }, 'ipip device ready');
  }

  async start(lease: LocalLease): Promise<void> {
    this.lease = lease;
    await this.reconciler.serial(() => this.ensure());
  }

  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    return this.reconciler.sync(desired);
  }

  /** Until aborted: periodic resync, and at once when twill.ipip is deleted or down. Leaves everything in place. */
  run(signal: AbortSignal): Promise<void> {
    const { netlink, extIface, resyncIntervalMs } = this.ctx;
    return this.reconciler.run(signal, {
      watchLinks: (o) => netlink.watchLinks(o), netlink, extIndex: extIface.index, intervalMs: resyncIntervalMs, linkNeedsRepair: deviceNeedsRepair(DEVICE_NAME),
    });
  }

  /** The device and (once the lease is known) its /32 address. */
  private async ensure(): Promise<{ index: number; changes: string[] }> {
    const { netlink } = this.ctx;
    const { clusterNetwork } = this;
    const { link, changes } = await ensureIpipDevice(netlink, this.device);
    const all = [...changes];
    if (this.lease) all.push(...await ensureDeviceAddress(netlink, link.index, ipv4Lease(this.lease, TYPE).subnet, clusterNetwork));
    return { index: link.index, changes: all };
  }

  private async reconcile(desired: readonly RemoteLease[]): Promise<SyncReport> {
    const { netlink, extIface } = this.ctx;
    const { clusterNetwork } = this;
    const device = await this.ensure();
    const onLink = this.options.directRouting ? onLinkMatcher(await connectedNetworks(netlink, extIface.index)) : () => false;
    const plan = planIpipRoutes({
      leases: desired, clusterNetwork, localPublicIp: ipv4Underlay(extIface, TYPE).publicIp, directRouting: this.options.directRouting, onLink,
      deviceIndex: device.index, extIndex: extIface.index,
    });
    return applyRoutes(netlink, TYPE, clusterNetwork, plan, device.changes.length, this.reconciler.written);
  }

  /** Before the first desired set only the device is repaired: an empty set would remove every route in place. */
  private async repairDevice(why: string): Promise<void> {
    const { changes } = await this.ensure();
    if (changes.length > 0) this.ctx.log.info({ why, changes }, 'ipip device repaired');
  }
}
