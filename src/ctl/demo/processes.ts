import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { netnsPath } from '../../netlink/index.js';
import { childEnv, runCommand } from './exec.js';

// The demo's long-running processes (etcd, one twilld per host) and how they are stopped.
// Daemons run in a process group of their own with their output in a log file, so that they
// outlive twillctl with --keep, and a Ctrl-C in the terminal does not hit them before teardown
// stops them in order. Stopping is by namespace: every process inside a `twill-demo-` namespace
// belongs to the demo, which also works for `--down` from another twillctl process.

export interface DemoDaemon {
  readonly label: string;
  readonly pid: number;
  readonly logFile: string;
  /** False once the process has exited. */
  readonly running: boolean;
  /** How it exited ("code 1", "signal SIGKILL"), once it has. */
  readonly exit: string | undefined;
}

/** Starts `ip netns exec <netns> <cmd> <args...>` detached, stdout and stderr appended to logFile. */
export function startDaemon(opts: {
  readonly label: string;
  readonly netns: string;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly logFile: string;
  readonly env?: Record<string, string | undefined>;
}): Promise<DemoDaemon> {
  const fd = openSync(opts.logFile, 'a', 0o644);
  try {
    const child = spawn('ip', ['netns', 'exec', opts.netns, opts.cmd, ...opts.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: childEnv(opts.env),
    });
    return new Promise((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start ${opts.label}: ${err.message}`)));
      child.once('spawn', () => {
        const daemon = { label: opts.label, pid: child.pid!, logFile: opts.logFile, running: true, exit: undefined as string | undefined };
        child.once('exit', (code, signal) => {
          daemon.running = false;
          daemon.exit = signal ? `signal ${signal}` : `code ${code}`;
        });
        // twillctl must be free to exit while the daemon runs on (--keep).
        child.unref();
        resolve(daemon);
      });
    });
  } finally {
    closeSync(fd);
  }
}

/** The last `lines` lines of a log file ("" if it cannot be read). */
export function logTail(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, 'utf8').trimEnd();
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** The message of the last fatal (pino level 60) line of a daemon's JSON log, if any: why twilld gave up. */
export function fatalMessage(file: string): string | undefined {
  for (const line of logTail(file, 50).split('\n').reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (entry.level === 60 && typeof entry.msg === 'string') return entry.msg;
    } catch { /* not a JSON line */ }
  }
  return undefined;
}

/** Pids of the processes inside each named namespace (other than this process). */
export function pidsInNamespaces(names: readonly string[]): Map<string, number[]> {
  const byInode = new Map<string, string>();
  const out = new Map<string, number[]>();
  for (const name of names) {
    try {
      const st = statSync(netnsPath(name));
      byInode.set(`${st.dev}:${st.ino}`, name);
      out.set(name, []);
    } catch { /* gone */ }
  }
  if (byInode.size === 0) return out;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const st = statSync(`/proc/${entry}/ns/net`);
      const name = byInode.get(`${st.dev}:${st.ino}`);
      if (name !== undefined) out.get(name)!.push(Number(entry));
    } catch { /* exited meanwhile, or a kernel thread */ }
  }
  return out;
}

/** The fields of /proc/<pid>/stat after "pid (comm)": state, ppid, ...; undefined once gone. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: the fields start after the last ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Running, and not a zombie (an exited daemon whose new parent has not reaped it yet). */
export function alive(pid: number): boolean {
  const fields = procStat(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch { /* already gone */ }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parentPid(pid: number): number | undefined {
  const ppid = procStat(pid)?.[1];
  return ppid === undefined ? undefined : Number(ppid);
}

/**
 * Stops every process inside the named namespaces: SIGTERM, then SIGKILL for whatever still
 * runs after `graceMs`. Returns how many of them were not children of another one: a daemon
 * counts once, not again for the short-lived `nft` it happened to be running (twilld --ip-masq
 * runs one every resync), which would make the count depend on timing.
 */
export async function stopProcessesIn(names: readonly string[], graceMs = 5000): Promise<number> {
  const pids = [...pidsInNamespaces(names).values()].flat();
  const inside = new Set(pids);
  const topLevel = pids.filter((pid) => !inside.has(parentPid(pid) ?? -1)).length;
  for (const pid of pids) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some(alive) && Date.now() < deadline) await sleep(50);
  const left = pids.filter(alive);
  for (const pid of left) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (left.some(alive) && Date.now() < killDeadline) await sleep(20);
  return topLevel;
}

const POLL_SCRIPT = `
const [url, match, timeout] = process.argv.slice(1);
const re = new RegExp(match, 'm');
const deadline = Date.now() + Number(timeout);
let last = 'no answer';
(async () => {
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      const body = await r.text();
      last = 'HTTP ' + r.status + ': ' + body.slice(0, 300);
      if (r.status === 200 && re.test(body)) { process.stdout.write(last); process.exit(0); }
    } catch (e) { last = String(e?.cause?.code ?? e?.message ?? e); }
    if (Date.now() > deadline) { process.stdout.write(last); process.exit(1); }
    await new Promise((res) => setTimeout(res, 100));
  }
})();`;

/**
 * Polls `url` from inside a namespace (whose loopback and addresses this process cannot reach)
 * until it answers 200 with a body matching `match` (a regular expression, multiline), or
 * `timeoutMs` passes. One Node process per call runs the whole loop, so waiting on twenty
 * agents costs twenty processes, not twenty per poll. `last` is the last answer seen.
 */
export async function pollUrlInNetns(netns: string, url: string, opts: { match?: string; timeoutMs: number; signal?: AbortSignal }): Promise<{ ok: boolean; last: string }> {
  const r = await runCommand('ip', ['netns', 'exec', netns, process.execPath, '-e', POLL_SCRIPT, url, opts.match ?? '', String(opts.timeoutMs)],
    { timeoutMs: opts.timeoutMs + 10_000, signal: opts.signal });
  return { ok: r.code === 0, last: r.stdout.trim() || r.stderr.trim().split('\n').pop() || 'no answer' };
}
