import { InvalidArgumentError } from '../../core/errors.js';
import { parseIp } from '../../core/ip.js';
import { ensureDeviceAddress } from '../device-address.js';
import type { Backend, BackendContext, LocalLease, Network, RemoteLease, SyncReport } from '../backend.js';
import { connectedNetworks, onLinkMatcher } from '../on-link.js';
import { Reconciler } from '../reconciler.js';
import { deviceNeedsRepair } from '../repair-loop.js';
import { tunnelMtuWarning } from '../tunnel-mtu.js';
import { applyPlan } from './apply.js';
import { deviceMtu, deviceName, parseVxlanOptions, TYPE, VXLAN_OVERHEAD, type VxlanOptions } from './config.js';
import { ensureDevice, type DeviceSpec } from './device.js';
import { encodeLeaseData, type VxlanLeaseData } from './lease-data.js';
import { planPeers } from './plan.js';
import { removeFlannelState, type FoundFlannel } from './takeover.js';
import { chooseVtep, type VtepChoice } from './vtep-choice.js';

/**
 * The vxlan backend (flannel's default and recommended one): pod traffic to another node is
 * wrapped in VXLAN (RFC 7348) on the device twill.<VNI> and sent to that node's PublicIP.
 *
 * Where it differs from flannel's pkg/backend/vxlan:
 *   - the VTEP MAC is derived from PublicIP and VNI, so it survives restarts and reboots (mac.ts),
 *     or kept from flanneld's device when Twill takes a flannel host over (takeover.ts);
 *   - sync is declarative: stale entries go, including the old FDB entry of a peer whose MAC
 *     changed and entries of peers that left while the agent was down (apply.ts);
 *   - a periodic resync repairs entries deleted by hand, and a deleted or downed device is
 *     recreated at once and *every* entry replayed (flannel recreates the device only, #2247);
 *   - unusable leases are skipped with a reason instead of failing the whole batch.
 */
export const vxlanBackend: Backend<VxlanOptions> = {
  type: TYPE,
  parseOptions: parseVxlanOptions,
  async register(ctx, options) {
    const network = new VxlanNetwork(ctx, options, await chooseVtep(ctx, options));
    await network.register();
    return network;
  },
};

/** One vxlan network on this node: the device and the entries for every peer. */
export class VxlanNetwork implements Network {
  readonly leaseData: VxlanLeaseData;
  readonly mtu: number;
  readonly device: DeviceSpec;
  private lease: LocalLease | undefined;
  /** The desired set, the write queue (every kernel-writing step: sync, start, resync, repair) and the repair loop. */
  private readonly reconciler: Reconciler;
  /**
   * flanneld's device, until the first sync has replaced it (takeover.ts). While `deviceGone` is
   * false, twill.<VNI> cannot exist (one device per VNI and port), and flannel.<VNI> still
   * carries the pods' traffic, so nothing else may create the device.
   */
  private takeover: { readonly found: FoundFlannel; deviceGone: boolean } | undefined;
  private readonly macSource: string;

  constructor(private readonly ctx: BackendContext, private readonly options: VxlanOptions, vtep: VtepChoice) {
    const { extIface } = ctx;
    if (parseIp(extIface.address, 'external interface address').family !== 4) {
      throw new InvalidArgumentError(`${TYPE} backend external interface address`, extIface.address, 'the VXLAN underlay must be IPv4');
    }
    this.mtu = deviceMtu(options, extIface.mtu);
    const { mac } = vtep;
    this.macSource = vtep.source;
    this.takeover = vtep.flannel ? { found: vtep.flannel, deviceGone: false } : undefined;
    this.device = {
      name: deviceName(options.vni),
      vni: options.vni,
      port: options.port,
      localIp: extIface.address,
      underlayIndex: extIface.index,
      gbp: options.gbp,
      mtu: this.mtu,
      mac,
    };
    this.leaseData = encodeLeaseData(options.vni, mac);
    this.reconciler = new Reconciler({
      apply: (desired) => this.reconcile(desired),
      beforeFirstSet: (why) => this.repairDevice(why),
    }, ctx.log, 'vxlan');
  }

  /** Creates or adopts the device before the lease exists, so the lease can carry its MAC. */
  async register(): Promise<void> {
    const { log, extIface } = this.ctx;
    const mtuWarning = tunnelMtuWarning(TYPE, VXLAN_OVERHEAD, this.mtu, extIface);
    if (mtuWarning !== undefined) log.warn({ mtu: this.mtu, iface: extIface.name, ifaceMtu: extIface.mtu }, mtuWarning);
    if (this.takeover) {
      const { device, why } = this.takeover.found;
      log.warn({ flannelDevice: device.name, flannelMac: device.mac, flannelLocal: device.localIp, device: this.device.name, mac: this.device.mac, why },
        `found flanneld's ${device.name} (VNI ${this.device.vni}, port ${this.device.port}) and no flanneld running: taking this host over; ` +
        `${device.name} carries traffic until the first sync replaces it with ${this.device.name}`);
      return;
    }
    const { link, changes } = await this.serial(() => ensureDevice(this.ctx.netlink, this.device));
    log.info({ device: link.name, index: link.index, vni: this.device.vni, port: this.device.port, mac: this.device.mac, macSource: this.macSource, mtu: this.mtu, changes },
      'vxlan device ready');
  }

  async start(lease: LocalLease): Promise<void> {
    this.lease = lease;
    if (this.takeover?.deviceGone === false) return; // the first sync creates the device
    await this.serial(() => this.ensure());
  }

  sync(desired: readonly RemoteLease[]): Promise<SyncReport> {
    return this.reconciler.sync(desired);
  }

  /**
   * Until aborted: every resyncIntervalMs, re-ensure the device and re-apply the last desired
   * set (repairs drift: entries deleted by hand, bogus Twill routes); and when the device is
   * deleted or goes down, repair at once (the shared loop also repairs when the external
   * interface comes up again: the kernel flushed the DirectRouting routes through it). On abort,
   * leaves everything in place: a restarting agent must not cut traffic.
   */
  run(signal: AbortSignal): Promise<void> {
    const { netlink, extIface, resyncIntervalMs } = this.ctx;
    return this.reconciler.run(signal, {
      watchLinks: () => netlink.watchLinks(), extIndex: extIface.index, intervalMs: resyncIntervalMs, linkNeedsRepair: deviceNeedsRepair(this.device.name),
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.reconciler.serial(fn);
  }

  /** The device and (once the lease is known) its address; returns the link and what changed. */
  private async ensure(): Promise<{ index: number; changes: string[] }> {
    const { link, changes } = await ensureDevice(this.ctx.netlink, this.device);
    const all = [...changes];
    if (this.lease) all.push(...await ensureDeviceAddress(this.ctx.netlink, link.index, this.lease.subnet, this.ctx.clusterNetwork));
    return { index: link.index, changes: all };
  }

  private async reconcile(desired: readonly RemoteLease[]): Promise<SyncReport> {
    const { netlink: nl, extIface, clusterNetwork } = this.ctx;
    if (this.takeover) await this.completeTakeover();
    const device = await this.ensure();
    const onLink = this.options.directRouting
      ? onLinkMatcher(await connectedNetworks(nl, extIface.index))
      : () => false;
    const plan = planPeers({
      leases: desired,
      vni: this.device.vni,
      clusterNetwork,
      localPublicIp: extIface.publicIp,
      localMac: this.device.mac,
      directRouting: this.options.directRouting,
      onLink,
      vxlanIndex: device.index,
      extIndex: extIface.index,
    });
    const applied = await applyPlan(nl, clusterNetwork, device.index, plan.peers);
    return { changes: device.changes.length + applied.changes, skipped: [...plan.skipped, ...applied.failed] };
  }

  /**
   * A resync before the first sync: only the device is ensured, because an empty set would delete
   * every entry a previous run of the agent left (and the traffic they carry) before the lease
   * watch has delivered its snapshot.
   */
  private async repairDevice(why: string): Promise<void> {
    if (this.takeover?.deviceGone === false) return; // flannel's device serves until the first sync
    const { changes } = await this.ensure();
    if (changes.length > 0) this.ctx.log.info({ why, changes }, 'vxlan device repaired');
  }

  /**
   * Removes what flanneld left (takeover.ts), right before the device and every peer's entries
   * are written in the same step: the pods' traffic stops only for that long. DirectRouting
   * routes the kernel refused to delete are tried again at the next sync (Twill will not
   * overwrite them, so their peers stay unreachable until then, and are reported as skipped).
   */
  private async completeTakeover(): Promise<void> {
    const takeover = this.takeover!;
    const { log, netlink: nl, extIface, clusterNetwork } = this.ctx;
    const removed = await removeFlannelState(nl, takeover.found.device, {
      vni: this.device.vni, port: this.device.port, clusterNetwork, extIndex: extIface.index,
    });
    takeover.deviceGone = true;
    if (removed.device || removed.directRoutes.length > 0) {
      const d = removed.device;
      log.warn({ removedDevice: d, removedDirectRoutes: removed.directRoutes, device: this.device.name, mac: this.device.mac, macSource: this.macSource },
        `took this host over from flanneld: deleted ${d ? `${d.name} (MAC ${d.mac ?? 'none'}) with its ${d.neighbours} neighbours, ${d.fdb} FDB entries and ${d.routes} routes` : 'no device'}` +
        ` and ${removed.directRoutes.length} DirectRouting routes; ${this.device.name} replaces it with MAC ${this.device.mac} (${this.macSource})`);
    }
    if (removed.errors.length === 0) {
      this.takeover = undefined;
      return;
    }
    log.error({ errors: removed.errors.map((e) => e.message) }, 'cannot delete flanneld\'s DirectRouting routes; the next sync tries again');
  }
}
