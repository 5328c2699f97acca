import { describe, expect, it } from 'vitest';
import type { RemoteLease } from '../../src/backends/backend.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { deviceMtu, deviceName, parseVxlanOptions } from '../../src/backends/vxlan/config.js';
import { decodeLeaseData, encodeLeaseData } from '../../src/backends/vxlan/lease-data.js';
import { deriveVtepMac, isLocallyAdministered, isUnicastMac } from '../../src/backends/vxlan/mac.js';
import { onLinkMatcher } from '../../src/backends/on-link.js';
import { planPeers, type PlanInput } from '../../src/backends/vxlan/plan.js';
import { vxlanBackend } from '../../src/backends/vxlan/vxlan.js';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { parseMac } from '../../src/core/mac.js';

describe('vxlan options', () => {
  it('defaults to VNI 1, port 8472, MTU from the interface, no DirectRouting, no GBP; frozen', () => {
    const o = parseVxlanOptions({});
    expect(o).toEqual({ vni: 1, port: 8472, mtu: undefined, directRouting: false, gbp: false });
    expect(Object.isFrozen(o)).toBe(true);
    expect(deviceMtu(o, 1500)).toBe(1450);
    expect(deviceMtu(o, 9000)).toBe(8950);
    expect(deviceName(o.vni)).toBe('twill.1');
  });

  it('reads every option, with case-insensitive keys as flannel (Go JSON) does', () => {
    const o = parseVxlanOptions({ vni: 4096, PORT: 4789, Mtu: 1400, directrouting: true, Gbp: true });
    expect(o).toEqual({ vni: 4096, port: 4789, mtu: 1400, directRouting: true, gbp: true });
    expect(deviceMtu(o, 1500)).toBe(1400);
    expect(parseVxlanOptions({ VNI: 16777215 }).vni).toBe(16777215);
  });

  it('treats Port 0 and MTU 0 (and null) as "not set", like flannel', () => {
    expect(parseVxlanOptions({ Port: 0, MTU: 0 })).toMatchObject({ port: 8472, mtu: undefined });
    expect(parseVxlanOptions({ VNI: null, Port: null, DirectRouting: null })).toMatchObject({ vni: 1, port: 8472, directRouting: false });
  });

  it.each([
    ['VNI', 0, /vxlan backend option VNI 0: must be an integer 1\.\.16777215/],
    ['VNI', 16777216, /option VNI 16777216: must be an integer 1\.\.16777215/],
    ['VNI', 1.5, /option VNI 1\.5/],
    ['VNI', '1', /option VNI "1"/],
    ['Port', 65536, /option Port 65536: must be an integer 1\.\.65535 \(0 means the default 8472\)/],
    ['Port', -1, /option Port -1/],
    ['MTU', 67, /option MTU 67: must be an integer 68\.\.65535/],
    ['MTU', 65536, /option MTU 65536/],
    ['MTU', '1450', /option MTU "1450"/],
    ['DirectRouting', 'yes', /option DirectRouting "yes": must be true or false/],
    ['GBP', 1, /option GBP 1: must be true or false/],
  ])('rejects %s = %j, naming option and value', (key, value, message) => {
    const parse = (): unknown => parseVxlanOptions({ [key]: value });
    expect(parse).toThrow(InvalidArgumentError);
    expect(parse).toThrow(message);
  });

  it('rejects unknown keys (a typo must not pass silently), naming the key', () => {
    expect(() => parseVxlanOptions({ DirectRoute: true })).toThrow(/vxlan backend option "DirectRoute": is not an option of the vxlan backend \(known: VNI, Port, MTU, DirectRouting, GBP, Learning\)/);
  });

  it('refuses an interface MTU that leaves too little after the overhead', () => {
    expect(() => deviceMtu(parseVxlanOptions({}), 100)).toThrow(/leaves less than 68.*set the MTU option/);
    expect(deviceMtu(parseVxlanOptions({ MTU: 68 }), 100)).toBe(68);
  });

  it('is registered as a builtin under "vxlan"', () => {
    const registry = registerBuiltins();
    expect(registry.get('vxlan')).toBe(vxlanBackend);
    expect(registry.parseOptions('vxlan', { VNI: 7 })).toMatchObject({ vni: 7 });
  });
});

describe('vxlan lease data', () => {
  it('encodes flannel\'s shape {VNI, VtepMAC} with a canonical MAC', () => {
    expect(encodeLeaseData(1, 'AA-BB-CC-DD-EE-F0')).toEqual({ VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:f0' });
    expect(JSON.stringify(encodeLeaseData(1, '02:00:00:00:00:01'))).toBe('{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}');
  });

  it('decodes what flannel publishes (any key case, extra keys tolerated)', () => {
    expect(decodeLeaseData({ VNI: 1, VtepMAC: 'de:ad:be:ef:00:01' }, 1)).toEqual({ ok: true, vtep: { vni: 1, mac: 'de:ad:be:ef:00:01' } });
    expect(decodeLeaseData({ vni: 1, vtepmac: 'DE:AD:BE:EF:00:01', Future: 1 }, 1)).toEqual({ ok: true, vtep: { vni: 1, mac: 'de:ad:be:ef:00:01' } });
  });

  it.each([
    [null, /BackendData null is not an object/],
    ['{"VNI":1}', /is not an object/],
    [[1], /is not an object/],
    [{ VtepMAC: '02:00:00:00:00:01' }, /has no VNI/],
    [{ VNI: '1', VtepMAC: '02:00:00:00:00:01' }, /VNI "1" is not an integer/],
    [{ VNI: 2, VtepMAC: '02:00:00:00:00:01' }, /VNI 2 differs from this network's VNI 1/],
    [{ VNI: 1 }, /has no VtepMAC/],
    [{ VNI: 1, VtepMAC: 42 }, /VtepMAC 42 is not a MAC address/],
    [{ VNI: 1, VtepMAC: 'zz:00:00:00:00:01' }, /is not a MAC address/],
    [{ VNI: 1, VtepMAC: '02:00:00:00:00:01:02' }, /is not a MAC address/],
    [{ VNI: 1, VtepMAC: '01:00:5e:00:00:01' }, /01:00:5e:00:00:01 is not a unicast MAC/],
    [{ VNI: 1, VtepMAC: 'ff:ff:ff:ff:ff:ff' }, /is not a unicast MAC/],
    [{ VNI: 1, VtepMAC: '00:00:00:00:00:00' }, /is not a unicast MAC/],
  ])('refuses %j with a reason, never throwing', (data, reason) => {
    const r = decodeLeaseData(data, 1);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(reason);
  });

  it('keeps a reason short even for huge garbage', () => {
    const r = decodeLeaseData({ VNI: 1, VtepMAC: 'x'.repeat(100_000) }, 1);
    expect(!r.ok && r.reason.length < 120).toBe(true);
  });
});

describe('VTEP MAC derivation', () => {
  it('is stable: the same PublicIP and VNI always give the same MAC (restarts, reboots)', () => {
    const a = deriveVtepMac('198.18.0.1', 1);
    expect(deriveVtepMac('198.18.0.1', 1)).toBe(a);
    expect(a).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    // Pinned: changing the derivation would change every node's MAC on upgrade.
    expect(a).toBe('de:05:ea:5f:66:96');
  });

  it('differs per node and per VNI', () => {
    const macs = new Set<string>();
    for (let i = 1; i <= 250; i++) for (const vni of [1, 2]) macs.add(deriveVtepMac(`198.18.0.${i}`, vni));
    expect(macs.size).toBe(500);
  });

  it('is always unicast and locally administered', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = parseMac(deriveVtepMac(`10.${i >> 8}.${i & 255}.7`, 1 + (i % 5)));
      expect(isUnicastMac(bytes)).toBe(true);
      expect(isLocallyAdministered(bytes)).toBe(true);
    }
  });

  it('canonicalises the IP text first', () => {
    expect(deriveVtepMac('fd00:0:0::1', 1)).toBe(deriveVtepMac('fd00::1', 1));
  });
});

describe('vxlan plan (pure)', () => {
  const macOf = (n: number): string => `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
  const lease = (n: number, over: Partial<RemoteLease> = {}): RemoteLease => ({
    subnet: `10.244.${n}.0/24`,
    publicIp: `198.18.0.${n}`,
    backendType: 'vxlan',
    backendData: { VNI: 1, VtepMAC: macOf(n) },
    ...over,
  });
  const input = (leases: RemoteLease[], over: Partial<PlanInput> = {}): PlanInput => ({
    leases,
    vni: 1,
    clusterNetwork: '10.244.0.0/16',
    localPublicIp: '198.18.0.1',
    localMac: macOf(1),
    directRouting: false,
    onLink: () => true,
    vxlanIndex: 7,
    extIndex: 2,
    ...over,
  });

  it('gives each peer a neighbour, an FDB entry and an onlink route via its network address, sorted by subnet', () => {
    const plan = planPeers(input([lease(10), lease(9)]));
    expect(plan.skipped).toEqual([]);
    expect(plan.peers.map((p) => p.subnet)).toEqual(['10.244.9.0/24', '10.244.10.0/24']);
    expect(plan.peers[0]).toEqual({
      subnet: '10.244.9.0/24',
      direct: false,
      neighbour: { index: 7, ip: '10.244.9.0', mac: macOf(9) },
      fdb: { index: 7, mac: macOf(9), dst: '198.18.0.9' },
      route: { dst: '10.244.9.0/24', gateway: '10.244.9.0', oif: 7, onlink: true },
    });
  });

  it('routes on-link peers directly with DirectRouting, and encapsulates the others', () => {
    const plan = planPeers(input([lease(2), lease(3, { publicIp: '198.19.5.3' })], {
      directRouting: true,
      onLink: onLinkMatcher(['198.18.0.1/24', 'fe80::1/64', '10.9.9.9/32']),
    }));
    expect(plan.peers).toEqual([
      { subnet: '10.244.2.0/24', direct: true, neighbour: undefined, fdb: undefined, route: { dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 2 } },
      expect.objectContaining({ subnet: '10.244.3.0/24', direct: false, fdb: { index: 7, mac: macOf(3), dst: '198.19.5.3' } }),
    ]);
  });

  it('skips unusable leases with a reason and keeps the rest', () => {
    const plan = planPeers(input([
      lease(2),
      lease(3, { backendType: 'host-gw' }),
      lease(4, { backendData: { VNI: 1, VtepMAC: 'nope' } }),
      lease(5, { backendData: { VNI: 9, VtepMAC: macOf(5) } }),
      lease(6, { subnet: '10.99.6.0/24' }),
      lease(7, { subnet: '10.244.7.1/24' }),
      lease(8, { publicIp: '198.18.0.1' }),
      lease(11, { backendData: { VNI: 1, VtepMAC: macOf(1) } }),
      lease(12, { backendData: { VNI: 1, VtepMAC: macOf(2) } }),
      lease(13, { publicIp: 'fd00::13' }),
      lease(14, { backendData: undefined }),
    ]));
    expect(plan.peers.map((p) => p.subnet)).toEqual(['10.244.2.0/24']);
    const reasons = Object.fromEntries(plan.skipped.map((s) => [s.subnet, s.reason]));
    expect(reasons).toEqual({
      '10.244.3.0/24': 'BackendType is "host-gw", not "vxlan"',
      '10.244.4.0/24': 'BackendData VtepMAC "nope" is not a MAC address',
      '10.244.5.0/24': 'BackendData VNI 9 differs from this network\'s VNI 1',
      '10.99.6.0/24': 'the subnet is outside the cluster network 10.244.0.0/16',
      '10.244.7.1/24': expect.stringMatching(/host bits are set/),
      '10.244.8.0/24': 'PublicIP 198.18.0.1 is this node\'s own',
      '10.244.11.0/24': `VtepMAC ${macOf(1)} is this node's own`,
      '10.244.12.0/24': `VtepMAC ${macOf(2)} is also claimed by 10.244.2.0/24 (PublicIP 198.18.0.2)`,
      '10.244.13.0/24': 'PublicIP fd00::13 is not IPv4 (the underlay is IPv4)',
      '10.244.14.0/24': expect.stringMatching(/BackendData undefined is not an object/),
    });
  });

  it('lets two leases of one node share its MAC (a stale lease beside the current one)', () => {
    const plan = planPeers(input([lease(2), lease(3, { publicIp: '198.18.0.2', backendData: { VNI: 1, VtepMAC: macOf(2) } })]));
    expect(plan.skipped).toEqual([]);
    expect(plan.peers.map((p) => p.fdb)).toEqual([
      { index: 7, mac: macOf(2), dst: '198.18.0.2' }, { index: 7, mac: macOf(2), dst: '198.18.0.2' }]);
  });
});

describe('vxlan options: flannel\'s Learning key', () => {
  it('accepts Learning false (flannel\'s default) and refuses true', () => {
    expect(parseVxlanOptions({ Learning: false }).vni).toBe(1);
    expect(() => parseVxlanOptions({ learning: true })).toThrow(/Learning true: is not supported/);
  });
});
