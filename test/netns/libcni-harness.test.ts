/**
 * Proves test/helpers/libcni.ts, the libcni mimic: first against a fake plugin that records what
 * it is given (stdin, CNI_* env, order), then against Debian's reference plugins (bridge +
 * host-local, portmap, tuning; CNI <= 1.0.0) running in a "host" namespace for a "pod" namespace:
 *
 *   ext eth0 198.18.0.2/30 ── ext0 198.18.0.1/30  host  cni0 10.99.0.1/24 ── veth ── eth0 10.99.0.x  pod
 *
 * `ext` stands for the outside world: hostPort traffic arrives from it on the host's own address.
 */
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cleanup, processAlive, tempDir } from '../helpers/cleanup.js';
import { commandAvailable } from '../helpers/exec.js';
import {
  CniError, CniRuntime, effectiveVersion, type CniCacheEntry, type CniResult, type ConfList, type RuntimeConf,
} from '../helpers/libcni.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { connectPeer, startPeerServer } from '../helpers/tcp-peer.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const DEBIAN_CNI = '/usr/lib/cni';
const DEBIAN_PLUGINS = ['bridge', 'host-local', 'portmap', 'tuning'];
const FAKE = 'twt-fake';

/**
 * A plugin that appends {tag, command, path, env (CNI_*), stdin, ifPresent} to `conf.log` and
 * answers ADD with its prevResult (or an empty result). `conf.fail = {on: [commands], code, via}`
 * makes it fail: via "stdout" (the error JSON on stdout, as Go plugins do), "stderr" (JSON on
 * stderr only), "text" (no JSON), "hang" (starts a child `sleep`, logs its pid and never exits).
 */
const FAKE_PLUGIN = `#!${process.execPath}
'use strict';
const fs = require('node:fs');
const { spawn, spawnSync } = require('node:child_process');
const env = process.env;
const cmd = env.CNI_COMMAND;
const conf = JSON.parse(fs.readFileSync(0, 'utf8'));
if (cmd === 'VERSION') {
  process.stdout.write(JSON.stringify({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] }));
  process.exit(0);
}
let ifPresent = null;
if ((env.CNI_NETNS || '').startsWith('/run/netns/') && fs.existsSync(env.CNI_NETNS)) {
  const ns = env.CNI_NETNS.slice('/run/netns/'.length);
  ifPresent = spawnSync('ip', ['-n', ns, 'link', 'show', 'dev', env.CNI_IFNAME], { stdio: 'ignore' }).status === 0;
}
const cniEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('CNI_') || k === 'TWT_EXTRA'));
const entry = { tag: conf.tag ?? null, command: cmd, path: __filename, env: cniEnv, stdin: conf, ifPresent };
const fail = conf.fail && conf.fail.on.includes(cmd) ? conf.fail : undefined;
if (fail && fail.via === 'hang') {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  entry.childPid = child.pid;
}
if (conf.log) fs.appendFileSync(conf.log, JSON.stringify(entry) + '\\n');
if (fail) {
  const json = JSON.stringify({ code: fail.code, msg: 'fake failure', details: 'asked to fail on ' + cmd });
  if (fail.via === 'hang') setInterval(() => {}, 1000);
  else if (fail.via === 'stderr') { process.stderr.write('log line\\n' + json + '\\n'); process.exit(1); }
  else if (fail.via === 'text') { process.stderr.write('plain failure\\n'); process.exit(3); }
  else { process.stdout.write(json); process.stderr.write('some log\\n'); process.exit(1); }
} else {
  if (cmd === 'ADD') {
    const result = conf.prevResult ?? { cniVersion: conf.cniVersion, interfaces: [], ips: [] };
    if (conf.omitVersion) delete result.cniVersion;
    process.stdout.write(JSON.stringify(result));
  }
}
`;

interface LogEntry {
  tag: string | null;
  command: string;
  path: string;
  env: Record<string, string>;
  stdin: Record<string, unknown> & { prevResult?: CniResult; runtimeConfig?: Record<string, unknown> };
  ifPresent: boolean | null;
  childPid?: number;
}

function readLog(file: string): LogEntry[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry);
}

/** Writes the fake plugin as `name` into each dir. */
function installFake(dirs: string[], name = FAKE): void {
  for (const dir of dirs) {
    writeFileSync(join(dir, name), FAKE_PLUGIN);
    chmodSync(join(dir, name), 0o755);
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('libcni mimic with a recording fake plugin (no privileges needed)', () => {
  useCleanup();
  let dirA: string;
  let dirB: string;
  let cacheDir: string;
  let log: string;
  let runtime: CniRuntime;
  const fake = (tag: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ type: FAKE, tag, log, ...extra });

  beforeAll(() => {
    const work = tempDir('libcni-fake');
    dirA = join(work, 'a');
    dirB = join(work, 'b');
    cacheDir = join(work, 'cache');
    log = join(work, 'calls.log');
    for (const d of [dirA, dirB]) mkdirSync(d);
    installFake([dirA, dirB]);
    installFake([dirB], 'twt-only-b');
    // The fake plugins only print; they run in this process's namespace on purpose (no hostNetns).
    runtime = new CniRuntime({ pluginDirs: [dirA, dirB], cacheDir, env: { TWT_EXTRA: 'x' }, timeoutMs: 10_000 });
  });

  it('builds stdin, runtimeConfig and env like libcni, chains ADD results and caches the last', async () => {
    writeFileSync(log, '');
    const list: ConfList = {
      cniVersion: '1.0.0', name: 'fakenet',
      plugins: [
        fake('first', { capabilities: { portMappings: true, bandwidth: true, mac: false }, runtimeConfig: { stale: true } }),
        { type: 'twt-only-b', tag: 'second', log },
      ],
    };
    const portMappings = [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }];
    const rt: RuntimeConf = {
      containerId: 'ctr-1', netns: '', ifname: 'eth0', args: [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']],
      capabilityArgs: { portMappings, mac: 'c2:11:22:33:44:55', ips: ['10.1.2.3/24'] },
    };
    const result = await runtime.addNetworkList(list, rt);
    const [first, second, ...rest] = readLog(log);
    expect(rest).toEqual([]);
    expect(first!.path).toBe(join(dirA, FAKE)); // first dir that has it
    expect(second!.path).toBe(join(dirB, 'twt-only-b'));
    expect(first!.stdin).toEqual({
      type: FAKE, tag: 'first', log, capabilities: { portMappings: true, bandwidth: true, mac: false },
      name: 'fakenet', cniVersion: '1.0.0', runtimeConfig: { portMappings }, // declared and supplied only; replaces the conf's own
    });
    expect(first!.env).toEqual({
      CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-1', CNI_NETNS: '', CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web', CNI_PATH: `${dirA}:${dirB}`, TWT_EXTRA: 'x',
    });
    expect(second!.stdin.prevResult).toEqual({ cniVersion: '1.0.0', interfaces: [], ips: [] });
    expect(second!.stdin).not.toHaveProperty('runtimeConfig');
    expect(result).toEqual({ cniVersion: '1.0.0', interfaces: [], ips: [] });

    const file = runtime.cacheFile(list, rt);
    expect(file).toBe(join(cacheDir, 'results', 'fakenet-ctr-1-eth0'));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const cached = JSON.parse(readFileSync(file, 'utf8')) as CniCacheEntry;
    expect(cached).toEqual({
      kind: 'cniCacheV1', containerId: 'ctr-1', ifName: 'eth0', networkName: 'fakenet',
      config: Buffer.from(JSON.stringify(list)).toString('base64'),
      cniArgs: rt.args, capabilityArgs: rt.capabilityArgs, result, // netns '' is omitted, as Go's omitempty does
    });

    writeFileSync(log, '');
    await runtime.checkNetworkList(list, rt);
    await runtime.delNetworkList(list, rt);
    const calls = readLog(log);
    expect(calls.map((c) => `${c.command} ${c.tag}`)).toEqual(['CHECK first', 'CHECK second', 'DEL second', 'DEL first']);
    for (const c of calls) expect(c.stdin.prevResult).toEqual(result);
    expect(existsSync(file)).toBe(false);

    writeFileSync(log, '');
    await runtime.delNetworkList(list, rt); // nothing cached: DEL still runs, without prevResult
    expect(readLog(log).map((c) => [c.tag, c.stdin.prevResult])).toEqual([['second', undefined], ['first', undefined]]);
  });

  it('parses the CNI error from stdout, falls back to stderr, and reports plain failures', async () => {
    const rt: RuntimeConf = { containerId: 'ctr-err', netns: '', ifname: 'eth0' };
    const failing = (via: string, code = 7): ConfList => ({ cniVersion: '1.0.0', name: 'errnet', plugins: [fake(via, { fail: { on: ['ADD'], code, via } })] });

    const fromStdout = await rejection(runtime.addNetworkList(failing('stdout'), rt));
    expect(fromStdout).toBeInstanceOf(CniError);
    expect(fromStdout).toMatchObject({ code: 7, details: 'asked to fail on ADD', plugin: FAKE, command: 'ADD', exitCode: 1, stderr: 'some log\n' });
    expect((fromStdout as Error).message).toMatch(/fake failure: asked to fail on ADD \(CNI error 7\)/);

    expect(await rejection(runtime.addNetworkList(failing('stderr', 11), rt))).toMatchObject({ code: 11, exitCode: 1 });
    const plain = await rejection(runtime.addNetworkList(failing('text'), rt));
    expect(plain).toMatchObject({ code: undefined, details: undefined, exitCode: 3, stderr: 'plain failure\n' });
    expect((plain as Error).message).toMatch(/exit code 3 without a CNI error[\s\S]*plain failure/);
    expect(existsSync(join(cacheDir, 'results', 'errnet-ctr-err-eth0'))).toBe(false);
  });

  it('validates ids before ADD and finds plugins like libcni', async () => {
    writeFileSync(log, '');
    const list: ConfList = { cniVersion: '1.0.0', name: 'fakenet', plugins: [fake('v')] };
    await expect(runtime.addNetworkList(list, { containerId: 'bad id', netns: '', ifname: 'eth0' })).rejects.toMatchObject({ code: 4, exitCode: null });
    await expect(runtime.addNetworkList(list, { containerId: 'c', netns: '', ifname: 'a-very-long-ifname' })).rejects.toMatchObject({ code: 4 });
    await expect(runtime.addNetworkList({ ...list, name: 'bad/name' }, { containerId: 'c', netns: '', ifname: 'eth0' })).rejects.toMatchObject({ code: 7 });
    await expect(runtime.addNetworkList({ ...list, plugins: [{ type: 'twt-missing' }] }, { containerId: 'c', netns: '', ifname: 'eth0' }))
      .rejects.toThrow(/failed to find plugin "twt-missing"/);
    expect(readLog(log)).toEqual([]);
  });

  it('kills the plugin process group on timeout', async () => {
    writeFileSync(log, '');
    const quick = new CniRuntime({ pluginDirs: [dirA], cacheDir, timeoutMs: 1000 });
    const list: ConfList = { cniVersion: '1.0.0', name: 'hangnet', plugins: [fake('hang', { fail: { on: ['ADD'], code: 7, via: 'hang' } })] };
    const err = await rejection(quick.addNetworkList(list, { containerId: 'c', netns: '', ifname: 'eth0' }));
    expect(err).toMatchObject({ exitCode: null, code: undefined });
    expect((err as Error).message).toMatch(/timed out after 1000 ms/);
    const child = readLog(log)[0]!.childPid!;
    await waitFor(() => !processAlive(child), { timeoutMs: 3000, what: `the plugin's child ${child} to be killed` });
  });

  it('skips CHECK under disableCheck, refuses it below 0.4.0, and picks the version from cniVersions', async () => {
    writeFileSync(log, '');
    const rt: RuntimeConf = { containerId: 'ctr-v', netns: '', ifname: 'eth0' };
    await runtime.checkNetworkList({ cniVersion: '1.0.0', name: 'fakenet', disableCheck: true, plugins: [fake('x')] }, rt);
    await expect(runtime.checkNetworkList({ cniVersion: '0.3.1', name: 'fakenet', plugins: [fake('x')] }, rt)).rejects.toThrow(/does not support the CHECK command/);
    expect(readLog(log)).toEqual([]);

    const multi: ConfList = { cniVersion: '1.0.0', cniVersions: ['0.4.0', '1.1.0', '2.0.0'], name: 'fakenet', plugins: [fake('m', { omitVersion: true })] };
    expect(effectiveVersion(multi)).toBe('1.1.0'); // the highest that libcni (spec 1.1.0) knows
    const result = await runtime.addNetworkList(multi, rt);
    expect(readLog(log)[0]!.stdin.cniVersion).toBe('1.1.0');
    expect(result.cniVersion).toBe('1.1.0'); // a result without a version takes the list's
    await runtime.delNetworkList(multi, rt);
  });

  it('GC: DEL for stale cached attachments, then GC with both attachment keys; STATUS from 1.1.0', async () => {
    const list: ConfList = { cniVersion: '1.1.0', name: 'gcnet', plugins: [fake('g1'), fake('g2')] };
    const keep: RuntimeConf = { containerId: 'keep', netns: '', ifname: 'eth0' };
    const stale: RuntimeConf = { containerId: 'stale', netns: '', ifname: 'eth1', args: [['K8S_POD_NAME', 'old']] };
    await runtime.addNetworkList(list, keep);
    const staleResult = await runtime.addNetworkList(list, stale);
    await runtime.addNetworkList({ ...list, name: 'othernet' }, stale); // another network: not this GC's business
    writeFileSync(log, '');

    await runtime.gcNetworkList(list, [{ containerID: 'keep', ifname: 'eth0' }]);
    const calls = readLog(log);
    expect(calls.map((c) => `${c.command} ${c.tag} ${c.env.CNI_CONTAINERID}`)).toEqual(['DEL g2 stale', 'DEL g1 stale', 'GC g1 ', 'GC g2 ']);
    expect(calls[0]!.stdin.prevResult).toEqual(staleResult);
    expect(calls[0]!.env.CNI_ARGS).toBe('K8S_POD_NAME=old'); // replayed from the cache
    const valid = [{ containerID: 'keep', ifname: 'eth0' }];
    expect(calls[2]!.stdin).toMatchObject({ 'cni.dev/valid-attachments': valid, 'cni.dev/attachments': valid, name: 'gcnet', cniVersion: '1.1.0' });
    expect(calls[2]!.env).toMatchObject({ CNI_COMMAND: 'GC', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '' });
    expect(runtime.getCachedResult(list, stale)).toBeUndefined();
    expect(runtime.getCachedResult(list, keep)).toBeDefined();
    expect(runtime.getCachedResult({ ...list, name: 'othernet' }, stale)).toBeDefined();

    writeFileSync(log, '');
    await runtime.gcNetworkList({ ...list, disableGC: true }, []);
    await runtime.statusNetworkList({ ...list, cniVersion: '1.0.0' });
    expect(readLog(log)).toEqual([]);
    await runtime.statusNetworkList(list);
    expect(readLog(log).map((c) => `${c.command} ${c.tag}`)).toEqual(['STATUS g1', 'STATUS g2']);
    expect(await runtime.version(FAKE)).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  });

  it('DEL drops a corrupt cache entry and runs without prevResult', async () => {
    const list: ConfList = { cniVersion: '1.0.0', name: 'fakenet', plugins: [fake('c')] };
    const rt: RuntimeConf = { containerId: 'ctr-corrupt', netns: '', ifname: 'eth0' };
    await runtime.addNetworkList(list, rt);
    appendFileSync(runtime.cacheFile(list, rt), 'garbage');
    expect(() => runtime.getCachedResult(list, rt)).toThrow();
    writeFileSync(log, '');
    await runtime.delNetworkList(list, rt);
    expect(readLog(log).map((c) => c.stdin.prevResult)).toEqual([undefined]);
    expect(existsSync(runtime.cacheFile(list, rt))).toBe(false);
  });
});

const debianAvailable = DEBIAN_PLUGINS.every((p) => commandAvailable(join(DEBIAN_CNI, p))) && commandAvailable('iptables-save');

describe.skipIf(!isRoot || !debianAvailable)("libcni mimic driving Debian's reference plugins", () => {
  useCleanup();
  const NET = 'twt-libcni';
  const SUBNET = '10.99.0.0/24';
  const GATEWAY = '10.99.0.1';
  const HOST_IP = '198.18.0.1';
  const EXT_IP = '198.18.0.2';
  const HOST_PORT = 18080;
  const POD_PORT = 8080;
  let host: TestNetns;
  let ext: TestNetns;
  let work: string;
  let ipamDir: string;
  let log: string;
  let runtime: CniRuntime;
  let v4Runtime: CniRuntime;

  /** What the pod's server says when `from` connects to ip:port (default the hostPort). */
  const connect = (from: TestNetns, ip: string, port = HOST_PORT): ReturnType<typeof connectPeer> => connectPeer(from, ip, port);

  function bridgePlugin(): Record<string, unknown> {
    return {
      type: 'bridge', bridge: 'cni0', isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: SUBNET }]], dataDir: ipamDir },
    };
  }

  function conflist(extra: { first?: Record<string, unknown>[]; last?: Record<string, unknown>[] } = {}): ConfList {
    return {
      cniVersion: '1.0.0', name: NET,
      plugins: [
        ...(extra.first ?? []),
        bridgePlugin(),
        { type: 'portmap', capabilities: { portMappings: true } },
        { type: 'tuning', sysctl: { 'net.core.somaxconn': '1234' }, dataDir: join(work, 'tuning') },
        ...(extra.last ?? []),
      ],
    };
  }

  /** A pod namespace whose attachment is DEL'd (best effort, as a runtime would) before it goes. */
  async function newPod(list: ConfList, containerId: string, capabilityArgs?: Record<string, unknown>): Promise<{ pod: TestNetns; rt: RuntimeConf }> {
    const pod = await createTestNetns('pod');
    const rt: RuntimeConf = {
      containerId, netns: pod.netnsPath, ifname: 'eth0',
      args: [['IgnoreUnknown', '1'], ['K8S_POD_NAMESPACE', 'default'], ['K8S_POD_NAME', containerId]],
      ...(capabilityArgs && { capabilityArgs }),
    };
    cleanup.defer(`CNI DEL ${containerId}`, async () => { await runtime.delNetworkList(list, rt).catch(() => undefined); });
    return { pod, rt };
  }

  function podIp(result: CniResult): string {
    return result.ips![0]!.address.split('/')[0]!;
  }

  async function natRules(): Promise<string> {
    return host.exec('iptables-save', ['-t', 'nat']);
  }

  beforeAll(async () => {
    host = await createTestNetns('host');
    ext = await createTestNetns('ext');
    await connectNetns(host, ext, { a: { ifname: 'ext0', cidr: `${HOST_IP}/30` }, b: { ifname: 'eth0', cidr: `${EXT_IP}/30` } });
    work = tempDir('libcni-debian');
    ipamDir = join(work, 'ipam');
    log = join(work, 'calls.log');
    const fakeDir = join(work, 'plugins');
    mkdirSync(fakeDir);
    installFake([fakeDir]);
    runtime = new CniRuntime({ pluginDirs: [fakeDir, DEBIAN_CNI], cacheDir: join(work, 'cache'), hostNetns: host.name });
    // The same runtime (same cache), but its plugins find iptables and not ip6tables.
    const v4Bin = join(work, 'bin-v4');
    mkdirSync(v4Bin);
    for (const tool of ['iptables', 'iptables-save', 'iptables-restore']) symlinkSync(`/usr/sbin/${tool}`, join(v4Bin, tool));
    v4Runtime = new CniRuntime({ pluginDirs: [...runtime.pluginDirs], cacheDir: runtime.cacheDir, hostNetns: host.name, env: { PATH: `${v4Bin}:/usr/bin:/bin` } });
  });

  it('VERSION of Debian bridge tops out at 1.0.0', async () => {
    const v = await runtime.version('bridge');
    expect(v.supportedVersions).toContain('1.0.0');
    expect(v.supportedVersions).not.toContain('1.1.0');
  });

  it('ADD caches the result and wires the pod, CHECK passes, the hostPort reaches the pod, DEL undoes it all', async () => {
    const list = conflist();
    const portMappings = [{ hostPort: HOST_PORT, containerPort: POD_PORT, protocol: 'tcp' }];
    const { pod, rt } = await newPod(list, 'twt-pod-1', { portMappings });

    const result = await runtime.addNetworkList(list, rt);
    expect(result.cniVersion).toBe('1.0.0');
    const ifs = result.interfaces!;
    expect(ifs.map((i) => i.name)).toEqual(['cni0', expect.stringMatching(/^veth/), 'eth0']);
    expect(ifs[2]!.sandbox).toBe(pod.netnsPath);
    expect(result.ips).toEqual([{ address: expect.stringMatching(/^10\.99\.0\.\d+\/24$/), gateway: GATEWAY, interface: 2 }]);
    const ip = podIp(result);

    // The cache, where and as libcni writes it.
    const file = join(work, 'cache', 'results', `${NET}-twt-pod-1-eth0`);
    expect(runtime.cacheFile(list, rt)).toBe(file);
    const cached = JSON.parse(readFileSync(file, 'utf8')) as CniCacheEntry;
    expect(cached).toEqual({
      kind: 'cniCacheV1', containerId: 'twt-pod-1', ifName: 'eth0', networkName: NET, netns: pod.netnsPath,
      config: Buffer.from(JSON.stringify(list)).toString('base64'), cniArgs: rt.args, capabilityArgs: { portMappings }, result,
    });
    expect(runtime.getCachedResult(list, rt)).toEqual(result);

    // The pod: the address from the result, the default route, tuning's sysctl; host-local's record.
    const eth0 = await pod.link('eth0');
    expect(eth0?.addr_info?.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`)).toEqual([`${ip}/24`]);
    expect(eth0?.address).toBe(ifs[2]!.mac);
    expect(await pod.routes()).toContainEqual(expect.objectContaining({ dst: 'default', gateway: GATEWAY }));
    expect(pod.readSysctl('net.core.somaxconn')).toBe('1234');
    const ipamFile = join(ipamDir, NET, ip);
    expect(readFileSync(ipamFile, 'utf8')).toBe('twt-pod-1\r\neth0');

    // Debian's portmap 1.1.1 (containernetworking/plugins#819, fixed later) also checks the IPv4
    // DNAT chain in ip6tables, so CHECK of an IPv4-only pod with port mappings fails whenever
    // ip6tables works. Hiding ip6tables from the plugins (PATH) makes it skip IPv6, and CHECK passes.
    const check = await runtime.checkNetworkList(list, rt).then(() => undefined, (e: unknown) => e);
    if (check !== undefined) expect(check).toMatchObject({ plugin: 'portmap', message: expect.stringMatching(/could not check ipv6 dnat/) });
    await v4Runtime.checkNetworkList(list, rt);

    // hostPort: from outside (ext) to the host's own address; portmap DNATs it to the pod and
    // does not masquerade it, so the pod sees ext's address.
    await startPeerServer(pod, POD_PORT, 'pod-server');
    expect(await connect(ext, ip, POD_PORT)).toEqual({ ok: false, text: expect.any(String) }); // no route to the pod network from ext
    expect(await connect(ext, HOST_IP)).toEqual({ ok: true, text: EXT_IP });
    expect(await natRules()).toMatch(/CNI-DN-/);
    // From inside the host, to its own addresses and to 127.0.0.1 (portmap's OUTPUT rule): localhost
    // connections are masqueraded to the bridge address. portmap turns on route_localnet for cni0
    // itself; nothing else (net.ipv4.conf.all.route_localnet) is needed.
    expect(await connect(host, HOST_IP)).toEqual({ ok: true, text: HOST_IP });
    expect(await connect(host, GATEWAY)).toEqual({ ok: true, text: GATEWAY });
    expect(await connect(host, '127.0.0.1')).toEqual({ ok: true, text: GATEWAY });
    expect(host.readSysctl('net.ipv4.conf.cni0.route_localnet')).toBe('1');
    expect(host.readSysctl('net.ipv4.conf.all.route_localnet')).toBe('0');
    // Hairpin: the pod reaches itself through its hostPort, masqueraded too.
    expect(await connect(pod, HOST_IP)).toEqual({ ok: true, text: GATEWAY });

    await runtime.delNetworkList(list, rt);
    expect(existsSync(file)).toBe(false);
    expect(await pod.link('eth0')).toBeUndefined();
    expect(existsSync(ipamFile)).toBe(false);
    expect(await natRules()).not.toMatch(/CNI-DN-/);
    expect(await connect(ext, HOST_IP)).toMatchObject({ ok: false });

    await runtime.delNetworkList(list, rt); // again: nothing cached, nothing left, still fine
  });

  it('DEL runs the plugins in reverse order, each with the cached result', async () => {
    writeFileSync(log, '');
    const list = conflist({ first: [{ type: FAKE, tag: 'first', log }], last: [{ type: FAKE, tag: 'last', log }] });
    const { rt } = await newPod(list, 'twt-pod-2');
    const result = await runtime.addNetworkList(list, rt);
    const add = readLog(log);
    expect(add.map((c) => `${c.command} ${c.tag}`)).toEqual(['ADD first', 'ADD last']);
    expect(add[0]!.stdin.prevResult).toBeUndefined();
    expect(add[1]!.stdin.prevResult).toEqual(result); // tuning's result, which the fake passes on
    expect(add[1]!.ifPresent).toBe(true);

    writeFileSync(log, '');
    await runtime.checkNetworkList(list, rt);
    await runtime.delNetworkList(list, rt);
    const calls = readLog(log);
    expect(calls.map((c) => `${c.command} ${c.tag}`)).toEqual(['CHECK first', 'CHECK last', 'DEL last', 'DEL first']);
    for (const c of calls) expect(c.stdin.prevResult).toEqual(result);
    // Reverse order, seen from the pod: DEL reached `last` before bridge removed eth0, `first` after.
    expect(calls[2]!.ifPresent).toBe(true);
    expect(calls[3]!.ifPresent).toBe(false);
    expect(calls[2]!.env).toMatchObject({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'twt-pod-2', CNI_NETNS: rt.netns, CNI_PATH: runtime.pluginDirs.join(':') });
    expect(runtime.getCachedResult(list, rt)).toBeUndefined();
  });

  it('a failing plugin surfaces as CniError with its code; nothing is cached and DEL cleans up', async () => {
    writeFileSync(log, '');
    const list = conflist({ last: [{ type: FAKE, tag: 'failer', log, fail: { on: ['ADD'], code: 7 } }] });
    const { pod, rt } = await newPod(list, 'twt-pod-3');
    const err = await rejection(runtime.addNetworkList(list, rt));
    expect(err).toBeInstanceOf(CniError);
    expect(err).toMatchObject({ code: 7, plugin: FAKE, command: 'ADD', exitCode: 1, details: 'asked to fail on ADD' });
    expect(existsSync(runtime.cacheFile(list, rt))).toBe(false);
    // libcni does not undo a failed ADD: bridge's work is still there until the runtime calls DEL.
    const eth0 = await pod.link('eth0');
    expect(eth0).toBeDefined();
    const ip = eth0!.addr_info!.find((a) => a.family === 'inet')!.local;
    expect(existsSync(join(ipamDir, NET, ip))).toBe(true);

    writeFileSync(log, '');
    await runtime.delNetworkList(list, rt);
    expect(readLog(log).map((c) => [c.command, c.stdin.prevResult])).toEqual([['DEL', undefined]]);
    expect(await pod.link('eth0')).toBeUndefined();
    expect(existsSync(join(ipamDir, NET, ip))).toBe(false);
  });

});
