import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { parsePing } from '../../src/ctl/demo/measure.js';
import { bridgeConfig, missingReferencePlugins } from '../../src/ctl/demo/reference-cni.js';
import { parseSubnetEnv } from '../../src/core/subnet-env.js';
import { STATE_FILE } from '../../src/ctl/demo/state.js';
import { listNetns } from '../../src/netlink/index.js';
import { commandAvailable, run, type RunResult } from '../helpers/exec.js';
import { kernelHasIpip } from '../helpers/kernel-features.js';
import { isRoot } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

// `twillctl demo` end to end, as a newcomer runs it: the built twillctl (npm run build first),
// real etcd, real twilld per host namespace, pods wired by Debian's reference CNI plugins.

const CTL = resolve(import.meta.dirname, '../../dist/src/ctl/main.js');

interface DemoJson {
  backend: string;
  hosts: { name: string; underlayIp: string; subnet: string }[];
  pods: { name: string; host: string; ip: string }[];
  matrix: { from: string; to: string; ok: boolean; rttMs: number | null; lossPct: number }[];
  iperf: { from: string; to: string; gbps: number } | null;
  ok: boolean;
  kept: boolean;
  tmpDir: string | null;
}

const demoNamespaces = (): string[] => listNetns().filter((n) => n.startsWith('twill-demo-'));
const registered = (backend: string): boolean => registerBuiltins().types().includes(backend);
const demo = (args: readonly string[], timeoutMs = 110_000): Promise<RunResult> =>
  run('node', [CTL, 'demo', ...args], { allowFailure: true, timeoutMs });

/** Pids of the demo's daemons (etcd on the underlay address, twilld pointed at it). */
function demoDaemonPids(): number[] {
  return listPids().filter((pid) => {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes('http://198.18.0.254:2379') && (cmd.includes('agent/main.js') || cmd.includes('etcd'));
    } catch {
      return false;
    }
  });
}

function listPids(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number);
}

function parse(r: RunResult): DemoJson {
  try {
    return JSON.parse(r.stdout) as DemoJson;
  } catch {
    throw new Error(`demo printed no JSON (exit ${r.code}):\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  }
}

/** Same-host pairs are those whose pods share a host. */
function split(j: DemoJson): { same: DemoJson['matrix']; cross: DemoJson['matrix'] } {
  const hostOf = new Map(j.pods.map((p) => [p.name, p.host]));
  const same = j.matrix.filter((m) => hostOf.get(m.from) === hostOf.get(m.to));
  return { same, cross: j.matrix.filter((m) => !same.includes(m)) };
}

function expectShape(j: DemoJson, backend: string): void {
  expect(j.backend).toBe(backend);
  expect(j.hosts.map((h) => [h.name, h.underlayIp])).toEqual([['twill-demo-host1', '198.18.0.1'], ['twill-demo-host2', '198.18.0.2']]);
  for (const h of j.hosts) expect(h.subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
  expect(new Set(j.hosts.map((h) => h.subnet)).size).toBe(2);
  expect(j.pods.map((p) => p.name)).toEqual([
    'twill-demo-host1-pod1', 'twill-demo-host1-pod2', 'twill-demo-host2-pod1', 'twill-demo-host2-pod2',
  ]);
  for (const p of j.pods) {
    // Each pod's address comes from its own host's lease.
    const subnet = j.hosts.find((h) => h.name === p.host)!.subnet;
    expect(p.ip.split('.').slice(0, 3).join('.')).toBe(subnet.split('.').slice(0, 3).join('.'));
  }
  expect(j.matrix).toHaveLength(12);
  expect(j.iperf).toBeNull();
}

const ready = isRoot && commandAvailable('etcd') && commandAvailable('ping') && missingReferencePlugins().length === 0;
// ipip runs where the kernel has it (inside the VM harness: test/vm); elsewhere the demo must say so.
const hasIpip = ready && await kernelHasIpip();

describe.skipIf(!ready)('twillctl demo', () => {
  beforeAll(async () => {
    if (!existsSync(CTL)) throw new Error(`${CTL} is missing: run \`npm run build\` before the integration tests`);
    // A demo left by an earlier, killed run would make the first test refuse to start.
    await demo(['--down']);
  });

  afterAll(async () => {
    // Whatever a failed test left behind.
    if (demoNamespaces().length > 0 || existsSync(STATE_FILE)) await demo(['--down']);
    expect(demoNamespaces()).toEqual([]);
  });

  for (const backend of ['vxlan', 'host-gw', 'ipip', 'bgp'] as const) {
    it.skipIf(!registered(backend) || (backend === 'ipip' && !hasIpip))(`connects every pod to every pod with ${backend} and removes everything`, async () => {
      const r = await demo(['--json', '--hosts', '2', '--pods-per-host', '2', '--no-iperf', '--backend', backend]);
      const j = parse(r);
      expect(r.code, r.stderr).toBe(0);
      expectShape(j, backend);
      for (const m of j.matrix) {
        expect(m, `${m.from} -> ${m.to}`).toMatchObject({ ok: true, lossPct: 0 });
        expect(m.rttMs).toBeGreaterThan(0);
      }
      expect(j.ok).toBe(true);
      expect(r.stderr).toMatch(/\[6\/6\] pinging every pod from every pod \(12 pairs/);
      expect(demoNamespaces()).toEqual([]);
      expect(existsSync(STATE_FILE)).toBe(false);
      expect(demoDaemonPids()).toEqual([]);
    });
  }

  for (const backend of ['vxlan', 'host-gw', 'bgp'] as const) {
    it(`--ipv6 builds a dual-stack cluster with ${backend}: every pod reaches every pod over IPv4 and over IPv6`, async () => {
      const r = await demo(['--json', '--ipv6', '--hosts', '2', '--pods-per-host', '2', '--no-iperf', '--backend', backend]);
      const j = parse(r) as Omit<DemoJson, 'hosts' | 'pods'> & {
        hosts: (DemoJson['hosts'][number] & { subnetV6?: string; underlayIpv6?: string })[];
        pods: (DemoJson['pods'][number] & { ipv6?: string })[];
        matrix6: DemoJson['matrix'];
      };
      expect(r.code, r.stderr).toBe(0);
      expectShape(j, backend);
      expect(j.hosts.map((h) => h.underlayIpv6)).toEqual(['fd00:18::1', 'fd00:18::2']);
      for (const p of j.pods) {
        const subnetV6 = j.hosts.find((h) => h.name === p.host)!.subnetV6!;
        expect(subnetV6).toMatch(/^fd10:0:0:[0-9a-f]+::\/64$/);
        expect(p.ipv6!.startsWith(subnetV6.replace('::/64', '::'))).toBe(true);
      }
      expect(j.matrix6).toHaveLength(12);
      for (const m of [...j.matrix, ...j.matrix6]) expect(m, `${m.from} -> ${m.to}`).toMatchObject({ ok: true });
      expect(r.stderr).toMatch(/\[7\/7\] pinging every pod from every pod over IPv6 \(12 pairs/);
      expect(demoNamespaces()).toEqual([]);
      expect(demoDaemonPids()).toEqual([]);
    });
  }

  it.skipIf(hasIpip)('with ipip on a kernel without IPIP, exits 1 naming the module and removes everything', async () => {
    const r = await demo(['--hosts', '2', '--pods-per-host', '1', '--no-iperf', '--backend', 'ipip']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/twilld in twill-demo-host\d exited \(code 1\): twilld cannot run on this host: the ipip backend needs the kernel's IPIP tunnel driver \(module "ipip"\), which this kernel lacks: load it with `modprobe ipip`/);
    expect(demoNamespaces()).toEqual([]);
    expect(demoDaemonPids()).toEqual([]);
  });

  it('with alloc (leases, no routes) reaches pods on the same host only, and exits 1', async () => {
    const r = await demo(['--json', '--hosts', '2', '--pods-per-host', '2', '--no-iperf', '--backend', 'alloc']);
    const j = parse(r);
    expect(r.code).toBe(1);
    expectShape(j, 'alloc');
    const { same, cross } = split(j);
    expect(same).toHaveLength(4);
    expect(cross).toHaveLength(8);
    for (const m of same) expect(m, `${m.from} -> ${m.to}`).toMatchObject({ ok: true });
    for (const m of cross) expect(m, `${m.from} -> ${m.to}`).toMatchObject({ ok: false, rttMs: null, lossPct: 100 });
    expect(j.ok).toBe(false);
    expect(demoNamespaces()).toEqual([]);
  });

  it('prints a human table with a connectivity matrix', async () => {
    const r = await demo(['--hosts', '1', '--pods-per-host', '2', '--backend', 'alloc']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HOST\s+UNDERLAY IP\s+POD SUBNET$/m);
    expect(r.stdout).toMatch(/^twill-demo-host1\s+198\.18\.0\.1\s+10\.244\.\d+\.0\/24$/m);
    expect(r.stdout).toMatch(/^FROM \\ TO\s+h1p1\s+h1p2$/m);
    expect(r.stdout).toMatch(/^h1p1 10\.244\.\d+\.\d+\s+-\s+\d+\.\d+$/m);
    expect(r.stdout).toMatch(/^OK: 2 of 2 pod pairs reachable; backend alloc, 1 host, 2 pods$/m);
    // Progress goes to stderr only.
    expect(r.stdout).not.toMatch(/\[1\//);
    expect(r.stderr).toMatch(/\[1\/\d\] creating the underlay/);
  });

  it('keeps a demo with --keep, refuses to start another over it, and removes it with --down', async () => {
    const r = await demo(['--json', '--keep', '--hosts', '2', '--pods-per-host', '1', '--no-iperf', '--backend', 'alloc']);
    const j = parse(r);
    expect(j.kept).toBe(true);
    expect(r.stderr).toMatch(/ip netns exec twill-demo-host1 ip route/);
    expect(r.stderr).toMatch(/demo --down/);
    expect(demoNamespaces().sort()).toEqual([
      'twill-demo-host1', 'twill-demo-host1-pod1', 'twill-demo-host2', 'twill-demo-host2-pod1', 'twill-demo-underlay',
    ]);
    expect(existsSync(j.tmpDir!)).toBe(true);
    expect(existsSync(STATE_FILE)).toBe(true);
    // etcd and both agents outlive twillctl, and the agents still answer.
    expect(demoDaemonPids()).toHaveLength(3);
    const readyz = await run('ip', ['netns', 'exec', 'twill-demo-host1', 'node', '-e',
      "fetch('http://127.0.0.1:9101/readyz').then((r) => console.log(r.status))"]);
    expect(readyz.stdout.trim()).toBe('200');

    const again = await demo(['--hosts', '1', '--backend', 'alloc']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/started with --keep is still running.*demo --down/);
    expect(demoNamespaces()).toHaveLength(5);

    const down = await demo(['--down']);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toMatch(/removed 5 namespaces, stopped 3 processes/);
    expect(demoNamespaces()).toEqual([]);
    expect(existsSync(j.tmpDir!)).toBe(false);
    expect(existsSync(STATE_FILE)).toBe(false);
    expect(demoDaemonPids()).toEqual([]);
    expect((await demo(['--down'])).stderr).toMatch(/no demo to remove/);
  });

  it('tears everything down on SIGINT in the middle of the demo', async () => {
    const child = spawn('node', [CTL, 'demo', '--hosts', '2', '--pods-per-host', '2', '--backend', 'alloc'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    // Interrupt once the agents run: etcd, twilld and the namespaces all exist then.
    await waitFor(() => /\[4\/\d\] starting twilld/.test(stderr), { timeoutMs: 60_000, what: 'the demo to start the agents' });
    await waitFor(() => demoDaemonPids().length >= 2, { timeoutMs: 20_000, what: 'the agents to run' });
    expect(demoNamespaces().length).toBeGreaterThanOrEqual(3);
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/SIGINT: stopping, and removing everything/);
    expect(demoNamespaces()).toEqual([]);
    expect(existsSync(STATE_FILE)).toBe(false);
    expect(demoDaemonPids()).toEqual([]);
  });

  it('rejects bad flags with exit 2 and an unknown backend before creating anything', async () => {
    const bad = await demo(['--hosts', '21']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --hosts "21": must be an integer 1..20/);
    const unknown = await demo(['--backend', 'warp-drive']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/backend "warp-drive" is not in this build of twilld/);
    expect(demoNamespaces()).toEqual([]);
  });
});

describe('twillctl demo: the pure parts', () => {
  it('turns subnet.env into the bridge + host-local config flannel\'s CNI plugin delegates', () => {
    const env = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    expect(bridgeConfig({ hostNetns: 'h', podNetnsPath: '/run/netns/p', containerId: 'p', subnetEnv: env, dataDir: '/tmp/x/ipam', networkName: 'twill-demo' })).toEqual({
      cniVersion: '1.0.0', name: 'twill-demo', type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: false, mtu: 1450, hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.3.0/24' }]], routes: [{ dst: '10.244.0.0/16' }], dataDir: '/tmp/x/ipam' },
    });
    const noMasq = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n');
    expect(bridgeConfig({ hostNetns: 'h', podNetnsPath: '/p', containerId: 'p', subnetEnv: noMasq, dataDir: '/d', isDefaultGateway: true }))
      .toMatchObject({ name: 'twill', ipMasq: true, mtu: 1500, isDefaultGateway: true });
  });

  it('reads ping\'s summary', () => {
    expect(parsePing('--- 10.244.3.2 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 405ms\nrtt min/avg/max/mdev = 0.041/0.062/0.090/0.020 ms\n'))
      .toEqual({ sent: 3, received: 3, avgMs: 0.062 });
    expect(parsePing('3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 410ms\n')).toEqual({ sent: 3, received: 0, avgMs: null });
  });
});
