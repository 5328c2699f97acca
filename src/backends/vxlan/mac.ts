import { createHash } from 'node:crypto';
import { parseIp } from '../../core/ip.js';
import { formatMac } from '../../core/mac.js';

/**
 * The VTEP MAC, derived from what identifies this node's tunnel endpoint: its PublicIP and the VNI.
 *
 * flannel generates a random MAC at every start (set before link creation to beat systemd's
 * MACAddressPolicy, flannel #1155 / PR #1485) and, in etcd mode, publishes a new one after every
 * reboot. Each peer then rewrites its neighbour entry and leaks an FDB entry (#533, #1036, #1330),
 * and traffic stops until every peer has seen the new lease. A MAC computed from the node's
 * identity is the same after any restart or reboot, with no state file to lose, so peers' entries
 * stay valid and a restart changes nothing on the wire.
 *
 * 46 hash bits remain after fixing the two flag bits: collisions in a cluster of thousands of
 * nodes are negligible (and a collision is detected and reported by the planner, not silent).
 */
export function deriveVtepMac(publicIp: string, vni: number): string {
  const canonical = parseIp(publicIp, 'VTEP public IP').text;
  const bytes = createHash('sha256').update(`${canonical}/${vni}`).digest().subarray(0, 6);
  // IEEE 802: bit 0x02 of the first octet = locally administered (never clashes with a vendor
  // OUI), bit 0x01 = group address, which a VTEP must never have (FDB entries are unicast).
  bytes[0] = (bytes[0]! & 0xfc) | 0x02;
  return formatMac(bytes);
}

/** True for a MAC a VTEP may have: not a group (multicast/broadcast) address and not all zero. */
export function isUnicastMac(bytes: Uint8Array): boolean {
  return bytes.length === 6 && (bytes[0]! & 0x01) === 0 && bytes.some((b) => b !== 0);
}

/** True when the MAC is locally administered (bit 0x02 of the first octet). */
export function isLocallyAdministered(bytes: Uint8Array): boolean {
  return bytes.length === 6 && (bytes[0]! & 0x02) !== 0;
}
