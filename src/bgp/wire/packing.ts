// Bulk UPDATEs: as many prefixes per message as fit in 4096 octets (RFC 4271 §4.3), IPv4 in the
// classic fields, IPv6 in MP_REACH_NLRI/MP_UNREACH_NLRI (RFC 4760), MP attributes first (RFC 7606 §5.1).
import { InvalidArgumentError } from '../../core/errors.js';
import { MessageType, type Family, type PathAttributes, type Prefix } from '../types.js';
import { writeAttributes } from './attributes-encode.js';
import { AttrFlag, AttrType, HEADER_LENGTH, MAX_MESSAGE } from './constants.js';
import type { CodecOptions } from './decode.js';
import { writeHeader } from './header.js';
import { encodeNextHops, writeMpReachHead, writeMpUnreachHead } from './mp.js';
import { MAX_PREFIX_WIRE, writePrefix } from './prefix.js';
import { ByteWriter } from './writer.js';

/** Header, Withdrawn Routes Length and Total Path Attribute Length. */
const UPDATE_FIXED = HEADER_LENGTH + 4;
/** An MP attribute header with a 2-octet length: the most its header can take. */
const MP_HEADER_MAX = 4;
const NONE = Buffer.alloc(0);


/**
 * Announcements sharing `attributes`, as many prefixes per UPDATE as fit in 4096 octets. IPv4:
 * NEXT_HOP (nextHops[0], else attributes.nextHop) plus the classic NLRI field. IPv6: MP_REACH_NLRI
 * with 16 octets of next hop, or 32 with a link-local second one. Prefixes with host bits set are
 * sent canonicalised; text that is not a prefix of `family` throws InvalidArgumentError.
 */
export function encodeAnnouncements(family: Family, attributes: PathAttributes, nextHops: readonly string[], prefixes: readonly Prefix[], opts: CodecOptions): Buffer[] {
  if (prefixes.length === 0) return [];
  if (family === 'ipv4-unicast') {
    const nextHop = nextHops[0] ?? attributes.nextHop;
    if (nextHop === undefined || nextHops.length > 1) throw new InvalidArgumentError('IPv4 next hops', nextHops, 'need exactly one IPv4 next hop');
    const attrs = attributeBytes({ ...attributes, nextHop }, opts, true);
    return pack(family, prefixes, MAX_MESSAGE - UPDATE_FIXED - attrs.length, (nlri) => buildUpdate(NONE, [attrs], nlri));
  }
  const head = new ByteWriter(40);
  writeMpReachHead(head, family, encodeNextHops(family, nextHops));
  const mpHead = head.finish();
  const attrs = attributeBytes(attributes, opts, false);
  const room = MAX_MESSAGE - UPDATE_FIXED - attrs.length - MP_HEADER_MAX - mpHead.length;
  return pack(family, prefixes, room, (nlri) => buildUpdate(NONE, [...mpAttribute(AttrType.MP_REACH_NLRI, mpHead, nlri), attrs], NONE));
}

/** Withdrawals, as many per UPDATE as fit: IPv4 in the classic withdrawn field, IPv6 in MP_UNREACH_NLRI. */
export function encodeWithdrawals(family: Family, prefixes: readonly Prefix[]): Buffer[] {
  if (prefixes.length === 0) return [];
  if (family === 'ipv4-unicast') return pack(family, prefixes, MAX_MESSAGE - UPDATE_FIXED, (nlri) => buildUpdate(nlri, [], NONE));
  const head = new ByteWriter(3);
  writeMpUnreachHead(head, family);
  const mpHead = head.finish();
  const room = MAX_MESSAGE - UPDATE_FIXED - MP_HEADER_MAX - mpHead.length;
  return pack(family, prefixes, room, (nlri) => buildUpdate(NONE, mpAttribute(AttrType.MP_UNREACH_NLRI, mpHead, nlri), NONE));
}

function attributeBytes(attributes: PathAttributes, opts: CodecOptions, withNextHop: boolean): Buffer {
  const w = new ByteWriter(128);
  writeAttributes(w, attributes, opts.fourOctetAsn, withNextHop);
  return w.finish();
}

/**
 * Writes prefixes into one NLRI area of `room` octets after another, handing each full area to
 * `emit`. A prefix that overflows the area is moved to the start of the next one.
 */
function pack(family: Family, prefixes: readonly Prefix[], room: number, emit: (nlri: Buffer) => Buffer): Buffer[] {
  if (room < MAX_PREFIX_WIRE) throw new InvalidArgumentError('path attributes', `${MAX_MESSAGE - room} octets`, 'leave no room for NLRI in a 4096-octet UPDATE');
  const scratch = Buffer.allocUnsafe(room + MAX_PREFIX_WIRE);
  const out: Buffer[] = [];
  let pos = 0;
  for (const prefix of prefixes) {
    const next = writePrefix(family, prefix, scratch, pos);
    if (next <= room) {
      pos = next;
      continue;
    }
    out.push(emit(scratch.subarray(0, pos)));
    scratch.copyWithin(0, pos, next);
    pos = next - pos;
  }
  out.push(emit(scratch.subarray(0, pos)));
  return out;
}

/** An MP attribute as [header, head, nlri]; Extended Length only when the value needs it. */
function mpAttribute(type: number, head: Buffer, nlri: Buffer): Buffer[] {
  const len = head.length + nlri.length;
  const header = len > 255 ? Buffer.from([AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH, type, len >> 8, len & 0xff]) : Buffer.from([AttrFlag.OPTIONAL, type, len]);
  return [header, head, nlri];
}

function buildUpdate(withdrawn: Uint8Array, attrs: readonly Uint8Array[], nlri: Uint8Array): Buffer {
  let attrLength = 0;
  for (const a of attrs) attrLength += a.length;
  const total = UPDATE_FIXED + withdrawn.length + attrLength + nlri.length;
  const out = Buffer.allocUnsafe(total);
  writeHeader(out, MessageType.UPDATE, total);
  let p = out.writeUInt16BE(withdrawn.length, HEADER_LENGTH);
  out.set(withdrawn, p);
  p = out.writeUInt16BE(attrLength, p + withdrawn.length);
  for (const a of attrs) {
    out.set(a, p);
    p += a.length;
  }
  out.set(nlri, p);
  return out;
}
