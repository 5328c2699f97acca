/**
 * Twill's CNI plugin in a real runtime flow: driven the way libcni does it (test/helpers/libcni.ts)
 * and chained with Debian's reference plugins, as a node would run it:
 *
 *   conflist "twt-flow" (1.0.0): twill ─▶ portmap ─▶ tuning ─▶ bandwidth ─▶ recorder (a fake, last)
 *
 *   ext eth0 198.18.9.2/30 ── ext0 198.18.9.1/30  host  cni0 10.244.9.1/24 ── veth ── eth0 10.244.9.x  pod
 *
 * The plugin dir holds a copy of dist/cni/twill (what an installer does; the shim's fallback path
 * is compiled in as an absolute path, so a copy works) ahead of /usr/lib/cni. `ext` stands for
 * the outside world: hostPort traffic arrives from it on the host's own address.
 *
 * Debian's plugins (1.1.1) speak CNI <= 1.0.0, so the chain runs at 1.0.0; GC needs 1.1.0 and is
 * tested with a list holding twill alone. On this kernel ifb, ingress/mirred and tbf all work, so
 * bandwidth stays in the chain (it is skipped only when no ifb device can be made at all).
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanup, tempDir } from '../helpers/cleanup.js';
import { CNI_SHIM, startCniServer, writeSubnetFile } from '../helpers/cni.js';
import { commandAvailable, run } from '../helpers/exec.js';
import { CniRuntime, type CniCacheEntry, type CniResult, type ConfList, type RuntimeConf } from '../helpers/libcni.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { connectPeer, startPeerServer } from '../helpers/tcp-peer.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const DEBIAN_CNI = '/usr/lib/cni';
const DEBIAN_PLUGINS = ['portmap', 'tuning', 'bandwidth'];
const NET = 'twt-flow';
const GC_NET = 'twt-flow-gc';
const GATEWAY = '10.244.9.1';
const HOST_IP = '198.18.9.1';
const EXT_IP = '198.18.9.2';
const POD_PORT = 8080;
const RECORDER = 'twt-recorder';
const NO_AGENT = '/nonexistent/twill-cni.sock';
const BANDWIDTH = { ingressRate: 100_000_000, ingressBurst: 100_000_000, egressRate: 100_000_000, egressBurst: 100_000_000 };
const FLOW_TIMEOUT = 90_000;

/**
 * A plugin placed last in the list: appends what it saw to `conf.log` and answers ADD with its
 * prevResult. Besides its stdin it records the state the plugins before it (on ADD) or after it
 * (on DEL, which runs in reverse) leave: the pod's interface, the host's links (bandwidth's ifb)
 * and the host's NAT table (portmap's chains).
 */
const RECORDER_PLUGIN = `#!${process.execPath}
'use strict';
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const env = process.env;
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
if (env.CNI_COMMAND === 'VERSION') {
  process.stdout.write(JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] }));
  process.exit(0);
}
const out = (cmd, args) => { const r = spawnSync(cmd, args, { encoding: 'utf8' }); return r.status === 0 ? r.stdout : ''; };
const netns = env.CNI_NETNS || '';
const ns = netns.startsWith('/run/netns/') && fs.existsSync(netns) ? netns.slice('/run/netns/'.length) : '';
const entry = {
  command: env.CNI_COMMAND,
  containerId: env.CNI_CONTAINERID,
  stdin: conf,
  podIfPresent: ns !== '' && spawnSync('ip', ['-n', ns, 'link', 'show', 'dev', env.CNI_IFNAME], { stdio: 'ignore' }).status === 0,
  hostLinks: JSON.parse(out('ip', ['-j', 'link', 'show']) || '[]').map((l) => l.ifname),
  nat: out('iptables-save', ['-t', 'nat']),
};
fs.appendFileSync(conf.log, JSON.stringify(entry) + '\\n');
if (env.CNI_COMMAND === 'ADD') process.stdout.write(JSON.stringify(conf.prevResult));
`;

interface RecorderEntry {
  command: string;
  containerId: string;
  stdin: Record<string, unknown> & { prevResult?: CniResult };
  podIfPresent: boolean;
  hostLinks: string[];
  nat: string;
}

/** Whether this kernel lets bandwidth make its ifb device (probed in a throwaway namespace). */
async function ifbWorks(): Promise<boolean> {
  const probe = await createTestNetns('ifbprobe');
  try {
    const r = await probe.run('ip', ['link', 'add', 'twtifb', 'type', 'ifb'], { allowFailure: true });
    return r.code === 0;
  } finally {
    await probe.destroy();
  }
}

const available = existsSync(CNI_SHIM) && DEBIAN_PLUGINS.every((p) => commandAvailable(join(DEBIAN_CNI, p)))
  && commandAvailable('iptables-save');

describe.skipIf(!isRoot || !available)('twill in a libcni runtime flow with Debian portmap, tuning and bandwidth', () => {
  useCleanup();
  let host: TestNetns;
  let ext: TestNetns;
  let work: string;
  let pluginDir: string;
  let subnetFile: string;
  let dataDir: string;
  let cacheDir: string;
  let log: string;
  let socket: string;
  let withBandwidth: boolean;
  /** Runtime whose plugins reach the agent's CNI service. */
  let agentRt: CniRuntime;
  /** Runtime whose twill finds no agent (TWILL_CNI_SOCKET names no socket): the shim's in-process fallback. */
  let noAgentRt: CniRuntime;

  /** The same runtime settings with ip6tables hidden from the plugins (for CHECK; see checkList). */
  let v4Env: Record<string, string>;

  function runtime(twillSocket: string, extraEnv: Record<string, string> = {}): CniRuntime {
    return new CniRuntime({
      pluginDirs: [pluginDir, DEBIAN_CNI], cacheDir, hostNetns: host.name, timeoutMs: 30_000,
      env: { TWILL_CNI_SOCKET: twillSocket, ...extraEnv },
    });
  }

  function twillPlugin(): Record<string, unknown> {
    return { type: 'twill', subnetFile, dataDir, hairpinMode: true };
  }

  function conflist(): ConfList {
    return {
      cniVersion: '1.0.0', name: NET,
      plugins: [
        twillPlugin(),
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
        // dataDir: tuning's backup dir (default /run/cni/tuning) kept in the test's temp dir.
        { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_filter': '1' }, dataDir: join(work, 'tuning') },
        ...(withBandwidth ? [{ type: 'bandwidth', capabilities: { bandwidth: true } }] : []),
        { type: RECORDER, log },
      ],
    };
  }

  function readLog(): RecorderEntry[] {
    if (!existsSync(log)) return [];
    return readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as RecorderEntry);
  }

  /** A pod namespace whose attachment is DEL'd (best effort, as a runtime would) before it goes. */
  async function newPod(list: ConfList, containerId: string, hostPort?: number): Promise<{ pod: TestNetns; conf: RuntimeConf }> {
    const pod = await createTestNetns('pod');
    const conf: RuntimeConf = {
      containerId, netns: pod.netnsPath, ifname: 'eth0',
      args: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', 'default'], ['K8S_POD_NAME', containerId]],
      ...(hostPort !== undefined && {
        capabilityArgs: { portMappings: [{ hostPort, containerPort: POD_PORT, protocol: 'tcp' }], bandwidth: BANDWIDTH },
      }),
    };
    // Through the in-process fallback: it works whether or not an agent is still up.
    cleanup.defer(`CNI DEL ${containerId}`, async () => { await runtime(NO_AGENT).delNetworkList(list, conf).catch(() => undefined); });
    return { pod, conf };
  }

  const connect = connectPeer;

  function podIp(result: CniResult): string {
    return result.ips![0]!.address.split('/')[0]!;
  }

  function addressFile(ip: string, network = NET): string {
    return join(dataDir, network, ip);
  }

  async function hostVeths(): Promise<string[]> {
    return (await host.links()).filter((l) => l.linkinfo?.info_kind === 'veth' && l.ifname !== 'ext0').map((l) => l.ifname);
  }

  /**
   * portmap's NAT lines for this container: the jump to its CNI-DN- chain carries a comment
   * `dnat name: "<net>" id: "<containerId>"` (quotes escaped by iptables-save).
   */
  function portmapLines(nat: string, containerId: string): string[] {
    return nat.split('\n').filter((l) => l.includes('CNI-DN-') && l.includes(`id: \\"${containerId}\\"`));
  }

  async function portmapRules(containerId: string): Promise<string[]> {
    return portmapLines(await host.exec('iptables-save', ['-t', 'nat']), containerId);
  }

  /**
   * CHECK through the list. Debian's portmap 1.1.1 (containernetworking/plugins#819, fixed later)
   * also checks the IPv4 DNAT chain in ip6tables, so CHECK of an IPv4-only pod with port mappings
   * fails whenever ip6tables works. As in libcni-harness.test.ts, the plugins get a PATH without
   * ip6tables, which makes portmap skip IPv6; the PATH keeps nft (twill's in-process fallback
   * checks its masquerade set with it). The unmodified CHECK may fail only in that way.
   */
  async function checkList(twillSocket: string, list: ConfList, conf: RuntimeConf): Promise<void> {
    const plain = await runtime(twillSocket).checkNetworkList(list, conf).then(() => undefined, (e: unknown) => e);
    if (plain !== undefined) expect(plain).toMatchObject({ plugin: 'portmap', message: expect.stringMatching(/could not check ipv6 dnat/) });
    await runtime(twillSocket, v4Env).checkNetworkList(list, conf);
  }

  /** ADD through the list and everything a user checks afterwards; returns the result. */
  async function addAndVerify(rt: CniRuntime, list: ConfList, pod: TestNetns, conf: RuntimeConf, hostPort: number): Promise<CniResult> {
    writeFileSync(log, '');
    const returned = await rt.addNetworkList(list, conf);

    // The result as the runtime caches it: twill's, passed through portmap, tuning and bandwidth.
    const cached = JSON.parse(readFileSync(rt.cacheFile(list, conf), 'utf8')) as CniCacheEntry;
    expect(cached).toMatchObject({ kind: 'cniCacheV1', containerId: conf.containerId, ifName: 'eth0', networkName: NET, netns: pod.netnsPath });
    const result = cached.result!;
    expect(result).toEqual(returned);
    expect(result.cniVersion).toBe('1.0.0');
    const ifs = result.interfaces!;
    expect(ifs.slice(0, 3).map((i) => i.name)).toEqual(['cni0', expect.stringMatching(/^veth[0-9a-f]{8}$/), 'eth0']);
    expect(ifs[0]!.sandbox).toBeUndefined();
    expect(ifs[1]!.sandbox).toBeUndefined();
    expect(ifs[2]!.sandbox).toBe(pod.netnsPath);
    // bandwidth 1.1.1 appends the ifb device it made for egress shaping; nothing else is added.
    const ifb = ifs[3]?.name;
    if (withBandwidth) {
      expect(ifs.map((i) => i.name)).toEqual(['cni0', ifs[1]!.name, 'eth0', expect.stringMatching(/^bwp[0-9a-f]{12}$/)]);
      expect(ifs[3]!.sandbox).toBeUndefined();
    } else {
      expect(ifs).toHaveLength(3);
    }
    expect(result.ips).toEqual([{ address: expect.stringMatching(/^10\.244\.9\.\d+\/24$/), gateway: GATEWAY, interface: 2 }]);
    const ip = podIp(result);
    expect(ip).not.toBe(GATEWAY);
    // The recorder, last in the list, was handed exactly what the runtime cached.
    const [recAdd, ...recRest] = readLog();
    expect(recRest).toEqual([]);
    expect(recAdd!.command).toBe('ADD');
    expect(recAdd!.stdin.prevResult).toEqual(result);

    // What the user sees: the address in the pod, tuning's sysctl, twill's address file.
    const addrs = JSON.parse((await run('ip', ['-j', '-n', pod.name, 'addr'])).stdout) as { ifname: string; addr_info: { family: string; local: string; prefixlen: number }[] }[];
    const eth0 = addrs.find((l) => l.ifname === 'eth0');
    expect(eth0?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${ip}/24`]);
    expect((await pod.exec('cat', ['/proc/sys/net/ipv4/conf/eth0/arp_filter'])).trim()).toBe('1');
    expect(existsSync(addressFile(ip))).toBe(true);
    const hostVeth = ifs[1]!.name;
    expect((await host.link(hostVeth))?.master).toBe('cni0');
    if (withBandwidth) {
      // bandwidth: tbf on the host veth (traffic into the pod), the ifb with tbf (traffic out of it).
      expect(await host.link(ifb!)).toBeDefined();
      expect(await host.exec('tc', ['qdisc', 'show', 'dev', hostVeth])).toMatch(/qdisc tbf/);
      expect(await host.exec('tc', ['qdisc', 'show', 'dev', ifb!])).toMatch(/qdisc tbf/);
    }

    // hostPort: from outside (ext) to the host's own address; portmap DNATs it to the pod without
    // masquerading it (snat only covers hairpin and localhost), so the pod sees ext's address.
    expect(await portmapRules(conf.containerId)).not.toEqual([]);
    await startPeerServer(pod, POD_PORT, `pod-server ${conf.containerId}`);
    expect(await connect(ext, HOST_IP, hostPort)).toEqual({ ok: true, text: EXT_IP });
    // Hairpin (twill's hairpinMode + portmap's snat): the pod reaches itself through its hostPort.
    expect(await connect(pod, HOST_IP, hostPort)).toEqual({ ok: true, text: GATEWAY });
    return result;
  }

  /** DEL through the list and what a user checks afterwards: nothing of the pod is left. */
  async function delAndVerify(rt: CniRuntime, list: ConfList, pod: TestNetns, conf: RuntimeConf, result: CniResult, hostPort: number): Promise<void> {
    const ip = podIp(result);
    writeFileSync(log, '');
    await rt.delNetworkList(list, conf);

    // Reverse order with the cached result: the recorder (last in the list) ran first, while
    // bandwidth's ifb, portmap's chain and twill's eth0 were all still there.
    const [recDel, ...recRest] = readLog();
    expect(recRest).toEqual([]);
    expect(recDel).toMatchObject({ command: 'DEL', containerId: conf.containerId, podIfPresent: true });
    expect(recDel!.stdin.prevResult).toEqual(result);
    expect(recDel!.stdin.prevResult!.ips![0]!.address).toBe(`${ip}/24`);
    expect(portmapLines(recDel!.nat, conf.containerId)).not.toEqual([]);
    expect(recDel!.hostLinks).toContain(result.interfaces![1]!.name);
    if (withBandwidth) expect(recDel!.hostLinks).toContain(result.interfaces![3]!.name);

    expect(existsSync(rt.cacheFile(list, conf))).toBe(false);
    expect(await pod.link('eth0')).toBeUndefined();
    expect(await hostVeths()).toEqual([]);
    if (withBandwidth) expect(await host.link(result.interfaces![3]!.name)).toBeUndefined();
    expect(existsSync(addressFile(ip))).toBe(false);
    expect(await portmapRules(conf.containerId)).toEqual([]);
    expect(await host.exec('iptables-save', ['-t', 'nat'])).not.toMatch(/^:CNI-DN-/m);
    const refused = await connect(ext, HOST_IP, hostPort);
    expect(refused.ok).toBe(false);
    expect(refused.text).toMatch(/ECONNREFUSED/);

    // A second DEL: nothing cached, nothing left, still fine (the recorder ran without prevResult).
    writeFileSync(log, '');
    await rt.delNetworkList(list, conf);
    expect(readLog().map((e) => [e.command, e.stdin.prevResult])).toEqual([['DEL', undefined]]);
  }

  beforeAll(async () => {
    host = await createTestNetns('host');
    ext = await createTestNetns('ext');
    await connectNetns(host, ext, { a: { ifname: 'ext0', cidr: `${HOST_IP}/30` }, b: { ifname: 'eth0', cidr: `${EXT_IP}/30` } });
    work = tempDir('cni-flow');
    pluginDir = join(work, 'plugins');
    mkdirSync(pluginDir);
    // Installed as an installer would: a copy of the shim under the plugin's type name.
    copyFileSync(CNI_SHIM, join(pluginDir, 'twill'));
    chmodSync(join(pluginDir, 'twill'), 0o755);
    writeFileSync(join(pluginDir, RECORDER), RECORDER_PLUGIN);
    chmodSync(join(pluginDir, RECORDER), 0o755);
    subnetFile = writeSubnetFile({ subnet: `${GATEWAY}/24`, ipMasq: true, dir: join(work, 'run') });
    dataDir = join(work, 'ipam');
    cacheDir = join(work, 'cache');
    log = join(work, 'recorder.log');
    withBandwidth = await ifbWorks();
    socket = (await startCniServer(host, { dataDir })).socket;
    agentRt = runtime(socket);
    noAgentRt = runtime(NO_AGENT);
    // PATH for CHECK: iptables (v4) and nft, but no ip6tables (see checkList).
    const v4Bin = join(work, 'bin-v4');
    mkdirSync(v4Bin);
    for (const tool of ['iptables', 'iptables-save', 'iptables-restore', 'nft']) symlinkSync(`/usr/sbin/${tool}`, join(v4Bin, tool));
    v4Env = { PATH: `${v4Bin}:/usr/local/bin:/usr/bin:/bin` };
  });

  describe('one pod through ADD, CHECK and DEL, with the agent', () => {
    useCleanup({ sweep: false });
    const HOST_PORT = 18081;
    let pod: TestNetns;
    let conf: RuntimeConf;
    let added: CniResult | undefined;

    beforeAll(async () => {
      ({ pod, conf } = await newPod(conflist(), 'twt-flow-1', HOST_PORT));
    });

    /** The pod's ADD, done by the first test that needs it (so each test also runs on its own). */
    async function ensureAdded(): Promise<CniResult> {
      added ??= await addAndVerify(agentRt, conflist(), pod, conf, HOST_PORT);
      return added;
    }

    it('ADD: twill\'s result passes through the chain, the pod is wired, tuned and reachable on its hostPort', async () => {
      expect(added).toBeUndefined();
      const result = await ensureAdded();
      // The bandwidth capability reached bandwidth only (portmap and tuning get no runtimeConfig for it).
      expect(JSON.parse(readFileSync(agentRt.cacheFile(conflist(), conf), 'utf8'))).toMatchObject({
        capabilityArgs: { portMappings: [{ hostPort: HOST_PORT, containerPort: POD_PORT, protocol: 'tcp' }], bandwidth: BANDWIDTH },
      });
      expect(result.routes).toEqual(expect.arrayContaining([{ dst: '0.0.0.0/0', gw: GATEWAY }]));
    }, FLOW_TIMEOUT);

    it('CHECK through the list passes', async () => {
      await ensureAdded();
      writeFileSync(log, '');
      await checkList(socket, conflist(), conf);
      expect(readLog().map((e) => e.command).at(-1)).toBe('CHECK');
      expect(readLog().at(-1)!.stdin.prevResult).toEqual(added);
    }, FLOW_TIMEOUT);

    it('DEL runs in reverse with the cached result and leaves nothing; a second DEL succeeds', async () => {
      const result = await ensureAdded();
      await delAndVerify(agentRt, conflist(), pod, conf, result, HOST_PORT);
    }, FLOW_TIMEOUT);
  });

  it('with no agent, the shim\'s in-process fallback runs the same ADD, CHECK and DEL', async () => {
    const HOST_PORT = 18082;
    const list = conflist();
    const { pod, conf } = await newPod(list, 'twt-flow-2', HOST_PORT);
    const result = await addAndVerify(noAgentRt, list, pod, conf, HOST_PORT);
    await checkList(NO_AGENT, list, conf);
    await delAndVerify(noAgentRt, list, pod, conf, result, HOST_PORT);
  }, FLOW_TIMEOUT);

  it('ADD with the agent up, agent stopped, DEL still succeeds and releases the address', async () => {
    const HOST_PORT = 18083;
    const list = conflist();
    // An agent of its own, so stopping it leaves the shared one alone.
    const own = await startCniServer(host, { dataDir, socket: join(tempDir('cni-sock-own'), 'cni.sock') });
    const rt = runtime(own.socket);
    const { pod, conf } = await newPod(list, 'twt-flow-3', HOST_PORT);
    const result = await addAndVerify(rt, list, pod, conf, HOST_PORT);
    await own.daemon.stop();
    await waitFor(() => !own.daemon.running, { timeoutMs: 5000, what: 'the CNI server to exit' });
    await delAndVerify(rt, list, pod, conf, result, HOST_PORT);
  }, FLOW_TIMEOUT);

  it('GC (1.1.0, twill alone): stale attachments are released, valid ones kept', async () => {
    const list: ConfList = { cniVersion: '1.1.0', name: GC_NET, plugins: [twillPlugin()] };
    await agentRt.statusNetworkList(list);
    const ips: string[] = [];
    const confs: RuntimeConf[] = [];
    for (const id of ['twt-gc-keep', 'twt-gc-stale', 'twt-gc-leaked']) {
      const { conf } = await newPod(list, id);
      const result = await agentRt.addNetworkList(list, conf);
      expect(result.cniVersion).toBe('1.1.0');
      ips.push(podIp(result));
      confs.push(conf);
    }
    for (const ip of ips) expect(existsSync(addressFile(ip, GC_NET))).toBe(true);
    // The third attachment's cache entry is lost (a runtime that crashed before writing it): libcni
    // cannot DEL it, only twill's own GC can find its address.
    rmSync(agentRt.cacheFile(list, confs[2]!));

    await agentRt.gcNetworkList(list, [{ containerID: 'twt-gc-keep', ifname: 'eth0' }]);
    expect(existsSync(addressFile(ips[0]!, GC_NET))).toBe(true);
    expect(existsSync(addressFile(ips[1]!, GC_NET))).toBe(false);
    expect(existsSync(addressFile(ips[2]!, GC_NET))).toBe(false);
    expect(agentRt.getCachedResult(list, confs[0]!)).toBeDefined();
    expect(agentRt.getCachedResult(list, confs[1]!)).toBeUndefined();

    await agentRt.delNetworkList(list, confs[0]!);
    expect(existsSync(addressFile(ips[0]!, GC_NET))).toBe(false);
  }, FLOW_TIMEOUT);
});
