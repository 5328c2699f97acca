import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSubnetState } from '../../src/cni/subnet-state.js';
import { formatSubnetEnv, hasIpv4, parseSubnetEnv, subnetEnvFromLease, SubnetEnvError } from '../../src/core/subnet-env.js';

const DUAL = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const V6_ONLY = 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

function errorOf(fn: () => unknown): SubnetEnvError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SubnetEnvError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('subnet.env, dual-stack and IPv6-only', () => {
  it('parses and formats a dual-stack file unchanged', () => {
    const env = parseSubnetEnv(DUAL);
    expect(env).toEqual({ network: '10.244.0.0/16', subnet: '10.244.3.1/24', ipv6Network: 'fc00::/48', ipv6Subnet: 'fc00:0:0:3::1/64', mtu: 1450, ipMasq: true });
    expect(formatSubnetEnv(env)).toBe(DUAL);
    expect(parseSubnetEnv(DUAL, 'f', { allowIpv6Only: true })).toEqual(env);
  });

  it('reads an IPv6-only file only when asked to, and writes it without the IPv4 variables', () => {
    expect(errorOf(() => parseSubnetEnv(V6_ONLY, '/run/twill/subnet.env')).message).toBe('/run/twill/subnet.env: FLANNEL_NETWORK is missing');
    const env = parseSubnetEnv(V6_ONLY, 'f', { allowIpv6Only: true });
    expect(env).toEqual({ ipv6Network: 'fc00::/48', ipv6Subnet: 'fc00:0:0:3::1/64', mtu: 1450, ipMasq: true });
    expect('network' in env).toBe(false);
    expect(hasIpv4(env)).toBe(false);
    expect(Object.isFrozen(env)).toBe(true);
    expect(formatSubnetEnv(env)).toBe(V6_ONLY);
    // Empty IPv4 variables count as absent, as empty IPv6 ones always did.
    expect(parseSubnetEnv(`FLANNEL_NETWORK=\nFLANNEL_SUBNET=\n${V6_ONLY}`, 'f', { allowIpv6Only: true })).toEqual(env);
  });

  it('still wants both IPv4 variables when one is there, and some family at all', () => {
    const opts = { allowIpv6Only: true } as const;
    expect(errorOf(() => parseSubnetEnv(`FLANNEL_NETWORK=10.244.0.0/16\n${V6_ONLY}`, 'f', opts)).variable).toBe('FLANNEL_SUBNET');
    expect(errorOf(() => parseSubnetEnv(`FLANNEL_SUBNET=10.244.3.1/24\n${V6_ONLY}`, 'f', opts)).variable).toBe('FLANNEL_NETWORK');
    expect(errorOf(() => parseSubnetEnv('FLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n', 'f', opts)).variable).toBe('FLANNEL_NETWORK');
    expect(errorOf(() => parseSubnetEnv('FLANNEL_IPV6_SUBNET=fc00:0:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n', 'f', opts)).variable).toBe('FLANNEL_IPV6_NETWORK');
    expect(errorOf(() => parseSubnetEnv(V6_ONLY.replace('fc00:0:0:3::1/64', 'fd00:0:0:3::1/64'), 'f', opts)).message).toMatch(/not inside FLANNEL_IPV6_NETWORK fc00::\/48/);
    expect(errorOf(() => formatSubnetEnv({ ipv6Network: 'fc00::/48', ipv6Subnet: 'fc00:0:0:3::1/64', mtu: 10, ipMasq: true })).variable).toBe('FLANNEL_MTU');
  });

  it('subnetEnvFromLease: IPv6-only with undefined IPv4, the lease first address as FLANNEL_IPV6_SUBNET', () => {
    const env = subnetEnvFromLease(undefined, undefined, 1450, true, { network: 'fc00::/48', leaseSubnet: 'fc00:0:0:3::/64' });
    expect(env).toEqual({ ipv6Network: 'fc00::/48', ipv6Subnet: 'fc00:0:0:3::1/64', mtu: 1450, ipMasq: true });
    expect(formatSubnetEnv(env)).toBe(V6_ONLY);
    const dual = subnetEnvFromLease('10.244.0.0/16', '10.244.3.0/24', 1450, true, { network: 'fc00::/48', leaseSubnet: 'fc00:0:0:3::/64' });
    expect(formatSubnetEnv(dual)).toBe(DUAL);
    expect(() => subnetEnvFromLease(undefined, undefined, 1450, true, undefined as never)).toThrow(/FLANNEL_NETWORK is missing/);
  });
});

describe('readSubnetState (the CNI plugin\'s view)', () => {
  const withFile = <T>(text: string, fn: (path: string) => T): T => {
    const dir = mkdtempSync(join(tmpdir(), 'twill-subnet-state-'));
    try {
      writeFileSync(join(dir, 'subnet.env'), text);
      return fn(join(dir, 'subnet.env'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('carries both families, IPv4 first', () => {
    const state = withFile(DUAL, readSubnetState);
    expect(state.ipv4).toEqual({ family: 4, network: '10.244.0.0/16', subnet: '10.244.3.0/24', gateway: '10.244.3.1', gatewayCidr: '10.244.3.1/24' });
    expect(state.ipv6).toEqual({ family: 6, network: 'fc00::/48', subnet: 'fc00:0:0:3::/64', gateway: 'fc00:0:0:3::1', gatewayCidr: 'fc00:0:0:3::1/64' });
    expect(state.families.map((f) => f.family)).toEqual([4, 6]);
    expect(state).toMatchObject({ mtu: 1450, agentMasquerades: true });
  });

  it('IPv6-only: no IPv4 part', () => {
    const state = withFile(V6_ONLY, readSubnetState);
    expect(state.ipv4).toBeUndefined();
    expect(state.ipv6?.gateway).toBe('fc00:0:0:3::1');
    expect(state.families.map((f) => f.family)).toEqual([6]);
  });

  it('IPv4-only: no IPv6 part', () => {
    const state = withFile('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n', readSubnetState);
    expect(state.ipv6).toBeUndefined();
    expect(state.families).toEqual([state.ipv4]);
  });
});
