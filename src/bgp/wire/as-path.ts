// AS_PATH and AS4_PATH values (RFC 4271 §4.3 b, RFC 5065 §3 confederation segments, RFC 6793).
import { InvalidArgumentError } from '../../core/errors.js';
import type { AsPathSegment, AsPathSegmentType } from '../types.js';
import { AS_TRANS } from './constants.js';
import type { ByteWriter } from './writer.js';

const SEGMENT_TYPES: readonly (AsPathSegmentType | undefined)[] = [undefined, 'set', 'sequence', 'confed-sequence', 'confed-set'];
const SEGMENT_CODES: Readonly<Record<AsPathSegmentType, number>> = { set: 1, sequence: 2, 'confed-sequence': 3, 'confed-set': 4 };

function isConfed(t: AsPathSegmentType): boolean {
  return t === 'confed-sequence' || t === 'confed-set';
}

/**
 * Decodes an AS_PATH (2- or 4-octet ASNs) or AS4_PATH value. Returns the reason when malformed
 * (RFC 7606 §7.2: unknown segment type, zero-length segment, overrun or a lone trailing octet;
 * RFC 7607 §2: AS 0; RFC 6793 §6: confederation segments in AS4_PATH).
 */
export function decodeAsPath(v: Uint8Array, asnSize: 2 | 4, allowConfed: boolean): AsPathSegment[] | string {
  const segments: AsPathSegment[] = [];
  let p = 0;
  while (p < v.length) {
    if (v.length - p < 2) return 'a lone octet follows the last segment';
    const type = SEGMENT_TYPES[v[p]!];
    const count = v[p + 1]!;
    p += 2;
    if (type === undefined) return `segment type ${v[p - 2]!} is unknown`;
    if (!allowConfed && isConfed(type)) return 'confederation segment in AS4_PATH';
    if (count === 0) return 'segment of length 0';
    if (p + count * asnSize > v.length) return 'segment runs past the attribute';
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++, p += asnSize) {
      const asn = asnSize === 2 ? (v[p]! << 8) | v[p + 1]! : ((v[p]! << 24) | (v[p + 1]! << 16) | (v[p + 2]! << 8) | v[p + 3]!) >>> 0;
      if (asn === 0) return 'AS 0 in the path (RFC 7607)';
      asns[i] = asn;
    }
    segments.push({ type, asns });
  }
  return segments;
}

/**
 * Writes segments with `asnSize`-octet ASNs; 2-octet writing puts AS_TRANS for ASNs above 65535
 * (RFC 6793 §4.2.2). Segments longer than 255 ASNs are split, empty ones skipped (a zero-length
 * segment is malformed, RFC 7606 §7.2). `skipConfed` leaves out confederation segments (AS4_PATH).
 */
export function writeAsPath(w: ByteWriter, segments: readonly AsPathSegment[], asnSize: 2 | 4, skipConfed = false): void {
  for (const seg of segments) {
    if (skipConfed && isConfed(seg.type)) continue;
    const code = SEGMENT_CODES[seg.type];
    if (code === undefined) throw new InvalidArgumentError('AS_PATH segment type', seg.type, 'unknown');
    for (let i = 0; i < seg.asns.length; i += 255) {
      const chunk = seg.asns.slice(i, i + 255);
      w.u8(code).u8(chunk.length);
      for (const asn of chunk) {
        checkAsn(asn);
        if (asnSize === 4) w.u32(asn);
        else w.u16(asn > 0xffff ? AS_TRANS : asn);
      }
    }
  }
}

export function checkAsn(asn: number): void {
  if (!Number.isInteger(asn) || asn < 0 || asn > 0xffffffff) throw new InvalidArgumentError('AS number', asn, 'must be an integer 0..4294967295');
}

/** True when a 2-octet session needs AS4_PATH to carry this path (an ASN outside a confed segment above 65535). */
export function needsAs4Path(segments: readonly AsPathSegment[]): boolean {
  return segments.some((s) => !isConfed(s.type) && s.asns.some((a) => a > 0xffff));
}

/** RFC 6793 §4.2.3 path length: an AS_SET counts 1, confederation segments 0. */
function pathLength(segments: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of segments) {
    if (s.type === 'sequence') n += s.asns.length;
    else if (s.type === 'set') n += 1;
  }
  return n;
}

/**
 * Rebuilds the 4-octet path from AS_PATH and AS4_PATH (RFC 6793 §4.2.3): AS4_PATH is ignored when
 * it is longer than AS_PATH; otherwise the leading ASNs of AS_PATH that AS4_PATH lacks are put
 * before it. Leading confederation segments of AS_PATH are kept (AS4_PATH cannot carry them);
 * confederation segments further in are dropped, as they have no place in the merged path.
 */
export function mergeAs4Path(asPath: readonly AsPathSegment[], as4Path: readonly AsPathSegment[]): readonly AsPathSegment[] {
  const asLen = pathLength(asPath);
  const as4Len = pathLength(as4Path);
  if (asLen < as4Len) return asPath;
  let keep = asLen - as4Len;
  const merged: AsPathSegment[] = [];
  let leading = true;
  for (const seg of asPath) {
    if (isConfed(seg.type)) {
      if (leading) merged.push(seg);
      continue;
    }
    leading = false;
    if (keep === 0) break;
    if (seg.type === 'set') {
      merged.push(seg);
      keep -= 1;
    } else {
      const take = Math.min(keep, seg.asns.length);
      merged.push(take === seg.asns.length ? seg : { type: seg.type, asns: seg.asns.slice(0, take) });
      keep -= take;
    }
  }
  // A sequence cut short and the AS4_PATH sequence that continues it read best as one segment
  // (while that fits in a segment's 255 ASNs).
  const last = merged[merged.length - 1];
  const [first, ...rest] = as4Path;
  if (last?.type === 'sequence' && first?.type === 'sequence' && last.asns.length + first.asns.length <= 255) {
    merged[merged.length - 1] = { type: 'sequence', asns: [...last.asns, ...first.asns] };
    return merged.concat(rest);
  }
  return merged.concat(as4Path);
}
