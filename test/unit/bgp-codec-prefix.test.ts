/**
 * BGP codec prefixes and addresses: RFC 5952 IPv6 text (checked against src/core's formatter),
 * dotted quads by char codes, parsePrefix validation and canonicalisation.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { formatIp, parseIp } from '../../src/core/ip.js';
import { formatIpv4, formatIpv6, formatPrefix, parsePrefix } from '../../src/bgp/wire/index.js';

describe('IPv6 text (RFC 5952)', () => {
  it('compresses the longest zero run, the first on a tie, never a single group', () => {
    const cases: [string, string][] = [
      ['20010db8000000000000000000000001', '2001:db8::1'],
      ['20010db8000000010000000000000001', '2001:db8:0:1::1'], // longest run, not the first
      ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // tie: the first run
      ['20010db8000100010001000100010000', '2001:db8:1:1:1:1:1:0'], // one zero group stays
      ['00000000000000000000000000000000', '::'],
      ['00000000000000000000000000000001', '::1'],
      ['fe800000000000000000000000000000', 'fe80::'],
      ['20010DB8ABCD00120000000000000000'.toLowerCase(), '2001:db8:abcd:12::'],
    ];
    for (const [bytes, text] of cases) expect(formatIpv6(Buffer.from(bytes, 'hex'))).toBe(text);
  });

  it('agrees with src/core formatIp and parseIp on random addresses with many zero groups', () => {
    let seed = 12345;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16;
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.alloc(16);
      for (let g = 0; g < 8; g++) if (rnd() % 3 === 0) b.writeUInt16BE(rnd() % 4 === 0 ? rnd() & 0xf : rnd(), 2 * g);
      const text = formatIpv6(b);
      expect(text).toBe(formatIp(b));
      expect(parseIp(text).bytes).toEqual(b);
      expect(parsePrefix(`${text}/128`).bytes).toEqual(b);
    }
  });
});

describe('prefixes', () => {
  it('formats dotted quads from bytes', () => {
    expect(formatIpv4(Buffer.from([10, 244, 0, 255]))).toBe('10.244.0.255');
    expect(formatIpv4(Buffer.from([9, 9, 192, 168, 1, 1]), 2)).toBe('192.168.1.1');
  });

  it('parses and canonicalises IPv4 and IPv6 prefixes, clearing host bits', () => {
    expect(parsePrefix('10.244.1.7/24')).toEqual({ family: 'ipv4-unicast', bytes: Buffer.from([10, 244, 1, 0]), length: 24, text: '10.244.1.0/24' });
    expect(parsePrefix('0.0.0.0/0').text).toBe('0.0.0.0/0');
    expect(parsePrefix('255.255.255.255/32').text).toBe('255.255.255.255/32');
    expect(parsePrefix('FD00:0010:0244:0001:0000::1/64').text).toBe('fd00:10:244:1::/64');
    expect(parsePrefix('::ffff:10.1.2.3/120').text).toBe('::ffff:a01:200/120');
    expect(parsePrefix('2001:db8::/33').bytes).toEqual(Buffer.from('20010db8000000000000000000000000', 'hex'));
    expect(formatPrefix('ipv6-unicast', Buffer.from('fd00ffff', 'hex'), 20)).toBe('fd00:f000::/20');
  });

  it('rejects what is not a prefix with InvalidArgumentError', () => {
    const bad = [
      '10.0.0.0', '10.0.0.0/33', '10.0.0/8', '10.0.0.0.0/8', '256.0.0.0/8', '01.0.0.0/8', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/8x',
      'fd00::/129', 'fd00:::/64', '1::2::3/64', '1:2:3:4:5:6:7:8:9/64', '12345::/16', 'fe80::1%eth0/64', ':1/64', '1:/64', 'g::/16',
      '1:2:3:4:5:6:7:8::/64', '::1.2.3/96', '', '/8',
    ];
    for (const text of bad) expect(() => parsePrefix(text), text).toThrow(InvalidArgumentError);
    expect(parsePrefix('1:2:3:4:5:6:7::/128').text).toBe('1:2:3:4:5:6:7:0/128');
    expect(parsePrefix('::1.2.3.4/128').text).toBe('::102:304/128');
  });
});
