/**
 * {@link PeerDaemonBase}: what the three BGP peer kinds share (bgp-peers.ts): the work dir, the
 * processes and their output, the cleanup entry, the announcement state, waiting, kill, pause,
 * restart and stop.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  canonicalIp, canonicalPrefix, isIpv6, safeLabel, waitAddressesUsable,
  type AnnounceOptions, type Announcement, type BulkSet, type LearnedRoute, type NeighborStatus, type PeerDaemon, type PeerDaemonOptions,
  type PeerFamily, type PeerKind, type PeerNeighbor,
} from './bgp-peers-common.js';
import { tempDir, trackPath, untrackPath, type CleanupEntry } from './cleanup.js';
import { describeExit, startDaemon, tail, type Daemon } from './daemon.js';
import type { TestNetns } from './netns.js';
import { sleep, waitFor } from './wait.js';

export interface ProcessSpec {
  /** Short name: also the pid file's name (<name>.run.pid in the dir). */
  readonly name: string;
  readonly cmd: string;
  readonly args: readonly string[];
  /** Paths that belong to this process (removed when it exits), e.g. FRR's /var/tmp/frr/<prog>.<pid>. */
  readonly extraPaths?: (pid: number) => readonly string[];
}

const HISTORY_LIMIT = 64 * 1024;

export abstract class PeerDaemonBase implements PeerDaemon {
  abstract readonly kind: PeerKind;
  readonly label: string;
  readonly netns: TestNetns;
  readonly dir: string;
  /** Current processes, main (BGP) one last. */
  protected procs: Daemon[] = [];
  protected readonly announced = new Map<string, Announcement>();
  protected readonly bulk: BulkSet[] = [];
  private history = '';
  private readonly entry: CleanupEntry;

  constructor(protected readonly opts: PeerDaemonOptions) {
    this.netns = opts.netns;
    this.label = safeLabel(opts.label ?? opts.kind);
    const registry = opts.registry ?? opts.netns.registry;
    this.dir = tempDir(`bgp-${this.label}`, registry);
    this.entry = registry.defer(`bgp peer ${this.label} (${opts.kind}) in ${opts.netns.name}`, () => this.stopProcesses(), { timeoutMs: 20_000 });
    for (const a of opts.announce ?? []) this.announced.set(canonicalPrefix(a.prefix), { ...a, prefix: canonicalPrefix(a.prefix) });
  }

  get pid(): number {
    const main = this.procs[this.procs.length - 1];
    if (!main) throw new Error(`${this.label}: not running`);
    return main.pid;
  }

  get running(): boolean {
    return this.procs.length > 0 && this.procs.every((p) => p.running);
  }

  /** Neighbor by address (any spelling), or throws. */
  protected neighbor(address: string): PeerNeighbor {
    const want = canonicalIp(address);
    const n = this.opts.neighbors.find((x) => canonicalIp(x.address) === want);
    if (!n) throw new Error(`${this.label}: no neighbor ${address} (have ${this.opts.neighbors.map((x) => x.address).join(', ')})`);
    return n;
  }

  protected isIbgp(n: PeerNeighbor): boolean {
    return n.asn === this.opts.asn;
  }

  /** The listen/source address of a family, if configured. */
  protected localAddress(family: 'ipv4' | 'ipv6'): string | undefined {
    const list = typeof this.opts.listenAddress === 'string' ? [this.opts.listenAddress] : this.opts.listenAddress ?? [];
    return list.find((a) => isIpv6(a) === (family === 'ipv6'));
  }

  protected listenAddresses(): string[] {
    return typeof this.opts.listenAddress === 'string' ? [this.opts.listenAddress] : [...(this.opts.listenAddress ?? [])];
  }

  /** Writes config files and starts the processes (via spawn()), then waits until the control interface answers. */
  protected abstract launch(): Promise<void>;

  /** Starts one process in the namespace; tracked, pid file in the dir, output kept. */
  protected async spawn(spec: ProcessSpec): Promise<Daemon> {
    const d = await startDaemon({
      cmd: spec.cmd,
      args: spec.args,
      netns: this.netns.name,
      label: `${this.label}:${spec.name}`,
      pidFile: join(this.dir, `${spec.name}.run.pid`),
      registry: null,
      stopTimeoutMs: 5000,
      echo: this.opts.echo,
    });
    const extra = spec.extraPaths?.(d.pid) ?? [];
    for (const p of extra) trackPath(p);
    void d.exited.then(() => {
      this.history += `--- ${d.label} (pid ${d.pid}) ${d.exitInfo ? describeExit(d.exitInfo) : ''}\n${d.output()}`;
      if (this.history.length > HISTORY_LIMIT) this.history = this.history.slice(-HISTORY_LIMIT);
      for (const p of extra) {
        rmSync(p, { recursive: true, force: true });
        untrackPath(p);
      }
    });
    this.procs.push(d);
    return d;
  }

  /** Throws with the output tail if a process has exited. */
  protected checkAlive(what: string): void {
    const dead = this.procs.find((p) => !p.running);
    if (dead) {
      throw new Error(`${this.label}: ${dead.label} exited (${dead.exitInfo ? describeExit(dead.exitInfo) : '?'}) ${what}; output:\n${tail(this.output(), 30)}`);
    }
  }

  /** Polls `probe` until it resolves truthy, failing fast (with the log) if a process dies. */
  protected async waitReady(probe: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastErr: unknown;
    for (;;) {
      this.checkAlive(`while waiting for ${what}`);
      try {
        if (await probe()) return;
      } catch (err) {
        lastErr = err;
      }
      if (Date.now() > deadline) {
        const why = lastErr instanceof Error ? `; last error: ${lastErr.message}` : '';
        throw new Error(`${this.label}: ${what} not ready after ${timeoutMs} ms${why}; output:\n${tail(this.output(), 30)}`);
      }
      await sleep(100);
    }
  }

  /** Adds the output tail to an error from a control command. */
  protected fail(what: string, err: unknown): never {
    throw new Error(`${this.label}: ${what}: ${err instanceof Error ? err.message : String(err)}\n--- ${this.kind} output ---\n${tail(this.output(), 20)}`,
      { cause: err });
  }

  /** First start; on failure stops what did start. */
  async start(): Promise<void> {
    await waitAddressesUsable(this.netns);
    try {
      await this.launch();
    } catch (err) {
      await this.stopProcesses().catch(() => undefined);
      throw err;
    }
  }

  abstract sessionState(neighbor: string): Promise<string>;
  abstract neighborStatus(neighbor: string): Promise<NeighborStatus>;
  abstract requestRouteRefresh(neighbor: string): Promise<void>;
  abstract learned(family?: PeerFamily): Promise<LearnedRoute[]>;
  abstract learnedCount(family?: PeerFamily): Promise<number>;
  abstract announce(prefix: string, opts?: AnnounceOptions): Promise<void>;
  abstract withdraw(prefix: string): Promise<void>;
  abstract announceMany(count: number, base?: string): Promise<void>;

  async waitEstablished(neighbor: string, timeoutMs = 30_000): Promise<void> {
    this.neighbor(neighbor);
    let last = '?';
    try {
      await waitFor(async () => {
        this.checkAlive(`while waiting for ${neighbor}`);
        last = await this.sessionState(neighbor);
        return last === 'established';
      }, { timeoutMs, intervalMs: 200, what: `${this.label} session with ${neighbor} to be established` });
    } catch (err) {
      throw new Error(`${(err as Error).message} (last state: ${last})\n--- ${this.kind} output ---\n${tail(this.output(), 30)}`, { cause: err });
    }
  }

  async waitNotEstablished(neighbor: string, timeoutMs = 30_000): Promise<void> {
    this.neighbor(neighbor);
    await waitFor(async () => (await this.sessionState(neighbor)) !== 'established',
      { timeoutMs, intervalMs: 200, what: `${this.label} session with ${neighbor} to leave established` });
  }

  protected nextBulkId(): number {
    return this.bulk.length + 1;
  }

  output(): string {
    const current = this.procs.filter((p) => p.running).map((p) => `--- ${p.label} (pid ${p.pid}, running)\n${p.output()}`).join('');
    return this.history + current;
  }

  pause(): void {
    this.procs[this.procs.length - 1]?.signal('SIGSTOP');
  }

  resume(): void {
    this.procs[this.procs.length - 1]?.signal('SIGCONT');
  }

  async kill(): Promise<void> {
    // Main (BGP) process first: its peers should see it go, not its helper.
    for (const p of [...this.procs].reverse()) await p.kill('SIGKILL');
  }

  /** SIGTERM (SIGKILL after 5 s) to every process, BGP one first; forgets them. */
  protected async stopProcesses(): Promise<void> {
    const procs = [...this.procs].reverse();
    for (const p of procs) {
      if (p.running) p.signal('SIGCONT'); // in case it was paused
      await p.stop();
    }
    // Let the exit handlers (history, extra paths) run.
    await Promise.all(procs.map((p) => p.exited));
    await sleep(0);
    this.procs = [];
  }

  async restart(): Promise<void> {
    await this.stopProcesses();
    await this.launch();
  }

  stop(): Promise<void> {
    return this.stopProcesses();
  }

  /** Stops for good and drops the registry entry (the dir goes with its own entry). */
  async dispose(): Promise<void> {
    this.entry.cancel();
    await this.stopProcesses();
  }
}
