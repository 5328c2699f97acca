import type { Logger } from 'pino';
import { InvalidArgumentError } from '../../core/errors.js';
import { parseIp } from '../../core/ip.js';
import type { NetlinkHandle } from '../../netlink/index.js';
import type { BackendContext } from '../backend.js';
import { tunnelMtuWarning } from '../tunnel-mtu.js';
import { deviceMtu, deviceNameOf, overheadOf, TYPE, type VxlanOptions } from './config.js';
import { ensureDevice, type DeviceSpec } from './device.js';
import { removeFlannelState, type FoundFlannel } from './takeover.js';
import { ensureDeviceAddress } from '../device-address.js';
import { underlayOf, type VtepChoice } from './vtep-choice.js';

/** The smallest MTU of a link that carries IPv6 (RFC 8200 §5): below it the kernel turns IPv6 off on the device. */
export const IPV6_MIN_MTU = 1280;

/**
 * One VXLAN device of the network and what goes with it, the same for both address families:
 * twill.<VNI> over the IPv4 underlay, twill-v6.<VNI> over the IPv6 underlay (flannel's
 * flannel.<VNI> and flannel-v6.<VNI>). Each has its own tunnel source, MAC, MTU and host address,
 * and its own takeover of flanneld's device of that family. vxlan.ts runs both through the same
 * steps; nothing here depends on the family beyond its underlay address.
 */
export class Vtep {
  readonly device: DeviceSpec;
  readonly macSource: string;
  /**
   * flanneld's device, until the first sync has replaced it (takeover.ts). While `deviceGone` is
   * false, this device cannot exist (one device per VNI, port and family), and flanneld's still
   * carries the pods' traffic, so nothing else may create it.
   */
  private takeover: { readonly found: FoundFlannel; deviceGone: boolean } | undefined;

  constructor(readonly family: 4 | 6, ctx: BackendContext, options: VxlanOptions, choice: VtepChoice) {
    const { extIface } = ctx;
    const { address } = underlayOf(extIface, family);
    if (parseIp(address, 'external interface address').family !== family) {
      throw new InvalidArgumentError(`${TYPE} backend external interface address`, address, `the IPv${family} VXLAN underlay must be IPv${family}`);
    }
    const mtu = deviceMtu(options, extIface.mtu, family);
    if (family === 6 && mtu < IPV6_MIN_MTU) {
      throw new InvalidArgumentError(`${TYPE} backend IPv6 device MTU`, mtu,
        `is below IPv6's minimum ${IPV6_MIN_MTU} (${extIface.name}'s MTU ${extIface.mtu} - ${overheadOf(6)}, or the MTU option): the kernel would turn IPv6 off on ${deviceNameOf(6, options.vni)}`);
    }
    this.macSource = choice.source;
    this.takeover = choice.flannel ? { found: choice.flannel, deviceGone: false } : undefined;
    this.device = {
      name: deviceNameOf(family, options.vni),
      vni: options.vni,
      port: options.port,
      localIp: address,
      underlayIndex: extIface.index,
      gbp: options.gbp,
      mtu,
      mac: choice.mac,
    };
  }

  /** True while flanneld's device still carries the traffic and this one must not be created. */
  get waitsForTakeover(): boolean {
    return this.takeover?.deviceGone === false;
  }

  /** Creates or adopts the device before the lease exists, so the lease can carry its MAC; logs what it did. */
  async register(nl: NetlinkHandle, log: Logger, ext: { readonly name: string; readonly mtu: number }): Promise<void> {
    const { device } = this;
    const mtuWarning = tunnelMtuWarning(TYPE, overheadOf(this.family), device.mtu, ext);
    if (mtuWarning !== undefined) log.warn({ device: device.name, mtu: device.mtu, iface: ext.name, ifaceMtu: ext.mtu }, mtuWarning);
    if (this.takeover) {
      const { device: flannel, why } = this.takeover.found;
      log.warn({ flannelDevice: flannel.name, flannelMac: flannel.mac, flannelLocal: flannel.localIp, device: device.name, mac: device.mac, why },
        `found flanneld's ${flannel.name} (VNI ${device.vni}, port ${device.port}) and no flanneld running: taking this host over; ` +
        `${flannel.name} carries traffic until the first sync replaces it with ${device.name}`);
      return;
    }
    const { link, changes } = await ensureDevice(nl, device);
    log.info({ device: link.name, index: link.index, vni: device.vni, port: device.port, mac: device.mac, macSource: this.macSource, mtu: device.mtu, changes },
      'vxlan device ready');
  }

  /**
   * The device and (once the lease is known: `subnet`, the lease's subnet of this family) its
   * host address; returns the link's index and what changed.
   */
  async ensure(nl: NetlinkHandle, subnet: string | undefined, clusterNetwork: string): Promise<{ index: number; changes: string[] }> {
    const { link, changes } = await ensureDevice(nl, this.device);
    const all = [...changes];
    if (subnet !== undefined) all.push(...await ensureDeviceAddress(nl, link.index, subnet, clusterNetwork));
    return { index: link.index, changes: all };
  }

  /**
   * Removes what flanneld left of this family (takeover.ts), right before the device and every
   * peer's entries are written in the same step: the pods' traffic stops only for that long.
   * DirectRouting routes the kernel refused to delete are tried again at the next sync (Twill
   * will not overwrite them, so their peers stay unreachable until then, and are reported as
   * skipped). Does nothing when there is no takeover (left) to do.
   */
  async completeTakeover(nl: NetlinkHandle, log: Logger, ctx: { readonly clusterNetwork: string; readonly extIndex: number }): Promise<void> {
    const takeover = this.takeover;
    if (takeover === undefined) return;
    const { device } = this;
    const removed = await removeFlannelState(nl, takeover.found.device, { vni: device.vni, port: device.port, clusterNetwork: ctx.clusterNetwork, extIndex: ctx.extIndex });
    takeover.deviceGone = true;
    if (removed.device || removed.directRoutes.length > 0) {
      const d = removed.device;
      log.warn({ removedDevice: d, removedDirectRoutes: removed.directRoutes, device: device.name, mac: device.mac, macSource: this.macSource },
        `took this host over from flanneld: deleted ${d ? `${d.name} (MAC ${d.mac ?? 'none'}) with its ${d.neighbours} neighbours, ${d.fdb} FDB entries and ${d.routes} routes` : 'no device'}` +
        ` and ${removed.directRoutes.length} DirectRouting routes; ${device.name} replaces it with MAC ${device.mac} (${this.macSource})`);
    }
    if (removed.errors.length === 0) {
      this.takeover = undefined;
      return;
    }
    log.error({ errors: removed.errors.map((e) => e.message) }, 'cannot delete flanneld\'s DirectRouting routes; the next sync tries again');
  }
}
