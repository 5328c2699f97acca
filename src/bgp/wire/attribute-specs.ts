// What each recognised path attribute must look like and what a malformed one costs: the flag
// bits (RFC 4271 §5), the value checks (RFC 7606 §7) and the RFC 7606 approach per attribute.
import type { AsPathSegment, LargeCommunity, Origin, UnknownAttribute } from '../types.js';
import { formatIpv4 } from './address.js';
import { decodeAsPath } from './as-path.js';
import { AttrFlag, AttrType } from './constants.js';
import type { BgpMessageError, ErrorAction } from './errors.js';
import { decodeMpReach, decodeMpUnreach } from './mp.js';
import type { PackedMpReach, PackedMpUnreach } from './packed-update.js';
import { UpdateErrorSubcode as Sub } from './notification-codes.js';

/** The attributes of one UPDATE as they are read, before AS4 merging and RFC 7606 rewriting. */
export interface AttrState {
  readonly fourOctetAsn: boolean;
  origin?: Origin;
  asPath?: readonly AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  communities?: number[];
  largeCommunities?: LargeCommunity[];
  originatorId?: string;
  clusterList?: string[];
  unknown?: UnknownAttribute[];
  as4Path?: AsPathSegment[];
  as4Aggregator?: { asn: number; address: string };
  mpReach?: PackedMpReach;
  mpUnreach?: PackedMpUnreach;
  /** Attribute types present, well-formed or not (a malformed one is not also "missing"). */
  readonly seen: Uint8Array;
  readonly warnings: BgpMessageError[];
  /** Set by a treat-as-withdraw fault: the UPDATE's reachable NLRI become withdrawals. */
  withdraw: boolean;
}

/** Why an attribute is malformed; `action` overrides the attribute's usual one. */
export interface Fault {
  readonly subcode: number;
  readonly reason: string;
  readonly action?: ErrorAction;
}

export interface AttrSpec {
  readonly name: string;
  /** The Optional and Transitive bits the attribute must carry. */
  readonly flags: number;
  /** RFC 7606 §7 approach for a malformed value or wrong flags. */
  readonly onError: ErrorAction;
  /** Decode even when the flags are wrong, because the value holds NLRI to withdraw. */
  readonly decodeDespiteFlags?: boolean;
  /** Stores the value in `s`, or returns why it is malformed (storing nothing). */
  readonly decode: (v: Buffer, s: AttrState) => Fault | undefined;
}

const WELL_KNOWN = AttrFlag.TRANSITIVE;
const OPTIONAL_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
const OPTIONAL = AttrFlag.OPTIONAL;

const lengthFault = (name: string, len: number, want: string): Fault => ({ subcode: Sub.ATTRIBUTE_LENGTH_ERROR, reason: `${name} length ${len}, want ${want}` });

/** 4-octet words; the length must be a non-zero multiple of `unit` (RFC 7606 §7.8, §7.10; RFC 8092 §5). */
function words(v: Buffer, unit: number, name: string): number[] | Fault {
  if (v.length === 0 || v.length % unit !== 0) return lengthFault(name, v.length, `a non-zero multiple of ${unit}`);
  const out = new Array<number>(v.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = v.readUInt32BE(i * 4);
  return out;
}

function aggregator(v: Buffer, asnSize: number, name: string): { asn: number; address: string } | Fault {
  if (v.length !== asnSize + 4) return lengthFault(name, v.length, `${asnSize + 4}`);
  const asn = asnSize === 2 ? v.readUInt16BE(0) : v.readUInt32BE(0);
  if (asn === 0) return { subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR, reason: `${name} carries AS 0 (RFC 7607)` };
  return { asn, address: formatIpv4(v, asnSize) };
}

const isFault = (x: unknown): x is Fault => typeof x === 'object' && x !== null && 'reason' in x;

function mpSpec(name: string, decode: (v: Buffer, s: AttrState) => Fault | undefined): AttrSpec {
  return { name, flags: OPTIONAL, onError: 'treat-as-withdraw', decodeDespiteFlags: true, decode };
}

export const ATTR_SPECS: ReadonlyMap<number, AttrSpec> = new Map<number, AttrSpec>([
  [AttrType.ORIGIN, { name: 'ORIGIN', flags: WELL_KNOWN, onError: 'treat-as-withdraw', decode: (v, s) => {
    if (v.length !== 1) return lengthFault('ORIGIN', v.length, '1');
    if (v[0]! > 2) return { subcode: Sub.INVALID_ORIGIN_ATTRIBUTE, reason: `ORIGIN value ${v[0]!} is not 0..2` };
    s.origin = v[0] as Origin;
    return undefined;
  } }],
  [AttrType.AS_PATH, { name: 'AS_PATH', flags: WELL_KNOWN, onError: 'treat-as-withdraw', decode: (v, s) => {
    const path = decodeAsPath(v, s.fourOctetAsn ? 4 : 2, true);
    if (typeof path === 'string') return { subcode: Sub.MALFORMED_AS_PATH, reason: `AS_PATH: ${path}` };
    s.asPath = path;
    return undefined;
  } }],
  [AttrType.NEXT_HOP, { name: 'NEXT_HOP', flags: WELL_KNOWN, onError: 'treat-as-withdraw', decode: (v, s) => {
    if (v.length !== 4) return lengthFault('NEXT_HOP', v.length, '4');
    // RFC 4271 §6.3: a syntactically incorrect next hop; 0/8, multicast and class E cannot be hosts.
    if (v[0] === 0 || v[0]! >= 224) return { subcode: Sub.INVALID_NEXT_HOP_ATTRIBUTE, reason: `NEXT_HOP ${formatIpv4(v)} is not a unicast address` };
    s.nextHop = formatIpv4(v);
    return undefined;
  } }],
  [AttrType.MED, { name: 'MULTI_EXIT_DISC', flags: OPTIONAL, onError: 'treat-as-withdraw', decode: (v, s) => {
    if (v.length !== 4) return lengthFault('MULTI_EXIT_DISC', v.length, '4');
    s.med = v.readUInt32BE(0);
    return undefined;
  } }],
  [AttrType.LOCAL_PREF, { name: 'LOCAL_PREF', flags: WELL_KNOWN, onError: 'treat-as-withdraw', decode: (v, s) => {
    if (v.length !== 4) return lengthFault('LOCAL_PREF', v.length, '4');
    s.localPref = v.readUInt32BE(0);
    return undefined;
  } }],
  [AttrType.ATOMIC_AGGREGATE, { name: 'ATOMIC_AGGREGATE', flags: WELL_KNOWN, onError: 'attribute-discard', decode: (v, s) => {
    if (v.length !== 0) return lengthFault('ATOMIC_AGGREGATE', v.length, '0');
    s.atomicAggregate = true;
    return undefined;
  } }],
  [AttrType.AGGREGATOR, { name: 'AGGREGATOR', flags: OPTIONAL_TRANSITIVE, onError: 'attribute-discard', decode: (v, s) => {
    const agg = aggregator(v, s.fourOctetAsn ? 4 : 2, 'AGGREGATOR');
    if (isFault(agg)) return agg;
    s.aggregator = agg;
    return undefined;
  } }],
  [AttrType.COMMUNITIES, { name: 'COMMUNITIES', flags: OPTIONAL_TRANSITIVE, onError: 'treat-as-withdraw', decode: (v, s) => {
    const list = words(v, 4, 'COMMUNITIES');
    if (isFault(list)) return list;
    s.communities = list;
    return undefined;
  } }],
  [AttrType.ORIGINATOR_ID, { name: 'ORIGINATOR_ID', flags: OPTIONAL, onError: 'treat-as-withdraw', decode: (v, s) => {
    if (v.length !== 4) return lengthFault('ORIGINATOR_ID', v.length, '4');
    s.originatorId = formatIpv4(v);
    return undefined;
  } }],
  [AttrType.CLUSTER_LIST, { name: 'CLUSTER_LIST', flags: OPTIONAL, onError: 'treat-as-withdraw', decode: (v, s) => {
    const list = words(v, 4, 'CLUSTER_LIST');
    if (isFault(list)) return list;
    s.clusterList = list.map((_, i) => formatIpv4(v, i * 4));
    return undefined;
  } }],
  [AttrType.MP_REACH_NLRI, mpSpec('MP_REACH_NLRI', (v, s) => {
    const r = decodeMpReach(v);
    if ('unsupported' in r) return { subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR, reason: `MP_REACH_NLRI for ${r.unsupported}, not spoken here`, action: 'attribute-discard' };
    s.mpReach = r.ok;
    return r.nextHopFault !== undefined ? { subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR, reason: `MP_REACH_NLRI: ${r.nextHopFault}` } : undefined;
  })],
  [AttrType.MP_UNREACH_NLRI, mpSpec('MP_UNREACH_NLRI', (v, s) => {
    const r = decodeMpUnreach(v);
    if ('unsupported' in r) return { subcode: Sub.OPTIONAL_ATTRIBUTE_ERROR, reason: `MP_UNREACH_NLRI for ${r.unsupported}, not spoken here`, action: 'attribute-discard' };
    s.mpUnreach = r.ok;
    return undefined;
  })],
  [AttrType.AS4_PATH, { name: 'AS4_PATH', flags: OPTIONAL_TRANSITIVE, onError: 'attribute-discard', decode: (v, s) => {
    const path = decodeAsPath(v, 4, false);
    if (typeof path === 'string') return { subcode: Sub.MALFORMED_AS_PATH, reason: `AS4_PATH: ${path}` };
    s.as4Path = path;
    return undefined;
  } }],
  [AttrType.AS4_AGGREGATOR, { name: 'AS4_AGGREGATOR', flags: OPTIONAL_TRANSITIVE, onError: 'attribute-discard', decode: (v, s) => {
    const agg = aggregator(v, 4, 'AS4_AGGREGATOR');
    if (isFault(agg)) return agg;
    s.as4Aggregator = agg;
    return undefined;
  } }],
  [AttrType.LARGE_COMMUNITIES, { name: 'LARGE_COMMUNITIES', flags: OPTIONAL_TRANSITIVE, onError: 'treat-as-withdraw', decode: (v, s) => {
    const list = words(v, 12, 'LARGE_COMMUNITIES');
    if (isFault(list)) return list;
    const out: LargeCommunity[] = [];
    for (let i = 0; i < list.length; i += 3) out.push([list[i]!, list[i + 1]!, list[i + 2]!]);
    s.largeCommunities = out;
    return undefined;
  } }],
]);
