/**
 * Running commands from tests: a promise wrapper around child_process with error messages that
 * say what ran, how it ended and what it printed on stderr.
 *
 *   await exec('ip', ['-j', 'link'])                      // stdout, throws CommandError on failure
 *   await exec('ping', ['-c1', ip], { netns: host.name }) // `ip netns exec <name> ping -c1 <ip>`
 *   const r = await run('ping', [...], { allowFailure: true }); r.code === 0
 *   const links = await ipJson<IpLink[]>(host.name, ['link', 'show', 'eth0'])
 *
 * Commands are for *observing* (assertions); topology is built with src/netlink.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsc } from 'node:fs';
import { join } from 'node:path';

export interface RunOptions {
  /** Run inside this named network namespace (`ip netns exec <netns> cmd ...`). */
  readonly netns?: string | undefined;
  /** Written to the command's stdin, which is then closed. stdin is /dev/null otherwise. */
  readonly input?: string | Buffer | undefined;
  /** Extra environment variables, merged over process.env. */
  readonly env?: Record<string, string | undefined> | undefined;
  readonly cwd?: string | undefined;
  /** Kill the command (SIGKILL) after this long; default 30 s. 0 disables the timeout. */
  readonly timeoutMs?: number | undefined;
  /** Resolve with the result instead of throwing when the command fails. */
  readonly allowFailure?: boolean | undefined;
}

export interface RunResult {
  /** The command line as run, for messages ("ip netns exec twt-... ping -c1 198.18.0.3"). */
  readonly command: string;
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** Output beyond this is dropped from the middle of the message (kept in full in the result). */
const MESSAGE_STDERR_LIMIT = 4000;

/** A command that could not start, exited non-zero, was killed, or timed out. */
export class CommandError extends Error {
  constructor(readonly result: RunResult, cause?: unknown) {
    super(describeFailure(result, cause), cause === undefined ? undefined : { cause });
    this.name = 'CommandError';
  }

  get code(): number | null { return this.result.code; }
  get stdout(): string { return this.result.stdout; }
  get stderr(): string { return this.result.stderr; }
}

function describeFailure(r: RunResult, cause: unknown): string {
  let how: string;
  if (cause !== undefined) how = `could not run: ${cause instanceof Error ? cause.message : String(cause)}`;
  else if (r.timedOut) how = `timed out after ${r.durationMs} ms`;
  else if (r.signal) how = `killed by ${r.signal}`;
  else how = `exited with code ${r.code}`;
  const parts = [`command failed: ${r.command}: ${how}`];
  const stderr = r.stderr.trim();
  if (stderr) parts.push(`stderr: ${clip(stderr)}`);
  else if (r.stdout.trim()) parts.push(`stdout: ${clip(r.stdout.trim())}`);
  return parts.join('\n');
}

function clip(s: string): string {
  if (s.length <= MESSAGE_STDERR_LIMIT) return s;
  const half = MESSAGE_STDERR_LIMIT / 2;
  return `${s.slice(0, half)}\n... (${s.length - MESSAGE_STDERR_LIMIT} chars) ...\n${s.slice(-half)}`;
}

/** Quotes an argument for display only (messages, logs); never passed to a shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The argv that runs `cmd args` inside `netns` (or unchanged when netns is undefined). */
export function inNetnsArgv(netns: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  return netns === undefined ? [cmd, [...args]] : ['ip', ['netns', 'exec', netns, cmd, ...args]];
}

/** Whether `cmd` is an executable on PATH (or an executable path); for describe.skipIf. */
export function commandAvailable(cmd: string): boolean {
  const candidates = cmd.includes('/') ? [cmd] : (process.env.PATH ?? '').split(':').filter(Boolean).map((dir) => join(dir, cmd));
  return candidates.some((path) => {
    try {
      accessSync(path, fsc.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Runs a command to completion. Throws {@link CommandError} on failure unless `allowFailure`. */
export function run(cmd: string, args: readonly string[] = [], opts: RunOptions = {}): Promise<RunResult> {
  const [file, argv] = inNetnsArgv(opts.netns, cmd, args);
  const command = [file, ...argv].map(shellQuote).join(' ');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const started = Date.now();
  return new Promise<RunResult>((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let settled = false;
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs) : undefined;
    const result = (code: number | null, signal: NodeJS.Signals | null): RunResult => ({
      command,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      code,
      signal,
      timedOut,
      durationMs: Date.now() - started,
    });
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      reject(new CommandError(result(null, null), e));
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      const r = result(code, signal);
      if (r.code === 0 || opts.allowFailure) resolve(r);
      else reject(new CommandError(r));
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => { /* the command exited without reading: its exit status says why */ });
      child.stdin.end(opts.input);
    }
  });
}

/** Runs a command and returns its stdout; throws {@link CommandError} on failure. */
export async function exec(cmd: string, args: readonly string[] = [], opts: Omit<RunOptions, 'allowFailure'> = {}): Promise<string> {
  return (await run(cmd, args, opts)).stdout;
}

/**
 * Runs `ip -j <args>` in the named namespace (or the caller's, when `netns` is undefined; only
 * for reading) and parses its JSON output. Empty output is `[]`.
 */
export async function ipJson<T = unknown>(netns: string | undefined, args: readonly string[], tool: 'ip' | 'bridge' = 'ip'): Promise<T> {
  const argv = netns === undefined ? ['-j', ...args] : ['-n', netns, '-j', ...args];
  const stdout = await exec(tool, argv);
  const text = stdout.trim();
  if (text === '') return [] as T;
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${tool} ${argv.join(' ')}: output is not JSON (${(e as Error).message}): ${clip(text)}`);
  }
}

// ---- Shapes of `ip -j` output, as far as tests usually look at them ------------------------------

export interface IpAddrInfo {
  readonly family: 'inet' | 'inet6';
  readonly local: string;
  readonly prefixlen: number;
  readonly broadcast?: string;
  readonly scope?: string;
  readonly label?: string;
}

/** One element of `ip -j addr show` (and, without addr_info, of `ip -j link show`). */
export interface IpLinkJson {
  readonly ifindex: number;
  readonly ifname: string;
  readonly flags: readonly string[];
  readonly mtu: number;
  readonly operstate: string;
  readonly link_type?: string;
  readonly address?: string;
  readonly master?: string;
  readonly link?: string;
  readonly link_netnsid?: number;
  readonly linkinfo?: { readonly info_kind?: string; readonly info_data?: Record<string, unknown> };
  readonly addr_info?: readonly IpAddrInfo[];
}

/** One element of `ip -j route show`. */
export interface IpRouteJson {
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  readonly protocol?: string;
  readonly scope?: string;
  readonly prefsrc?: string;
  readonly metric?: number;
  readonly flags: readonly string[];
}
