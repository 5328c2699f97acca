// UPDATE decoding (RFC 4271 §4.3, §6.3) with the RFC 7606 outcomes applied to the result.
import { concatLists, PrefixList } from '../prefix/prefix-list.js';
import type { PathAttributes, UpdateMessage } from '../types.js';
import { mergeAs4Path } from './as-path.js';
import { AS_TRANS, AttrType, HEADER_LENGTH } from './constants.js';
import type { AttrState } from './attribute-specs.js';
import { decodeAttributes, newAttrState } from './attributes-decode.js';
import { updateError, type BgpMessageError } from './errors.js';
import { UpdateErrorSubcode as Sub } from './notification-codes.js';
import { toUpdateMessage, type PackedMpUnreach, type PackedUpdate } from './packed-update.js';
import { readPrefixes } from './prefix.js';

export interface DecodedUpdate {
  readonly message: UpdateMessage;
  readonly warnings: readonly BgpMessageError[];
}

export interface DecodedPackedUpdate {
  readonly update: PackedUpdate;
  readonly warnings: readonly BgpMessageError[];
}

/** Decodes an UPDATE whose header checkHeader() accepted, with its prefixes as text. */
export function decodeUpdate(msg: Buffer, fourOctetAsn: boolean): DecodedUpdate {
  const { update, warnings } = decodePackedUpdate(msg, fourOctetAsn);
  return { message: toUpdateMessage(update), warnings };
}

/** Decodes an UPDATE whose header checkHeader() accepted (so it has at least 23 octets), its prefixes as numbers. */
export function decodePackedUpdate(msg: Buffer, fourOctetAsn: boolean): DecodedPackedUpdate {
  const withdrawnLength = msg.readUInt16BE(HEADER_LENGTH);
  const attrLengthAt = HEADER_LENGTH + 2 + withdrawnLength;
  // RFC 4271 §6.3: Withdrawn Routes Length + Total Attribute Length + 23 must fit the message.
  if (attrLengthAt + 2 > msg.length) throw updateError(Sub.MALFORMED_ATTRIBUTE_LIST, `UPDATE: withdrawn routes length ${withdrawnLength} overruns the message`);
  const attrLength = msg.readUInt16BE(attrLengthAt);
  const attrStart = attrLengthAt + 2;
  if (attrStart + attrLength > msg.length) throw updateError(Sub.MALFORMED_ATTRIBUTE_LIST, `UPDATE: total attribute length ${attrLength} overruns the message`);
  const withdrawn = readPrefixes('ipv4-unicast', msg, HEADER_LENGTH + 2, attrLengthAt);
  const s = newAttrState(fourOctetAsn);
  decodeAttributes(msg, attrStart, attrStart + attrLength, s);
  const nlri = readPrefixes('ipv4-unicast', msg, attrStart + attrLength, msg.length);
  return { update: finishUpdate(withdrawn, nlri, s), warnings: s.warnings };
}

function finishUpdate(withdrawn: PrefixList, nlri: PrefixList, s: AttrState): PackedUpdate {
  checkMandatory(nlri, s);
  if (s.withdraw) return treatAsWithdraw(withdrawn, nlri, s);
  const attributes = s.origin !== undefined && s.asPath !== undefined ? buildAttributes(s) : undefined;
  return {
    withdrawn,
    ...(attributes ? { attributes } : {}),
    nlri,
    ...(s.mpReach ? { mpReach: s.mpReach } : {}),
    ...(s.mpUnreach ? { mpUnreach: s.mpUnreach } : {}),
  };
}

/** RFC 7606 §3 d: a missing well-known mandatory attribute means treat-as-withdraw. */
function checkMandatory(nlri: PrefixList, s: AttrState): void {
  // Mandatory only for reachable NLRI: an UPDATE of withdrawals (or an End-of-RIB) carries none.
  if (nlri.count === 0 && s.mpReach === undefined) return;
  const missing: [number, string][] = [];
  // A malformed one was present: its own fault has already been recorded.
  if (!s.seen[AttrType.ORIGIN]) missing.push([AttrType.ORIGIN, 'ORIGIN']);
  if (!s.seen[AttrType.AS_PATH]) missing.push([AttrType.AS_PATH, 'AS_PATH']);
  // RFC 4760 §3: NEXT_HOP is needed only by the classic NLRI field; MP_REACH carries its own.
  if (!s.seen[AttrType.NEXT_HOP] && nlri.count > 0) missing.push([AttrType.NEXT_HOP, 'NEXT_HOP']);
  for (const [type, name] of missing) {
    s.warnings.push(updateError(Sub.MISSING_WELL_KNOWN_ATTRIBUTE, `UPDATE: missing well-known attribute ${name}`, 'treat-as-withdraw', Uint8Array.of(type)));
    s.withdraw = true;
  }
}

/**
 * RFC 7606 §2 treat-as-withdraw: every reachable prefix becomes a withdrawal and the attributes
 * go. IPv4 unicast prefixes (classic or MP) join the classic withdrawn field, IPv6 ones MP_UNREACH.
 */
function treatAsWithdraw(withdrawn: PrefixList, nlri: PrefixList, s: AttrState): PackedUpdate {
  const v4 = concatLists(withdrawn, nlri);
  let unreach: PackedMpUnreach | undefined = s.mpUnreach;
  if (unreach?.family === 'ipv4-unicast') {
    v4.append(unreach.withdrawn);
    unreach = undefined;
  }
  const reach = s.mpReach;
  if (reach?.family === 'ipv4-unicast') v4.append(reach.nlri);
  // An MP_REACH without prefixes adds nothing: turning it into an empty MP_UNREACH would read as End-of-RIB.
  else if (reach && reach.nlri.count > 0) unreach = { family: reach.family, withdrawn: unreach === undefined ? reach.nlri : concatLists(unreach.withdrawn, reach.nlri) };
  return { withdrawn: v4, nlri: new PrefixList('ipv4-unicast', 0), ...(unreach ? { mpUnreach: unreach } : {}) };
}

/** The decoded PathAttributes: AS4 information merged (2-octet sessions), absent fields left out. */
function buildAttributes(s: AttrState): PathAttributes {
  let { asPath, aggregator } = s;
  if (!s.fourOctetAsn) {
    let useAs4Path = true;
    if (aggregator && s.as4Aggregator) {
      // RFC 6793 §4.2.3: an AGGREGATOR by a 2-octet speaker (not AS_TRANS) makes AS4_PATH and
      // AS4_AGGREGATOR stale: both are ignored.
      if (aggregator.asn !== AS_TRANS) useAs4Path = false;
      else aggregator = s.as4Aggregator;
    }
    if (useAs4Path && s.as4Path && asPath) asPath = mergeAs4Path(asPath, s.as4Path);
  }
  const a: { -readonly [K in keyof PathAttributes]: PathAttributes[K] } = { origin: s.origin!, asPath: asPath! };
  if (s.nextHop !== undefined) a.nextHop = s.nextHop;
  if (s.med !== undefined) a.med = s.med;
  if (s.localPref !== undefined) a.localPref = s.localPref;
  if (s.atomicAggregate) a.atomicAggregate = true;
  if (aggregator) a.aggregator = aggregator;
  if (s.communities) a.communities = s.communities;
  if (s.largeCommunities) a.largeCommunities = s.largeCommunities;
  if (s.originatorId !== undefined) a.originatorId = s.originatorId;
  if (s.clusterList) a.clusterList = s.clusterList;
  // Sorted by type, the order the encoder writes them in (RFC 4271 §5), so a decoded UPDATE
  // re-encodes to one that decodes equal.
  if (s.unknown) a.unknown = s.unknown.sort((x, y) => x.type - y.type);
  return a;
}
