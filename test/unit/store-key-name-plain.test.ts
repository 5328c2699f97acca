/**
 * parseSubnetKeyName reads the common key ("10.244.3.0-24") on a fast path of its own; for every
 * name, fast path or not, its answer must be the general reading's (parseAnySubnetKeyName, whose
 * cases store-codec.test.ts covers one by one).
 */
import { describe, expect, it } from 'vitest';
import { parseAnySubnetKeyName, parseSubnetKeyName } from '../../src/store/key-name.js';

const QUADS = ['10.244.3.0', '0.0.0.0', '255.255.255.255', '10.244.3.5', '10.244.3.128', '10.0.0.0', '192.168.0.0',
  '010.244.3.0', '10.244.03.0', '10.244.3', '10.244.3.0.0', '256.1.2.0', '1.2.3.4', 'a10.244.3.0', '10.244.3.0 ', ' 10.244.3.0', '10..3.0'];
const LENGTHS = ['0', '1', '8', '16', '23', '24', '25', '28', '31', '32', '33', '99', '024', '00', '', '-24', '2a', '123'];
const SUFFIXES = ['', '&fc00:0:0:3::-64', '&', '/x', '-', '&FC00::-64'];

describe('parseSubnetKeyName', () => {
  const names = QUADS.flatMap((q) => LENGTHS.flatMap((l) => SUFFIXES.map((s) => `${q}-${l}${s}`)));
  names.push('', '-', '1.2.3.4', '0.0.0.0-0', 'x', '10.244.3.0-24-24', '10.244.3.0--24', '10.244.3.0_24');

  it('answers every name as the general reading does', () => {
    for (const name of names) expect(parseSubnetKeyName(name), name).toEqual(parseAnySubnetKeyName(name));
  });

  it('takes a random canonical IPv4 key, and refuses it with host bits set', () => {
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < 5000; i++) {
      const length = next() % 32;
      const value = next() * 2 + (next() & 1);
      const network = length === 0 ? 0 : value - (value % 2 ** (32 - length));
      for (const address of [network, value]) {
        const quad = [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join('.');
        const name = `${quad}-${length}`;
        const parsed = parseSubnetKeyName(name);
        expect(parsed, name).toEqual(parseAnySubnetKeyName(name));
        if (address === network) expect(parsed, name).toEqual({ ok: true, subnet: `${quad}/${length}` });
      }
    }
  });
});
