import { formatCidr, networkPrefix, parseCidr } from '../../core/ip.js';
import { ensureBridge, isNetlinkError, writeSysctl, type Link, type Netlink } from '../../netlink/index.js';
import { CniCode, CniError } from '../spec/errors.js';

export interface HostBridgeSpec {
  readonly name: string;
  /** MTU for a bridge twill creates; an existing bridge keeps its own (as the reference plugin does). */
  readonly mtu: number;
  /** The pods' IPv4 gateway with the lease's prefix, e.g. "10.244.3.1/24"; undefined in an IPv6-only cluster. */
  readonly gatewayCidr: string | undefined;
  /** The pods' IPv6 gateway with the lease's prefix, e.g. "fc00:0:0:3::1/64" (dual-stack or IPv6-only). */
  readonly ipv6GatewayCidr?: string | undefined;
  /** Replace a different address of the family on the bridge (a host whose lease changed, flannel#1850). */
  readonly forceAddress: boolean;
}

/**
 * The host's bridge (cni0 by default): created if missing, up, holding the gateway address.
 * Safe when many ADDs race at node start (plugins#366): the loser of a create race adopts the
 * winner's bridge, and an address someone else added first counts as present.
 */
export async function ensureHostBridge(nl: Netlink, spec: HostBridgeSpec): Promise<Link> {
  let link = await nl.getLink(spec.name);
  if (link && link.kind !== 'bridge') {
    throw new CniError(CniCode.INVALID_CONFIG, `"${spec.name}" exists and is a ${link.kind ?? 'plain'} device, not a bridge`);
  }
  if (!link) {
    try {
      await nl.createBridge({ name: spec.name, mtu: spec.mtu });
      // Before it goes up (which makes its link-local address): no duplicate address detection on
      // a bridge Twill made. The kernel sends a neighbour solicitation for a forwarded packet from
      // the device's link-local address, and while that is tentative (a second) it sends none, so
      // the first IPv6 packets from other hosts to a new host's pods waited up to a second.
      if (spec.ipv6GatewayCidr !== undefined) disableDad(spec.name);
      const created = await nl.requireLink(spec.name);
      // Pin the MAC: a bridge otherwise takes the lowest MAC of its ports, so it would change as
      // pods come and go and every pod's neighbour entry for the gateway would go stale.
      if (created.mac) await nl.setMac(created.index, created.mac);
    } catch (err) {
      if (!isNetlinkError(err, 'EEXIST')) throw err;
    }
  }
  // Once the node is set up the bridge exists and is up: one lookup per ADD, not two.
  if (!link?.up) link = (await ensureBridge(nl, { name: spec.name, up: true })).link;
  if (spec.gatewayCidr !== undefined) await ensureGatewayAddress(nl, link, spec, spec.gatewayCidr);
  if (spec.ipv6GatewayCidr !== undefined) await ensureGatewayAddress(nl, link, spec, spec.ipv6GatewayCidr);
  return link;
}

/** accept_dad=0 on the bridge; a kernel booted without IPv6 has no such key, and nothing to turn off. */
function disableDad(bridge: string): void {
  try {
    writeSysctl(`net/ipv6/conf/${bridge}/accept_dad`, 0);
  } catch (err) {
    if (!isNetlinkError(err, 'ENOENT')) throw err;
  }
}

/** fe80::/10: the bridge's own link-local address, never a lease's. */
function isLinkLocal6(cidr: string): boolean {
  const bytes = parseCidr(cidr).address.bytes;
  return bytes[0] === 0xfe && (bytes[1]! & 0xc0) === 0x80;
}

async function ensureGatewayAddress(nl: Netlink, bridge: Link, spec: HostBridgeSpec, gatewayCidr: string): Promise<void> {
  const cidr = parseCidr(gatewayCidr, 'gateway');
  const want = formatCidr(cidr);
  const v6 = cidr.address.family === 6;
  // Fast path, and the only one once the bridge is set up: adding an address the bridge has is
  // EEXIST. Listing first would dump every address of the host, and with many ADDs at once (each
  // veth brings addresses of its own) the dump keeps being interrupted (NLM_F_DUMP_INTR). The
  // IPv6 gateway skips duplicate address detection (nodad): it is the lease's, unique by
  // construction, and a tentative gateway would leave the first pods without one for a second.
  try {
    await (v6 ? nl.addAddress(bridge.index, want, { noDad: true }) : nl.addAddress(bridge.index, want));
  } catch (err) {
    if (isNetlinkError(err, 'EEXIST')) return;
    throw err;
  }
  // The address was new: a bridge left with another lease's address needs a decision.
  const others = (await nl.listAddresses(bridge.index))
    .filter((a) => (v6 ? a.cidr.includes(':') && !isLinkLocal6(a.cidr) : !a.cidr.includes(':')) && networkPrefix(a.cidr) !== networkPrefix(want));
  if (others.length === 0) return;
  if (!spec.forceAddress) {
    await nl.deleteAddress(bridge.index, want).catch(() => undefined);
    throw new CniError(CniCode.INVALID_CONFIG,
      `bridge ${spec.name} already has an IP address different from ${want} (${others.map((a) => a.cidr).join(', ')}): ` +
      'the host lease changed; set "forceAddress": true to replace it, or delete the bridge');
  }
  for (const a of others) await nl.deleteAddress(bridge.index, a.cidr);
}
