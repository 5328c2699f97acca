import { join } from 'node:path';
import { cleanup, tempDir } from '../test/helpers/cleanup.js';
import { CNI_SHIM, startCniServer, writeSubnetFile } from '../test/helpers/cni.js';
import type { Daemon } from '../test/helpers/daemon.js';
import { run as runCommand, shellQuote, type RunResult } from '../test/helpers/exec.js';
import { createTestNetns, type TestNetns } from '../test/helpers/netns.js';
import { median, numberOption, percentile, processCpuMs, report, round, stringOption } from './report.js';

/**
 * `npm run bench -- cni [--cycles N] [--rounds R] [--workers W] [--wrapper nsenter|ip] [--variants twill_agent,twill_fallback]`
 *
 * CNI ADD+DEL cycles against pre-created pod namespaces, timed per cycle (ADD then DEL of a fresh
 * container id on one pod), sequentially and W-way parallel (default 8), for three variants in the
 * same run:
 *   - twill_agent:    dist/cni/twill (the C shim) forwarding to the agent's CNI service;
 *   - twill_fallback: the same shim with no agent (it execs the in-process Node plugin);
 *   - reference:      Debian's /usr/lib/cni/bridge + host-local on a subnet of the same size.
 * Each plugin call is spawned the way a runtime does (CNI_* variables, config on stdin), inside
 * the same "host" namespace through the same wrapper for every variant (default
 * `nsenter --net=<host>`; its own cost is reported as wrapper_*_true_p50_ms). DEL carries the
 * ADD's result as prevResult, as libcni does. Every call must exit 0 (and an ADD return an
 * address in its subnet) or the benchmark fails; failed calls are never timed.
 *
 * Rounds interleave the variants (the machine is shared and noisy), rotating their order; the
 * per-cycle latencies of all rounds are pooled into p50/p99, throughput is the median of rounds.
 * *_seq_cpu_ms_per_cycle is the CPU the sequential cycles cost (wrapper, plugin processes and, for
 * twill_agent, the agent's CNI service): what bounds the parallel figures on a small machine.
 * Target: twill_agent p50 / reference p50 <= 1.0 (must not exceed 2.0), sequential and parallel;
 * twill_fallback p50 / reference p50 <= 3.0 sequential (goal 2.0: two node start-ups per cycle).
 * --variants runs only the named twill variants (the reference always runs: every ratio needs it),
 * e.g. `--variants twill_fallback` while working on the fallback.
 */
const BENCH = 'cni';
const REF_PLUGIN_DIR = '/usr/lib/cni';
const TWILL_SUBNET = '10.244.7.1/24';
const REF_SUBNET = '10.244.8.0/24';

const VARIANT_NAMES = ['twill_agent', 'twill_fallback', 'reference'] as const;
type VariantName = (typeof VARIANT_NAMES)[number];

/** --variants: the twill variants to run, plus the reference. */
function chosenVariants(text: string | undefined): Set<VariantName> {
  if (text === undefined) return new Set(VARIANT_NAMES);
  const chosen = new Set<VariantName>(['reference']);
  for (const name of text.split(',').filter(Boolean)) {
    const known = VARIANT_NAMES.find((v) => v === name);
    if (!known) throw new Error(`--variants ${text}: ${name} is not one of ${VARIANT_NAMES.join(', ')}`);
    chosen.add(known);
  }
  return chosen;
}

interface Variant {
  readonly name: VariantName;
  readonly plugin: string;
  readonly conf: Record<string, unknown>;
  /** Extra variables besides the CNI_* ones. */
  readonly env: Record<string, string>;
  /** What an ADD's address must look like. */
  readonly addressPattern: RegExp;
  /** The process that does the work besides the plugin's own (the agent's CNI service). */
  readonly servicePid?: number;
}

interface Timings {
  readonly cycles: number[];
  readonly adds: number[];
  readonly dels: number[];
}

interface Samples {
  readonly seq: Timings;
  readonly par: Timings;
  /** Cycles per second of each parallel round. */
  readonly parRate: number[];
  /** CPU time (ms) spent over the sequential cycles: plugin processes plus the agent's service. */
  cpuMs: number;
}

/** CPU time in ms: this process's waited-for children, plus `pid`'s own. */
function cpuMs(pid?: number): number {
  // Every plugin call is a waited-for child (nsenter execs the plugin; host-local and node are its children).
  const children = processCpuMs('self', 'children');
  return pid === undefined ? children : children + processCpuMs(pid);
}

function timings(): Timings {
  return { cycles: [], adds: [], dels: [] };
}

class Bench {
  private counter = 0;

  constructor(
    private readonly host: TestNetns,
    private readonly wrapper: 'nsenter' | 'ip',
  ) {}

  /** The argv that runs `cmd` inside the host namespace, through the chosen wrapper. */
  argv(cmd: string): [string, string[]] {
    return this.wrapper === 'nsenter'
      ? ['nsenter', [`--net=${this.host.netnsPath}`, cmd]]
      : ['ip', ['netns', 'exec', this.host.name, cmd]];
  }

  /** One plugin call; throws (with env, stdin, stdout and stderr) unless it exited 0. */
  async call(v: Variant, env: Record<string, string>, conf: Record<string, unknown>): Promise<{ ms: number; result: RunResult }> {
    const input = JSON.stringify(conf);
    // runCommand() merges env over process.env: drop any CNI_* this process happens to carry.
    const clean: Record<string, string | undefined> = {};
    for (const key of Object.keys(process.env)) if (key.startsWith('CNI_')) clean[key] = undefined;
    const full = { CNI_PATH: REF_PLUGIN_DIR, ...v.env, ...env };
    const [file, args] = this.argv(v.plugin);
    const t = performance.now();
    const result = await runCommand(file, args, { env: { ...clean, ...full }, input, allowFailure: true, timeoutMs: 60_000 });
    const ms = performance.now() - t;
    if (result.code !== 0) {
      const envText = Object.entries(full).map(([k, val]) => `${k}=${shellQuote(val)}`).join(' ');
      throw new Error(`${v.name}: ${env.CNI_COMMAND} failed (${result.timedOut ? 'timed out' : result.signal ?? `exit code ${result.code}`})\n`
        + `  call:   ${envText} ${result.command}\n  stdin:  ${input}\n  stdout: ${result.stdout.trim()}\n  stderr: ${result.stderr.trim()}`);
    }
    return { ms, result };
  }

  /** ADD then DEL of a fresh container id on `pod`; [add ms, del ms]. */
  async cycle(v: Variant, pod: TestNetns): Promise<[number, number]> {
    const containerId = `bench-${v.name.replace('_', '-')}-${process.pid}-${this.counter++}`;
    const env = { CNI_CONTAINERID: containerId, CNI_NETNS: pod.netnsPath, CNI_IFNAME: 'eth0' };
    const add = await this.call(v, { ...env, CNI_COMMAND: 'ADD' }, v.conf);
    let prevResult: { ips?: { address?: unknown }[] };
    try {
      prevResult = JSON.parse(add.result.stdout) as typeof prevResult;
    } catch {
      throw new Error(`${v.name}: ADD ${containerId} exited 0 but printed no JSON result: ${add.result.stdout}`);
    }
    const address = prevResult.ips?.[0]?.address;
    if (typeof address !== 'string' || !v.addressPattern.test(address)) {
      throw new Error(`${v.name}: ADD ${containerId} returned no address in its subnet: ${add.result.stdout}`);
    }
    const del = await this.call(v, { ...env, CNI_COMMAND: 'DEL' }, { ...v.conf, prevResult });
    return [add.ms, del.ms];
  }

  async sequential(v: Variant, pods: readonly TestNetns[], n: number, into?: Timings): Promise<void> {
    for (let i = 0; i < n; i++) {
      const [add, del] = await this.cycle(v, pods[i % pods.length]!);
      into?.adds.push(add);
      into?.dels.push(del);
      into?.cycles.push(add + del);
    }
  }

  /** One worker per pod, each doing `perWorker` cycles on its own pod; cycles per second. */
  async parallel(v: Variant, pods: readonly TestNetns[], perWorker: number, into?: Timings): Promise<number> {
    const t = performance.now();
    await Promise.all(pods.map(async (pod) => this.sequential(v, [pod], perWorker, into)));
    return (pods.length * perWorker) / ((performance.now() - t) / 1000);
  }

  /** p50 of the wrapper alone running /bin/true: the fixed cost it adds to every call. */
  async wrapperCost(n: number): Promise<number> {
    const times: number[] = [];
    const [file, args] = this.argv('/bin/true');
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await runCommand(file, args);
      times.push(performance.now() - t);
    }
    return percentile(times, 50);
  }
}

/** Veths left in the host namespace: after every DEL there should be none (the bridges stay). */
async function leftoverVeths(host: TestNetns): Promise<string[]> {
  return (await host.links()).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
}

function ms(values: number[], p: number): number {
  return round(percentile(values, p), 2);
}

export async function run(args: string[]): Promise<void> {
  const cycles = numberOption(args, '--cycles', 100);
  const rounds = Math.max(1, numberOption(args, '--rounds', 4));
  const workers = Math.max(1, numberOption(args, '--workers', 8));
  const wrapper = stringOption(args, '--wrapper', 'nsenter');
  if (wrapper !== 'nsenter' && wrapper !== 'ip') throw new Error(`--wrapper ${wrapper}: expected nsenter or ip`);
  const chosen = chosenVariants(stringOption(args, '--variants'));
  const seqPerRound = Math.ceil(cycles / rounds);
  const parPerWorker = Math.ceil(cycles / (rounds * workers));
  let server: Daemon | undefined;
  try {
    const host = await createTestNetns('cnihost');
    const pods: TestNetns[] = [];
    for (let i = 0; i < workers; i++) pods.push(await createTestNetns(`pod${i}`));
    const dir = tempDir('bench-cni');
    const twillData = join(dir, 'twill-ipam');
    const subnetFile = writeSubnetFile({ subnet: TWILL_SUBNET, ipMasq: true, dir: join(dir, 'twill') });
    const started = chosen.has('twill_agent') ? await startCniServer(host, { dataDir: twillData }) : undefined;
    server = started?.daemon;
    const twillConf = { cniVersion: '1.0.0', name: 'bench', type: 'twill', subnetFile, dataDir: twillData };
    const twillAddress = /^10\.244\.7\.\d+\/24$/;
    const all: Variant[] = [
      ...(started ? [{
        name: 'twill_agent' as const, plugin: CNI_SHIM, conf: twillConf, env: { TWILL_CNI_SOCKET: started.socket }, addressPattern: twillAddress,
        servicePid: started.daemon.pid,
      }] : []),
      { name: 'twill_fallback', plugin: CNI_SHIM, conf: twillConf, env: { TWILL_CNI_SOCKET: join(dir, 'no-agent.sock') }, addressPattern: twillAddress },
      {
        name: 'reference',
        plugin: join(REF_PLUGIN_DIR, 'bridge'),
        conf: {
          cniVersion: '1.0.0', name: 'bench-ref', type: 'bridge', bridge: 'cniref', isGateway: true, isDefaultGateway: true, mtu: 1450, ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: REF_SUBNET }]], dataDir: join(dir, 'ref-ipam') },
        },
        env: {},
        addressPattern: /^10\.244\.8\.\d+\/24$/,
      },
    ];
    const variants = all.filter((v) => chosen.has(v.name));
    const bench = new Bench(host, wrapper);
    const [wfile, wargs] = bench.argv('<plugin>');
    process.stderr.write(`cni: every plugin call runs as \`${[wfile, ...wargs].join(' ')}\` (the same wrapper for all variants); `
      + `${rounds} rounds x (${seqPerRound} sequential + ${workers} workers x ${parPerWorker} parallel cycles) per variant\n`);

    for (const v of variants) {
      await bench.sequential(v, pods, 3);
      await bench.parallel(v, pods, 1);
      process.stderr.write(`warm-up ${v.name}: ok\n`);
    }

    const samples = new Map<VariantName, Samples>(variants.map((v) => [v.name, { seq: timings(), par: timings(), parRate: [], cpuMs: 0 }]));
    for (let r = 0; r < rounds; r++) {
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      const line: string[] = [];
      for (const v of order) {
        const s = samples.get(v.name)!;
        const seq = timings();
        const par = timings();
        const cpu = cpuMs(v.servicePid);
        await bench.sequential(v, pods, seqPerRound, seq);
        s.cpuMs += cpuMs(v.servicePid) - cpu;
        const rate = await bench.parallel(v, pods, parPerWorker, par);
        for (const [from, to] of [[seq, s.seq], [par, s.par]] as const) {
          to.cycles.push(...from.cycles);
          to.adds.push(...from.adds);
          to.dels.push(...from.dels);
        }
        s.parRate.push(rate);
        line.push(`${v.name} seq p50 ${percentile(seq.cycles, 50).toFixed(1)} ms, par p50 ${percentile(par.cycles, 50).toFixed(1)} ms (${rate.toFixed(1)}/s)`);
      }
      process.stderr.write(`round ${r + 1}/${rounds}: ${line.join('; ')}\n`);
    }

    const left = await leftoverVeths(host);
    if (left.length > 0) throw new Error(`the plugins left ${left.length} veth(s) in the host namespace after their DELs: ${left.join(', ')}`);

    report({ bench: BENCH, metric: `wrapper_${wrapper === 'nsenter' ? 'nsenter' : 'ip_netns_exec'}_true_p50_ms`, value: round(await bench.wrapperCost(20), 2), unit: 'ms' });
    report({ bench: BENCH, metric: 'cycles_sequential', value: rounds * seqPerRound, unit: 'count' });
    report({ bench: BENCH, metric: 'cycles_parallel', value: rounds * workers * parPerWorker, unit: 'count' });
    report({ bench: BENCH, metric: 'parallel_workers', value: workers, unit: 'count' });
    const par = `par${workers}`;
    for (const v of variants) {
      const s = samples.get(v.name)!;
      report({ bench: BENCH, metric: `${v.name}_seq_cycle_p50_ms`, value: ms(s.seq.cycles, 50), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_seq_cycle_p99_ms`, value: ms(s.seq.cycles, 99), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_seq_add_p50_ms`, value: ms(s.seq.adds, 50), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_seq_del_p50_ms`, value: ms(s.seq.dels, 50), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_seq_cpu_ms_per_cycle`, value: round(s.cpuMs / s.seq.cycles.length, 1), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_${par}_cycle_p50_ms`, value: ms(s.par.cycles, 50), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_${par}_cycle_p99_ms`, value: ms(s.par.cycles, 99), unit: 'ms' });
      report({ bench: BENCH, metric: `${v.name}_${par}_cycles_per_s`, value: round(median(s.parRate), 1), unit: 'cycles/s' });
    }
    const p50 = (name: VariantName, mode: 'seq' | 'par'): number => percentile(samples.get(name)![mode].cycles, 50);
    const ratio = (name: VariantName, mode: 'seq' | 'par'): number => round(p50(name, mode) / p50('reference', mode));
    if (chosen.has('twill_agent')) {
      report({ bench: BENCH, metric: 'seq_ratio_vs_reference', value: ratio('twill_agent', 'seq'), unit: 'x', target: '<=1.0' });
      report({ bench: BENCH, metric: `${par}_ratio_vs_reference`, value: ratio('twill_agent', 'par'), unit: 'x', target: '<=1.0' });
    }
    if (chosen.has('twill_fallback')) {
      report({ bench: BENCH, metric: 'fallback_seq_ratio_vs_reference', value: ratio('twill_fallback', 'seq'), unit: 'x', target: '<=3.0' });
      report({ bench: BENCH, metric: `fallback_${par}_ratio_vs_reference`, value: ratio('twill_fallback', 'par'), unit: 'x' });
    }
  } finally {
    await server?.stop();
    await cleanup.runAll();
  }
}
