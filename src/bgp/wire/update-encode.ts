// One UPDATE from an UpdateMessage (RFC 4271 §4.3), and End-of-RIB (RFC 4724 §2).
import { InvalidArgumentError } from '../../core/errors.js';
import { MessageType, type Family, type UpdateMessage } from '../types.js';
import { AttrFlag, AttrType, HEADER_LENGTH, MAX_MESSAGE } from './constants.js';
import { writeAttributes } from './attributes-encode.js';
import type { CodecOptions } from './decode.js';
import { writeHeader } from './header.js';
import { encodeNextHops, writeMpReachHead, writeMpUnreachHead, writeNlri } from './mp.js';
import { ByteWriter } from './writer.js';

/** Encodes one UPDATE; throws InvalidArgumentError when it does not fit in 4096 octets. */
export function encodeUpdate(update: Omit<UpdateMessage, 'type'>, opts: CodecOptions): Buffer {
  const w = new ByteWriter(MAX_MESSAGE);
  w.pos = HEADER_LENGTH;
  const withdrawnAt = w.reserve16();
  writeNlri(w, 'ipv4-unicast', update.withdrawn);
  const withdrawnLength = w.pos - withdrawnAt - 2;
  const attrsAt = w.reserve16();
  // RFC 7606 §5.1: MP_REACH_NLRI and MP_UNREACH_NLRI first, so a receiver finds the prefixes to
  // withdraw even if a later attribute is malformed.
  const reach = update.mpReach;
  if (reach) {
    const nextHop = encodeNextHops(reach.family, reach.nextHops);
    w.attribute(AttrFlag.OPTIONAL, AttrType.MP_REACH_NLRI, (x) => {
      writeMpReachHead(x, reach.family, nextHop);
      writeNlri(x, reach.family, reach.nlri);
    });
  }
  const unreach = update.mpUnreach;
  if (unreach) {
    w.attribute(AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, (x) => {
      writeMpUnreachHead(x, unreach.family);
      writeNlri(x, unreach.family, unreach.withdrawn);
    });
  }
  if (update.attributes) writeAttributes(w, update.attributes, opts.fourOctetAsn, true);
  const attrLength = w.pos - attrsAt - 2;
  writeNlri(w, 'ipv4-unicast', update.nlri);
  if (w.pos > MAX_MESSAGE) throw new InvalidArgumentError('UPDATE', `${w.pos} octets`, `more than ${MAX_MESSAGE} octets; split it (encodeAnnouncements/encodeWithdrawals pack)`);
  w.patch16(withdrawnAt, withdrawnLength);
  w.patch16(attrsAt, attrLength);
  writeHeader(w.buf, MessageType.UPDATE, w.pos);
  return w.finish();
}

/**
 * End-of-RIB (RFC 4724 §2): for IPv4 unicast an UPDATE with nothing in it, for other families an
 * UPDATE holding only an MP_UNREACH_NLRI with the AFI/SAFI and no prefixes.
 */
export function encodeEndOfRib(family: Family): Buffer {
  if (family === 'ipv4-unicast') return encodeUpdate({ withdrawn: [], nlri: [] }, { fourOctetAsn: true });
  return encodeUpdate({ withdrawn: [], nlri: [], mpUnreach: { family, withdrawn: [] } }, { fourOctetAsn: true });
}

/** The family whose End-of-RIB this UPDATE is (RFC 4724 §2), or undefined. */
export function isEndOfRib(update: UpdateMessage): Family | undefined {
  if (update.withdrawn.length > 0 || update.nlri.length > 0 || update.attributes !== undefined || update.mpReach !== undefined) return undefined;
  if (update.mpUnreach === undefined) return 'ipv4-unicast';
  return update.mpUnreach.withdrawn.length === 0 ? update.mpUnreach.family : undefined;
}
