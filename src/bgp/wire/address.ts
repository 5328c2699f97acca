// IPv4/IPv6 address text <-> bytes without node:net, split or join: the decoder turns every NLRI
// into text and the encoder parses it back, so these run once per prefix on bulk tables. The
// dotted-quad parser is core's (parseIpv4Value), which lease syncs use too.
import { parseIpv4Value } from '../../core/ip.js';

/** "0." .. "255.": a dotted quad is three of these plus a bare octet, so no number formatting per prefix. */
export const OCTET_DOT: readonly string[] = Array.from({ length: 256 }, (_, i) => `${i}.`);
export const OCTET: readonly string[] = Array.from({ length: 256 }, (_, i) => `${i}`);

/** Formats the 4 bytes at `off` as a dotted quad. */
export function formatIpv4(b: Uint8Array, off = 0): string {
  return OCTET_DOT[b[off]!]! + OCTET_DOT[b[off + 1]!]! + OCTET_DOT[b[off + 2]!]! + OCTET[b[off + 3]!]!;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

const groupsScratch = new Uint16Array(8);

/**
 * Parses IPv6 text (RFC 4291 §2.2: hex groups, one "::", optional trailing dotted quad) in
 * text[start, end) and writes its 16 bytes to out[off..]. Returns false, writing nothing, when
 * the text is not an IPv6 address. Zone indices ("%eth0") are not addresses here.
 */
export function parseIpv6Into(text: string, start: number, end: number, out: Uint8Array, off: number): boolean {
  const g = groupsScratch;
  let n = 0;
  let gap = -1;
  let i = start;
  if (end - start < 2) return false;
  if (text.charCodeAt(i) === 58) {
    if (text.charCodeAt(i + 1) !== 58) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    const groupStart = i;
    let v = 0;
    let digits = 0;
    for (let h = hexValue(text.charCodeAt(i)); h >= 0 && i < end; h = hexValue(text.charCodeAt(i))) {
      v = v * 16 + h;
      i++;
      if (++digits > 4) return false;
    }
    if (i < end && text.charCodeAt(i) === 46) {
      // An embedded IPv4 address fills the last two groups (RFC 4291 §2.2 form 3).
      const v4 = parseIpv4Value(text, groupStart, end);
      if (v4 < 0 || n > 6) return false;
      g[n++] = v4 >>> 16;
      g[n++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (digits === 0 || n === 8) return false;
    g[n++] = v;
    if (i === end) break;
    if (text.charCodeAt(i++) !== 58 || i === end) return false;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    }
  }
  // "::" stands for at least one zero group; without it there must be exactly eight.
  if (gap < 0 ? n !== 8 : n > 7) return false;
  const zeros = 8 - n;
  const tailStart = gap < 0 ? n : gap;
  for (let k = 0, w = 0; k < 8; k++) {
    const v = k < tailStart ? g[k]! : k < tailStart + zeros ? 0 : g[k - zeros]!;
    out[off + w++] = v >> 8;
    out[off + w++] = v & 0xff;
  }
  return true;
}

/** Formats the 16 bytes at `off` in RFC 5952 form (lower case, no leading zeros, longest zero run as "::"). */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const g = groupsScratch;
  for (let i = 0; i < 8; i++) g[i] = (b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!;
  // RFC 5952 §4.2.2/§4.2.3: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  let runStart = -1;
  for (let i = 0; i < 8; i++) {
    if (g[i] !== 0) {
      runStart = -1;
      continue;
    }
    if (runStart < 0) runStart = i;
    if (i - runStart + 1 > bestLen) {
      bestStart = runStart;
      bestLen = i - runStart + 1;
    }
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s.length > 0 && i !== bestStart + bestLen) s += ':';
    s += g[i]!.toString(16);
  }
  return s;
}
