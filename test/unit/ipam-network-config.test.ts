import { describe, expect, it } from 'vitest';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { leasableSubnetCount, parseNetworkConfig, parseNetworkConfigText } from '../../src/ipam/network-config.js';
import { pickFreeSubnet, subnetFits } from '../../src/ipam/subnets.js';

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
      [{ Network: '10.244.0.0/16', EnableIPv6: true, Backend: alloc }, /EnableIPv6 true: dual-stack is not supported yet/],
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
