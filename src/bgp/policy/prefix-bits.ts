// Reading a prefix's text into integers, once, so that policy can compare numbers instead of
// strings. Import policy runs this for every received route (a full table is 10^5..10^6 of them),
// so it is a single pass over the characters with no split(), no regex and no allocation: the
// caller hands in a PrefixBits to fill (one per policy, reused for every route).

/**
 * A prefix as up to 128 bits in four unsigned 32-bit words, most significant first. IPv4 uses
 * `w0` only. Filled by {@link readPrefix}; a scratch value, never kept by reference.
 */
export class PrefixBits {
  v6 = false;
  length = 0;
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
}

/** The mask for word `index` (0..3) of a prefix `length` bits long. */
export function wordMask(length: number, index: number): number {
  const bits = length - 32 * index;
  if (bits <= 0) return 0;
  if (bits >= 32) return 0xffffffff;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** The word `index` of `bits`. */
export function word(bits: PrefixBits, index: number): number {
  return index === 0 ? bits.w0 : index === 1 ? bits.w1 : index === 2 ? bits.w2 : bits.w3;
}

/**
 * Fills `into` from "a.b.c.d/len" or an IPv6 "x:y::/len". Returns false (leaving `into`
 * undefined) for anything else: a missing length, a length beyond the family's maximum, host
 * bits set, an octet above 255 or with a leading zero. The codec hands us canonical text, so
 * these checks guard only against a caller's mistake; they cost a few comparisons.
 */
export function readPrefix(text: string, into: PrefixBits): boolean {
  return text.includes(':') ? readV6(text, into) : readV4(text, into);
}

function readLength(text: string, start: number, max: number): number {
  const n = text.length - start;
  if (n < 1 || n > 3) return -1;
  let len = 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    len = len * 10 + c;
  }
  // "/08" is not canonical.
  if (n > 1 && text.charCodeAt(start) === 48) return -1;
  return len <= max ? len : -1;
}

function readV4(text: string, into: PrefixBits): boolean {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 46 || code === 47) {
      // "." or "/" ends an octet.
      if (digits === 0 || octet > 255) return false;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      if (code === 47) break;
      if (++dots > 3) return false;
      continue;
    }
    const d = code - 48;
    if (d < 0 || d > 9 || (digits === 1 && octet === 0)) return false;
    octet = octet * 10 + d;
    if (++digits > 3) return false;
  }
  if (dots !== 3 || i >= text.length) return false;
  const length = readLength(text, i + 1, 32);
  if (length < 0) return false;
  const w0 = value >>> 0;
  if ((w0 & ~wordMask(length, 0)) !== 0) return false;
  into.v6 = false;
  into.length = length;
  into.w0 = w0;
  into.w1 = into.w2 = into.w3 = 0;
  return true;
}

// Scratch for the up to eight 16-bit groups of an IPv6 address (module-level: no allocation).
const groups = new Uint16Array(8);

function readV6(text: string, into: PrefixBits): boolean {
  const slash = text.indexOf('/');
  if (slash < 0) return false;
  const length = readLength(text, slash + 1, 128);
  if (length < 0) return false;
  let count = 0; // groups read
  let gap = -1; // index in `groups` where "::" stands
  let i = 0;
  if (text.charCodeAt(0) === 58) {
    // A leading ":" must be "::".
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < slash) {
    let group = 0;
    let digits = 0;
    for (let h = hexValue(text.charCodeAt(i)); i < slash && h >= 0; h = hexValue(text.charCodeAt(++i))) {
      if (++digits > 4) return false;
      group = (group << 4) | h;
    }
    if (digits === 0 || count === 8) return false;
    groups[count++] = group;
    if (i === slash) break;
    // Only ":" may follow a group (a dotted quad tail is not canonical and not accepted).
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    } else if (i === slash) {
      return false;
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  if (gap >= 0) {
    // Move the groups after "::" to the end and zero the gap.
    const tail = count - gap;
    for (let k = 0; k < tail; k++) groups[7 - k] = groups[count - 1 - k]!;
    for (let k = gap; k < 8 - tail; k++) groups[k] = 0;
  }
  into.v6 = true;
  into.length = length;
  into.w0 = ((groups[0]! << 16) | groups[1]!) >>> 0;
  into.w1 = ((groups[2]! << 16) | groups[3]!) >>> 0;
  into.w2 = ((groups[4]! << 16) | groups[5]!) >>> 0;
  into.w3 = ((groups[6]! << 16) | groups[7]!) >>> 0;
  for (let k = 0; k < 4; k++) if ((word(into, k) & ~wordMask(length, k)) !== 0) return false;
  return true;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}
