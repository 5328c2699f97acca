import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { vniOfDeviceName } from '../../src/backends/vxlan/config.js';
import { parseCtlFlags } from '../../src/ctl/flags.js';
import { isTwilld, twilldRunning } from '../../src/ctl/uninstall/command.js';
import { removeTwillState } from '../../src/ctl/uninstall/remove.js';
import { NetlinkError, type Link, type Netlink, type Nexthop, type Route } from '../../src/netlink/index.js';
import type { NftRunner } from '../../src/nftables/index.js';
import { CleanupRegistry, tempDir } from '../helpers/cleanup.js';

// `twillctl uninstall` over a fake kernel and a fake nft: what it deletes, what it leaves alone,
// and how it reports failures. The real kernel and nft: test/integration/flannel-migration.test.ts.

const route = (dst: string, protocol: number, over: Partial<Route> = {}): Route => ({
  family: 4, dst, gateway: undefined, oif: 3, table: 254, protocol, scope: 0, type: 1, onlink: false, metric: undefined, prefsrc: undefined, nexthopId: undefined, ...over,
});
const nexthop = (id: number, protocol: number, group = false): Nexthop => ({ id, family: 4, gateway: group ? undefined : '10.244.2.0', oif: 3, protocol, onlink: true, group, blackhole: false });
const link = (index: number, name: string, kind: string | undefined): Link => ({
  index, name, kind, mtu: 1450, mac: '02:00:00:00:00:01', up: true, masterIndex: undefined, linkIndex: undefined, linkNetnsId: undefined,
  vxlan: kind === 'vxlan' ? { vni: 1, port: 8472, localIp: '198.18.0.1', underlayIndex: 2, learning: false, gbp: false } : undefined,
  ipip: kind === 'ipip' ? { localIp: '198.18.0.1', underlayIndex: 2 } : undefined, operUp: true, hairpin: undefined,
});

/** A kernel holding Twill's and others' objects; records every delete. */
function fakeKernel(opts: { routes?: Route[]; nexthops?: Nexthop[] | 'unsupported'; links?: Link[]; refuse?: string } = {}) {
  const deleted: string[] = [];
  const refuse = (what: string): void => {
    if (opts.refuse !== undefined && what.includes(opts.refuse)) throw new NetlinkError({ op: 'x', errno: 1, target: what });
    deleted.push(what);
  };
  const nl = {
    listRoutes: (f: { protocol?: number }) => Promise.resolve((opts.routes ?? []).filter((r) => f.protocol === undefined || r.protocol === f.protocol)),
    deleteRoute: (spec: { dst: string; protocol?: number }) => Promise.resolve(refuse(`route ${spec.dst} proto ${spec.protocol ?? 84}`)),
    listNexthops: () => (opts.nexthops === 'unsupported'
      ? Promise.reject(new NetlinkError({ op: 'nexthop.list', errno: 95, target: '' }))
      : Promise.resolve(opts.nexthops ?? [])),
    deleteNexthop: (id: number) => Promise.resolve(refuse(`nexthop ${id}`)),
    listLinks: () => Promise.resolve(opts.links ?? []),
    deleteLink: (index: number) => Promise.resolve(refuse(`link ${index}`)),
  };
  return { nl: nl as unknown as Netlink, deleted };
}

/** nft with the given tables ("ip twill", or a bare name for family ip); records scripts. */
function fakeNft(tables: string[] | 'missing', failDelete = false): { nft: NftRunner; scripts: string[] } {
  const scripts: string[] = [];
  const nft: NftRunner = (args, input) => {
    if (tables === 'missing') return Promise.reject(Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' }));
    if (args[0] === '-j') {
      return Promise.resolve({ code: 0, stderr: '', stdout: JSON.stringify({ nftables: [{ metainfo: {} }, ...tables.map((t) => ({ table: { family: t.includes(' ') ? t.split(' ')[0] : 'ip', name: t.split(' ').pop(), handle: 1 } }))] }) });
    }
    scripts.push(input ?? '');
    return Promise.resolve(failDelete ? { code: 1, stdout: '', stderr: 'Error: Operation not permitted' } : { code: 0, stdout: '', stderr: '' });
  };
  return { nft, scripts };
}

describe('twillctl uninstall: what it removes', () => {
  const dirs = new CleanupRegistry('uninstall state dirs');
  const stateDir = (): string => tempDir('uninstall', dirs);
  afterEach(() => dirs.runAll());

  it('deletes protocol-84 routes, then protocol-84 nexthops (groups first), then twill.<VNI> and twill.ipip devices, then Twill\'s nft tables of both families, then the MAC record', async () => {
    const { nl, deleted } = fakeKernel({
      routes: [route('10.244.2.0/24', 84, { nexthopId: 7 }), route('10.244.3.0/24', 84, { gateway: '198.18.0.3' }), route('10.244.9.0/24', 3), route('0.0.0.0/0', 4)],
      nexthops: [nexthop(7, 84), nexthop(8, 84, true), nexthop(1, 3)],
      links: [link(5, 'twill.1', 'vxlan'), link(6, 'twill.42', 'vxlan'), link(7, 'flannel.1', 'vxlan'), link(8, 'twill.1x', 'vxlan'), link(9, 'cni0', 'bridge'), link(2, 'eth0', 'veth'),
        link(10, 'twill.ipip', 'ipip'), link(11, 'tunl0', 'ipip'), link(12, 'flannel.ipip', 'ipip'), link(13, 'twill.ipip', 'dummy')],
    });
    const { nft, scripts } = fakeNft(['twill', 'twill-cni', 'kube-proxy', 'ip6 twill', 'ip6 filter']);
    const dir = stateDir();
    writeFileSync(join(dir, 'vxlan-1-vtep.json'), '{}');
    writeFileSync(join(dir, 'subnet.env'), 'FLANNEL_SUBNET=10.244.1.1/24\n');
    const removal = await removeTwillState({ nl, nft, stateDir: dir });
    expect(deleted).toEqual(['route 10.244.2.0/24 proto 84', 'route 10.244.3.0/24 proto 84', 'nexthop 8', 'nexthop 7', 'link 5', 'link 6', 'link 10']);
    expect(scripts).toEqual(['delete table ip twill\ndelete table ip6 twill\ndelete table ip twill-cni\n']);
    expect(removal).toEqual({
      removed: [
        'route 10.244.2.0/24 (protocol 84)', 'route 10.244.3.0/24 via 198.18.0.3 (protocol 84)',
        'nexthop 8 (protocol 84)', 'nexthop 7 via 10.244.2.0 (protocol 84)',
        'device twill.1 (vxlan, VNI 1, port 8472)', 'device twill.42 (vxlan, VNI 1, port 8472)', 'device twill.ipip (ipip, local 198.18.0.1)',
        'nftables table ip twill', 'nftables table ip6 twill', 'nftables table ip twill-cni',
        `file ${join(dir, 'vxlan-1-vtep.json')} (VTEP MAC adopted from flanneld)`,
      ],
      failed: [],
    });
    expect(existsSync(join(dir, 'subnet.env'))).toBe(true);
  });

  it('finds nothing to do on a clean host, a kernel without nexthops, or without nft, and succeeds', async () => {
    const { nl, deleted } = fakeKernel({ routes: [route('10.244.9.0/24', 3)], nexthops: 'unsupported', links: [link(7, 'flannel.1', 'vxlan')] });
    for (const nft of [fakeNft([]).nft, fakeNft('missing').nft]) {
      expect(await removeTwillState({ nl, nft, stateDir: join(stateDir(), 'absent') })).toEqual({ removed: [], failed: [] });
    }
    expect(deleted).toEqual([]);
  });

  it('reports what the kernel or nft refused, and removes the rest', async () => {
    const { nl } = fakeKernel({ routes: [route('10.244.2.0/24', 84), route('10.244.3.0/24', 84)], links: [link(5, 'twill.1', 'vxlan')], refuse: '10.244.2.0' });
    const removal = await removeTwillState({ nl, nft: fakeNft(['twill'], true).nft, stateDir: stateDir() });
    expect(removal.removed).toEqual(['route 10.244.3.0/24 (protocol 84)', 'device twill.1 (vxlan, VNI 1, port 8472)']);
    expect(removal.failed).toEqual([
      expect.stringMatching(/^route 10\.244\.2\.0\/24 \(protocol 84\): .*EPERM/),
      'nftables table ip twill: nft exited with code 1: Error: Operation not permitted',
    ]);
  });

  it('reports nft output it cannot read', async () => {
    const nft: NftRunner = () => Promise.resolve({ code: 0, stdout: 'not json', stderr: '' });
    expect((await removeTwillState({ nl: fakeKernel().nl, nft, stateDir: stateDir() })).failed).toEqual([expect.stringContaining('unexpected output of nft -j list tables')]);
    const failing: NftRunner = () => Promise.resolve({ code: 1, stdout: '', stderr: 'netlink: Error: cache initialization failed' });
    expect((await removeTwillState({ nl: fakeKernel().nl, nft: failing, stateDir: stateDir() })).failed).toEqual([expect.stringContaining('cache initialization failed')]);
  });
});

describe('twillctl uninstall: is twilld running here?', () => {
  it('recognises twilld by its name or its script, not other node programs', () => {
    expect(isTwilld({ pid: 1, comm: 'node', argv: ['node', '/usr/local/bin/twilld', '--iface', 'eth0'] })).toBe(true);
    expect(isTwilld({ pid: 1, comm: 'node', argv: ['/usr/bin/node', '--cpu-prof', '/work/main/dist/src/agent/main.js'] })).toBe(true);
    expect(isTwilld({ pid: 1, comm: 'twilld', argv: ['twilld'] })).toBe(true);
    expect(isTwilld({ pid: 1, comm: 'node', argv: ['node', 'dist/src/ctl/main.js', 'uninstall'] })).toBe(false);
    expect(isTwilld({ pid: 1, comm: 'vim', argv: ['vim', '/usr/local/bin/twilld'] })).toBe(false);
    expect(isTwilld({ pid: 1, comm: 'flanneld', argv: ['/opt/bin/flanneld'] })).toBe(false);
  });

  it('names the pids of a running twilld', async () => {
    expect(await twilldRunning('127.0.0.1:9', () => [{ pid: 4321, comm: 'node', argv: ['node', '/usr/local/bin/twilld'] }]))
      .toBe('twilld (pid 4321) is running in this network namespace');
  });

  it('takes only twill.<VNI> names as Twill\'s devices', () => {
    expect(vniOfDeviceName('twill.1')).toBe(1);
    expect(vniOfDeviceName('twill.16777215')).toBe(16777215);
    for (const name of ['twill.0', 'twill.01', 'twill.16777216', 'twill.', 'twill.1x', 'flannel.1', 'xtwill.1', 'twill.ipip']) expect(vniOfDeviceName(name)).toBeUndefined();
  });
});

describe('twillctl uninstall: flags', () => {
  it('keeps the lease unless --delete-lease says otherwise, and names a bad value', () => {
    const flagsOf = (argv: string[]) => {
      const parsed = parseCtlFlags(argv, {});
      if (parsed.kind !== 'run') throw new Error('expected a command');
      return parsed;
    };
    expect(flagsOf(['uninstall'])).toMatchObject({ args: ['uninstall'], flags: { deleteLease: false } });
    expect(flagsOf(['uninstall', '--delete-lease'])).toMatchObject({ args: ['uninstall'], flags: { deleteLease: true } });
    expect(flagsOf(['uninstall']).flags.subnetFile).toBe('/run/twill/subnet.env');
    expect(() => parseCtlFlags(['uninstall', '--delete-lease=maybe'], {})).toThrow(/--delete-lease "maybe": must be true or false/);
    expect(parseCtlFlags(['--help'], {})).toMatchObject({ kind: 'help', text: expect.stringContaining('uninstall ') });
  });
});
