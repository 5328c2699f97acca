/** The start-up check of issue 13 item 2: a Network that contains this host's underlay is refused. */
import { describe, expect, it } from 'vitest';
import { underlayConflict } from '../../src/agent/underlay-check.js';
import type { Address, Route } from '../../src/netlink/index.js';

const addr = (cidr: string): Address => ({ index: 2, cidr, family: cidr.includes(':') ? 6 : 4, label: undefined });
const route = (dst: string, extra: Partial<Route> = {}): Route => ({
  family: 4, dst, gateway: undefined, oif: 2, table: 254, protocol: 2, scope: 253, type: 1, onlink: false, metric: undefined, prefsrc: undefined, nexthopId: undefined, ...extra,
});

describe('underlayConflict', () => {
  const addresses = [addr('198.18.0.1/24'), addr('fd00::1/64')];
  const routes = [route('198.18.0.0/24'), route('0.0.0.0/0', { gateway: '198.18.0.254', protocol: 4, scope: 0 })];

  it('accepts a Network apart from the underlay', () => {
    expect(underlayConflict('10.244.0.0/16', 'eth0', addresses, routes)).toBeUndefined();
  });

  it('refuses a Network containing an address of the external interface', () => {
    expect(underlayConflict('198.18.0.0/16', 'eth0', addresses, routes)).toBe(
      'the cluster network 198.18.0.0/16 contains 198.18.0.1/24, an address of the external interface eth0: change the network config\'s Network, or choose another --iface');
  });

  it('refuses a Network containing a route or a gateway of the external interface', () => {
    const more = [...routes, route('10.244.7.0/24', { gateway: '198.18.0.9', protocol: 4 })];
    expect(underlayConflict('10.244.0.0/16', 'eth0', addresses, more)).toMatch(/contains 10\.244\.7\.0\/24, a route of the external interface eth0/);
    const viaPod = [...routes, route('192.168.9.0/24', { gateway: '10.244.3.1', protocol: 4 })];
    expect(underlayConflict('10.244.0.0/16', 'eth0', addresses, viaPod)).toMatch(/contains 10\.244\.3\.1, the gateway of the route to 192\.168\.9\.0\/24/);
  });

  it('ignores Twill\'s own routes (host-gw puts pod routes on the external interface) and the default route', () => {
    const twill = [...routes, route('10.244.7.0/24', { gateway: '198.18.0.7', protocol: 84 })];
    expect(underlayConflict('10.244.0.0/16', 'eth0', addresses, twill)).toBeUndefined();
  });
});
