// Walks the Path Attributes field of an UPDATE (RFC 4271 §4.3) and applies RFC 7606: framing
// errors reset the session, a malformed attribute costs what its spec says, duplicates after the
// first are dropped (§3 g), unknown optional attributes are kept.
import { ATTR_FLAG_MEANING, AttrFlag, AttrType } from './constants.js';
import { ATTR_SPECS, type AttrSpec, type AttrState, type Fault } from './attribute-specs.js';
import { updateError } from './errors.js';
import { UpdateErrorSubcode as Sub } from './notification-codes.js';

const MP_TYPES: ReadonlySet<number> = new Set([AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI]);
const AS4_TYPES: ReadonlySet<number> = new Set([AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR]);

export function newAttrState(fourOctetAsn: boolean): AttrState {
  return { fourOctetAsn, seen: new Uint8Array(256), warnings: [], withdraw: false };
}

/** Reads the attributes in msg[start, end) into `s`. Throws BgpMessageError for a session reset. */
export function decodeAttributes(msg: Buffer, start: number, end: number, s: AttrState): void {
  const seen = s.seen;
  let p = start;
  while (p < end) {
    const flags = msg[p]!;
    const headerSize = flags & AttrFlag.EXTENDED_LENGTH ? 4 : 3;
    // RFC 4271 §6.3: an attribute whose header or value overruns the attribute field makes the
    // whole list unparseable, so the NLRI after it cannot be trusted either.
    if (end - p < headerSize) throw updateError(Sub.MALFORMED_ATTRIBUTE_LIST, `UPDATE: attribute header truncated at offset ${p}`);
    const type = msg[p + 1]!;
    const len = headerSize === 4 ? msg.readUInt16BE(p + 2) : msg[p + 2]!;
    const valueEnd = p + headerSize + len;
    if (valueEnd > end) throw updateError(Sub.MALFORMED_ATTRIBUTE_LIST, `UPDATE: attribute ${type} of ${len} octets overruns the attribute field`);
    const raw = msg.subarray(p, valueEnd);
    const value = msg.subarray(p + headerSize, valueEnd);
    p = valueEnd;
    if (seen[type]) {
      handleDuplicate(type, raw, s);
      continue;
    }
    seen[type] = 1;
    const spec = ATTR_SPECS.get(type);
    if (spec === undefined) keepUnknown(flags, type, raw, value, s);
    // RFC 6793 §6: AS4_PATH/AS4_AGGREGATOR between two 4-octet speakers are discarded.
    else if (!(s.fourOctetAsn && AS4_TYPES.has(type))) decodeKnown(spec, flags, raw, value, s);
  }
}

function handleDuplicate(type: number, raw: Buffer, s: AttrState): void {
  // RFC 7606 §3 g: a repeated MP_REACH/MP_UNREACH is fatal; any other repeat is dropped.
  if (MP_TYPES.has(type)) throw updateError(Sub.MALFORMED_ATTRIBUTE_LIST, `UPDATE: attribute ${type} appears twice (RFC 7606 §3 g)`, 'session-reset', raw);
  s.warnings.push(updateError(Sub.MALFORMED_ATTRIBUTE_LIST, `UPDATE: repeated attribute ${type} discarded (RFC 7606 §3 g)`, 'attribute-discard', raw));
}

function keepUnknown(flags: number, type: number, raw: Buffer, value: Buffer, s: AttrState): void {
  // RFC 4271 §6.3: a well-known attribute we do not recognise cannot be skipped.
  if (!(flags & AttrFlag.OPTIONAL)) throw updateError(Sub.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, `UPDATE: unrecognised well-known attribute ${type}`, 'session-reset', raw);
  // Only the meaningful flags are kept: Extended Length is framing and is set again on encode.
  (s.unknown ??= []).push({ flags: flags & ATTR_FLAG_MEANING, type, value: Buffer.from(value) });
}

function decodeKnown(spec: AttrSpec, flags: number, raw: Buffer, value: Buffer, s: AttrState): void {
  const want = spec.flags;
  const flagsOk = (flags & (AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE)) === want;
  let fault: Fault | undefined;
  if (!flagsOk) {
    // RFC 7606 §3 c: Optional/Transitive bits in conflict with the attribute's definition.
    fault = { subcode: Sub.ATTRIBUTE_FLAGS_ERROR, reason: `${spec.name} flags 0x${flags.toString(16)}, want optional=${(want & AttrFlag.OPTIONAL) !== 0} transitive=${(want & AttrFlag.TRANSITIVE) !== 0}` };
  }
  if (flagsOk || spec.decodeDespiteFlags) fault = spec.decode(value, s) ?? fault;
  if (fault === undefined) return;
  const action = fault.action ?? spec.onError;
  const err = updateError(fault.subcode, `UPDATE: ${fault.reason}`, action, raw);
  if (action === 'session-reset') throw err;
  s.warnings.push(err);
  if (action === 'treat-as-withdraw') s.withdraw = true;
}
