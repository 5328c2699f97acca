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
