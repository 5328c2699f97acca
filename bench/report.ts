import { readFileSync } from 'node:fs';

/** One JSON line per figure on stdout, the format every Twill benchmark prints. */
export interface Figure {
  readonly bench: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: string;
}

export function report(figure: Figure): void {
  process.stdout.write(`${JSON.stringify(figure)}\n`);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Another process's resident set (VmRSS) or its peak (VmHWM), from /proc/<pid>/status. */
export function processRssMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

/**
 * The fields of /proc/<pid>/stat after the command name, as numbers: index 0 is field 3 (state,
 * NaN), index 7 minflt, 11 utime, 12 stime, 13 cutime, 14 cstime. The name (field 2) may hold
 * spaces and ") ", so the fields start past its last ") ".
 */
export function procStat(pid: number | 'self'): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ').map(Number);
}

/**
 * The CPU time (user and system) process `pid` has used so far, in ms (the kernel counts 10 ms
 * ticks); with `children`, that of its children it has waited for instead (cutime + cstime).
 */
export function processCpuMs(pid: number | 'self', which: 'own' | 'children' = 'own'): number {
  const fields = procStat(pid);
  const at = which === 'own' ? 11 : 13;
  return (fields[at]! + fields[at + 1]!) * 10;
}

/**
 * The minor page faults of process `pid` so far: each first touch of a fresh page. On the CI
 * machine one costs about 12 us, so a process growing its tables by some MiB spends measurable
 * time there.
 */
export function processMinorFaults(pid: number): number {
  return procStat(pid)[7]!;
}

/** Peak resident set size of this process so far, in MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The word after `name` when `name` is given (undefined if nothing follows it), else `fallback`. */
export function stringOption(args: readonly string[], name: string, fallback?: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
}

/** `--name N` from a benchmark's arguments, or the fallback. */
export function numberOption(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
}

/** What one remote VXLAN host means to the kernel: its subnet, neighbour/gateway, VTEP MAC and IP. */
export interface RemoteHost {
  readonly subnet: string;
  readonly gw: string;
  readonly mac: string;
  readonly ip: string;
}

/** N distinct remote hosts: subnets 10.100.0.0/24 upward, VTEPs in 198.19.0.0/16. */
export function remoteHosts(n: number, macPrefix = '02:00:00:00'): RemoteHost[] {
  return Array.from({ length: n }, (_, i) => {
    const a = 100 + (i >> 8);
    const b = i & 255;
    return {
      subnet: `10.${a}.${b}.0/24`,
      gw: `10.${a}.${b}.0`,
      mac: `${macPrefix}:${(i >> 8).toString(16).padStart(2, '0')}:${b.toString(16).padStart(2, '0')}`,
      ip: `198.19.${i >> 8}.${b}`,
    };
  });
}

/** The timings of a lease burst's rounds (bench/vxlan.ts, bench/vxlan-ipv6.ts), each beside iproute2. */
export interface BurstRounds {
  /** The etcd transaction. */
  readonly put: number[];
  /** From the put until every kernel entry exists. */
  readonly total: number[];
  /** The same from etcd's commit (the transaction's answer). */
  readonly afterCommit: number[];
  /** iproute2 writing the same entries, plain routes; and with nexthop objects as Twill writes them. */
  readonly ref: number[];
  readonly refNh: number[];
}

export function newBurst(): BurstRounds {
  return { put: [], total: [], afterCommit: [], ref: [], refNh: [] };
}

/** The burst figures both vxlan benchmarks print: medians of the rounds and their ratios to iproute2. */
export function reportBurst(bench: string, burst: BurstRounds): void {
  const [burstMs, commitMs, refMs, refNh] = [median(burst.total), median(burst.afterCommit), median(burst.ref), median(burst.refNh)];
  report({ bench, metric: 'burst_rounds', value: burst.total.length, unit: 'count' });
  report({ bench, metric: 'burst_etcd_txn_ms', value: round(median(burst.put), 1), unit: 'ms' });
  report({ bench, metric: 'burst_put_to_entries_ms', value: round(burstMs, 1), unit: 'ms' });
  report({ bench, metric: 'burst_iproute2_batch_ms', value: round(refMs, 1), unit: 'ms' });
  report({ bench, metric: 'burst_ratio_vs_iproute2', value: round(burstMs / refMs), unit: 'x', target: '<=1.0' });
  report({ bench, metric: 'burst_first_round_ratio_vs_iproute2', value: round(burst.total[0]! / burst.ref[0]!), unit: 'x' });
  // From etcd's commit (the txn's answer): etcd's own raft write and fsync are left out, which
  // neither Twill nor the reference can change; the watch delivers after the commit.
  report({ bench, metric: 'burst_commit_to_entries_ms', value: round(commitMs, 1), unit: 'ms' });
  report({ bench, metric: 'burst_commit_ratio_vs_iproute2', value: round(commitMs / refMs), unit: 'x' });
  // Against iproute2 writing exactly Twill's objects (nexthops included).
  report({ bench, metric: 'burst_iproute2_nexthops_batch_ms', value: round(refNh, 1), unit: 'ms' });
  report({ bench, metric: 'burst_commit_ratio_vs_iproute2_nexthops', value: round(commitMs / refNh), unit: 'x' });
}
