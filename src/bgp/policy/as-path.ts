// AS_PATH arithmetic shared by import policy (loop detection), best-path selection (length,
// neighbour AS) and export policy (prepending).

import type { AsPathSegment } from '../types.js';

/** RFC 4271 §5.1.2: a segment holds at most 255 ASes (its length field is one octet). */
const MAX_SEGMENT_ASNS = 255;

/**
 * The path length best-path selection compares (RFC 4271 §9.1.2.2 a): each AS in an AS_SEQUENCE
 * counts 1, a whole AS_SET counts 1, and confederation segments count 0 (RFC 5065 §5.3).
 */
export function asPathLength(path: readonly AsPathSegment[]): number {
  let n = 0;
  for (const seg of path) {
    if (seg.type === 'sequence') n += seg.asns.length;
    else if (seg.type === 'set') n += 1;
  }
  return n;
}

/** True when `asn` appears anywhere in the path, sets and confederation segments included. */
export function asPathContains(path: readonly AsPathSegment[], asn: number): boolean {
  for (const seg of path) if (seg.asns.includes(asn)) return true;
  return false;
}

/**
 * The AS a route was received from, for MED comparison (RFC 4271 §9.1.2.2 c): the first AS of a
 * leading AS_SEQUENCE (after any confederation segments). A path that is empty or starts with an
 * AS_SET was originated or aggregated inside our AS, so its neighbour AS is `localAsn`.
 */
export function neighbourAs(path: readonly AsPathSegment[], localAsn: number): number {
  for (const seg of path) {
    if (seg.type === 'confed-sequence' || seg.type === 'confed-set') continue;
    return seg.type === 'sequence' && seg.asns.length > 0 ? seg.asns[0]! : localAsn;
  }
  return localAsn;
}

/**
 * The path to send an external peer (RFC 4271 §5.1.2 b): `asn` prepended to a leading
 * AS_SEQUENCE, or in a new AS_SEQUENCE when the path is empty, starts with an AS_SET or the first
 * sequence is full. Confederation segments are removed first: they never leave the
 * confederation (RFC 5065 §5.3). A new array; the input is not changed.
 */
export function prependAs(path: readonly AsPathSegment[], asn: number): AsPathSegment[] {
  const kept = path.filter((seg) => seg.type === 'sequence' || seg.type === 'set');
  const first = kept[0];
  if (first?.type === 'sequence' && first.asns.length < MAX_SEGMENT_ASNS) {
    return [{ type: 'sequence', asns: [asn, ...first.asns] }, ...kept.slice(1)];
  }
  return [{ type: 'sequence', asns: [asn] }, ...kept];
}

/** A compact, unambiguous text form of a path, for keys: "65001 65002 {65003,65004}". */
export function asPathKey(path: readonly AsPathSegment[]): string {
  let out = '';
  for (const seg of path) {
    const asns = seg.asns.join(',');
    out += seg.type === 'sequence' ? `s${asns};` : seg.type === 'set' ? `{${asns}};` : seg.type === 'confed-sequence' ? `cs${asns};` : `{c${asns}};`;
  }
  return out;
}
