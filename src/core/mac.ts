import { InvalidArgumentError } from './errors.js';

/** Parses "aa:bb:cc:dd:ee:ff" (also with "-") into 6 bytes; anything else names the bad value. */
function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

export function parseMac(text: string): Buffer {
  // Fast path for the canonical form "aa:bb:cc:dd:ee:ff" (every FDB and neighbour entry).
  if (typeof text === 'string' && text.length === 17) {
    const out = Buffer.allocUnsafe(6);
    let ok = true;
    for (let i = 0; i < 6 && ok; i++) {
      const hi = hexDigit(text.charCodeAt(i * 3));
      const lo = hexDigit(text.charCodeAt(i * 3 + 1));
      const sep = i < 5 ? text.charCodeAt(i * 3 + 2) : 58;
      ok = hi >= 0 && lo >= 0 && (sep === 58 || sep === 45);
      out[i] = (hi << 4) | lo;
    }
    if (ok) return out;
  }
  if (typeof text !== 'string' || !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2})*$/.test(text)) {
    throw new InvalidArgumentError('MAC address', text, 'expected six hex octets such as 02:42:ac:11:00:02');
  }
  const bytes = Buffer.from(text.split(/[:-]/).map((octet) => parseInt(octet, 16)));
  if (bytes.length !== 6) {
    throw new InvalidArgumentError('MAC address', text, `has ${bytes.length} octets, an Ethernet MAC has 6`);
  }
  return bytes;
}

const HEX2 = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function formatMac(bytes: Uint8Array): string {
  if (bytes.length === 6) return `${HEX2[bytes[0]!]!}:${HEX2[bytes[1]!]!}:${HEX2[bytes[2]!]!}:${HEX2[bytes[3]!]!}:${HEX2[bytes[4]!]!}:${HEX2[bytes[5]!]!}`;
  return Array.from(bytes, (b) => HEX2[b]!).join(':');
}
