import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { formatSubnetEnv, parseSubnetEnv, subnetEnvFromLease, SubnetEnvError, type SubnetEnv } from '../../src/core/subnet-env.js';

const TEXT = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const ENV: SubnetEnv = { network: '10.244.0.0/16', subnet: '10.244.3.1/24', mtu: 1450, ipMasq: true };

/** The SubnetEnvError `fn` throws (fails the test if it throws nothing or something else). */
function errorOf(fn: () => unknown): SubnetEnvError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SubnetEnvError);
    return err as SubnetEnvError;
  }
  throw new Error('expected a SubnetEnvError');
}

describe('subnet.env', () => {
  it('formats flannel\'s four variables in flannel\'s order', () => {
    expect(formatSubnetEnv(ENV)).toBe(TEXT);
    expect(formatSubnetEnv({ ...ENV, ipMasq: false })).toContain('FLANNEL_IPMASQ=false\n');
  });

  it('derives FLANNEL_SUBNET from a lease: first usable address, lease prefix length', () => {
    expect(subnetEnvFromLease('10.244.0.0/16', '10.244.3.0/24', 1450, true)).toEqual(ENV);
    expect(subnetEnvFromLease('10.0.0.0/8', '10.1.2.240/28', 1500, false).subnet).toBe('10.1.2.241/28');
    const dual = subnetEnvFromLease('10.244.0.0/16', '10.244.3.0/24', 1450, false, { network: 'fd00:10::/48', leaseSubnet: 'fd00:10:0:3::/64' });
    expect(dual).toMatchObject({ ipv6Network: 'fd00:10::/48', ipv6Subnet: 'fd00:10:0:3::1/64' });
    expect(() => subnetEnvFromLease('10.244.0.0/16', '10.244.3.5/24', 1450, true)).toThrow(InvalidArgumentError);
    expect(() => subnetEnvFromLease('10.244.0.0/16', '10.244.3.4/31', 1450, true)).toThrow(/lease subnet "10.244.3.4\/31": too small/);
    expect(errorOf(() => subnetEnvFromLease('10.244.0.0/16', '10.9.3.0/24', 1450, true)).variable).toBe('FLANNEL_SUBNET');
  });

  it('round-trips, IPv6 included', () => {
    expect(parseSubnetEnv(TEXT)).toEqual(ENV);
    const dual: SubnetEnv = { ...ENV, ipv6Network: 'fd00:10::/48', ipv6Subnet: 'fd00:10:0:3::1/64' };
    const text = formatSubnetEnv(dual);
    expect(text).toBe(`${TEXT.split('FLANNEL_MTU')[0]}FLANNEL_IPV6_NETWORK=fd00:10::/48\nFLANNEL_IPV6_SUBNET=fd00:10:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`);
    expect(parseSubnetEnv(text)).toEqual(dual);
    expect(Object.isFrozen(parseSubnetEnv(text))).toBe(true);
  });

  it("reads and writes a dual-stack flannel's subnet.env byte for byte (flannel pkg/subnet/subnet.go WriteSubnetFile)", () => {
    const flannel = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n';
    expect(formatSubnetEnv(parseSubnetEnv(flannel))).toBe(flannel);
    // The lease fc00:0:0:3::/64 gives flannel's IncrementIP'd address; a /126 keeps room for pods.
    expect(formatSubnetEnv(subnetEnvFromLease('10.244.0.0/16', '10.244.3.0/24', 1450, false, { network: 'fc00::/48', leaseSubnet: 'fc00:0:0:3::/64' }))).toBe(flannel);
    expect(subnetEnvFromLease('10.244.0.0/16', '10.244.3.0/24', 1450, false, { network: 'fd00::/120', leaseSubnet: 'fd00::4/126' }).ipv6Subnet).toBe('fd00::5/126');
    expect(() => subnetEnvFromLease('10.244.0.0/16', '10.244.3.0/24', 1450, false, { network: 'fd00::/120', leaseSubnet: 'fd00::4/127' })).toThrow(/too small/);
  });

  it('tolerates comments, blank lines, CRLF, export, quotes, other variables and canonicalises', () => {
    const text = [
      '# written by hand',
      '',
      'export FLANNEL_NETWORK=10.244.0.0/16',
      'OTHER=1\r',
      'FLANNEL_SUBNET="10.244.3.1/24"\r',
      '  FLANNEL_MTU = 1450  ',
      'FLANNEL_IPMASQ=false',
      'FLANNEL_IPMASQ=true',
      'FLANNEL_IPV6_NETWORK=',
      'not a variable',
    ].join('\n');
    expect(parseSubnetEnv(text)).toEqual(ENV);
    const v6 = parseSubnetEnv(`${TEXT}FLANNEL_IPV6_NETWORK=FD00:10:0::/48\nFLANNEL_IPV6_SUBNET=fd00:10:0:3:0::1/64\n`);
    expect(v6).toMatchObject({ ipv6Network: 'fd00:10::/48', ipv6Subnet: 'fd00:10:0:3::1/64' });
  });

  it('names the missing variable and the file', () => {
    for (const name of ['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'FLANNEL_MTU', 'FLANNEL_IPMASQ']) {
      const text = TEXT.split('\n').filter((l) => !l.startsWith(`${name}=`)).join('\n');
      const err = errorOf(() => parseSubnetEnv(text, '/run/twill/subnet.env'));
      expect(err.variable).toBe(name);
      expect(err.code).toBe('ESUBNET_ENV');
      expect(err.message).toBe(`/run/twill/subnet.env: ${name} is missing`);
    }
    expect(errorOf(() => parseSubnetEnv(`${TEXT}FLANNEL_IPV6_SUBNET=fd00::1/64\n`)).message).toMatch(/FLANNEL_IPV6_NETWORK is missing/);
    expect(errorOf(() => parseSubnetEnv(`${TEXT}FLANNEL_IPV6_NETWORK=fd00::/48\n`)).message).toMatch(/FLANNEL_IPV6_SUBNET is missing/);
  });

  it('names the invalid variable and its value', () => {
    const cases: [string, string, RegExp][] = [
      ['FLANNEL_NETWORK', '10.244.0.1/16', /invalid FLANNEL_NETWORK "10.244.0.1\/16": host bits are set/],
      ['FLANNEL_NETWORK', 'fd00::/48', /invalid FLANNEL_NETWORK "fd00::\/48": not an IPv4 prefix/],
      ['FLANNEL_NETWORK', 'ten', /invalid FLANNEL_NETWORK "ten"/],
      ['FLANNEL_SUBNET', '10.244.3.1', /invalid FLANNEL_SUBNET "10.244.3.1": missing "\/prefix-length"/],
      ['FLANNEL_SUBNET', '10.9.3.1/24', /invalid FLANNEL_SUBNET "10.9.3.1\/24": not inside FLANNEL_NETWORK 10.244.0.0\/16/],
      ['FLANNEL_SUBNET', '10.244.3.1/8', /not inside FLANNEL_NETWORK/],
      ['FLANNEL_MTU', 'big', /invalid FLANNEL_MTU "big": not an integer/],
      ['FLANNEL_MTU', '67', /invalid FLANNEL_MTU 67: must be an integer 68..65535/],
      ['FLANNEL_MTU', '70000', /invalid FLANNEL_MTU 70000/],
      ['FLANNEL_IPMASQ', 'yes', /invalid FLANNEL_IPMASQ "yes": must be true or false/],
    ];
    for (const [name, value, message] of cases) {
      const err = errorOf(() => parseSubnetEnv(`${TEXT}${name}=${value}\n`, 'f'));
      expect(err.variable).toBe(name);
      expect(err.message).toMatch(message);
      expect(err.message.startsWith('f: ')).toBe(true);
    }
  });

  it('refuses to format an invalid value', () => {
    expect(errorOf(() => formatSubnetEnv({ ...ENV, mtu: 1450.5 })).variable).toBe('FLANNEL_MTU');
    expect(errorOf(() => formatSubnetEnv({ ...ENV, network: '10.244.0.0' })).variable).toBe('FLANNEL_NETWORK');
    expect(errorOf(() => formatSubnetEnv({ ...ENV, ipv6Network: 'fd00::/48' })).variable).toBe('FLANNEL_IPV6_SUBNET');
  });
});
