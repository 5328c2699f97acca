import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readConfig } from '../../src/cni/config.js';
import { CniError } from '../../src/cni/spec/errors.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { allocationIps, PodIpam, type PodIpamOptions } from '../../src/ipam/pod-ipam.js';
import { expectIpamError } from '../helpers/ipam.js';

const NET = 'twill-test';
const V6 = 'fc00:0:0:3::/64';

describe('PodIpam, dual-stack and IPv6-only', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'twill-pod-ipam6-'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const make = (opts: Partial<PodIpamOptions> = {}) => new PodIpam({ dataDir: root, network: NET, subnet: '10.244.3.0/24', ipv6Subnet: V6, ...opts });
  const netDir = () => join(root, NET);
  const files = (pred: (n: string) => boolean) => (existsSync(netDir()) ? readdirSync(netDir()).filter(pred).sort() : []);
  const v4Files = () => files((n) => isIPv4(n));
  const v6Files = () => files((n) => isIPv6(n));
  const attachments = () => (existsSync(join(netDir(), 'attachments')) ? readdirSync(join(netDir(), 'attachments')) : []);

  it('gives one address of each family, IPv4 first, skipping the network address and the gateway ::1', () => {
    const ipam = make();
    expect(ipam).toMatchObject({ subnet: '10.244.3.0/24', gateway: '10.244.3.1', ipv6Subnet: V6, ipv6Gateway: 'fc00:0:0:3::1' });
    const a = ipam.allocate({ containerId: 'a', ifname: 'eth0', netns: '/proc/1/ns/net' });
    expect(a).toEqual({
      address: '10.244.3.2', cidr: '10.244.3.2/24', gateway: '10.244.3.1', attempt: expect.any(String),
      more: [{ family: 6, address: 'fc00:0:0:3::2', cidr: 'fc00:0:0:3::2/64', gateway: 'fc00:0:0:3::1' }],
    });
    expect(allocationIps(a).map((ip) => [ip.family, ip.cidr])).toEqual([[4, '10.244.3.2/24'], [6, 'fc00:0:0:3::2/64']]);
    expect(ipam.get('a', 'eth0')?.ips).toEqual(['10.244.3.2/24', 'fc00:0:0:3::2/64']);
    const seq = ['b', 'c', 'd'].map((id) => ipam.allocate({ containerId: id, ifname: 'eth0' }).more![0]!.address);
    expect(seq).toEqual(['fc00:0:0:3::3', 'fc00:0:0:3::4', 'fc00:0:0:3::5']);
    expect(readFileSync(join(netDir(), 'fc00:0:0:3::5'), 'utf8')).toBe('d\r\neth0');
    expect(readFileSync(join(netDir(), 'last_reserved_ip.1'), 'utf8')).toBe('fc00:0:0:3::5');
    expect(readFileSync(join(netDir(), 'last_reserved_ip.0'), 'utf8')).toBe('10.244.3.5');
    expect(ipam.holds('a', 'eth0', 'fc00:0:0:3::2/64')).toBe(true);
    expect(ipam.holds('b', 'eth0', 'fc00:0:0:3::2')).toBe(false);
  });

  it('skips a gateway set inside the window, and round-robins on after a release', () => {
    const ipam = make({ ipv6Gateway: 'fc00:0:0:3::3', ipv6Window: 6 });
    const got = (id: string) => ipam.allocate({ containerId: id, ifname: 'eth0' }).more![0]!.address;
    expect([got('a'), got('b'), got('c')]).toEqual(['fc00:0:0:3::1', 'fc00:0:0:3::2', 'fc00:0:0:3::4']);
    expect(ipam.release('b', 'eth0')).toEqual(['10.244.3.3/24', 'fc00:0:0:3::2/64']);
    expect([got('d'), got('e'), got('f')]).toEqual(['fc00:0:0:3::5', 'fc00:0:0:3::6', 'fc00:0:0:3::2']);
  });

  it('exhausting the IPv6 window fails the whole ADD and leaves the IPv4 side as it was', () => {
    const ipam = make({ ipv6Window: 3 });
    expect(ipam.allocate({ containerId: 'a', ifname: 'eth0' }).more![0]!.cidr).toBe('fc00:0:0:3::2/64');
    expect(ipam.allocate({ containerId: 'b', ifname: 'eth0' }).more![0]!.cidr).toBe('fc00:0:0:3::3/64');
    expectIpamError(() => ipam.allocate({ containerId: 'c', ifname: 'eth0' }), 'EXHAUSTED', /^no free address in fc00:0:0:3::\/64 \(its first 3 addresses\) \(2 in use\)$/);
    expect(v4Files()).toEqual(['10.244.3.2', '10.244.3.3']);
    expect(v6Files()).toEqual(['fc00:0:0:3::2', 'fc00:0:0:3::3']);
    expect(ipam.get('c', 'eth0')).toBeUndefined();
    ipam.release('a', 'eth0');
    expect(ipam.allocate({ containerId: 'c', ifname: 'eth0' }).more![0]!.address).toBe('fc00:0:0:3::2');
  });

  it('a tiny IPv6 subnet is bounded by its own end', () => {
    const ipam = make({ ipv6Subnet: 'fd00::4/126' });
    expect(ipam.allocate({ containerId: 'a', ifname: 'eth0' }).more![0]!.address).toBe('fd00::6');
    expect(ipam.allocate({ containerId: 'b', ifname: 'eth0' }).more![0]!.address).toBe('fd00::7');
    expectIpamError(() => ipam.allocate({ containerId: 'c', ifname: 'eth0' }), 'EXHAUSTED', /^no free address in fd00::4\/126 \(2 in use\)$/);
  });

  it('IPv6-only: one IPv6 address, nothing of IPv4', () => {
    const ipam = make({ subnet: undefined });
    const a = ipam.allocate({ containerId: 'a', ifname: 'eth0' });
    expect(a).toEqual({ address: 'fc00:0:0:3::2', cidr: 'fc00:0:0:3::2/64', gateway: 'fc00:0:0:3::1', attempt: expect.any(String) });
    expect(allocationIps(a)).toEqual([{ family: 6, address: 'fc00:0:0:3::2', cidr: 'fc00:0:0:3::2/64', gateway: 'fc00:0:0:3::1' }]);
    expect(v4Files()).toEqual([]);
    expect(ipam.release('a', 'eth0')).toEqual(['fc00:0:0:3::2/64']);
    expect(v6Files()).toEqual([]);
  });

  it('honours requested addresses of either family, at most one each, inside the subnet of that family', () => {
    const ipam = make();
    const a = ipam.allocate({ containerId: 'a', ifname: 'eth0', requested: ['fc00:0:0:3::abcd/64', '10.244.3.77'] });
    expect(allocationIps(a).map((ip) => ip.cidr)).toEqual(['10.244.3.77/24', 'fc00:0:0:3::abcd/64']);
    // Only the IPv6 one asked for: IPv4 is allocated (round-robin after the requested .77, as host-local).
    const b = ipam.allocate({ containerId: 'b', ifname: 'eth0', requested: 'FC00:0:0:3:0:0:0:99' });
    expect(allocationIps(b).map((ip) => ip.cidr)).toEqual(['10.244.3.78/24', 'fc00:0:0:3::99/64']);
    // Far outside the window is fine: it is in the subnet.
    expect(make().allocate({ containerId: 'c', ifname: 'eth0', requested: 'fc00:0:0:3:ffff:ffff:ffff:ffff' }).more![0]!.address).toBe('fc00::3:ffff:ffff:ffff:ffff');
    expectIpamError(() => ipam.allocate({ containerId: 'd', ifname: 'eth0', requested: 'fc00:0:0:3::abcd' }), 'UNAVAILABLE', /fc00:0:0:3::abcd in fc00:0:0:3::\/64 is taken by container a interface eth0/);
    expect(ipam.get('d', 'eth0')).toBeUndefined();
    expect(v4Files()).toEqual(['10.244.3.77', '10.244.3.78', '10.244.3.79']); // d's IPv4 claim was undone

    const before = [...v4Files(), ...v6Files(), ...attachments()];
    const cases: [string | string[], RegExp][] = [
      ['fc00:0:0:4::5', /outside the subnet fc00:0:0:3::\/64/],
      ['fc00:0:0:3::', /network address of fc00:0:0:3::\/64/],
      ['fc00:0:0:3::1', /gateway of fc00:0:0:3::\/64/],
      ['fc00:0:0:3::5/48', /prefix length must be \/64/],
      [['fc00:0:0:3::5', 'fc00:0:0:3::6'], /second IPv6 address/],
      [['10.244.3.5', '10.244.3.6'], /second IPv4 address/],
      ['fc00:0:0:3::zz', /not an IPv4 or IPv6 address/],
    ];
    for (const [requested, reason] of cases) {
      expect(() => ipam.allocate({ containerId: 'x', ifname: 'eth0', requested }), String(requested)).toThrow(InvalidArgumentError);
      expect(() => ipam.allocate({ containerId: 'x', ifname: 'eth0', requested }), String(requested)).toThrow(reason);
    }
    expect(() => make({ ipv6Subnet: undefined }).allocate({ containerId: 'x', ifname: 'eth0', requested: 'fc00:0:0:3::5' })).toThrow(/IPv6 address, but this host has only an IPv4 subnet/);
    expect(() => make({ subnet: undefined }).allocate({ containerId: 'x', ifname: 'eth0', requested: '10.244.3.5' })).toThrow(/IPv4 address, but this host has only an IPv6 subnet/);
    expect([...v4Files(), ...v6Files(), ...attachments()]).toEqual(before);
  });

  it('DEL releases both, is idempotent, and finds both by scanning when the attachment is lost', () => {
    const ipam = make();
    const a = ipam.allocate({ containerId: 'a', ifname: 'eth0' });
    expect(ipam.release('a', 'eth0')).toEqual([a.cidr, a.more![0]!.cidr]);
    expect(ipam.release('a', 'eth0')).toEqual([]);
    ipam.allocate({ containerId: 'b', ifname: 'eth0' });
    unlinkSync(join(netDir(), 'attachments', 'b', 'eth0'));
    expect(ipam.release('b', 'eth0')).toEqual(['10.244.3.3/24', 'fc00:0:0:3::3/64']);
    expect([...v4Files(), ...v6Files()]).toEqual([]);
    // A repeated ADD of the same (container, ifname) is refused until a DEL.
    ipam.allocate({ containerId: 'c', ifname: 'eth0' });
    expectIpamError(() => ipam.allocate({ containerId: 'c', ifname: 'eth0' }), 'DUPLICATE', /10\.244\.3\.4\/24, fc00:0:0:3::4\/64/);
  });

  it('GC and reconcile release both families of the owners that go', () => {
    const ipam = make();
    ipam.allocate({ containerId: 'keep', ifname: 'eth0' });
    ipam.allocate({ containerId: 'go', ifname: 'eth0' });
    ipam.allocate({ containerId: 'dead', ifname: 'eth0', netns: '/nonexistent/netns' });
    const gc = ipam.gc([{ containerId: 'keep', ifname: 'eth0' }, { containerId: 'dead', ifname: 'eth0' }]);
    expect(gc.errors).toEqual([]);
    expect(gc.released).toMatchObject([{ containerId: 'go', ifname: 'eth0', ips: ['10.244.3.3/24', 'fc00:0:0:3::3/64'] }]);
    const rec = ipam.reconcile();
    expect(rec.released).toMatchObject([{ containerId: 'dead', ips: ['10.244.3.4/24', 'fc00:0:0:3::4/64'] }]);
    expect(v6Files()).toEqual(['fc00:0:0:3::2']);
    // Without any subnet (lease gone), an orphan IPv6 address file is found and reported as /128.
    unlinkSync(join(netDir(), 'attachments', 'keep', 'eth0'));
    const bare = new PodIpam({ dataDir: root, network: NET });
    expect(bare.gc([]).released).toMatchObject([{ containerId: 'keep', ips: ['10.244.3.2/32', 'fc00:0:0:3::2/128'] }]);
    expect([...v4Files(), ...v6Files()]).toEqual([]);
    expect(files((n) => n.startsWith('last_reserved_ip.'))).toEqual(['last_reserved_ip.0', 'last_reserved_ip.1']);
  });

  it('validates the IPv6 options', () => {
    const bad: [Partial<PodIpamOptions>, RegExp][] = [
      [{ ipv6Subnet: 'fc00:0:0:3::1/64' }, /host bits are set/],
      [{ ipv6Subnet: '10.0.0.0/24' }, /IPv6 prefix/],
      [{ ipv6Subnet: 'fc00::/127' }, /at most 126/],
      [{ ipv6Gateway: 'fc00:0:0:4::1' }, /must be a host address of fc00:0:0:3::\/64/],
      [{ ipv6Gateway: 'fc00:0:0:3::' }, /must be a host address/],
      [{ ipv6Subnet: undefined, ipv6Gateway: 'fc00:0:0:3::1' }, /needs an IPv6 subnet/],
      [{ ipv6Window: 1 }, /window/],
      [{ ipv6Window: 2.5 }, /window/],
    ];
    for (const [opts, reason] of bad) expect(() => make(opts), JSON.stringify(opts)).toThrow(reason);
  });
});

describe('CNI config: requested addresses of either family', () => {
  const conf = (extra: Record<string, unknown>) => ({ cniVersion: '1.0.0', name: 'n', type: 'twill', ...extra });
  const codeOf = (fn: () => unknown): number | undefined => {
    try {
      fn();
    } catch (err) {
      return err instanceof CniError ? err.cniCode : -1;
    }
    return undefined;
  };

  it('accepts one of each family from runtimeConfig, args or CNI_ARGS IP=', () => {
    expect(readConfig(conf({ runtimeConfig: { ips: ['10.244.3.5/24', 'fc00:0:0:3::5/64'] } })).requestedIps).toEqual(['10.244.3.5/24', 'fc00:0:0:3::5/64']);
    expect(readConfig(conf({ args: { cni: { ips: ['fc00:0:0:3::5'] } } })).requestedIps).toEqual(['fc00:0:0:3::5']);
    expect(readConfig(conf({}), new Map([['IP', '10.244.3.5,fc00:0:0:3::5']])).requestedIps).toEqual(['10.244.3.5', 'fc00:0:0:3::5']);
  });

  it('refuses two of a family (code 2) and what is no address (code 7)', () => {
    expect(codeOf(() => readConfig(conf({ runtimeConfig: { ips: ['fc00::5', 'fc00::6'] } })))).toBe(2);
    expect(() => readConfig(conf({ runtimeConfig: { ips: ['fc00::5', 'fc00::6'] } }))).toThrow(/one IPv6 address per interface, got 2/);
    expect(codeOf(() => readConfig(conf({ runtimeConfig: { ips: ['10.0.0.1', '10.0.0.2', 'fc00::6'] } })))).toBe(2);
    expect(codeOf(() => readConfig(conf({ runtimeConfig: { ips: ['fc00::zz'] } })))).toBe(7);
  });
});
