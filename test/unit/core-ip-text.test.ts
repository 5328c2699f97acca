import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isIpv4Text, isIpv6Text, parseIp } from '../../src/core/ip.js';
import { prng } from './bgp-prng.js';

// core/ip.ts reads address text itself rather than load node:net (a CNI call without the agent
// pays for every module it loads): these tests hold it to node:net's answers and to the WHATWG
// URL parser's canonical IPv6 text, on chosen cases and on seeded random ones.

/** RFC 5952 text as the URL parser writes an IPv6 host. */
function urlCanonical(text: string): string {
  return new URL(`http://[${text}]/`).hostname.slice(1, -1);
}

function expectAsNodeNet(text: string): void {
  expect({ text, v4: isIpv4Text(text), v6: isIpv6Text(text) }).toEqual({ text, v4: isIPv4(text), v6: isIPv6(text) && !text.includes('%') });
  if (isIpv6Text(text)) expect({ text, canonical: parseIp(text).text }).toEqual({ text, canonical: urlCanonical(text) });
}

const CHOSEN = [
  '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::',
  '::ffff:198.18.0.1', '::198.18.0.1', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:192.0.2.1', '1:2:3:4:5:6:7:192.0.2.1',
  '::1:2:3:4:5:192.0.2.1', '::1:2:3:4:5:6:192.0.2.1', '1::2:3:4:5:6:192.0.2.1', '::ffff:01.2.3.4', '::ffff:1.2.3',
  '::ffff:1.2.3.4.5', '::ffff:256.1.1.1', '::ffff:1.2.3.4:5', '1.2.3.4::', '::ffff:a.b.c.d', '::ffff:1234.1.1.1',
  ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '1:::2', '1::2::3', '12345::', 'fe80::1%eth0', '::ffff:.1.2.3', '::.',
  'FE80::ABCD', '2001:DB8:0:0:1:0:0:1', '0:0:0:0:0:0:0:0', '', ':', '1', '1.2.3.4', '01.2.3.4', '255.255.255.255',
  '256.0.0.0', '1.2.3', '1.2.3.4.', '.1.2.3.4', '1..2.3', ' 1.2.3.4', '1.2.3.4 ', 'g::1',
];

describe('address text as node:net reads it', () => {
  it.each(CHOSEN)('%j', (text) => expectAsNodeNet(text));

  it('agrees on 20,000 random texts made of address characters', () => {
    const next = prng(18).next;
    const alphabet = '0123456789abcdefABCDEF:::::....%';
    for (let k = 0; k < 20_000; k++) {
      let text = '';
      const length = Math.floor(next() * 24);
      for (let i = 0; i < length; i++) text += alphabet[Math.floor(next() * alphabet.length)];
      expectAsNodeNet(text);
    }
  });

  it('agrees on 20,000 random near-addresses (groups, one gap, a dotted quad, then a mutation)', () => {
    const rng = prng(4291);
    const next = rng.next;
    const pick = rng.pick;
    let accepted = 0;
    for (let k = 0; k < 20_000; k++) {
      const groups = Array.from({ length: Math.floor(next() * 9) }, () => Math.floor(next() * 0x10000).toString(16));
      if (next() < 0.3) groups.push(`${pick([0, 1, 10, 192, 255, 256, 1000])}.${pick([0, 2, 99, 255])}.${pick([0, 3])}.${pick([1, 255, 256])}`);
      if (next() < 0.6) groups.splice(Math.floor(next() * (groups.length + 1)), 0, '');
      let text = groups.join(':');
      if (text.startsWith(':') && !text.startsWith('::')) text = `:${text}`;
      if (text.endsWith(':') && !text.endsWith('::')) text = `${text}:`;
      if (next() < 0.2) {
        const at = Math.floor(next() * (text.length + 1));
        text = text.slice(0, at) + pick([':', '.', '0', 'f', '%', '']) + text.slice(at + (next() < 0.5 ? 1 : 0));
      }
      if (isIPv6(text)) accepted++;
      expectAsNodeNet(text);
    }
    // The generator must reach both answers often, or the comparison proves little.
    expect(accepted).toBeGreaterThan(4_000);
    expect(accepted).toBeLessThan(16_000);
  });
});
