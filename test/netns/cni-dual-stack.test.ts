import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { CNI_MODES, CNI_SHIM, cniCall, startCniServer, vethNames, type CniCallOptions, type CniCallResult, type CniMode } from '../helpers/cni.js';
import { createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * The twill plugin on a dual-stack (and an IPv6-only) lease, against the real kernel: a "host"
 * namespace where the plugin runs and one namespace per pod, through the agent's socket and
 * through the shim's in-process fallback (the same code: runPlugin). Never the root namespace.
 */

const GW4 = '10.244.7.1';
const GW6 = 'fc00:0:0:7::1';

interface Bed {
  readonly host: TestNetns;
  readonly socket: string | undefined;
  readonly subnetFile: string;
  readonly dataDir: string;
}

/** subnet.env as the agent writes it; without `v4` it is an IPv6-only cluster's. */
function writeSubnetEnv(dir: string, v4: { network: string; subnet: string } | undefined, v6: { network: string; subnet: string }): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'subnet.env');
  const lines = [
    ...(v4 ? [`FLANNEL_NETWORK=${v4.network}`, `FLANNEL_SUBNET=${v4.subnet}`] : []),
    `FLANNEL_IPV6_NETWORK=${v6.network}`, `FLANNEL_IPV6_SUBNET=${v6.subnet}`, 'FLANNEL_MTU=1450', 'FLANNEL_IPMASQ=true',
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function createBed(mode: CniMode, host: TestNetns, v4: { network: string; subnet: string } | undefined, v6: { network: string; subnet: string }): Promise<Bed> {
  const dir = tempDir('cni6');
  const subnetFile = writeSubnetEnv(dir, v4, v6);
  const dataDir = join(dir, 'ipam');
  const socket = mode === 'agent' ? (await startCniServer(host, { dataDir, socket: join(dir, 'cni.sock') })).socket : undefined;
  return { host, socket, subnetFile, dataDir };
}

const NAME = 'twill-ds';
const confOf = (bed: Bed, extra: Record<string, unknown> = {}, version = '1.1.0'): Record<string, unknown> =>
  ({ cniVersion: version, name: NAME, type: 'twill', subnetFile: bed.subnetFile, dataDir: bed.dataDir, ...extra });
const call = (bed: Bed, opts: Omit<CniCallOptions, 'socket'>): Promise<CniCallResult> => cniCall(bed.host, { ...opts, socket: bed.socket });

/** Address files of both families, and attachments, of a store. */
function store(dataDir: string, network = NAME): { v4: string[]; v6: string[]; attachments: string[] } {
  const dir = join(dataDir, network);
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const att = join(dir, 'attachments');
  return { v4: names.filter((n) => isIPv4(n)), v6: names.filter((n) => isIPv6(n)), attachments: existsSync(att) ? readdirSync(att) : [] };
}

interface AddrInfo { family: string; local: string; prefixlen: number; scope?: string; tentative?: boolean; dadfailed?: boolean; nodad?: boolean }
async function globalAddrs(ns: TestNetns, dev: string, family: '-4' | '-6'): Promise<AddrInfo[]> {
  const [link] = await ns.json<{ addr_info: AddrInfo[] }[]>([family, 'addr', 'show', 'dev', dev]);
  return (link?.addr_info ?? []).filter((a) => a.scope === 'global');
}
const cidrs = (addrs: AddrInfo[]): string[] => addrs.map((a) => `${a.local}/${a.prefixlen}`);
const resultIps = (r: CniCallResult): { address: string; gateway: string; interface: number; version?: string }[] =>
  r.json!.ips as { address: string; gateway: string; interface: number }[];

for (const mode of CNI_MODES) {
  describe.skipIf(!isRoot || !existsSync(CNI_SHIM))(`twill CNI plugin, dual-stack and IPv6-only (${mode})`, () => {
    useCleanup();
    let host: TestNetns;
    let dual: Bed;
    beforeAll(async () => {
      host = await createTestNetns('cnihost6');
      dual = await createBed(mode, host, { network: '10.244.0.0/16', subnet: `${GW4}/24` }, { network: 'fc00::/48', subnet: `${GW6}/64` });
    });

    it('ADD gives both addresses (IPv6 usable at once), both default routes, both gateways on the bridge; pods ping over IPv6; CHECK; DEL frees both', async () => {
      const [pod, pod2] = await Promise.all([createTestNetns('pod6'), createTestNetns('pod6')]);
      const add = await call(dual, { command: 'ADD', containerId: 'ds1', netns: pod.netnsPath, conf: confOf(dual, { hairpinMode: true }) });
      expect(add.code, add.stdout + add.stderr).toBe(0);
      // Right after ADD, before anything else: the pod's IPv6 address is not tentative.
      const pod6 = await globalAddrs(pod, 'eth0', '-6');
      expect(pod6).toHaveLength(1);
      expect(pod6[0]!.tentative).toBeUndefined();
      expect(pod6[0]!.dadfailed).toBeUndefined();
      expect(pod6[0]!.nodad).toBe(true);
      expect(pod.readSysctl('net/ipv6/conf/eth0/accept_dad')).toBe('0');

      const ips = resultIps(add);
      expect(ips).toEqual([
        { address: expect.stringMatching(/^10\.244\.7\.\d+\/24$/) as unknown, gateway: GW4, interface: 2 },
        { address: expect.stringMatching(/^fc00:0:0:7::[0-9a-f]+\/64$/) as unknown, gateway: GW6, interface: 2 },
      ]);
      expect(ips[1]!.address).not.toBe(`${GW6}/64`);
      expect(add.json!.routes).toEqual([{ dst: '0.0.0.0/0', gw: GW4 }, { dst: '10.244.0.0/16' }, { dst: '::/0', gw: GW6 }, { dst: 'fc00::/48' }]);
      expect(cidrs(await globalAddrs(pod, 'eth0', '-4'))).toEqual([ips[0]!.address]);
      expect(cidrs(pod6)).toEqual([ips[1]!.address]);
      const routes6 = await pod.json<{ dst: string; gateway?: string; dev?: string }[]>(['-6', 'route', 'show']);
      expect(routes6.find((r) => r.dst === 'default')).toMatchObject({ gateway: GW6, dev: 'eth0' });
      expect(routes6.find((r) => r.dst === 'fc00::/48')).toMatchObject({ gateway: GW6, dev: 'eth0' });
      expect((await pod.routes()).find((r) => r.dst === 'default')?.gateway).toBe(GW4);
      const bridge6 = await globalAddrs(host, 'cni0', '-6');
      expect(cidrs(bridge6)).toEqual([`${GW6}/64`]);
      expect(bridge6[0]!.tentative).toBeUndefined();
      // The bridge the plugin made has no DAD either: its link-local address, from which the kernel
      // solicits neighbours for packets it forwards to the pods, is usable at once.
      expect(host.readSysctl('net/ipv6/conf/cni0/accept_dad')).toBe('0');
      const [bridgeLink] = await host.json<{ addr_info: AddrInfo[] }[]>(['-6', 'addr', 'show', 'dev', 'cni0', 'scope', 'link']);
      // (`ip -j` prints an empty object for each address the scope filter leaves out.)
      expect(bridgeLink!.addr_info.filter((a) => a.local !== undefined).map((a) => [a.local.startsWith('fe80:'), a.tentative])).toEqual([[true, undefined]]);
      expect(cidrs(await globalAddrs(host, 'cni0', '-4'))).toEqual([`${GW4}/24`]);
      expect(store(dual.dataDir)).toEqual({ v4: [ips[0]!.address.split('/')[0]], v6: [ips[1]!.address.split('/')[0]], attachments: ['ds1'] });

      // Over IPv6: the bridge's gateway, and another pod on the same bridge.
      expect(await pod.ping(GW6, { timeoutSec: 2 })).toBe(true);
      const add2 = await call(dual, { command: 'ADD', containerId: 'ds2', netns: pod2.netnsPath, conf: confOf(dual) });
      expect(add2.code, add2.stdout + add2.stderr).toBe(0);
      const other6 = resultIps(add2)[1]!.address.split('/')[0]!;
      expect(other6).not.toBe(ips[1]!.address.split('/')[0]);
      expect(await pod.ping(other6, { timeoutSec: 2 })).toBe(true);
      expect(await pod2.ping(ips[1]!.address.split('/')[0]!, { timeoutSec: 2 })).toBe(true);

      // A repeated ADD returns the same addresses.
      const again = await call(dual, { command: 'ADD', containerId: 'ds1', netns: pod.netnsPath, conf: confOf(dual, { hairpinMode: true }) });
      expect(again.code, again.stdout).toBe(0);
      expect(again.json).toEqual(add.json);

      const check = (): Promise<CniCallResult> => call(dual, { command: 'CHECK', containerId: 'ds1', netns: pod.netnsPath, conf: confOf(dual, { prevResult: add.json }) });
      const ok = await check();
      expect(ok.code, ok.stdout).toBe(0);
      await pod.exec('ip', ['-6', 'route', 'del', 'default']);
      expect((await check()).json).toMatchObject({ code: 105, msg: `CHECK failed: route ::/0 via ${GW6} is missing in the pod` });
      await pod.exec('ip', ['-6', 'route', 'add', 'default', 'via', GW6, 'dev', 'eth0']);
      expect((await check()).code).toBe(0);
      await pod.exec('ip', ['addr', 'del', ips[1]!.address, 'dev', 'eth0']);
      expect((await check()).json).toMatchObject({ code: 105, msg: `CHECK failed: address ${ips[1]!.address} is missing from eth0` });

      for (const [id, p] of [['ds1', pod], ['ds2', pod2]] as const) {
        const del = await call(dual, { command: 'DEL', containerId: id, netns: p.netnsPath, conf: confOf(dual, { prevResult: id === 'ds1' ? add.json : add2.json }) });
        expect(del.code, del.stdout + del.stderr).toBe(0);
        expect((await p.links()).some((l) => l.ifname === 'eth0')).toBe(false);
      }
      expect(store(dual.dataDir)).toEqual({ v4: [], v6: [], attachments: [] });
      expect((await call(dual, { command: 'DEL', containerId: 'ds1', netns: pod.netnsPath, conf: confOf(dual) })).code).toBe(0);
      expect(await vethNames(host)).toEqual([]);
    });

    it('0.4.0 results mark each address with its version', async () => {
      const pod = await createTestNetns('pod6');
      const add = await call(dual, { command: 'ADD', containerId: 'ds040', netns: pod.netnsPath, conf: confOf(dual, {}, '0.4.0') });
      expect(add.code, add.stdout).toBe(0);
      expect(resultIps(add).map((ip) => ip.version)).toEqual(['4', '6']);
      expect((await call(dual, { command: 'CHECK', containerId: 'ds040', netns: pod.netnsPath, conf: confOf(dual, { prevResult: add.json }, '0.4.0') })).code).toBe(0);
      expect((await call(dual, { command: 'DEL', containerId: 'ds040', netns: pod.netnsPath, conf: confOf(dual, {}, '0.4.0') })).code).toBe(0);
      expect(store(dual.dataDir)).toEqual({ v4: [], v6: [], attachments: [] });
    });

    it('requested addresses of both families are honoured; one outside the IPv6 subnet, or its gateway, is refused with nothing left', async () => {
      const pod = await createTestNetns('pod6');
      const r = await call(dual, { command: 'ADD', containerId: 'static6', netns: pod.netnsPath, conf: confOf(dual, { runtimeConfig: { ips: ['fc00:0:0:7::c8/64', '10.244.7.200/24'] } }) });
      expect(r.code, r.stdout).toBe(0);
      expect(resultIps(r).map((ip) => ip.address)).toEqual(['10.244.7.200/24', 'fc00:0:0:7::c8/64']);
      const viaArgs = await call(dual, { command: 'ADD', containerId: 'args6', netns: (await createTestNetns('pod6')).netnsPath, args: 'IgnoreUnknown=1;IP=fc00:0:0:7::c9', conf: confOf(dual) });
      expect(viaArgs.code, viaArgs.stdout).toBe(0);
      expect(resultIps(viaArgs)[1]!.address).toBe('fc00:0:0:7::c9/64');
      const taken = await call(dual, { command: 'ADD', containerId: 'static7', netns: (await createTestNetns('pod6')).netnsPath, conf: confOf(dual, { runtimeConfig: { ips: ['fc00:0:0:7::c8'] } }) });
      expect(taken.json?.code).toBe(102);
      const before = store(dual.dataDir);
      for (const [ips, msg] of [[['fc00:0:0:8::5'], /outside the subnet fc00:0:0:7::\/64/], [[GW6], /is the gateway of fc00:0:0:7::\/64/], [['fc00:0:0:7::'], /network address/], [['fc00::5', 'fc00::6'], /one IPv6 address per interface/]] as const) {
        const bad = await call(dual, { command: 'ADD', containerId: 'bad6', netns: (await createTestNetns('pod6')).netnsPath, conf: confOf(dual, { runtimeConfig: { ips } }) });
        expect(bad.code, JSON.stringify(ips)).toBe(1);
        expect(bad.json?.msg).toMatch(msg);
        expect(store(dual.dataDir)).toEqual(before);
      }
      for (const id of ['static6', 'args6', 'static7', 'bad6']) expect((await call(dual, { command: 'DEL', containerId: id, conf: confOf(dual) })).code).toBe(0);
      expect(store(dual.dataDir)).toEqual({ v4: [], v6: [], attachments: [] });
    });

    it('GC frees both families of containers not listed, and keeps the listed ones', async () => {
      const pods = await Promise.all([0, 1].map(() => createTestNetns('pod6')));
      const got: string[][] = [];
      for (const [i, pod] of pods.entries()) {
        const r = await call(dual, { command: 'ADD', containerId: `gc6-${i}`, netns: pod.netnsPath, conf: confOf(dual) });
        expect(r.code, r.stdout).toBe(0);
        got.push(resultIps(r).map((ip) => ip.address.split('/')[0]!));
      }
      const gc = await call(dual, { command: 'GC', conf: confOf(dual, { 'cni.dev/valid-attachments': [{ containerID: 'gc6-0', ifname: 'eth0' }] }) });
      expect(gc.code, gc.stdout).toBe(0);
      expect(store(dual.dataDir)).toEqual({ v4: [got[0]![0]], v6: [got[0]![1]], attachments: ['gc6-0'] });
      for (const [i, pod] of pods.entries()) expect((await call(dual, { command: 'DEL', containerId: `gc6-${i}`, netns: pod.netnsPath, conf: confOf(dual) })).code).toBe(0);
      expect(store(dual.dataDir)).toEqual({ v4: [], v6: [], attachments: [] });
    });

    it('IPv6-only (no FLANNEL_SUBNET): one IPv6 address, the IPv6 default route, no IPv4', async () => {
      const v6only = await createBed('in-process', host, undefined, { network: 'fd00:10::/48', subnet: 'fd00:10:0:9::1/64' });
      const bed = { ...v6only, socket: dual.socket }; // the same service serves any dataDir it is given
      const conf = (extra: Record<string, unknown> = {}): Record<string, unknown> => confOf(bed, { bridge: 'cni6', ...extra });
      const pod = await createTestNetns('pod6');
      const add = await call(bed, { command: 'ADD', containerId: 'v6only', netns: pod.netnsPath, conf: conf() });
      expect(add.code, add.stdout + add.stderr).toBe(0);
      expect(resultIps(add)).toEqual([{ address: 'fd00:10:0:9::2/64', gateway: 'fd00:10:0:9::1', interface: 2 }]);
      expect(add.json!.routes).toEqual([{ dst: '::/0', gw: 'fd00:10:0:9::1' }, { dst: 'fd00:10::/48' }]);
      expect(await globalAddrs(pod, 'eth0', '-4')).toEqual([]);
      const addrs = await globalAddrs(pod, 'eth0', '-6');
      expect(cidrs(addrs)).toEqual(['fd00:10:0:9::2/64']);
      expect(addrs[0]!.tentative).toBeUndefined();
      expect(cidrs(await globalAddrs(host, 'cni6', '-6'))).toEqual(['fd00:10:0:9::1/64']);
      expect(await globalAddrs(host, 'cni6', '-4')).toEqual([]);
      expect((await pod.json<{ dst: string; gateway?: string }[]>(['-6', 'route', 'show'])).find((r) => r.dst === 'default')?.gateway).toBe('fd00:10:0:9::1');
      expect(await pod.ping('fd00:10:0:9::1', { timeoutSec: 2 })).toBe(true);
      expect((await call(bed, { command: 'CHECK', containerId: 'v6only', netns: pod.netnsPath, conf: conf({ prevResult: add.json }) })).code).toBe(0);
      expect((await call(bed, { command: 'STATUS', conf: conf() })).code).toBe(0);
      const del = await call(bed, { command: 'DEL', containerId: 'v6only', netns: pod.netnsPath, conf: conf() });
      expect(del.code, del.stdout).toBe(0);
      expect(store(bed.dataDir)).toEqual({ v4: [], v6: [], attachments: [] });
      expect((await pod.links()).some((l) => l.ifname === 'eth0')).toBe(false);
    });
  });
}

/*
 * The must-show: 100 pods added at the same moment on a dual-stack host (through the
 * agent's socket, as runtimes reach it), then all deleted at once. No address of either family
 * is handed out twice, and none is left behind.
 */
const PODS = 100;

describe.skipIf(!isRoot || !existsSync(CNI_SHIM))('twill CNI plugin, 100 concurrent dual-stack ADDs and DELs', () => {
  useCleanup();

  it('gives 100 distinct addresses of each family and releases all of them', { timeout: 240_000 }, async () => {
    const host = await createTestNetns('cnihost6');
    const bed = await createBed('agent', host, { network: '10.244.0.0/16', subnet: '10.244.8.1/24' }, { network: 'fc00::/48', subnet: 'fc00:0:0:8::1/64' });
    const pods: TestNetns[] = [];
    for (let i = 0; i < PODS; i += 25) pods.push(...await Promise.all(Array.from({ length: Math.min(25, PODS - i) }, () => createTestNetns('cpod6'))));
    const conf = { cniVersion: '1.0.0', name: 'conc6', type: 'twill', subnetFile: bed.subnetFile, dataDir: bed.dataDir };

    const adds = await Promise.all(pods.map((pod, i) => call(bed, { command: 'ADD', containerId: `conc${i}`, netns: pod.netnsPath, conf })));
    expect(adds.filter((r) => r.code !== 0).map((r) => r.stdout + r.stderr)).toEqual([]);
    const v4 = adds.map((r) => resultIps(r)[0]!.address);
    const v6 = adds.map((r) => resultIps(r)[1]!.address);
    expect(v4.every((a) => /^10\.244\.8\.\d+\/24$/.test(a))).toBe(true);
    expect(v6.every((a) => /^fc00:0:0:8::[0-9a-f]+\/64$/.test(a))).toBe(true);
    expect(new Set(v4).size).toBe(PODS);
    expect(new Set(v6).size).toBe(PODS);
    expect(v6).not.toContain('fc00:0:0:8::1/64');
    const s = store(bed.dataDir, 'conc6');
    expect([s.v4.length, s.v6.length, s.attachments.length]).toEqual([PODS, PODS, PODS]);
    // Each sampled pod holds exactly the addresses its result names.
    for (const i of [0, 49, 99]) {
      expect(cidrs(await globalAddrs(pods[i]!, 'eth0', '-4'))).toEqual([v4[i]]);
      expect(cidrs(await globalAddrs(pods[i]!, 'eth0', '-6'))).toEqual([v6[i]]);
    }

    const dels = await Promise.all(pods.map((pod, i) => call(bed, { command: 'DEL', containerId: `conc${i}`, netns: pod.netnsPath, conf })));
    expect(dels.filter((r) => r.code !== 0).map((r) => r.stdout + r.stderr)).toEqual([]);
    expect(store(bed.dataDir, 'conc6')).toEqual({ v4: [], v6: [], attachments: [] });
    expect(await vethNames(host)).toEqual([]);
  });
});
