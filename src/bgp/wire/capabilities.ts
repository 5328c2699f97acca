// Capabilities Advertisement (RFC 5492): the TLVs inside OPEN's capability parameters. Twill
// interprets the few it acts on and keeps every other one, well-formed or not, in `unknown`: an
// unknown or odd capability is never a reason to refuse a session (RFC 5492 §3).
import { InvalidArgumentError } from '../../core/errors.js';
import type { Capabilities, Family, GracefulRestartCapability } from '../types.js';
import { CapabilityCode, afiSafiOf, familyOf } from './constants.js';
import { BgpMessageError } from './errors.js';
import { NotificationCode, OpenErrorSubcode, UNSPECIFIC_SUBCODE } from './notification-codes.js';

interface CapabilitiesBuilder {
  multiprotocol: Family[];
  fourOctetAsn?: number;
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  gracefulRestart?: GracefulRestartCapability;
  unknown: { code: number; value: Buffer }[];
}

export function newCapabilities(): CapabilitiesBuilder {
  return { multiprotocol: [], routeRefresh: false, enhancedRouteRefresh: false, unknown: [] };
}

/** Reads the capability TLVs in buf[start, end) into `caps`. A TLV overrunning its parameter is 2/0. */
export function decodeCapabilities(buf: Buffer, start: number, end: number, caps: CapabilitiesBuilder): void {
  let p = start;
  while (p < end) {
    if (end - p < 2 || p + 2 + buf[p + 1]! > end) {
      throw new BgpMessageError(NotificationCode.OPEN_MESSAGE_ERROR, UNSPECIFIC_SUBCODE, 'OPEN: capability runs past its parameter (RFC 5492 §4)');
    }
    const code = buf[p]!;
    const value = buf.subarray(p + 2, p + 2 + buf[p + 1]!);
    p += 2 + value.length;
    if (!decodeKnown(code, value, caps)) caps.unknown.push({ code, value: Buffer.from(value) });
  }
}

/** Applies a capability Twill interprets; false when it is not one, or is malformed (then kept as unknown). */
function decodeKnown(code: number, v: Buffer, caps: CapabilitiesBuilder): boolean {
  switch (code) {
    case CapabilityCode.MULTIPROTOCOL: {
      // RFC 4760 §8: AFI (2), reserved (1), SAFI (1).
      const family = v.length === 4 ? familyOf(v.readUInt16BE(0), v[3]!) : undefined;
      if (family === undefined) return false;
      if (!caps.multiprotocol.includes(family)) caps.multiprotocol.push(family);
      return true;
    }
    case CapabilityCode.ROUTE_REFRESH:
      if (v.length !== 0) return false;
      caps.routeRefresh = true;
      return true;
    case CapabilityCode.ENHANCED_ROUTE_REFRESH:
      if (v.length !== 0) return false;
      caps.enhancedRouteRefresh = true;
      return true;
    case CapabilityCode.FOUR_OCTET_AS:
      if (v.length !== 4) return false;
      // RFC 7607 §2: AS 0 in the capability is a Bad Peer AS.
      if (v.readUInt32BE(0) === 0) throw new BgpMessageError(NotificationCode.OPEN_MESSAGE_ERROR, OpenErrorSubcode.BAD_PEER_AS, 'OPEN: 4-octet AS capability carries AS 0 (RFC 7607 §2)');
      caps.fourOctetAsn ??= v.readUInt32BE(0);
      return true;
    case CapabilityCode.GRACEFUL_RESTART:
      if (v.length < 2 || (v.length - 2) % 4 !== 0) return false;
      caps.gracefulRestart ??= decodeGracefulRestart(v);
      return true;
    default:
      return false;
  }
}

/** RFC 4724 §3: Restart Flags (4 bits) + Restart Time (12 bits), then AFI, SAFI, Flags per family. */
function decodeGracefulRestart(v: Buffer): GracefulRestartCapability {
  const families: { family: Family; forwardingPreserved: boolean }[] = [];
  for (let p = 2; p < v.length; p += 4) {
    const family = familyOf(v.readUInt16BE(p), v[p + 2]!);
    // A family Twill does not speak cannot be restarted with it: leave it out.
    if (family !== undefined) families.push({ family, forwardingPreserved: (v[p + 3]! & 0x80) !== 0 });
  }
  return { restarting: (v[0]! & 0x80) !== 0, restartTime: v.readUInt16BE(0) & 0x0fff, families };
}

/** The decoded capabilities, without keys for absent optional ones (so deepEqual works). */
export function finishCapabilities(b: CapabilitiesBuilder): Capabilities {
  return {
    multiprotocol: b.multiprotocol,
    ...(b.fourOctetAsn !== undefined ? { fourOctetAsn: b.fourOctetAsn } : {}),
    routeRefresh: b.routeRefresh,
    enhancedRouteRefresh: b.enhancedRouteRefresh,
    ...(b.gracefulRestart !== undefined ? { gracefulRestart: b.gracefulRestart } : {}),
    unknown: b.unknown,
  };
}

function tlv(code: number, value: Uint8Array): Buffer {
  if (value.length > 255) throw new InvalidArgumentError('capability value', code, `${value.length} octets is more than 255`);
  const out = Buffer.allocUnsafe(2 + value.length);
  out[0] = code;
  out[1] = value.length;
  out.set(value, 2);
  return out;
}

function afiSafiBytes(family: Family, last: number): Buffer {
  const [afi, safi] = afiSafiOf(family);
  return Buffer.from([afi >> 8, afi & 0xff, safi, last]);
}

/** The capability TLVs for `caps`, in code order, unknown ones last in their given order. */
export function encodeCapabilities(caps: Capabilities): Buffer[] {
  const out: Buffer[] = [];
  for (const family of caps.multiprotocol) {
    const [afi, safi] = afiSafiOf(family);
    out.push(tlv(CapabilityCode.MULTIPROTOCOL, Buffer.from([afi >> 8, afi & 0xff, 0, safi])));
  }
  if (caps.routeRefresh) out.push(tlv(CapabilityCode.ROUTE_REFRESH, Buffer.alloc(0)));
  const gr = caps.gracefulRestart;
  if (gr) {
    if (!Number.isInteger(gr.restartTime) || gr.restartTime < 0 || gr.restartTime > 4095) {
      throw new InvalidArgumentError('graceful restart time', gr.restartTime, 'must be an integer 0..4095 (RFC 4724 §3)');
    }
    const head = Buffer.from([(gr.restarting ? 0x80 : 0) | (gr.restartTime >> 8), gr.restartTime & 0xff]);
    const fams = gr.families.map((f) => afiSafiBytes(f.family, f.forwardingPreserved ? 0x80 : 0));
    out.push(tlv(CapabilityCode.GRACEFUL_RESTART, Buffer.concat([head, ...fams])));
  }
  if (caps.fourOctetAsn !== undefined) {
    const asn = caps.fourOctetAsn;
    if (!Number.isInteger(asn) || asn < 1 || asn > 0xffffffff) throw new InvalidArgumentError('4-octet AS', asn, 'must be an integer 1..4294967295');
    const v = Buffer.allocUnsafe(4);
    v.writeUInt32BE(asn);
    out.push(tlv(CapabilityCode.FOUR_OCTET_AS, v));
  }
  if (caps.enhancedRouteRefresh) out.push(tlv(CapabilityCode.ENHANCED_ROUTE_REFRESH, Buffer.alloc(0)));
  for (const u of caps.unknown) out.push(tlv(u.code, u.value));
  return out;
}
