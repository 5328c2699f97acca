// Path attribute encoding (RFC 4271 §4.3), in type order after the MP attributes the caller writes
// first (RFC 7606 §5.1). A 2-octet session gets AS_TRANS plus AS4_PATH/AS4_AGGREGATOR (RFC 6793 §4.2.2).
import { InvalidArgumentError } from '../../core/errors.js';
import type { PathAttributes } from '../types.js';
import { parseIpv4Value } from '../../core/ip.js';
import { checkAsn, needsAs4Path, writeAsPath } from './as-path.js';
import { AS_TRANS, ATTR_FLAG_MEANING, AttrFlag, AttrType } from './constants.js';
import type { ByteWriter } from './writer.js';

const WELL_KNOWN = AttrFlag.TRANSITIVE;
const OPTIONAL_TRANSITIVE = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
const OPTIONAL = AttrFlag.OPTIONAL;
const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(AttrType));

function ipv4Value(what: string, text: string): number {
  const v = parseIpv4Value(text, 0, text.length);
  if (v < 0) throw new InvalidArgumentError(what, text, 'not a dotted quad');
  return v;
}

function u32Value(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new InvalidArgumentError(what, v, 'must be an integer 0..4294967295');
  return v;
}

type Step = readonly [type: number, write: (w: ByteWriter) => void];

/**
 * Writes the attributes of `a` except MP_REACH/MP_UNREACH, in ascending type order (RFC 4271 §5),
 * unknown ones included. `withNextHop` is false for UPDATEs whose routes travel in MP_REACH,
 * which carries its own next hop (RFC 4760 §3).
 */
export function writeAttributes(w: ByteWriter, a: PathAttributes, fourOctetAsn: boolean, withNextHop: boolean): void {
  const steps = [...knownSteps(a, fourOctetAsn, withNextHop), ...(fourOctetAsn ? [] : as4Steps(a)), ...unknownSteps(a)];
  // Stable: the unknown ones (unique types once decoded) fall in between the known ones.
  steps.sort((x, y) => x[0] - y[0]);
  for (const [, write] of steps) write(w);
}

function knownSteps(a: PathAttributes, fourOctetAsn: boolean, withNextHop: boolean): Step[] {
  if (!Number.isInteger(a.origin) || a.origin < 0 || a.origin > 2) throw new InvalidArgumentError('ORIGIN', a.origin, 'must be 0, 1 or 2');
  const steps: Step[] = [
    [AttrType.ORIGIN, (w) => w.attribute(WELL_KNOWN, AttrType.ORIGIN, (x) => x.u8(a.origin))],
    [AttrType.AS_PATH, (w) => w.attribute(WELL_KNOWN, AttrType.AS_PATH, (x) => writeAsPath(x, a.asPath, fourOctetAsn ? 4 : 2))],
  ];
  const u32Attr = (type: number, flags: number, v: number): Step => [type, (w) => w.attribute(flags, type, (x) => x.u32(v))];
  if (withNextHop && a.nextHop !== undefined) steps.push(u32Attr(AttrType.NEXT_HOP, WELL_KNOWN, ipv4Value('NEXT_HOP', a.nextHop)));
  if (a.med !== undefined) steps.push(u32Attr(AttrType.MED, OPTIONAL, u32Value('MED', a.med)));
  if (a.localPref !== undefined) steps.push(u32Attr(AttrType.LOCAL_PREF, WELL_KNOWN, u32Value('LOCAL_PREF', a.localPref)));
  if (a.atomicAggregate) steps.push([AttrType.ATOMIC_AGGREGATE, (w) => w.attribute(WELL_KNOWN, AttrType.ATOMIC_AGGREGATE, () => undefined)]);
  const agg = a.aggregator;
  if (agg) {
    checkAsn(agg.asn);
    const address = ipv4Value('AGGREGATOR address', agg.address);
    const asn2 = agg.asn > 0xffff ? AS_TRANS : agg.asn;
    steps.push([AttrType.AGGREGATOR, (w) => w.attribute(OPTIONAL_TRANSITIVE, AttrType.AGGREGATOR, (x) => (fourOctetAsn ? x.u32(agg.asn) : x.u16(asn2)).u32(address))]);
  }
  if (a.communities?.length) steps.push(u32List(AttrType.COMMUNITIES, OPTIONAL_TRANSITIVE, a.communities.map((c) => u32Value('community', c))));
  if (a.originatorId !== undefined) steps.push(u32Attr(AttrType.ORIGINATOR_ID, OPTIONAL, ipv4Value('ORIGINATOR_ID', a.originatorId)));
  if (a.clusterList?.length) steps.push(u32List(AttrType.CLUSTER_LIST, OPTIONAL, a.clusterList.map((c) => ipv4Value('CLUSTER_LIST entry', c))));
  if (a.largeCommunities?.length) {
    steps.push(u32List(AttrType.LARGE_COMMUNITIES, OPTIONAL_TRANSITIVE, a.largeCommunities.flatMap((lc) => lc.map((n) => u32Value('large community', n)))));
  }
  return steps;
}

function u32List(type: number, flags: number, values: readonly number[]): Step {
  return [type, (w) => w.attribute(flags, type, (x) => values.forEach((v) => x.u32(v)))];
}

/** RFC 6793 §4.2.2: the real path and aggregator for 2-octet sessions, only when AS_TRANS stood in. */
function as4Steps(a: PathAttributes): Step[] {
  const steps: Step[] = [];
  if (needsAs4Path(a.asPath)) steps.push([AttrType.AS4_PATH, (w) => w.attribute(OPTIONAL_TRANSITIVE, AttrType.AS4_PATH, (x) => writeAsPath(x, a.asPath, 4, true))]);
  const agg = a.aggregator;
  if (agg && agg.asn > 0xffff) {
    const address = ipv4Value('AGGREGATOR address', agg.address);
    steps.push([AttrType.AS4_AGGREGATOR, (w) => w.attribute(OPTIONAL_TRANSITIVE, AttrType.AS4_AGGREGATOR, (x) => x.u32(agg.asn).u32(address))]);
  }
  return steps;
}

function unknownSteps(a: PathAttributes): Step[] {
  return (a.unknown ?? []).map((u): Step => {
    if (KNOWN_TYPES.has(u.type) || !Number.isInteger(u.type) || u.type < 0 || u.type > 255) {
      throw new InvalidArgumentError('unknown attribute type', u.type, 'is a type the codec encodes itself, or not 0..255');
    }
    return [u.type, (w) => w.attribute(u.flags & ATTR_FLAG_MEANING, u.type, (x) => x.bytes(u.value))];
  });
}
