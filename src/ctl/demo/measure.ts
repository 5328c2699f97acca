import { spawn } from 'node:child_process';
import { childEnv, describeFailure, runCommand } from './exec.js';

// What the demo measures between pods: ping (every pod to every other pod) and one iperf3 run.

export interface PingTarget {
  /** The pod's namespace. */
  readonly name: string;
  readonly ip: string;
}

export interface PingResult {
  readonly from: string;
  readonly to: string;
  /** At least one reply came back. */
  readonly ok: boolean;
  /** Average round-trip time in ms, or null without replies. */
  readonly rttMs: number | null;
  /** Share of the pings lost, in percent. */
  readonly lossPct: number;
}

export const PING_COUNT = 3;

/** Parses iputils ping's summary ("3 packets transmitted, 3 received, ..." and "rtt min/avg/max/mdev = a/b/c/d ms"). */
export function parsePing(stdout: string): { sent: number; received: number; avgMs: number | null } {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(stdout);
  const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+\/[\d.]+ ms/.exec(stdout);
  return {
    sent: counts ? Number(counts[1]) : 0,
    received: counts ? Number(counts[2]) : 0,
    avgMs: rtt ? Number(rtt[1]) : null,
  };
}

export async function ping(from: PingTarget, to: PingTarget, signal?: AbortSignal): Promise<PingResult> {
  const family = to.ip.includes(':') ? ['-6'] : [];
  const r = await runCommand('ip', ['netns', 'exec', from.name, 'ping', ...family, '-n', '-q', '-c', String(PING_COUNT), '-i', '0.2', '-W', '1', to.ip],
    { timeoutMs: 15_000, signal });
  const p = parsePing(r.stdout);
  const sent = p.sent || PING_COUNT;
  const ok = r.code === 0 && p.received > 0;
  return { from: from.name, to: to.name, ok, rttMs: ok ? p.avgMs : null, lossPct: Math.round(((sent - p.received) / sent) * 100) };
}

/** Runs `fn` over `items` with at most `limit` at a time; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Every ordered pair of distinct pods, pinged with at most `concurrency` pings at a time. */
export function pingMatrix(pods: readonly PingTarget[], concurrency: number, signal?: AbortSignal): Promise<PingResult[]> {
  const pairs = pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => [from, to] as const));
  return mapLimit(pairs, concurrency, ([from, to]) => ping(from, to, signal));
}

export interface IperfResult {
  readonly from: string;
  readonly to: string;
  readonly gbps: number;
}

const IPERF_SECONDS = 3;

/**
 * One iperf3 run from `from` to `to`: a one-shot server (`iperf3 -s -1`) in the destination pod,
 * the client (`iperf3 -c <ip> -t 3 -J`) in the source pod. Returns Gbit/s received, or throws
 * with iperf3's complaint.
 */
export async function iperf(from: PingTarget, to: PingTarget, signal?: AbortSignal): Promise<IperfResult> {
  const server = spawn('ip', ['netns', 'exec', to.name, 'iperf3', '-s', '-1', '--forceflush'], {
    detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(),
  });
  let serverOut = '';
  server.stdout.on('data', (b: Buffer) => { serverOut += b.toString(); });
  server.stderr.on('data', (b: Buffer) => { serverOut += b.toString(); });
  const stopServer = (): void => {
    if (server.pid === undefined || server.exitCode !== null || server.signalCode !== null) return;
    try {
      process.kill(-server.pid, 'SIGKILL');
    } catch { /* gone */ }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        if (/listening/i.test(serverOut) || Date.now() - started > 5000) done();
      }, 50);
      const done = (err?: Error): void => {
        clearInterval(poll);
        if (err) reject(err);
        else resolve();
      };
      server.once('error', (err) => done(new Error(`cannot start iperf3: ${err.message}`)));
      server.once('exit', () => done(new Error(`the iperf3 server in ${to.name} exited: ${serverOut.trim().split('\n').slice(-2).join(' ')}`)));
    });
    let last = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await runCommand('ip', ['netns', 'exec', from.name, 'iperf3', '-c', to.ip, '-t', String(IPERF_SECONDS), '-J'],
        { timeoutMs: (IPERF_SECONDS + 15) * 1000, signal });
      let report: { end?: { sum_received?: { bits_per_second?: number } }; error?: string } | undefined;
      try {
        report = JSON.parse(r.stdout) as typeof report;
      } catch { /* not JSON */ }
      const bps = report?.end?.sum_received?.bits_per_second;
      if (r.code === 0 && typeof bps === 'number') return { from: from.name, to: to.name, gbps: bps / 1e9 };
      last = report?.error ?? describeFailure(r);
      if (signal?.aborted || !/refused/i.test(last)) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    throw new Error(last);
  } finally {
    stopServer();
  }
}
