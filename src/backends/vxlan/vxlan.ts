import { TwillError } from '../../core/errors.js';
import { isNetlinkError } from '../../netlink/index.js';
import type { Backend, BackendContext, LocalLease, Network, RemoteLease, SyncReport } from '../backend.js';
import { ownedNetworks } from '../lease-checks.js';
import { connectedNetworks, onLinkMatcher } from '../on-link.js';
import { Reconciler } from '../reconciler.js';
import { deviceNeedsRepair } from '../repair-loop.js';
import { applyPlan } from './apply.js';
import { deviceNameOf, parseVxlanOptions, TYPE, type VxlanOptions } from './config.js';
import { encodeLeaseData, type VxlanLeaseData } from './lease-data.js';
import { planPeers } from './plan.js';
import { chooseVtep } from './vtep-choice.js';
import { Vtep } from './vtep.js';

/**
 * The vxlan backend (flannel's default and recommended one): pod traffic to another node is
 * wrapped in VXLAN (RFC 7348) on the device twill.<VNI> and sent to that node's PublicIP; IPv6
 * pod traffic goes the same way on twill-v6.<VNI> over the IPv6 underlay to its PublicIPv6
 * (flannel's flannel-v6.<VNI>). A dual-stack network has both devices, an IPv6-only one only
 * twill-v6.<VNI>, an IPv4-only one only twill.<VNI> (vtep.ts holds what each device needs).
 *
 * Where it differs from flannel's pkg/backend/vxlan:
 *   - each VTEP MAC is derived from the family's public address and the VNI, so it survives
 *     restarts and reboots (mac.ts), or kept from flanneld's device when Twill takes a flannel
 *     host over (takeover.ts);
 *   - sync is declarative: stale entries go, including the old FDB entry of a peer whose MAC
 *     changed and entries of peers that left while the agent was down (apply.ts);
 *   - a periodic resync repairs entries deleted by hand, and a deleted or downed device is
 *     recreated at once and *every* entry replayed (flannel recreates the device only, #2247);
 *   - unusable leases are skipped with a reason instead of failing the whole batch;
 *   - twill-v6.<VNI> gets the IPv6 underlay's MTU minus 70 (flannel subtracts 50, CR), and the
 *     pods the smaller of the devices' MTUs.
 */
export const vxlanBackend: Backend<VxlanOptions> = {
  type: TYPE,
  supportsIpv6: true,
  parseOptions: parseVxlanOptions,
  async register(ctx, options) {
    const vteps: Vtep[] = [];
    for (const family of enabledFamilies(ctx)) vteps.push(new Vtep(family, ctx, options, await chooseVtep(ctx, options, undefined, family)));
    const network = new VxlanNetwork(ctx, options, vteps);
    await network.register();
    return network;
  },
};

/** The address families the network config enables: a device for each. */
function enabledFamilies(ctx: BackendContext): (4 | 6)[] {
  const families: (4 | 6)[] = [];
  if (ctx.clusterNetwork !== undefined) families.push(4);
  if (ctx.clusterNetworkV6 !== undefined) families.push(6);
  if (families.length === 0) throw new TwillError('EVXLAN_CONFIG', 'the vxlan backend needs an IPv4 or an IPv6 cluster network');
  return families;
}

/** One vxlan network on this node: its devices and the entries for every peer. */
export class VxlanNetwork implements Network {
  /** BackendData: twill.<VNI>'s VNI and MAC; absent in an IPv6-only network (flannel omits it too). */
  readonly leaseData: VxlanLeaseData | undefined;
  /** BackendV6Data: twill-v6.<VNI>'s VNI and MAC, when the config enables IPv6. */
  readonly leaseDataV6: VxlanLeaseData | undefined;
  /** The pods' MTU: the smallest of the devices' (a pod's packets of either family must fit). */
  readonly mtu: number;
  private lease: LocalLease | undefined;
  /** The desired set, the write queue (every kernel-writing step: sync, start, resync, repair) and the repair loop. */
  private readonly reconciler: Reconciler;

  constructor(private readonly ctx: BackendContext, private readonly options: VxlanOptions, private readonly vteps: readonly Vtep[]) {
    const macOf = (family: 4 | 6): string | undefined => vteps.find((v) => v.family === family)?.device.mac;
    const [mac4, mac6] = [macOf(4), macOf(6)];
    this.leaseData = mac4 === undefined ? undefined : encodeLeaseData(options.vni, mac4);
    this.leaseDataV6 = mac6 === undefined ? undefined : encodeLeaseData(options.vni, mac6);
    this.mtu = Math.min(...vteps.map((v) => v.device.mtu));
    this.reconciler = new Reconciler({
      apply: (desired) => this.reconcile(desired),
      beforeFirstSet: (why) => this.repairDevices(why),
    }, ctx.log, 'vxlan');
  }

  /** Creates or adopts the devices before the lease exists, so the lease can carry their MACs. */
  async register(): Promise<void> {
    const { log, netlink: nl, extIface } = this.ctx;
    await this.serial(async () => {
      await this.removeDisabledDevices();
      for (const vtep of this.vteps) await vtep.register(nl, log, extIface);
    });
  }

  async start(lease: LocalLease): Promise<void> {
    this.lease = lease;
    await this.serial(() => this.ensureAll(false)); // a device that waits for its takeover is created by the first sync
  }

  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    return this.reconciler.sync(desired);
  }

  /**
   * Until aborted: every resyncIntervalMs, re-ensure the devices and re-apply the last desired
   * set (repairs drift: entries deleted by hand, bogus Twill routes); and when a device is
   * deleted or goes down, repair at once (the shared loop also repairs when the external
   * interface comes up again: the kernel flushed the DirectRouting routes through it). On abort,
   * leaves everything in place: a restarting agent must not cut traffic.
   */
  run(signal: AbortSignal): Promise<void> {
    const { netlink, extIface, resyncIntervalMs } = this.ctx;
    const checks = this.vteps.map((v) => deviceNeedsRepair(v.device.name));
    return this.reconciler.run(signal, {
      watchLinks: (o) => netlink.watchLinks(o), netlink, extIndex: extIface.index, intervalMs: resyncIntervalMs,
      linkNeedsRepair: (event) => checks.reduce<string | undefined>((why, check) => why ?? check(event), undefined),
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.reconciler.serial(fn);
  }

  private clusterNetworkOf(family: 4 | 6): string {
    return (family === 4 ? this.ctx.clusterNetwork : this.ctx.clusterNetworkV6)!; // a Vtep exists only for an enabled family
  }

  private subnetOf(family: 4 | 6): string | undefined {
    return family === 4 ? this.lease?.subnet : this.lease?.ipv6Subnet;
  }

  /**
   * Every device and (once the lease is known) its address; `takeOver` first removes what
   * flanneld left (the first sync does), else a device that waits for its takeover is skipped.
   */
  private async ensureAll(takeOver: boolean): Promise<{ devices: { index: number; family: 4 | 6 }[]; changes: string[] }> {
    const { netlink: nl, log, extIface } = this.ctx;
    const devices: { index: number; family: 4 | 6 }[] = [];
    const changes: string[] = [];
    for (const vtep of this.vteps) {
      const clusterNetwork = this.clusterNetworkOf(vtep.family);
      if (takeOver) await vtep.completeTakeover(nl, log, { clusterNetwork, extIndex: extIface.index });
      else if (vtep.waitsForTakeover) continue;
      const ensured = await vtep.ensure(nl, this.subnetOf(vtep.family), clusterNetwork);
      devices.push({ index: ensured.index, family: vtep.family });
      changes.push(...ensured.changes.map((c) => `${vtep.device.name} ${c}`));
    }
    return { devices, changes };
  }

  private async reconcile(desired: readonly RemoteLease[]): Promise<SyncReport> {
    const { netlink: nl, extIface } = this.ctx;
    const { devices, changes } = await this.ensureAll(true);
    const indexOf = (family: 4 | 6): number | undefined => devices.find((d) => d.family === family)?.index;
    const macOf = (family: 4 | 6): string | undefined => this.vteps.find((v) => v.family === family)?.device.mac;
    const onLink = this.options.directRouting
      ? onLinkMatcher(await connectedNetworks(nl, extIface.index))
      : () => false;
    const plan = planPeers({
      leases: desired,
      vni: this.options.vni,
      clusterNetwork: this.ctx.clusterNetwork,
      clusterNetworkV6: this.ctx.clusterNetworkV6,
      localPublicIp: extIface.publicIp,
      localPublicIpv6: extIface.publicIpv6,
      localMac: macOf(4),
      localMacV6: macOf(6),
      directRouting: this.options.directRouting,
      onLink,
      vxlanIndex: indexOf(4),
      vxlanIndexV6: indexOf(6),
      extIndex: extIface.index,
    });
    const applied = await applyPlan(nl, ownedNetworks(this.ctx), devices, plan.peers, this.reconciler.written);
    return { changes: changes.length + applied.changes, skipped: [...plan.skipped, ...applied.failed] };
  }

  /**
   * A resync before the first sync: only the devices are ensured, because an empty set would
   * delete every entry a previous run of the agent left (and the traffic they carry) before the
   * lease watch has delivered its snapshot. flanneld's device serves until the first sync.
   */
  private async repairDevices(why: string): Promise<void> {
    const { changes } = await this.ensureAll(false);
    if (changes.length > 0) this.ctx.log.info({ why, changes }, 'vxlan device repaired');
  }

  /**
   * twill.<VNI> or twill-v6.<VNI> of a family the config no longer enables (an IPv4-only network
   * after a dual-stack run): Twill's own, so deleted with everything on it. Nothing routes to it
   * any more, and its routes and nexthops go with it.
   */
  private async removeDisabledDevices(): Promise<void> {
    const { netlink: nl, log } = this.ctx;
    for (const family of [4, 6] as const) {
      if (this.vteps.some((v) => v.family === family)) continue;
      const name = deviceNameOf(family, this.options.vni);
      const link = await nl.getLink(name);
      if (link?.kind !== 'vxlan') continue;
      try {
        await nl.deleteLink(link.index);
        log.info({ device: name }, `deleted ${name}: the network config does not enable IPv${family} any more`);
      } catch (err) {
        if (!isNetlinkError(err, 'ENODEV')) throw err;
      }
    }
  }
}
