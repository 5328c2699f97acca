/**
 * Throwaway network namespaces for tests, built with Twill's own netlink layer (src/netlink).
 *
 *   const r1 = await createTestNetns('r1');            // twt-<owner>.<id>-r1, lo up
 *   const r2 = await createTestNetns('r2');
 *   await connectNetns(r1, r2, { a: { ifname: 'p0', cidr: '198.19.0.1/30' }, b: { ifname: 'p0', cidr: '198.19.0.2/30' } });
 *   expect(await r1.ping('198.19.0.2')).toBe(true);
 *
 * Every namespace is tracked for exit-time deletion and registered with a cleanup registry
 * (default: the global one); destroy() kills whatever still runs inside and deletes it.
 * Nothing here ever creates a link in the caller's (root) namespace.
 */
import { createNetns, readSysctl, withNetns, writeSysctl, type Netlink } from '../../src/netlink/index.js';
import {
  cleanup, CleanupError, destroyNetnsSync, netnsExists, pidsInNetns, trackNetns, untrackNetns, type CleanupEntry, type CleanupRegistry,
} from './cleanup.js';
import { startDaemon, type Daemon, type DaemonOptions } from './daemon.js';
import { exec, ipJson, run, type IpLinkJson, type IpRouteJson, type RunOptions, type RunResult } from './exec.js';
import { groupId, netnsName } from './names.js';

/** RTPROT_BOOT, what `ip route add` stamps: routes the harness adds are not Twill's (84). */
export const RTPROT_BOOT = 3;

export interface TestNetnsOptions {
  /** Group id shared by namespaces that belong together (names.ts groupId()); default: fresh. */
  readonly group?: string | undefined;
  /** Registry that destroys the namespace; default the global one. */
  readonly registry?: CleanupRegistry | undefined;
  /** Bring `lo` up (default true). */
  readonly loopbackUp?: boolean | undefined;
}

/** What a {@link TestNetns} is made of; subclasses (Host, Pod) wrap an existing one with it. */
export interface TestNetnsInit {
  readonly name: string;
  /** /run/netns/<name> */
  readonly netnsPath: string;
  /** The registry holding the namespace's teardown (daemons spawned inside register there too). */
  readonly registry: CleanupRegistry;
  /** Its teardown in that registry; destroy() runs it. */
  readonly entry?: CleanupEntry | undefined;
  /** Run (LIFO) before the namespace is deleted; see onDestroy(). Shared by wrappers of one namespace. */
  readonly hooks?: PreDestroyHook[] | undefined;
}

export interface PreDestroyHook {
  readonly label: string;
  readonly fn: () => void | Promise<void>;
}

/** A named network namespace this process created, with helpers to act in it and inspect it. */
export class TestNetns {
  readonly name: string;
  /** Path of the namespace file (/run/netns/<name>), for Netlink.open / peerNetnsPath. */
  readonly netnsPath: string;
  readonly registry: CleanupRegistry;
  private readonly entry: CleanupEntry | undefined;
  private readonly hooks: PreDestroyHook[];

  /** Use {@link createTestNetns} to make one; this only wraps a namespace that exists. */
  constructor(init: TestNetnsInit) {
    this.name = init.name;
    this.netnsPath = init.netnsPath;
    this.registry = init.registry;
    this.entry = init.entry;
    this.hooks = init.hooks ?? [];
  }

  /** The parts of `ns`, for a subclass constructor wrapping it. */
  protected static initOf(ns: TestNetns): TestNetnsInit {
    return { name: ns.name, netnsPath: ns.netnsPath, registry: ns.registry, entry: ns.entry, hooks: ns.hooks };
  }

  /**
   * Registers `fn` to run just before the namespace is deleted (LIFO, also at registry unwind).
   * Use it for what lives *outside* the namespace but belongs to it, e.g. a pod's host-side veth:
   * the kernel frees a deleted namespace (and the veth pairs in it) asynchronously, so deleting
   * such links first makes teardown deterministic. Not run by the exit-time emergency cleanup.
   */
  onDestroy(label: string, fn: () => void | Promise<void>): void {
    this.hooks.push({ label, fn });
  }

  /** @internal Runs the pre-destroy hooks, then kills what runs inside and deletes the namespace. */
  static async teardown(name: string, hooks: PreDestroyHook[]): Promise<void> {
    const errors: unknown[] = [];
    const labels: string[] = [];
    for (const hook of hooks.splice(0).reverse()) {
      try {
        await hook.fn();
      } catch (err) {
        errors.push(err);
        labels.push(hook.label);
      }
    }
    destroyNetnsSync(name);
    if (errors.length > 0) throw new CleanupError(labels, errors);
  }

  /** True until destroyed. */
  get exists(): boolean {
    return netnsExists(this.name);
  }

  /** Runs `cmd args` inside the namespace (`ip netns exec`) and returns stdout; throws CommandError. */
  exec(cmd: string, args: readonly string[] = [], opts: Omit<RunOptions, 'netns' | 'allowFailure'> = {}): Promise<string> {
    return exec(cmd, args, { ...opts, netns: this.name });
  }

  /** Like exec, but resolves with the whole result; `allowFailure` to inspect failures. */
  run(cmd: string, args: readonly string[] = [], opts: Omit<RunOptions, 'netns'> = {}): Promise<RunResult> {
    return run(cmd, args, { ...opts, netns: this.name });
  }

  /** `ip -j <args>` inside the namespace, parsed. */
  json<T = unknown>(args: readonly string[]): Promise<T> {
    return ipJson<T>(this.name, args);
  }

  /** `ip -j addr show [dev]`: links with their addresses. */
  async links(dev?: string): Promise<IpLinkJson[]> {
    return this.json<IpLinkJson[]>(dev === undefined ? ['-d', 'addr', 'show'] : ['-d', 'addr', 'show', 'dev', dev]);
  }

  /** One link by name (with addr_info and linkinfo), or undefined. */
  async link(dev: string): Promise<IpLinkJson | undefined> {
    const all = await this.links();
    return all.find((l) => l.ifname === dev);
  }

  /** `ip -j route show [args]`. */
  routes(args: readonly string[] = []): Promise<IpRouteJson[]> {
    return this.json<IpRouteJson[]>(['route', 'show', ...args]);
  }

  /** True when `ping -c <count> -W <timeoutSec> <ip>` from this namespace succeeds. */
  async ping(ip: string, opts: { count?: number; timeoutSec?: number } = {}): Promise<boolean> {
    const args = ['-n', '-q', '-c', String(opts.count ?? 1), '-W', String(opts.timeoutSec ?? 1), ip];
    const r = await this.run('ping', ip.includes(':') ? ['-6', ...args] : args, { allowFailure: true });
    return r.code === 0;
  }

  /** Runs `fn` with a netlink handle bound to this namespace (closed afterwards). */
  netlink<T>(fn: (nl: Netlink) => Promise<T>): Promise<T> {
    return withNetns(this.netnsPath, fn);
  }

  readSysctl(key: string): string {
    return readSysctl(key, this.netnsPath);
  }

  writeSysctl(key: string, value: string | number): void {
    writeSysctl(key, value, this.netnsPath);
  }

  /** Pids of the processes running inside (ip netns pids). */
  pids(): number[] {
    return pidsInNetns(this.name);
  }

  /**
   * Starts a long-running process inside the namespace; stopped when this namespace's registry
   * unwinds (before the namespace goes, since it was registered later) unless opts.registry says otherwise.
   */
  spawn(cmd: string, args: readonly string[] = [], opts: Omit<DaemonOptions, 'cmd' | 'args' | 'netns'> = {}): Promise<Daemon> {
    return startDaemon({ registry: this.registry, ...opts, cmd, args, netns: this.name });
  }

  /**
   * Kills every process inside and deletes the namespace (its links go with it). Idempotent; also
   * removes the registry's teardown for it.
   */
  async destroy(): Promise<void> {
    await (this.entry ? this.entry.run() : TestNetns.teardown(this.name, this.hooks));
  }
}

/**
 * Creates `twt-<owner>.<group>-<label>`, tracked for exit-time deletion and destroyed by the
 * registry. `lo` is brought up unless `loopbackUp: false`.
 */
export async function createTestNetns(label: string, opts: TestNetnsOptions = {}): Promise<TestNetns> {
  const registry = opts.registry ?? cleanup;
  const name = netnsName(label, opts.group ?? groupId());
  trackNetns(name);
  let path: string;
  try {
    path = createNetns(name);
  } catch (err) {
    // createNetns removes what it half-made; on EEXIST the name is someone else's: leave it be.
    untrackNetns(name);
    throw err;
  }
  const hooks: PreDestroyHook[] = [];
  const entry = registry.defer(`netns ${name}`, () => TestNetns.teardown(name, hooks));
  const ns = new TestNetns({ name, netnsPath: path, registry, entry, hooks });
  if (opts.loopbackUp ?? true) {
    await ns.netlink((nl) => nl.setUp('lo'));
  }
  return ns;
}

export interface VethEnd {
  /** Interface name inside that namespace. */
  readonly ifname: string;
  /** Address to add, e.g. "198.19.0.1/30". */
  readonly cidr?: string | undefined;
}

export interface ConnectOptions {
  readonly a: VethEnd;
  readonly b: VethEnd;
  readonly mtu?: number | undefined;
}

/**
 * Joins two test namespaces with a veth pair (created in `a`, its peer directly in `b`), adds
 * the given addresses and brings both ends up. The pair goes when either namespace goes.
 */
export async function connectNetns(a: TestNetns, b: TestNetns, opts: ConnectOptions): Promise<void> {
  await a.netlink(async (nl) => {
    await nl.createVeth({ name: opts.a.ifname, peerName: opts.b.ifname, peerNetnsPath: b.netnsPath, mtu: opts.mtu });
    if (opts.a.cidr !== undefined) await nl.addAddress(opts.a.ifname, opts.a.cidr);
    await nl.setUp(opts.a.ifname);
  });
  await b.netlink(async (nl) => {
    if (opts.b.cidr !== undefined) await nl.addAddress(opts.b.ifname, opts.b.cidr);
    await nl.setUp(opts.b.ifname);
  });
}
