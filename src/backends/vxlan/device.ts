import { TwillError } from '../../core/errors.js';
import { ensureVxlan, type EnsureResult, type Link, type NetlinkHandle } from '../../netlink/index.js';

/** The VXLAN device as Twill wants it. */
export interface DeviceSpec {
  readonly name: string;
  readonly vni: number;
  readonly port: number;
  /** Source address of the tunnel: the external interface's IPv4 address (IPv6 for twill-v6.<VNI>). */
  readonly localIp: string;
  /** The external interface: encapsulated packets leave by it. */
  readonly underlayIndex: number;
  readonly gbp: boolean;
  readonly mtu: number;
  readonly mac: string;
}

export interface DeviceState {
  readonly link: Link;
  /** What had to change ("created", "mac ...", "address ..."); empty when nothing did. */
  readonly changes: readonly string[];
}

/**
 * Makes twill.<VNI> exist as specified and be up. twill.* is Twill's own name, so an existing
 * device that differs (another port, learning on, ...) is ours and is recreated, and one with
 * another MAC is corrected in place with setMac (no recreation, no traffic cut).
 *
 * The MAC is given at creation (IFLA_ADDRESS), so systemd-udevd's MACAddressPolicy=persistent
 * has nothing to replace (flannel #1155, PR #1485), and checked again afterwards: udev applies
 * its policy asynchronously, so a MAC changed behind our back is set back (flannel #1795 fails
 * instead).
 */
export async function ensureDevice(nl: NetlinkHandle, spec: DeviceSpec): Promise<DeviceState> {
  const changes: string[] = [];
  let ensured: EnsureResult;
  try {
    ensured = await ensureVxlan(nl, { ...spec, learning: false, up: true }, { recreate: true });
  } catch (err) {
    throw (await conflictOf(nl, spec, err)) ?? err;
  }
  changes.push(...ensured.changes);
  let link = ensured.link;
  if (link.mac !== spec.mac) {
    await nl.setMac(link.index, spec.mac);
    changes.push(`mac ${link.mac ?? 'none'}->${spec.mac}`);
    link = await nl.requireLink(link.index);
    if (link.mac !== spec.mac) {
      throw new TwillError('EVTEP_MAC', `${spec.name} has MAC ${link.mac ?? 'none'} although ${spec.mac} was set (is something else rewriting it?)`);
    }
  }
  return { link, changes };
}

/**
 * The kernel allows one VXLAN device per VNI, UDP port and underlay family: creating ours
 * fails with EEXIST while another device holds VNI 1 on port 8472, and the raw error does not
 * say which device is in the way. This names it. flanneld's own flannel(-v6).<VNI> never gets here:
 * it is taken over before the device is created (takeover.ts).
 */
async function conflictOf(nl: NetlinkHandle, spec: DeviceSpec, cause: unknown): Promise<TwillError | undefined> {
  const v6 = spec.localIp.includes(':');
  // twill.<VNI> and twill-v6.<VNI> share VNI and port: only a device of the same family is in the way.
  const other = (await nl.listLinks().catch(() => [])).find((l) =>
    l.name !== spec.name && l.vxlan?.vni === spec.vni && l.vxlan.port === spec.port && (l.vxlan.localIp?.includes(':') ?? false) === v6);
  if (!other) return undefined;
  return new TwillError('EVXLAN_CONFLICT',
    `cannot create ${spec.name}: ${other.name} already uses VNI ${spec.vni} on UDP port ${spec.port} and the kernel allows only one such device ` +
    `(Twill takes over only flanneld's flannel.${spec.vni} and flannel-v6.${spec.vni}: delete ${other.name}, or give Twill another VNI or Port)`, { cause });
}
