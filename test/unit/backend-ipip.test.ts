import { afterEach, describe, expect, it } from 'vitest';
import type { Network, RemoteLease } from '../../src/backends/backend.js';
import { ipipBackend } from '../../src/backends/ipip/ipip.js';
import { ipipMtu, parseIpipOptions } from '../../src/backends/ipip/config.js';
import { IpipUnsupportedError } from '../../src/backends/ipip/device.js';
import { planIpipRoutes, type IpipPlanInput } from '../../src/backends/ipip/plan.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { HostRequirementError } from '../../src/core/errors.js';
import { RTPROT_TWILL } from '../../src/netlink/index.js';
import { fakeHost } from '../fakes/backend-context.js';
import type { FakeNetlink } from '../fakes/netlink.js';
import { waitFor } from '../helpers/wait.js';

const lease = (subnet: string, publicIp: string, backendType = 'ipip'): RemoteLease => ({ subnet, publicIp, backendType, backendData: null });

const input = (leases: RemoteLease[], extra: Partial<IpipPlanInput> = {}): IpipPlanInput => ({
  leases, clusterNetwork: '10.244.0.0/16', localPublicIp: '198.18.0.1', directRouting: false,
  onLink: (ip) => ip.startsWith('198.18.0.'), deviceIndex: 7, extIndex: 2, ...extra,
});

describe('ipip options', () => {
  it('defaults to MTU = underlay - 20 and no DirectRouting, as flannel', () => {
    const o = parseIpipOptions({});
    expect(o).toEqual({ mtu: undefined, directRouting: false });
    expect(ipipMtu(o, 1500)).toBe(1480);
    expect(ipipMtu(o, 9000)).toBe(8980);
  });

  it('takes MTU and DirectRouting case-insensitively; MTU 0 means the default', () => {
    expect(parseIpipOptions({ mtu: 1400, directrouting: true })).toEqual({ mtu: 1400, directRouting: true });
    expect(ipipMtu(parseIpipOptions({ MTU: 1400 }), 1500)).toBe(1400);
    expect(ipipMtu(parseIpipOptions({ MTU: 0 }), 1500)).toBe(1480);
  });

  it('refuses unknown keys, vxlan\'s options and bad values, naming the option', () => {
    expect(() => parseIpipOptions({ VNI: 1 })).toThrow(/ipip backend option "VNI": is not an option of the ipip backend \(known: MTU, DirectRouting\)/);
    expect(() => parseIpipOptions({ MTU: 40 })).toThrow(/ipip backend option MTU.*40.*68\.\.65535/);
    expect(() => parseIpipOptions({ MTU: '1480' })).toThrow(/ipip backend option MTU/);
    expect(() => parseIpipOptions({ DirectRouting: 'yes' })).toThrow(/ipip backend option DirectRouting "yes": must be true or false/);
  });

  it('refuses an underlay too small for the overhead unless MTU is set', () => {
    expect(() => ipipMtu(parseIpipOptions({}), 80)).toThrow(/leaves less than 68 after the 20-byte IPIP overhead; set the MTU option/);
  });

  it('is a registered backend', () => {
    expect(registerBuiltins().types()).toContain('ipip');
  });
});

describe('ipip plan', () => {
  it('routes each peer onlink via its PublicIP through the device, sorted by subnet', () => {
    const plan = planIpipRoutes(input([lease('10.244.9.0/24', '198.18.1.9'), lease('10.244.2.0/24', '198.18.0.2')]));
    expect(plan.skipped).toEqual([]);
    expect(plan.routes).toEqual([
      { dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 7, onlink: true },
      { dst: '10.244.9.0/24', gateway: '198.18.1.9', oif: 7, onlink: true },
    ]);
  });

  it('DirectRouting: a peer on a connected network gets a plain route via eth0, the others the tunnel', () => {
    const plan = planIpipRoutes(input([lease('10.244.2.0/24', '198.18.0.2'), lease('10.244.9.0/24', '198.18.1.9')], { directRouting: true }));
    expect(plan.routes).toEqual([
      { dst: '10.244.2.0/24', gateway: '198.18.0.2', oif: 2 },
      { dst: '10.244.9.0/24', gateway: '198.18.1.9', oif: 7, onlink: true },
    ]);
  });

  it('skips, with the reason, what it must not route: other types, outside the cluster, its own PublicIP, IPv6, duplicates', () => {
    const plan = planIpipRoutes(input([
      lease('10.244.3.0/24', '198.18.0.3', 'vxlan'),
      lease('10.99.0.0/24', '198.18.0.4'),
      lease('10.244.5.0/24', '198.18.0.1'),
      lease('10.244.6.0/24', '2001:db8::6'),
      lease('10.244.7.0/24', '198.18.0.7'),
      lease('10.244.7.0/24', '198.18.0.8'),
      lease('not-a-cidr', '198.18.0.9'),
    ]));
    expect(plan.routes).toEqual([{ dst: '10.244.7.0/24', gateway: '198.18.0.7', oif: 7, onlink: true }]);
    expect(plan.skipped.map((s) => `${s.subnet}: ${s.reason}`)).toEqual([
      '10.99.0.0/24: the subnet is outside the cluster network 10.244.0.0/16',
      '10.244.3.0/24: BackendType is "vxlan", not "ipip"',
      '10.244.5.0/24: PublicIP 198.18.0.1 is this node\'s own',
      '10.244.6.0/24: PublicIP 2001:db8::6 is not IPv4 (the underlay is IPv4)',
      '10.244.7.0/24: another lease for the same subnet came first',
      expect.stringMatching(/^not-a-cidr: /),
    ]);
  });
});

describe('a kernel without IPIP', () => {
  it('is reported in one line naming the module and how to load it', () => {
    const err = new IpipUnsupportedError(new Error('Unknown device type'));
    expect(err).toBeInstanceOf(HostRequirementError);
    expect(err.code).toBe('EKERNEL_NO_IPIP');
    expect(err.message).not.toContain('\n');
    expect(err.message).toMatch(/module "ipip".*`modprobe ipip`/);
  });
});

// The Network through register(), as the agent drives it, on the in-memory kernel
// (test/kernel/backend-ipip.test.ts runs it on a kernel with IPIP, with pings).
describe('ipip network on the fake kernel', () => {
  const peer = (n: number, publicIp = `198.18.0.${n}`): RemoteLease => lease(`10.244.${n}.0/24`, publicIp);
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => { for (const stop of stops.splice(0)) await stop(); });
  const running = (network: Network): void => {
    const ac = new AbortController();
    const done = network.run(ac.signal);
    stops.push(async () => { ac.abort(); await done; });
  };
  const tunnel = (nl: FakeNetlink): number => nl.kernel.links.getLink('twill.ipip')!.index;
  /** Twill's routes: "dst via gw dev name [onlink]". */
  const twillRoutes = async (nl: FakeNetlink): Promise<string[]> => {
    const names = new Map((await nl.listLinks()).map((l) => [l.index, l.name]));
    return (await nl.listRoutes({ family: 4, protocol: RTPROT_TWILL }))
      .map((r) => `${r.dst} via ${r.gateway ?? '-'} dev ${names.get(r.oif ?? -1) ?? '-'}${r.onlink ? ' onlink' : ''}`).sort();
  };
  const tunnelled = (n: number, publicIp = `198.18.0.${n}`): string => `10.244.${n}.0/24 via ${publicIp} dev twill.ipip onlink`;

  it('register creates twill.ipip on eth0 with local = its address and MTU 1480; start adds the lease\'s /32; no lease data', async () => {
    const { nl, ctx, eth0 } = fakeHost();
    const network = await ipipBackend.register(ctx, parseIpipOptions({}));
    expect(nl.kernel.links.getLink('twill.ipip')).toMatchObject({ kind: 'ipip', mtu: 1480, ipip: { localIp: '198.18.0.1', underlayIndex: eth0.index } });
    expect([network.mtu, network.leaseData]).toEqual([1480, null]);
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    expect((await nl.listAddresses(tunnel(nl))).map((a) => a.cidr)).toEqual(['10.244.1.0/32']);
    expect(nl.kernel.links.isUp(tunnel(nl))).toBe(true);
  });

  it('sync routes each peer onlink through twill.ipip with nexthop objects; a converged sync writes nothing; a departed peer\'s route goes', async () => {
    const { nl, ctx } = fakeHost();
    const network = await ipipBackend.register(ctx, parseIpipOptions({}));
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    expect(await network.sync([peer(2), peer(3, '198.18.7.3')])).toEqual({ changes: 2, skipped: [] });
    expect(await twillRoutes(nl)).toEqual([tunnelled(2), tunnelled(3, '198.18.7.3')]);
    expect((await nl.listNexthops()).map((h) => `${h.gateway} ${h.oif === tunnel(nl) ? 'twill.ipip' : h.oif}`).sort()).toEqual(['198.18.0.2 twill.ipip', '198.18.7.3 twill.ipip']);
    nl.clearWrites();
    expect(await network.sync([peer(2), peer(3, '198.18.7.3')])).toEqual({ changes: 0, skipped: [] });
    expect(nl.writeLog()).toEqual([]);
    expect((await network.sync([peer(2)])).changes).toBeGreaterThan(0);
    expect(await twillRoutes(nl)).toEqual([tunnelled(2)]);
  });

  it('DirectRouting: a peer on eth0\'s network gets a plain route via eth0, a peer elsewhere the tunnel', async () => {
    const { nl, ctx } = fakeHost();
    const network = await ipipBackend.register(ctx, parseIpipOptions({ DirectRouting: true }));
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    expect(await network.sync([peer(2), peer(3, '198.18.7.3')])).toEqual({ changes: 2, skipped: [] });
    expect(await twillRoutes(nl)).toEqual(['10.244.2.0/24 via 198.18.0.2 dev eth0', tunnelled(3, '198.18.7.3')]);
  });

  it('run() puts back a route deleted behind its back, and recreates a deleted twill.ipip with its address and routes', async () => {
    const { nl, ctx } = fakeHost({ resyncIntervalMs: 20 });
    const network = await ipipBackend.register(ctx, parseIpipOptions({}));
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    await network.sync([peer(2), peer(3)]);
    running(network);
    nl.kernel.routes.delete({ dst: '10.244.3.0/24' });
    expect(await twillRoutes(nl)).toEqual([tunnelled(2)]);
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'the route restored', timeoutMs: 2000 });

    await waitFor(() => nl.openWatches === 1, { what: 'the link watch' });
    nl.kernel.links.deleteLink('twill.ipip', 'link.delete');
    expect(await twillRoutes(nl)).toEqual([]);
    await waitFor(async () => (await twillRoutes(nl)).length === 2, { what: 'twill.ipip and its routes back', timeoutMs: 2000 });
    expect(await twillRoutes(nl)).toEqual([tunnelled(2), tunnelled(3)]);
    expect((await nl.listAddresses(tunnel(nl))).map((a) => a.cidr)).toEqual(['10.244.1.0/32']);
  });

  it('skips a lease whose route the kernel refuses (write_failed) and applies the rest', async () => {
    const { nl, ctx } = fakeHost();
    const network = await ipipBackend.register(ctx, parseIpipOptions({}));
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    nl.fail('route.add', 'EPERM', { when: (r) => r.dst === '10.244.3.0/24' });
    const report = await network.sync([peer(2), peer(3), peer(4)]);
    expect(report.skipped).toEqual([{ subnet: '10.244.3.0/24', code: 'write_failed', reason: expect.stringContaining('EPERM') as string }]);
    expect(await twillRoutes(nl)).toEqual([tunnelled(2), tunnelled(4)]);
  });

  it('leaves another IPIP device alone; one that collides (same local address and underlay) is named in the error and kept', async () => {
    const { nl, ctx, eth0 } = fakeHost();
    await nl.createIpip({ name: 'tunl0', localIp: undefined, underlayIndex: undefined, mtu: 1480 });
    await nl.createIpip({ name: 'other.ipip', localIp: '198.18.0.1', underlayIndex: eth0.index, mtu: 1480 });
    await expect(ipipBackend.register(ctx, parseIpipOptions({})))
      .rejects.toThrow(/cannot create twill\.ipip: other\.ipip already is an IPIP tunnel from 198\.18\.0\.1 on the same interface.*ip link delete other\.ipip/);
    expect((await nl.listLinks()).map((l) => l.name).sort()).toEqual(['eth0', 'lo', 'other.ipip', 'tunl0'].sort());
    await nl.deleteLink('other.ipip');
    const network = await ipipBackend.register(ctx, parseIpipOptions({}));
    await network.start({ subnet: '10.244.1.0/24', publicIp: '198.18.0.1' });
    await network.sync([peer(2)]);
    expect(nl.kernel.links.getLink('tunl0')).toMatchObject({ kind: 'ipip', mtu: 1480 });
    expect(await twillRoutes(nl)).toEqual([tunnelled(2)]);
  });
});
