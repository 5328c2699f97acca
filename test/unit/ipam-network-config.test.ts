import { describe, expect, it } from 'vitest';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { hasIpv4, leasableSubnetCount, parseNetworkConfig, parseNetworkConfigText } from '../../src/ipam/network-config.js';
import { pickFreeIpv6Subnet, pickFreeSubnet, subnetFits } from '../../src/ipam/subnets.js';

const registry = registerBuiltins();
const parse = (raw: unknown) => parseNetworkConfig(raw, registry.parseOptions);
const alloc = { Type: 'alloc' };

describe('network config', () => {
  it('fills in flannel defaults: /24 subnets of a /16, skipping the first', () => {
    const cfg = parse({ Network: '10.244.0.0/16', Backend: alloc });
    expect(cfg).toEqual({
      network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0/24', subnetMax: '10.244.255.0/24',
      backend: { type: 'alloc', options: {} }, enableNFTables: false,
    });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(leasableSubnetCount(cfg)).toBe(255);
    // Networks smaller than /22 get subnets two bits longer.
    expect(parse({ Network: '10.5.0.0/23', Backend: alloc }).subnetLen).toBe(25);
  });

  it('matches keys case-insensitively, like flannel, and never modifies its input', () => {
    const raw = { network: '10.244.0.0/20', SUBNETLEN: 24, subnetmin: '10.244.0.0', backend: { type: 'alloc' } };
    const copy = structuredClone(raw);
    const cfg = parse(raw);
    expect(cfg).toMatchObject({ network: '10.244.0.0/20', subnetMin: '10.244.0.0/24', subnetMax: '10.244.15.0/24' });
    expect(leasableSubnetCount(cfg)).toBe(16);
    expect(raw).toEqual(copy);
  });

  it('defaults the backend to vxlan, as flannel\'s documentation does', () => {
    expect(parse({ Network: '10.244.0.0/16' }).backend.type).toBe('vxlan');
    expect(parse({ Network: '10.244.0.0/16', Backend: {} }).backend.type).toBe('vxlan');
  });

  it('names the field and the bad value for every kind of mistake', () => {
    const cases: [unknown, RegExp][] = [
      [{}, /Network undefined: is required/],
      [{ Network: 10 }, /Network 10: must be a string/],
      [{ Network: '10.244.1.0/16', Backend: alloc }, /Network "10.244.1.0\/16": host bits are set \(the network is 10.244.0.0\/16\)/],
      [{ Network: '10.244.0.0/29', Backend: alloc }, /Network "10.244.0.0\/29": must be a \/28 or larger/],
      [{ Network: 'fd00::/48', Backend: alloc }, /must be an IPv4 prefix/],
      [{ Network: '10.244.0.0/16', SubnetLen: 31, Backend: alloc }, /SubnetLen 31: must be an integer 17..30/],
      [{ Network: '10.244.0.0/16', SubnetLen: 16, Backend: alloc }, /SubnetLen 16: must be an integer 17..30/],
      [{ Network: '10.244.0.0/16', SubnetLen: '24', Backend: alloc }, /SubnetLen "24"/],
      [{ Network: '10.244.0.0/16', SubnetMin: '10.244.1.5', Backend: alloc }, /SubnetMin "10.244.1.5": is not on a \/24 subnet boundary/],
      [{ Network: '10.244.0.0/16', SubnetMax: '10.245.0.0', Backend: alloc }, /SubnetMax "10.245.0.0": is outside Network 10.244.0.0\/16/],
      [{ Network: '10.244.0.0/16', SubnetMin: '10.244.9.0', SubnetMax: '10.244.3.0', Backend: alloc }, /SubnetMin "10.244.9.0": is above SubnetMax 10.244.3.0/],
      [{ Network: '10.244.0.0/16', SubnetMin: 'ten', Backend: alloc }, /SubnetMin "ten": is not an IPv4 address/],
      [{ Network: '10.244.0.0/16', SubnetLenght: 24, Backend: alloc }, /key "SubnetLenght": is not a known field/],
      [{ Network: '10.244.0.0/16', network: '10.1.0.0/16', Backend: alloc }, /given twice/],
      [{ Network: '10.244.0.0/16', Backend: 'vxlan' }, /Backend "vxlan": must be an object/],
      [{ Network: '10.244.0.0/16', Backend: { Type: 'udp' } }, /Backend.Type "udp": is not a known backend/],
      [{ Network: '10.244.0.0/16', Backend: { Type: 'alloc', VNI: 1 } }, /alloc backend option "VNI": is not an option of the alloc backend \(it takes no options\)/],
      [{ Network: '10.244.0.0/16', EnableIPv6: true, Backend: alloc }, /IPv6Network undefined: is required when EnableIPv6 is true/],
      // Networks whose leases would steer the hosts' own traffic (issue 13 item 2).
      [{ Network: '0.0.0.0/0', Backend: alloc }, /Network "0.0.0.0\/0": is the default route/],
      [{ Network: '32.0.0.0/4', Backend: alloc }, /Network "32.0.0.0\/4": is shorter than \/8/],
      [{ Network: '127.0.0.0/8', Backend: alloc }, /Network "127.0.0.0\/8": overlaps the loopback range/],
      [{ Network: '127.1.0.0/16', Backend: alloc }, /overlaps the loopback range/],
      [{ Network: '224.0.0.0/4', Backend: alloc }, /Network "224.0.0.0\/4": overlaps the multicast range/],
      [{ Network: '239.1.0.0/16', Backend: alloc }, /overlaps the multicast range/],
      [{ Network: '169.254.0.0/16', Backend: alloc }, /overlaps the link-local range/],
      [{ Network: '0.0.0.0/8', Backend: alloc }, /overlaps the "this network" range/],
      [{ Network: '240.0.0.0/8', Backend: alloc }, /overlaps the reserved range 240.0.0.0\/4, with the broadcast address/],
      [[1, 2], /must be a JSON object/],
    ];
    for (const [raw, message] of cases) {
      expect(() => parse(raw), JSON.stringify(raw)).toThrow(InvalidArgumentError);
      expect(() => parse(raw), JSON.stringify(raw)).toThrow(message);
    }
  });

  it('reports malformed JSON text clearly', () => {
    expect(() => parseNetworkConfigText('{"Network": "10.244.0.0/16",', registry.parseOptions)).toThrow(/network config .* is not valid JSON/);
    expect(parseNetworkConfigText('{"Network":"10.244.0.0/16","Backend":{"Type":"alloc"}}', registry.parseOptions).network).toBe('10.244.0.0/16');
  });
});

describe('subnet carving', () => {
  const cfg = parse({ Network: '10.244.0.0/20', SubnetMin: '10.244.0.0', Backend: alloc });

  it('knows which subnets fit the config', () => {
    expect(subnetFits(cfg, '10.244.0.0/24')).toBe(true);
    expect(subnetFits(cfg, '10.244.15.0/24')).toBe(true);
    expect(subnetFits(cfg, '10.244.16.0/24')).toBe(false); // outside the /20
    expect(subnetFits(cfg, '10.244.3.0/25')).toBe(false); // wrong length
    expect(subnetFits(cfg, '10.244.3.1/24')).toBe(false); // not a network
    expect(subnetFits(cfg, 'garbage')).toBe(false);
    const narrowed = parse({ Network: '10.244.0.0/20', SubnetMin: '10.244.2.0', SubnetMax: '10.244.4.0', Backend: alloc });
    expect(subnetFits(narrowed, '10.244.1.0/24')).toBe(false);
    expect(subnetFits(narrowed, '10.244.5.0/24')).toBe(false);
  });

  it('picks at random among the free subnets and reports exhaustion', () => {
    const taken = new Set<string>();
    const got: string[] = [];
    for (let i = 0; i < 16; i++) {
      const s = pickFreeSubnet(cfg, taken)!;
      expect(subnetFits(cfg, s)).toBe(true);
      expect(taken.has(s)).toBe(false);
      taken.add(s);
      got.push(s);
    }
    expect(new Set(got).size).toBe(16);
    expect(pickFreeSubnet(cfg, taken)).toBeUndefined();
    expect(pickFreeSubnet(cfg, new Set(), () => 0)).toBe('10.244.0.0/24');
    expect(pickFreeSubnet(cfg, new Set(), () => 0.9999)).toBe('10.244.15.0/24');
  });

  it('only looks at the first 100 free subnets of a large range', () => {
    const big = parse({ Network: '10.0.0.0/8', Backend: alloc });
    expect(pickFreeSubnet(big, new Set(), () => 0.9999)).toBe('10.0.100.0/24');
  });
});

describe('dual-stack and IPv6-only network config (flannel pkg/subnet/config.go)', () => {
  const v6 = (extra: Record<string, unknown> = {}) => parse({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: alloc, ...extra });

  it('fills in flannel\'s IPv6 defaults: /64 subnets, skipping the first, up to the last', () => {
    const cfg = v6();
    expect(cfg).toEqual({
      network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0/24', subnetMax: '10.244.255.0/24',
      ipv6: { network: 'fc00::/48', subnetLen: 64, subnetMin: 'fc00:0:0:1::/64', subnetMax: 'fc00:0:0:ffff::/64' },
      backend: { type: 'alloc', options: {} }, enableNFTables: false,
    });
    expect(Object.isFrozen(cfg) && Object.isFrozen(cfg.ipv6)).toBe(true);
    expect(hasIpv4(cfg)).toBe(true);
    // Networks longer than /62 get subnets two bits longer; /124 is the smallest flannel takes.
    expect(v6({ IPv6Network: '2001:db8:0:1::/120' }).ipv6).toMatchObject({ subnetLen: 122, subnetMin: '2001:db8:0:1::40/122', subnetMax: '2001:db8:0:1::c0/122' });
    expect(v6({ IPv6Network: 'fd00::/124' }).ipv6).toMatchObject({ subnetLen: 126, subnetMin: 'fd00::4/126', subnetMax: 'fd00::c/126' });
    // Given bounds, in any spelling of the address, come back canonical.
    expect(v6({ IPv6SubnetLen: 56, IPv6SubnetMin: 'FC00:0:0:0100:0:0:0:0', IPv6SubnetMax: 'fc00:0:0:ff00::' }).ipv6)
      .toEqual({ network: 'fc00::/48', subnetLen: 56, subnetMin: 'fc00:0:0:100::/56', subnetMax: 'fc00:0:0:ff00::/56' });
  });

  it('parses an IPv6-only config, with no IPv4 part at all', () => {
    const cfg = parse({ EnableIPv4: false, EnableIPv6: true, IPv6Network: '2001:db8:42::/56', Backend: alloc });
    expect(cfg).toEqual({ ipv6: { network: '2001:db8:42::/56', subnetLen: 64, subnetMin: '2001:db8:42:1::/64', subnetMax: '2001:db8:42:ff::/64' }, backend: { type: 'alloc', options: {} }, enableNFTables: false });
    expect(hasIpv4(cfg)).toBe(false);
    expect(cfg.network).toBeUndefined();
    expect(leasableSubnetCount(cfg)).toBe(0);
  });

  it('ignores the fields of a disabled family, as flannel does, and matches keys case-insensitively', () => {
    expect(parse({ Network: '10.244.0.0/16', IPv6Network: 'junk', IPv6SubnetLen: 'x', Backend: alloc }).ipv6).toBeUndefined();
    expect(parse({ Network: '10.244.0.0/16', EnableIPv6: false, IPv6Network: 'fc00::/48', Backend: alloc }).ipv6).toBeUndefined();
    expect(hasIpv4(parse({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Network: 'junk', SubnetLen: 99, Backend: alloc }))).toBe(false);
    const raw = { network: '10.244.0.0/16', enableipv6: true, IPV6NETWORK: 'fc00::/48', ipv6subnetlen: 60, backend: { type: 'alloc' } };
    const copy = structuredClone(raw);
    expect(parse(raw).ipv6).toMatchObject({ network: 'fc00::/48', subnetLen: 60 });
    expect(raw).toEqual(copy);
  });

  it('names the IPv6 field and the bad value for every kind of mistake', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ IPv6Network: 7 }, /IPv6Network 7: must be a string such as "fc00::\/48"/],
      [{ IPv6Network: '10.0.0.0/8' }, /IPv6Network "10.0.0.0\/8": must be an IPv6 prefix/],
      [{ IPv6Network: 'fc00::' }, /IPv6Network "fc00::": missing "\/prefix-length"/],
      [{ IPv6Network: 'fc00::1/48' }, /IPv6Network "fc00::1\/48": host bits are set \(the network is fc00::\/48\)/],
      [{ IPv6Network: 'fc00::/125' }, /IPv6Network "fc00::\/125": must be a \/124 or larger/],
      [{ IPv6Network: '::/0' }, /IPv6Network "::\/0": is the default route ::\/0/],
      [{ IPv6Network: 'fe80::/64' }, /IPv6Network "fe80::\/64": overlaps the link-local range fe80::\/10/],
      [{ IPv6Network: 'ff00::/16' }, /overlaps the multicast range ff00::\/8/],
      [{ IPv6Network: '::/120' }, /overlaps the range ::\/96 of the unspecified, the loopback/],
      [{ IPv6Network: '::ffff:0:0/104' }, /overlaps the IPv4-mapped range ::ffff:0:0\/96/],
      [{ IPv6Network: 'fc00::/7' }, /IPv6Network "fc00::\/7": is shorter than \/8/],
      [{ IPv6SubnetLen: 49 }, /IPv6SubnetLen 49: must be an integer 50..126/],
      [{ IPv6SubnetLen: 127 }, /IPv6SubnetLen 127: must be an integer 50..126/],
      [{ IPv6SubnetLen: '64' }, /IPv6SubnetLen "64"/],
      [{ IPv6SubnetMin: 'fc00:0:0:1::5' }, /IPv6SubnetMin "fc00:0:0:1::5": is not on a \/64 subnet boundary/],
      [{ IPv6SubnetMax: 'fc00:1::' }, /IPv6SubnetMax "fc00:1::": is outside IPv6Network fc00::\/48/],
      [{ IPv6SubnetMin: '10.244.1.0' }, /IPv6SubnetMin "10.244.1.0": is not an IPv6 address/],
      [{ IPv6SubnetMin: 5 }, /IPv6SubnetMin 5: must be an IPv6 address string/],
      [{ IPv6SubnetMin: 'fc00:0:0:9::', IPv6SubnetMax: 'fc00:0:0:3::' }, /IPv6SubnetMin "fc00:0:0:9::": is above IPv6SubnetMax fc00:0:0:3::/],
      [{ EnableIPv6: 'yes' }, /EnableIPv6 "yes": must be true or false/],
      [{ EnableIPv4: false, EnableIPv6: false }, /EnableIPv4 false: and EnableIPv6 are both false/],
      [{ EnableIPv4: false, EnableIPv6: true, IPv6Network: undefined }, /IPv6Network undefined: is required when EnableIPv6 is true/],
    ];
    for (const [extra, message] of cases) {
      expect(() => v6(extra), JSON.stringify(extra)).toThrow(InvalidArgumentError);
      expect(() => v6(extra), JSON.stringify(extra)).toThrow(message);
    }
  });

  it('carves IPv6 subnets: which fit, and a random pick among the first 100 free', () => {
    const cfg = v6({ IPv6Network: 'fd00:0:0:ff00::/60', IPv6SubnetLen: 64, IPv6SubnetMin: 'fd00:0:0:ff00::' });
    expect(subnetFits(cfg, 'fd00:0:0:ff00::/64')).toBe(true);
    expect(subnetFits(cfg, 'fd00:0:0:ff0f::/64')).toBe(true);
    expect(subnetFits(cfg, 'fd00:0:0:ff10::/64')).toBe(false); // outside the /60
    expect(subnetFits(cfg, 'fd00:0:0:ff01::/65')).toBe(false); // wrong length
    expect(subnetFits(cfg, 'fd00:0:0:ff01::1/64')).toBe(false); // not a network
    expect(subnetFits(cfg, '10.244.1.0/24')).toBe(true); // IPv4 against the IPv4 part
    expect(subnetFits(parse({ Network: '10.244.0.0/16', Backend: alloc }), 'fd00:0:0:ff01::/64')).toBe(false); // no IPv6 part
    const taken = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const s = pickFreeIpv6Subnet(cfg, taken)!;
      expect(subnetFits(cfg, s) && !taken.has(s)).toBe(true);
      taken.add(s);
    }
    expect(pickFreeIpv6Subnet(cfg, taken)).toBeUndefined();
    expect(pickFreeIpv6Subnet(cfg, new Set(), () => 0.9999)).toBe('fd00:0:0:ff0f::/64');
    expect(pickFreeIpv6Subnet(v6(), new Set(), () => 0.9999)).toBe('fc00:0:0:64::/64'); // the 100th of 65535
    expect(pickFreeIpv6Subnet(parse({ Network: '10.244.0.0/16', Backend: alloc }), new Set())).toBeUndefined();
    const v6only = parse({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: alloc });
    expect(pickFreeSubnet(v6only, new Set())).toBeUndefined();
    expect(subnetFits(v6only, '10.244.1.0/24')).toBe(false);
  });
});
