import { spawn } from 'node:child_process';

// Short-lived helper commands of the demo (`ip netns exec ...`, the CNI plugins, ping, iperf3).
// Each runs in a process group of its own, so a Ctrl-C in the terminal reaches only twillctl,
// which then stops them itself in the order teardown needs.

export interface CommandOptions {
  /** Written to stdin, which is then closed; stdin is empty otherwise. */
  readonly input?: string | undefined;
  /** Merged over process.env; an undefined value removes the variable. */
  readonly env?: Record<string, string | undefined> | undefined;
  /** SIGKILL after this long; default 30 s. */
  readonly timeoutMs?: number | undefined;
  /** SIGKILL when this aborts. */
  readonly signal?: AbortSignal | undefined;
}

export interface CommandResult {
  /** For messages: the command line as run. */
  readonly command: string;
  /** Exit code; null when the command was killed or could not start. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  /** Why the command could not start (ENOENT...), if it did not. */
  readonly spawnError: string | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** The environment for a child: process.env with `extra` applied (undefined deletes). */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export function displayCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/** Runs a command to completion; never rejects (failures are in the result). */
export function runCommand(cmd: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  const command = displayCommand(cmd, args);
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: string | undefined;
    let settled = false;
    const child = spawn(cmd, [...args], {
      env: childEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    const kill = (): void => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const onAbort = (): void => kill();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) kill();
    const finish = (code: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ command, code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), timedOut, spawnError });
    };
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      spawnError = e.message;
      finish(null);
    });
    child.on('close', (code) => finish(code));
    child.stdin.on('error', () => undefined); // EPIPE when the command exits without reading
    child.stdin.end(opts.input ?? '');
  });
}

/** One line saying how a failed command ended, with the end of its stderr. */
export function describeFailure(r: CommandResult): string {
  const how = r.spawnError !== undefined ? `could not start: ${r.spawnError}`
    : r.timedOut ? 'timed out'
      : r.code === null ? 'was killed'
        : `exited with code ${r.code}`;
  const stderr = r.stderr.trim().split('\n').slice(-5).join('\n');
  return `${r.command}: ${how}${stderr ? `\n${stderr}` : ''}`;
}
