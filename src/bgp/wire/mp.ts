// MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760 §3, §4), IPv6 next hops per RFC 2545 §3.
import { InvalidArgumentError } from '../../core/errors.js';
import type { Family } from '../types.js';
import { parseIpv4Value } from '../../core/ip.js';
import { formatIpv4, formatIpv6, parseIpv6Into } from './address.js';
import { afiSafiOf, familyOf } from './constants.js';
import { updateError } from './errors.js';
import { UpdateErrorSubcode } from './notification-codes.js';
import type { PackedMpReach, PackedMpUnreach } from './packed-update.js';
import { readPrefixes, writePrefix, MAX_PREFIX_WIRE } from './prefix.js';
import type { ByteWriter } from './writer.js';

/** How an MP attribute decode ended when it did not throw a session reset. */
export type MpResult<T> =
  | { readonly ok: T; readonly nextHopFault?: string }
  | { readonly unsupported: string };

function mpError(what: string): never {
  // RFC 7606 §5.3/§7.11: when the AFI/SAFI or the NLRI cannot be located, the session resets.
  throw updateError(UpdateErrorSubcode.OPTIONAL_ATTRIBUTE_ERROR, `UPDATE: ${what} (RFC 4760)`);
}

/**
 * Decodes an MP_REACH_NLRI value. NLRI errors reset the session (readPrefixes throws); a next hop
 * of the wrong length is returned as `nextHopFault`, since the NLRI after it can still be read
 * and withdrawn (RFC 7606 §7.11 "treat-as-withdraw").
 */
export function decodeMpReach(v: Buffer): MpResult<PackedMpReach> {
  if (v.length < 5) mpError(`MP_REACH_NLRI of ${v.length} octets is too short`);
  const afi = v.readUInt16BE(0);
  const safi = v[2]!;
  const nhLen = v[3]!;
  if (5 + nhLen > v.length) mpError(`MP_REACH_NLRI next hop length ${nhLen} runs past the attribute`);
  const family = familyOf(afi, safi);
  if (family === undefined) return { unsupported: `AFI ${afi} SAFI ${safi}` };
  const nextHops = decodeNextHops(family, v, 4, nhLen);
  // Octet 4 + nhLen is Reserved (formerly the SNPA count, RFC 4760 §3): ignored.
  const nlri = readPrefixes(family, v, 5 + nhLen, v.length);
  const ok = { family, nextHops: nextHops ?? [], nlri };
  return nextHops ? { ok } : { ok, nextHopFault: `next hop length ${nhLen} is wrong for ${family}` };
}

function decodeNextHops(family: Family, v: Buffer, at: number, len: number): string[] | undefined {
  if (len === 4 && family === 'ipv4-unicast') return [formatIpv4(v, at)];
  if (len === 16) return [formatIpv6(v, at)];
  // A global address plus a link-local one (RFC 2545 §3).
  if (len === 32) return [formatIpv6(v, at), formatIpv6(v, at + 16)];
  return undefined;
}

/** Decodes an MP_UNREACH_NLRI value (AFI, SAFI, withdrawn routes). */
export function decodeMpUnreach(v: Buffer): MpResult<PackedMpUnreach> {
  if (v.length < 3) mpError(`MP_UNREACH_NLRI of ${v.length} octets is too short`);
  const afi = v.readUInt16BE(0);
  const family = familyOf(afi, v[2]!);
  if (family === undefined) return { unsupported: `AFI ${afi} SAFI ${v[2]!}` };
  const withdrawn = readPrefixes(family, v, 3, v.length);
  return { ok: { family, withdrawn } };
}

/** Encodes next hops: one IPv4 address, or one or two IPv6 addresses (global, link-local). */
export function encodeNextHops(family: Family, nextHops: readonly string[]): Buffer {
  const bad = (reason: string): never => {
    throw new InvalidArgumentError(`${family} next hops`, nextHops, reason);
  };
  if (nextHops.length < 1 || nextHops.length > 2) bad('need one next hop, or an IPv6 global and link-local pair');
  const out = Buffer.alloc(16 * nextHops.length);
  let v4 = 0;
  nextHops.forEach((nh, i) => {
    if (parseIpv6Into(nh, 0, nh.length, out, 16 * i)) return;
    const value = parseIpv4Value(nh, 0, nh.length);
    if (value < 0) bad(`${JSON.stringify(nh)} is not an IP address`);
    if (family !== 'ipv4-unicast' || nextHops.length !== 1) bad('an IPv4 next hop only goes alone with IPv4 NLRI');
    out.writeUInt32BE(value, 0);
    v4 = 4;
  });
  return v4 ? out.subarray(0, 4) : out;
}

/** Writes AFI, SAFI, next hop and Reserved: the part of MP_REACH_NLRI before its NLRI. */
export function writeMpReachHead(w: ByteWriter, family: Family, nextHop: Buffer): void {
  const [afi, safi] = afiSafiOf(family);
  w.u16(afi).u8(safi).u8(nextHop.length).bytes(nextHop).u8(0);
}

/** Writes a list of prefixes as NLRI. */
export function writeNlri(w: ByteWriter, family: Family, prefixes: readonly string[]): void {
  for (const p of prefixes) {
    w.ensure(MAX_PREFIX_WIRE);
    w.pos = writePrefix(family, p, w.buf, w.pos);
  }
}

export function writeMpUnreachHead(w: ByteWriter, family: Family): void {
  const [afi, safi] = afiSafiOf(family);
  w.u16(afi).u8(safi);
}
