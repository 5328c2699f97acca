import { InvalidArgumentError } from './errors.js';

/** Parses "aa:bb:cc:dd:ee:ff" (also with "-") into 6 bytes; anything else names the bad value. */
export function parseMac(text: string): Buffer {
  if (typeof text !== 'string' || !/^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2})*$/.test(text)) {
    throw new InvalidArgumentError('MAC address', text, 'expected six hex octets such as 02:42:ac:11:00:02');
  }
  const bytes = Buffer.from(text.split(/[:-]/).map((octet) => parseInt(octet, 16)));
  if (bytes.length !== 6) {
    throw new InvalidArgumentError('MAC address', text, `has ${bytes.length} octets, an Ethernet MAC has 6`);
  }
  return bytes;
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
