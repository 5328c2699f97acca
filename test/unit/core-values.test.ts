import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { validateIfname } from '../../src/core/ifname.js';
import { broadcastOf, formatCidr, formatIp, isNetworkAddress, networkOf, parseCidr, parseIp, parsePrefix, prefixContains } from '../../src/core/ip.js';
import { formatMac, parseMac } from '../../src/core/mac.js';

describe('IP addresses and prefixes', () => {
  it('parses IPv4 and IPv6 into bytes and canonical text', () => {
    expect(parseIp('10.244.1.7')).toMatchObject({ family: 4, text: '10.244.1.7', bytes: Buffer.from([10, 244, 1, 7]) });
    const v6 = parseIp('FD00:0:0:0:0:0:0:1');
    expect(v6.family).toBe(6);
    expect(v6.text).toBe('fd00::1');
    expect(v6.bytes.length).toBe(16);
    expect(parseIp('::ffff:198.18.0.1').text).toBe('::ffff:c612:1');
    expect(parseIp('::').text).toBe('::');
  });

  it('formats IPv6 per RFC 5952: longest zero run compressed, first on a tie, single zeros kept', () => {
    const bytes = (groups: number[]): Buffer => Buffer.from(groups.flatMap((g) => [g >> 8, g & 255]));
    expect(formatIp(bytes([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]))).toBe('2001:db8::1:0:0:1');
    expect(formatIp(bytes([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIp(bytes([0x2001, 0, 0, 1, 0, 0, 0, 1]))).toBe('2001:0:0:1::1');
    expect(() => formatIp(new Uint8Array(5))).toThrow(InvalidArgumentError);
  });

  it('rejects what is not an address, naming the value', () => {
    // Only canonical dotted quads: no leading zeros, empty octets, signs or spaces (as node:net's isIPv4).
    for (const bad of ['10.244.1', '10.244.1.256', '1.2.3.4.5', 'fe80::1%eth0', 'hello', '', '010.1.1.1', '10.01.1.1', '10..1.1', '.10.1.1',
      '10.1.1.', '1.2.3.-4', '+1.2.3.4', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.1000', '256.0.0.0']) {
      expect(() => parseIp(bad)).toThrow(InvalidArgumentError);
      expect(() => parseIp(bad)).toThrow(JSON.stringify(bad));
    }
  });

  it('accepts every canonical dotted quad edge', () => {
    for (const good of ['0.0.0.0', '255.255.255.255', '10.0.0.1', '1.20.199.250', '100.64.0.0']) {
      expect(parseIp(good)).toMatchObject({ family: 4, text: good, bytes: Buffer.from(good.split('.').map(Number)) });
    }
  });

  it('tells whether one prefix contains another, on and off byte boundaries', () => {
    const inside = (outer: string, inner: string): boolean => prefixContains(parseCidr(outer), parseCidr(inner));
    expect(inside('10.244.0.0/16', '10.244.9.0/24')).toBe(true);
    expect(inside('10.244.0.0/16', '10.245.9.0/24')).toBe(false);
    expect(inside('10.244.0.0/14', '10.247.255.0/24')).toBe(true);
    expect(inside('10.244.0.0/14', '10.248.0.0/24')).toBe(false);
    expect(inside('10.244.0.0/24', '10.244.0.0/16')).toBe(false);
    expect(inside('0.0.0.0/0', '198.18.0.1/32')).toBe(true);
    expect(inside('10.244.1.0/24', '10.244.1.0/24')).toBe(true);
    expect(inside('10.0.0.0/8', 'fd00::/64')).toBe(false);
    expect(inside('fd00::/63', 'fd00:0:0:1::/64')).toBe(true);
    expect(inside('fd00::/64', 'fd00:0:0:1::/64')).toBe(false);
  });

  it('parses CIDRs, finds networks and refuses host bits where a prefix is required', () => {
    const c = parseCidr('10.244.1.1/24');
    expect(formatCidr(c)).toBe('10.244.1.1/24');
    expect(networkOf(c).text).toBe('10.244.1.0');
    expect(isNetworkAddress(c)).toBe(false);
    expect(networkOf(parseCidr('10.244.255.255/20')).text).toBe('10.244.240.0');
    expect(networkOf(parseCidr('fd00:1:2:3::9/48')).text).toBe('fd00:1:2::');
    expect(formatIp(broadcastOf(parseCidr('10.244.1.7/24')))).toBe('10.244.1.255');
    expect(formatIp(broadcastOf(parseCidr('10.244.0.0/20')))).toBe('10.244.15.255');
    expect(formatIp(broadcastOf(parseCidr('0.0.0.0/0')))).toBe('255.255.255.255');
    expect(formatCidr(parsePrefix('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(() => parsePrefix('10.244.1.1/24')).toThrow(/host bits are set \(the network is 10.244.1.0\/24\)/);
    for (const bad of ['10.244.0.0', '10.244.0.0/33', '10.244.0.0/-1', '10.244.0.0/2x', 'fd00::/129', '10.244.0/16', '/16']) {
      expect(() => parseCidr(bad)).toThrow(InvalidArgumentError);
      expect(() => parseCidr(bad)).toThrow(JSON.stringify(bad));
    }
  });
});

describe('MAC addresses and interface names', () => {
  it('parses and formats MACs', () => {
    expect(parseMac('02:42:AC:11:00:02')).toEqual(Buffer.from([2, 0x42, 0xac, 0x11, 0, 2]));
    expect(parseMac('02-42-ac-11-00-02')).toEqual(parseMac('02:42:ac:11:00:02'));
    expect(formatMac(Buffer.from([2, 0x42, 0xac, 0x11, 0, 2]))).toBe('02:42:ac:11:00:02');
    expect(formatMac(Buffer.from([0xff, 0xa, 0, 0x10, 0x9f, 0xf0]))).toBe('ff:0a:00:10:9f:f0');
    expect(() => parseMac('02:42:ac:11:00')).toThrow(/"02:42:ac:11:00".*5 octets/);
    expect(() => parseMac('02:42:ac:11:00:02:03')).toThrow(/7 octets/);
    expect(() => parseMac('0242ac110002')).toThrow(InvalidArgumentError);
  });

  it('accepts interface names up to 15 bytes and rejects what the kernel rejects', () => {
    expect(validateIfname('twill.1')).toBe('twill.1');
    expect(validateIfname('a'.repeat(15))).toBe('a'.repeat(15));
    expect(() => validateIfname('a'.repeat(16))).toThrow(/16 bytes long, the kernel allows at most 15/);
    expect(() => validateIfname('éééééééé')).toThrow(/16 bytes/); // bytes, not characters
    for (const bad of ['', '.', '..', 'a/b', 'a b', 'a:b']) expect(() => validateIfname(bad)).toThrow(InvalidArgumentError);
  });
});

describe('sortPrefixes', () => {
  it('orders numerically, IPv4 before IPv6, shorter first, garbage last', async () => {
    const { sortPrefixes } = await import('../../src/core/ip.js');
    const input = ['10.244.10.0/24', 'junk', 'fd00::/64', '10.244.9.0/24', '10.244.9.0/25', '9.0.0.0/8'];
    expect(sortPrefixes(input, (s) => s)).toEqual(['9.0.0.0/8', '10.244.9.0/24', '10.244.9.0/25', '10.244.10.0/24', 'fd00::/64', 'junk']);
  });

  it('orders the forms it reads in one pass and those parseCidr reads by the same keys', async () => {
    const { sortPrefixes } = await import('../../src/core/ip.js');
    // "/024" and " /8"-like forms go through parseCidr; the rest through the one-pass reader.
    const input = ['255.255.255.255/32', '10.0.0.0/024', 'fd00::1/128', '10.0.0.0/8', '0.0.0.0/0', '10.0.0.0/023', '128.0.0.0/1',
      '10.0.0.0/33', '10.0.0.0/', '::/0', '10.0.0.0/7', '1.2.3.4/32', 'zz', '010.0.0.0/8', '9.255.255.255/32'];
    expect(sortPrefixes(input, (s) => s)).toEqual(['0.0.0.0/0', '1.2.3.4/32', '9.255.255.255/32', '10.0.0.0/7', '10.0.0.0/8', '10.0.0.0/023',
      '10.0.0.0/024', '128.0.0.0/1', '255.255.255.255/32', '::/0', 'fd00::1/128', '010.0.0.0/8', '10.0.0.0/', '10.0.0.0/33', 'zz']);
  });
});

describe('readPlainIpv4Prefix', () => {
  it('reads a canonical quad and length in one number, and refuses every other form', async () => {
    const { readPlainIpv4Prefix, plainIpv4Address, plainIpv4Length, plainIpv4IsNetwork } = await import('../../src/core/ip.js');
    const read = (text: string, sep?: '/' | '-'): [number, number, boolean] | undefined => {
      const p = readPlainIpv4Prefix(text, sep);
      return p < 0 ? undefined : [plainIpv4Address(p), plainIpv4Length(p), plainIpv4IsNetwork(p)];
    };
    expect(read('10.244.3.0/24')).toEqual([0x0af40300, 24, true]);
    expect(read('10.244.3.5/24')).toEqual([0x0af40305, 24, false]);
    expect(read('255.255.255.255/32')).toEqual([0xffffffff, 32, true]);
    expect(read('0.0.0.0/0')).toEqual([0, 0, true]);
    expect(read('1.0.0.0/0')).toEqual([0x01000000, 0, false]);
    expect(read('10.244.3.0-24', '-')).toEqual([0x0af40300, 24, true]);
    const { plainIpv4Contains } = await import('../../src/core/ip.js');
    const contains = (outer: string, inner: string): boolean => plainIpv4Contains(readPlainIpv4Prefix(outer), readPlainIpv4Prefix(inner));
    expect([contains('10.0.0.0/8', '10.255.0.0/16'), contains('10.0.0.0/8', '11.0.0.0/16'), contains('10.0.0.0/16', '10.0.0.0/8'),
      contains('0.0.0.0/0', '255.255.255.255/32'), contains('10.1.2.3/8', '10.9.0.0/16'), contains('10.0.0.4/32', '10.0.0.4/32')]).toEqual([true, false, false, true, true, true]);
    for (const bad of ['10.244.3.0/024', '10.244.3.0/33', '10.244.3.0/', '010.244.3.0/24', '10.244.3/24', '10.244.3.0/2a', ' 10.244.3.0/24', '10.244.3.0-24', 'fd00::/64', '10.244.3.0/24 ']) {
      expect(read(bad), bad).toBeUndefined();
    }
  });
});
