import { setMaxListeners } from 'node:events';
import { accessSync, constants as fsc, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { registerBuiltins } from '../../backends/builtins.js';
import { InvalidArgumentError, TwillError } from '../../core/errors.js';
import { networkPrefix } from '../../core/ip.js';
import { parseSubnetEnv, type SubnetEnv } from '../../core/subnet-env.js';
import { describeFailure, runCommand } from './exec.js';
import { parseDemoFlags, type DemoFlags } from './flags.js';
import { iperf, mapLimit, pingMatrix, type IperfResult, type PingResult } from './measure.js';
import { fatalMessage, logTail, pollUrlInNetns, startDaemon, type DemoDaemon } from './processes.js';
import { attachPod, detachPod, type PodAttachment } from './reference-cni.js';
import { formatHuman, resultJson, type DemoHost, type DemoPod, type DemoResult } from './report.js';
import { demoNamespaces, ownerRunning, readState, sweep, writeState, type DemoState } from './state.js';
import {
  createHost, createPodNetns, createUnderlay, hostNetnsName, hostUnderlayIp, hostUnderlayIpv6, podLabel, podNetnsName, DEMO_PREFIX,
  UNDERLAY_GATEWAY, UNDERLAY_NETNS,
} from './topology.js';

// `twillctl demo`: a whole Twill cluster on one machine, in network namespaces, measured and
// removed again. The steps (each logged on stderr):
//   1. underlay + hosts   2. etcd on the underlay   3. the network config, through twillctl
//   4. one twilld per host, until ready   5. pods, wired by Twill's CNI plugin
//   6. ping every pod from every pod   7. one iperf3 run across hosts
// then the result (tables or --json on stdout) and the teardown (unless --keep), which also
// runs on errors and on SIGINT/SIGTERM/SIGHUP.

const ETCD_CLIENT_PORT = 2379;
const ETCD_PEER_PORT = 2380;
const ETCD_URL = `http://${UNDERLAY_GATEWAY}:${ETCD_CLIENT_PORT}`;
const HEALTHZ = '127.0.0.1:9101';
const NETWORK = '10.244.0.0/16';
const CNI_NETWORK_NAME = 'twill-demo';
const PING_CONCURRENCY = 16;
const CONVERGE_TIMEOUT_MS = 20_000;

const CTL_MAIN = join(import.meta.dirname, '..', 'main.js');
const AGENT_MAIN = join(import.meta.dirname, '..', '..', 'agent', 'main.js');
/** Twill's CNI plugin as runtimes run it: the shim, which hands each call to the host's twilld. */
const CNI_SHIM = join(import.meta.dirname, '..', '..', '..', 'cni', 'twill');

/** A failure to explain to the user in one message (no stack trace). */
class DemoError extends Error {}

/** A step stopped because another one failed (its error is the one reported). */
class Cancelled extends Error {}

class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** The user's TWILLD_*, TWILLCTL_* and ETCD* variables would reconfigure the demo's processes: drop them. */
function hermeticEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) {
    if (/^(TWILLD|TWILLCTL|ETCD|ETCDCTL)_/.test(key)) env[key] = undefined;
  }
  return env;
}

function onPath(cmd: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    try {
      accessSync(join(dir, cmd), fsc.X_OK);
      return true;
    } catch { /* next */ }
  }
  return false;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** Everything the demo checks before it creates anything. Returns a note when iperf3 will be skipped. */
function preflight(flags: DemoFlags): string | null {
  if (process.getuid?.() !== 0) throw new DemoError('the demo needs root (it creates network namespaces): run it with sudo');
  const needs: [string, string][] = [['ip', 'iproute2'], ['etcd', 'etcd-server'], ['ping', 'iputils-ping'], ['nft', 'nftables']];
  for (const [cmd, pkg] of needs) {
    if (!onPath(cmd)) throw new DemoError(`\`${cmd}\` is not installed: apt-get install ${pkg} (or run bash .ci/setup-system.sh)`);
  }
  if (!existsSync(AGENT_MAIN)) throw new DemoError(`${AGENT_MAIN} is missing: run \`npm run build\` first`);
  if (!existsSync(CNI_SHIM)) throw new DemoError(`${CNI_SHIM} (Twill's CNI plugin) is missing: run \`npm run build\` first (it needs gcc)`);
  const known = registerBuiltins().types();
  if (!known.includes(flags.backend)) {
    throw new DemoError(`backend "${flags.backend}" is not in this build of twilld (it knows: ${known.join(', ')}); pick one with --backend`);
  }
  if (!flags.iperf) return 'skipped (--no-iperf)';
  if (flags.hosts < 2) return 'skipped (needs 2 or more hosts)';
  if (!onPath('iperf3')) return 'skipped: iperf3 is not installed (apt-get install iperf3)';
  return null;
}

/** The IPv6 pod network of `--ipv6` (unique-local space). */
const IPV6_NETWORK = 'fd10::/48';

function networkConfig(backend: string, ipv6: boolean): string {
  return JSON.stringify({ Network: NETWORK, ...(ipv6 && { EnableIPv6: true, IPv6Network: IPV6_NETWORK }), Backend: { Type: backend } });
}

/** The network address of FLANNEL_SUBNET: "10.244.3.1/24" -> "10.244.3.0/24". */
function leaseSubnet(env: SubnetEnv): string {
  return networkPrefix(env.subnet);
}

interface RunningHost extends DemoHost {
  readonly index: number;
  readonly dir: string;
  readonly subnetFile: string;
  readonly env: SubnetEnv;
  readonly daemon: DemoDaemon;
}

/** One demo run: what it has created so far, so teardown can undo exactly that, at any point. */
class DemoRun {
  readonly abort = new AbortController();
  private interruptedBy: NodeJS.Signals | undefined;
  readonly attachments: PodAttachment[] = [];
  readonly started = Date.now();
  private step = 0;
  private readonly steps: number;
  tmpDir: string | undefined;

  constructor(readonly flags: DemoFlags, readonly iperfNote: string | null) {
    this.steps = (iperfNote === null ? 7 : 6) + (flags.ipv6 ? 1 : 0);
    // Every concurrent command and wait listens to it (up to 16 pings at once, 20 hosts).
    setMaxListeners(0, this.abort.signal);
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  interrupt(sig: NodeJS.Signals): void {
    if (this.interruptedBy === undefined) {
      this.interruptedBy = sig;
      progress(`\n${sig}: stopping, and removing everything the demo created...`);
      this.abort.abort();
    } else {
      progress(`${sig}: already removing the demo; this takes a few seconds`);
    }
  }

  get interrupted(): NodeJS.Signals | undefined {
    return this.interruptedBy;
  }

  check(): void {
    if (this.interruptedBy !== undefined) throw new Interrupted(this.interruptedBy);
    if (this.signal.aborted) throw new Cancelled('cancelled');
  }

  /**
   * Like Promise.all, but a failure cancels the other tasks and waits for them to stop, so that
   * nothing is still creating namespaces while teardown removes them. Rethrows the first real error.
   */
  async all<T>(tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
    const settled = await Promise.allSettled(tasks.map(async (task) => {
      try {
        return await task();
      } catch (err) {
        this.abort.abort();
        throw err;
      }
    }));
    const reasons = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as unknown] : []));
    if (reasons.length > 0) throw reasons.find((r) => !(r instanceof Cancelled)) ?? reasons[0];
    return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  }

  async sleep(ms: number): Promise<void> {
    this.check();
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.signal.addEventListener('abort', done, { once: true });
    });
    this.check();
  }

  begin(text: string): number {
    this.check();
    progress(`[${++this.step}/${this.steps}] ${text}`);
    return Date.now();
  }

  state(keep: boolean): DemoState {
    return {
      version: 1, pid: process.pid, keep, startedAt: new Date(this.started).toISOString(), tmpDir: this.tmpDir!,
      backend: this.flags.backend, hosts: this.flags.hosts, podsPerHost: this.flags.podsPerHost, etcdEndpoint: ETCD_URL,
    };
  }

  /** Runs to the result; throws DemoError, Interrupted or anything unexpected. */
  async execute(): Promise<DemoResult> {
    const { flags } = this;
    this.tmpDir = mkdtempSync(join(tmpdir(), DEMO_PREFIX));
    writeState(this.state(false));

    let t = this.begin(`creating the underlay (${UNDERLAY_NETNS}, bridge with ${UNDERLAY_GATEWAY}/24) and ${flags.hosts} host namespace${flags.hosts === 1 ? '' : 's'}`);
    await createUnderlay();
    for (let i = 0; i < flags.hosts; i++) {
      this.check();
      await createHost(i, flags.ipv6);
    }
    progress(`      ${hostNetnsName(0)}${flags.hosts > 1 ? `..${hostNetnsName(flags.hosts - 1)}` : ''} on eth0 ${hostUnderlayIp(0)}${flags.hosts > 1 ? `..${hostUnderlayIp(flags.hosts - 1)}` : ''}/24`
      + `${flags.ipv6 ? ` and ${hostUnderlayIpv6(0)}${flags.hosts > 1 ? `..${hostUnderlayIpv6(flags.hosts - 1)}` : ''}/64` : ''} (${seconds(t)})`);

    t = this.begin(`starting etcd on ${ETCD_URL} inside ${UNDERLAY_NETNS}`);
    await this.startEtcd();
    progress(`      healthy (${seconds(t)})`);

    t = this.begin(`storing the network config ${networkConfig(flags.backend, flags.ipv6)}`);
    await this.putConfig();

    t = this.begin(`starting twilld on each host (--iface eth0 --ip-masq --resync-interval 2s)`);
    const hosts = await this.startAgents();
    for (const h of hosts) progress(`      ${h.name} leased ${h.subnet}${h.subnetV6 === undefined ? "" : ` and ${h.subnetV6}`} (MTU ${h.env.mtu})`);
    progress(`      all ready (${seconds(t)}); waiting until every agent knows all ${hosts.length} leases`);
    await this.waitConverged(hosts);
    progress(`      done (${seconds(t)})`);

    t = this.begin(`attaching ${flags.podsPerHost} pod${flags.podsPerHost === 1 ? '' : 's'} per host with Twill's CNI plugin (bridge cni0, addresses from the lease; calls served by each host's twilld)`);
    const pods = (await this.all(hosts.map((h) => () => this.attachPods(h)))).flat();
    progress(`      ${pods.length} pods (${seconds(t)})`);

    const pairs = pods.length * (pods.length - 1);
    t = this.begin(`pinging every pod from every pod (${pairs} pairs, ping -c 3)`);
    const matrix = await pingMatrix(pods, PING_CONCURRENCY, this.signal);
    this.check();
    let failed = matrix.filter((m) => !m.ok).length;
    progress(`      ${pairs - failed} of ${pairs} answered (${seconds(t)})`);
    let matrix6: PingResult[] | undefined;
    if (flags.ipv6) {
      t = this.begin(`pinging every pod from every pod over IPv6 (${pairs} pairs, ping -6 -c 3)`);
      matrix6 = await pingMatrix(pods.map((p) => ({ name: p.name, ip: p.ipv6 ?? '::' })), PING_CONCURRENCY, this.signal);
      this.check();
      const failed6 = matrix6.filter((m) => !m.ok).length;
      progress(`      ${pairs - failed6} of ${pairs} answered (${seconds(t)})`);
      failed += failed6;
    }

    let iperfResult: IperfResult | null = null;
    let iperfNote = this.iperfNote;
    if (iperfNote === null) {
      const from = pods[0]!;
      const to = pods.find((p) => p.host === hosts[hosts.length - 1]!.name)!;
      t = this.begin(`iperf3 from ${from.label} (${from.ip}) to ${to.label} (${to.ip}), 3 s`);
      if (!matrix.some((m) => m.from === from.name && m.to === to.name && m.ok)) {
        iperfNote = `skipped: ${from.label} cannot reach ${to.label}`;
      } else {
        try {
          iperfResult = await iperf(from, to, this.signal);
          progress(`      ${iperfResult.gbps.toFixed(2)} Gbit/s (${seconds(t)})`);
        } catch (err) {
          this.check();
          iperfNote = `failed: ${(err as Error).message.split('\n')[0]}`;
        }
      }
      if (iperfNote !== null) progress(`      ${iperfNote}`);
    }
    this.check();
    return {
      backend: flags.backend,
      hosts: hosts.map(({ name, underlayIp, subnet, underlayIpv6, subnetV6 }) => ({ name, underlayIp, subnet, ...(flags.ipv6 && { underlayIpv6, subnetV6 }) })),
      pods,
      matrix,
      ...(matrix6 !== undefined && { matrix6 }),
      iperf: iperfResult,
      iperfNote,
      ok: failed === 0,
    };
  }

  private async startEtcd(): Promise<void> {
    const dir = join(this.tmpDir!, 'etcd');
    mkdirSync(dir, { recursive: true });
    const peer = `http://${UNDERLAY_GATEWAY}:${ETCD_PEER_PORT}`;
    const daemon = await startDaemon({
      label: 'etcd',
      netns: UNDERLAY_NETNS,
      cmd: 'etcd',
      args: [
        '--name=twill-demo', `--data-dir=${join(dir, 'data')}`,
        `--listen-client-urls=${ETCD_URL}`, `--advertise-client-urls=${ETCD_URL}`,
        `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=twill-demo=${peer}`, '--initial-cluster-state=new', `--initial-cluster-token=twill-demo-${process.pid}`,
        '--logger=zap', '--log-outputs=stderr',
      ],
      logFile: join(dir, 'etcd.log'),
      env: hermeticEnv(),
    });
    const health = await this.whileRunning(daemon, (signal) =>
      pollUrlInNetns(UNDERLAY_NETNS, `${ETCD_URL}/health`, { match: '"health":\\s*"true"', timeoutMs: this.flags.readyTimeoutMs, signal }));
    this.check();
    if (!daemon.running) throw new DemoError(`etcd exited (${daemon.exit}); its log ends with:\n${logTail(daemon.logFile)}`);
    if (!health.ok) throw new DemoError(`etcd did not become healthy within ${this.flags.readyTimeoutMs / 1000} s (--ready-timeout) (${health.last}); its log ends with:\n${logTail(daemon.logFile)}`);
  }

  /**
   * Runs `fn` with a signal that fires when the demo is interrupted or cancelled, or when
   * `daemon` exits (so a crashed daemon ends the wait at once rather than at the timeout).
   */
  private async whileRunning<T>(daemon: DemoDaemon, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    this.signal.addEventListener('abort', stop, { once: true });
    const timer = setInterval(() => {
      if (!daemon.running) stop();
    }, 100);
    try {
      return await fn(ac.signal);
    } finally {
      clearInterval(timer);
      this.signal.removeEventListener('abort', stop);
    }
  }

  /** Through twillctl itself (run inside the underlay, where etcd is reachable): it validates first. */
  private async putConfig(): Promise<void> {
    const args = ['netns', 'exec', UNDERLAY_NETNS, process.execPath, CTL_MAIN, '--etcd-endpoints', ETCD_URL, 'config', 'set', '-'];
    const r = await runCommand('ip', args, { input: networkConfig(this.flags.backend, this.flags.ipv6), env: hermeticEnv(), signal: this.signal });
    this.check();
    if (r.code !== 0) throw new DemoError(`storing the network config failed: ${describeFailure(r)}`);
    progress(`      ${r.stdout.trim()}`);
  }

  private async startAgents(): Promise<RunningHost[]> {
    const started = await this.all(Array.from({ length: this.flags.hosts }, (_, i) => async () => {
      const name = hostNetnsName(i);
      const dir = join(this.tmpDir!, name);
      mkdirSync(dir, { recursive: true });
      const subnetFile = join(dir, 'subnet.env');
      const daemon = await startDaemon({
        label: `twilld in ${name}`,
        netns: name,
        cmd: process.execPath,
        args: [AGENT_MAIN, '--etcd-endpoints', ETCD_URL, '--iface', 'eth0', '--subnet-file', subnetFile,
          '--healthz-addr', HEALTHZ, '--resync-interval', '2s',
          '--cni-socket', join(dir, 'cni.sock'), '--cni-data-dir', join(dir, 'ipam'),
          // As kube-flannel runs flanneld: the agent masquerades traffic that leaves the overlay,
          // so the bridge plugin does not (ipMasq = !FLANNEL_IPMASQ) and pods see each other's
          // own addresses. Without it the bridge would masquerade pod-to-pod traffic to the
          // host's underlay address, which pods (with a route to the overlay only) cannot answer.
          '--ip-masq'],
        logFile: join(dir, 'twilld.log'),
        env: hermeticEnv(),
      });
      return { i, name, dir, subnetFile, daemon };
    }));
    return this.all(started.map(({ i, name, dir, subnetFile, daemon }) => async () => {
      const failed = (why: string): DemoError =>
        new DemoError(`twilld in ${name} ${why}; its log (${daemon.logFile}) ends with:\n${logTail(daemon.logFile)}`);
      const ready = await this.whileRunning(daemon, (signal) =>
        pollUrlInNetns(name, `http://${HEALTHZ}/readyz`, { timeoutMs: this.flags.readyTimeoutMs, signal }));
      this.check();
      if (!daemon.running) {
        // A fatal line says why in one sentence (a kernel without IPIP, say): show that, not a log tail.
        const fatal = fatalMessage(daemon.logFile);
        throw fatal === undefined ? failed(`exited (${daemon.exit})`) : new DemoError(`twilld in ${name} exited (${daemon.exit}): ${fatal}`);
      }
      if (!ready.ok) throw failed(`did not become ready within ${this.flags.readyTimeoutMs / 1000} s (--ready-timeout; /readyz: ${ready.last})`);
      // /readyz turns 200 once the subnet file is written.
      const env = parseSubnetEnv(readFileSync(subnetFile, 'utf8'), subnetFile);
      const subnetV6 = env.ipv6Subnet === undefined ? undefined : networkPrefix(env.ipv6Subnet);
      return {
        index: i, name, underlayIp: hostUnderlayIp(i), subnet: leaseSubnet(env), dir, subnetFile, env, daemon,
        ...(this.flags.ipv6 && { underlayIpv6: hostUnderlayIpv6(i), subnetV6 }),
      };
    }));
  }

  /** Waits until every agent knows every host's lease (twill_leases_known), so routes are in place before the pings. */
  private async waitConverged(hosts: readonly RunningHost[]): Promise<void> {
    const results = await Promise.all(hosts.map((h) => this.whileRunning(h.daemon, (signal) =>
      pollUrlInNetns(h.name, `http://${HEALTHZ}/metrics`, { match: `^twill_leases_known ${hosts.length}$`, timeoutMs: CONVERGE_TIMEOUT_MS, signal }))));
    this.check();
    const behind = hosts.filter((_, i) => !results[i]!.ok);
    if (behind.length > 0) {
      progress(`      warning: after ${CONVERGE_TIMEOUT_MS / 1000} s, ${behind.map((h) => h.name).join(', ')} ${behind.length === 1 ? 'does' : 'do'} not know all ${hosts.length} leases yet; pinging anyway`);
      return;
    }
    if (this.flags.backend === 'bgp' && hosts.length > 1) {
      // bgp routes follow the sessions, not the leases: wait until each host installed the others' subnets.
      const installed = `("installed":true.*){${hosts.length - 1}}`;
      await Promise.all(hosts.map((h) => this.whileRunning(h.daemon, (signal) =>
        pollUrlInNetns(h.name, `http://${HEALTHZ}/bgp/routes`, { match: installed, timeoutMs: CONVERGE_TIMEOUT_MS, signal }))));
      this.check();
      return;
    }
    // One backend sync after the last lease arrived.
    await this.sleep(500);
  }

  private async attachPods(host: RunningHost): Promise<DemoPod[]> {
    const pods: DemoPod[] = [];
    for (let j = 0; j < this.flags.podsPerHost; j++) {
      this.check();
      const name = podNetnsName(host.index, j);
      const path = await createPodNetns(host.index, j);
      const attachment: PodAttachment = {
        hostNetns: host.name, podNetnsPath: path, containerId: name, ifname: 'eth0', subnetEnv: host.env,
        dataDir: join(host.dir, 'ipam'), networkName: CNI_NETWORK_NAME,
        twill: { shim: CNI_SHIM, socket: join(host.dir, 'cni.sock'), subnetFile: host.subnetFile },
      };
      // Registered before ADD: a failed ADD still gets its DEL, as the CNI spec asks.
      this.attachments.push(attachment);
      try {
        const { ip, ipv6 } = await attachPod(attachment);
        if (this.flags.ipv6 && ipv6 === undefined) throw new DemoError(`CNI ADD of ${name} gave the pod no IPv6 address in a dual-stack network`);
        pods.push({ name, label: podLabel(host.index, j), host: host.name, ip, ...(ipv6 !== undefined && { ipv6 }) });
      } catch (err) {
        this.check();
        throw new DemoError((err as Error).message);
      }
    }
    return pods;
  }

  /** CNI DEL for every pod, then processes, namespaces, temp dir and state file. Never throws. */
  async teardown(): Promise<boolean> {
    const t = Date.now();
    progress('removing the demo: CNI DEL of the pods, stopping twilld and etcd, deleting the namespaces and the temp dir');
    let ok = true;
    await mapLimit(this.attachments, 8, async (a) => {
      try {
        await detachPod(a);
      } catch (err) {
        // The namespaces go next, and with them anything DEL left behind.
        progress(`      warning: ${(err as Error).message.split('\n')[0]}`);
      }
    });
    try {
      const swept = await sweep(this.tmpDir);
      progress(`      removed ${plural(swept.namespaces, 'namespace')}, stopped ${plural(swept.processes, 'process', 'processes')} (${seconds(t)})`);
    } catch (err) {
      ok = false;
      progress(`twillctl demo: teardown failed: ${(err as Error).message}; run \`twillctl demo --down\` to finish it`);
    }
    const left = demoNamespaces();
    if (left.length > 0) {
      ok = false;
      progress(`twillctl demo: namespaces left behind: ${left.join(', ')}; run \`twillctl demo --down\``);
    }
    return ok;
  }

  keepInstructions(result: DemoResult): string {
    const ctl = `node ${CTL_MAIN}`;
    const h1 = result.hosts[0]!;
    const from = result.pods[0];
    const to = result.pods[result.pods.length - 1];
    const lines = [
      '',
      'The demo keeps running (--keep). Look around:',
      `  ip netns list | grep ${DEMO_PREFIX}`,
      `  ip netns exec ${h1.name} ip route                 # routes twilld programmed (proto 84)`,
      `  ip netns exec ${h1.name} ip -d link`,
      ...(from && to && from !== to ? [`  ip netns exec ${from.name} ping ${to.ip}`] : []),
      `  ip netns exec ${h1.name} ${ctl} --etcd-endpoints ${ETCD_URL} leases`,
      `  ip netns exec ${h1.name} ${ctl} --etcd-endpoints ${ETCD_URL} --subnet-file ${join(this.tmpDir!, h1.name, 'subnet.env')} status`,
      `  less ${join(this.tmpDir!, h1.name, 'twilld.log')}     # each host's agent log; etcd's is in ${join(this.tmpDir!, 'etcd')}`,
      'Remove it with:',
      `  ${ctl} demo --down          (or: npm run demo -- --down)`,
      '',
    ];
    return lines.join('\n');
  }
}

/** `twillctl demo --down`: removes a kept demo (or the leftovers of a killed one). */
async function down(): Promise<number> {
  if (process.getuid?.() !== 0) throw new DemoError('removing the demo needs root: run it with sudo');
  const state = readState();
  if (state && !state.keep && state.pid !== process.pid && ownerRunning(state)) {
    // A demo still running in another terminal: ask it to stop and clean up itself.
    progress(`stopping the demo that is still running (twillctl pid ${state.pid})...`);
    try {
      process.kill(state.pid, 'SIGTERM');
    } catch { /* gone meanwhile */ }
    const deadline = Date.now() + 60_000;
    while (ownerRunning(state) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  }
  const names = demoNamespaces();
  if (!state && names.length === 0) {
    progress('no demo to remove');
    return 0;
  }
  const swept = await sweep(readState()?.tmpDir ?? state?.tmpDir);
  progress(`removed ${plural(swept.namespaces, 'namespace')}, stopped ${plural(swept.processes, 'process', 'processes')}${swept.tmpDir ? `, deleted ${swept.tmpDir}` : ''}`);
  const left = demoNamespaces();
  if (left.length > 0) throw new DemoError(`could not delete: ${left.join(', ')}`);
  return 0;
}

/** Refuses to start over a demo someone still owns; sweeps the leftovers of a dead one. */
async function clearLeftovers(): Promise<void> {
  const state = readState();
  if (state && state.pid !== process.pid) {
    if (state.keep) {
      throw new DemoError(`a demo started with --keep is still running (since ${state.startedAt}, ${state.hosts} hosts, backend ${state.backend}); remove it first with \`twillctl demo --down\``);
    }
    if (ownerRunning(state)) throw new DemoError(`another demo is running (twillctl pid ${state.pid}); wait for it, or stop it with \`twillctl demo --down\``);
  }
  const names = demoNamespaces();
  if (state || names.length > 0) {
    progress(`removing the leftovers of an earlier demo that did not finish${state ? ` (twillctl pid ${state.pid})` : ''}`);
    await sweep(state?.tmpDir);
  }
}

async function demo(flags: DemoFlags): Promise<number> {
  const iperfNote = preflight(flags);
  await clearLeftovers();
  const run = new DemoRun(flags, iperfNote);
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const handler = (): void => run.interrupt(sig);
    process.on(sig, handler);
    return () => process.off(sig, handler);
  });
  progress(`twill demo: ${flags.hosts} host${flags.hosts === 1 ? '' : 's'}, ${flags.podsPerHost} pod${flags.podsPerHost === 1 ? '' : 's'} per host, backend ${flags.backend}`);
  let kept = false;
  let code: number;
  try {
    const result = await run.execute();
    if (flags.keep) {
      writeState(run.state(true));
      kept = true;
    }
    const instructions = kept ? run.keepInstructions(result) : '';
    if (flags.json) {
      process.stdout.write(resultJson(result, { kept, etcdEndpoint: ETCD_URL, tmpDir: kept ? run.tmpDir : null }));
      if (kept) process.stderr.write(instructions);
    } else {
      process.stdout.write(`\n${formatHuman(result)}${instructions}`);
    }
    progress(`finished in ${seconds(run.started)}`);
    code = result.ok ? 0 : 1;
  } catch (err) {
    const sig = run.interrupted;
    // Twill's own errors (netlink, CNI, ...) say what failed; anything else is a bug: show the stack.
    if (sig === undefined) progress(`twillctl demo: ${err instanceof DemoError || err instanceof TwillError ? err.message : (err as Error).stack ?? String(err)}`);
    code = sig === undefined ? 1 : 128 + (SIGNAL_NUMBERS[sig] ?? 0);
  }
  // The signal handlers stay until the teardown is done: a second Ctrl-C must not cut it short.
  if (!kept && !(await run.teardown()) && code === 0) code = 1;
  for (const off of handlers) off();
  return code;
}

/** `twillctl demo [options]`: the exit code (0 only when every ping succeeded; 2 for usage errors). */
export async function runDemo(argv: readonly string[]): Promise<number> {
  let command;
  try {
    command = parseDemoFlags(argv, process.env);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    process.stderr.write(`twillctl demo: ${err.message}\n`);
    return 2;
  }
  if (command.kind !== 'run') {
    process.stdout.write(command.text);
    return 0;
  }
  try {
    return command.flags.down ? await down() : await demo(command.flags);
  } catch (err) {
    if (!(err instanceof DemoError)) throw err;
    process.stderr.write(`twillctl demo: ${err.message}\n`);
    return 1;
  }
}
