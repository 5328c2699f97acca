/**
 * Long-running processes for tests (etcd, gobgpd, bird, iperf3 -s, twilld...), optionally inside a
 * network namespace. Each runs in its own process group (spawned detached) so stop/kill reach its
 * children too; it is tracked for exit-time SIGKILL (cleanup.ts) and, unless `registry: null`,
 * stopped when its cleanup registry unwinds.
 *
 *   const d = await startDaemon({ cmd: 'iperf3', args: ['-s'], netns: host.name, label: 'iperf3' });
 *   await d.waitForOutput(/Server listening/);
 *   ...
 *   await d.stop();               // SIGTERM, then SIGKILL after stopTimeoutMs
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cleanup, signalProcess, trackProcess, untrackProcess, type CleanupRegistry } from './cleanup.js';
import { inNetnsArgv, shellQuote } from './exec.js';

export interface DaemonOptions {
  readonly cmd: string;
  readonly args?: readonly string[];
  /** Run inside this named network namespace (via `ip netns exec`, which execs: same pid). */
  readonly netns?: string | undefined;
  /** Extra environment variables, merged over process.env. */
  readonly env?: Record<string, string | undefined> | undefined;
  readonly cwd?: string | undefined;
  /** For messages and cleanup labels; defaults to the command's base name. */
  readonly label?: string | undefined;
  /** Write the pid here (put it in a tempDir() so sweepStale() can find it after a SIGKILL). */
  readonly pidFile?: string | undefined;
  /** Where the stop teardown goes; `null`: the caller stops the daemon itself. Default: global registry. */
  readonly registry?: CleanupRegistry | null | undefined;
  /** First signal of stop(); default SIGTERM. */
  readonly stopSignal?: NodeJS.Signals | undefined;
  /** How long stop() waits before SIGKILL; default 5 s. */
  readonly stopTimeoutMs?: number | undefined;
  /** How much combined stdout+stderr to keep (the tail); default 256 KiB. */
  readonly outputLimit?: number | undefined;
  /** Also copy the output to this process's stderr, prefixed with the label (debugging). */
  readonly echo?: boolean | undefined;
}

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Daemon {
  readonly label: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The command line, for messages. */
  readonly command: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Undefined while running. */
  readonly exitInfo: ExitInfo | undefined;
  readonly running: boolean;
  /** The kept tail of combined stdout and stderr. */
  output(): string;
  /** Resolves with the output once it matches `pattern`; rejects on timeout or if the process exits first. */
  waitForOutput(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  /** Sends a signal to the daemon's process group (default SIGTERM). Returns at once. */
  signal(signal?: NodeJS.Signals): void;
  /**
   * Signals the group (default SIGKILL) and waits for the exit. For signals that do not end the
   * process (SIGSTOP, SIGCONT, SIGHUP to a daemon that reloads) use signal() instead.
   */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** stopSignal, then SIGKILL after stopTimeoutMs; idempotent. Also cancels the registry teardown. */
  stop(): Promise<ExitInfo>;
}

const DEFAULT_OUTPUT_LIMIT = 256 * 1024;

/** Starts a daemon; resolves once the process exists (not once it is "ready": see waitForOutput). */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const [file, argv] = inNetnsArgv(opts.netns, opts.cmd, opts.args ?? []);
  const label = opts.label ?? opts.cmd.split('/').pop()!;
  const command = [file, ...argv].map(shellQuote).join(' ');
  const limit = opts.outputLimit ?? DEFAULT_OUTPUT_LIMIT;
  const stopSignal = opts.stopSignal ?? 'SIGTERM';
  const stopTimeoutMs = opts.stopTimeoutMs ?? 5000;

  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start ${label} (${command}): ${err.message}`, { cause: err })));
  });
  const pid = child.pid!;
  trackProcess(pid, { label, group: true });
  if (opts.pidFile) writeFileSync(opts.pidFile, `${pid}\n`);

  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    if (opts.echo) process.stderr.write(text.replace(/^(?=.)/gm, `[${label}] `));
    out += text;
    if (out.length > limit) out = out.slice(out.length - limit);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);

  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      untrackProcess(pid);
      for (const l of listeners) l();
      resolve(exitInfo);
    });
  });

  const signal = (sig: NodeJS.Signals = 'SIGTERM'): void => {
    if (exitInfo === undefined) signalProcess(pid, sig, true);
  };

  const kill = async (sig: NodeJS.Signals = 'SIGKILL'): Promise<ExitInfo> => {
    signal(sig);
    return exited;
  };

  let stopping: Promise<ExitInfo> | undefined;
  const stop = (): Promise<ExitInfo> => {
    entry?.cancel();
    stopping ??= (async () => {
      if (exitInfo !== undefined) return exitInfo;
      signal(stopSignal);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), stopTimeoutMs); });
      const first = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (first === 'timeout') signal('SIGKILL');
      // The group may hold children that outlive the leader: make sure they go too.
      const info = await exited;
      signalProcess(pid, 'SIGKILL', true);
      return info;
    })();
    return stopping;
  };

  const waitForOutput = (pattern: RegExp | string, timeoutMs = 15_000): Promise<string> => {
    const matches = (): boolean => (typeof pattern === 'string' ? out.includes(pattern) : pattern.test(out));
    return new Promise<string>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const check = (): void => {
        if (matches()) {
          done();
          resolve(out);
        } else if (exitInfo !== undefined) {
          done();
          reject(new Error(`${label} exited (${describeExit(exitInfo)}) before printing ${String(pattern)}; output:\n${tail(out)}`));
        }
      };
      const done = (): void => {
        listeners.delete(check);
        clearTimeout(timer);
      };
      timer = setTimeout(() => {
        done();
        reject(new Error(`${label} did not print ${String(pattern)} within ${timeoutMs} ms; output:\n${tail(out)}`));
      }, timeoutMs);
      listeners.add(check);
      check();
    });
  };

  const entry = opts.registry === null ? undefined
    : (opts.registry ?? cleanup).defer(`stop ${label} (pid ${pid})`, async () => { await stop(); }, { timeoutMs: stopTimeoutMs + 5000 });

  return {
    label,
    pid,
    child,
    command,
    exited,
    get exitInfo() { return exitInfo; },
    get running() { return exitInfo === undefined; },
    output: () => out,
    waitForOutput,
    signal,
    kill,
    stop,
  };
}

export function describeExit(info: ExitInfo): string {
  return info.signal ? `killed by ${info.signal}` : `exit code ${info.code}`;
}

/** The last `n` lines of a log, for error messages. */
export function tail(text: string, n = 40): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}
