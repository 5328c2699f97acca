/**
 * A TypeScript mimic of libcni (containernetworking/cni/libcni 1.2/1.3): drives CNI plugins the
 * way a container runtime (containerd via go-cni, CRI-O, cnitool) does, for tests and benchmarks.
 *
 *   const cni = new CniRuntime({ pluginDirs: ['/usr/lib/cni'], cacheDir: tempDir('cni-cache'), hostNetns: host.name });
 *   const list = { cniVersion: '1.0.0', name: 'pods', plugins: [{ type: 'bridge', ipam: { ... } }, { type: 'portmap', capabilities: { portMappings: true } }] };
 *   const rt = { containerId: 'c1', netns: pod.netnsPath, ifname: 'eth0', capabilityArgs: { portMappings: [...] } };
 *   const result = await cni.addNetworkList(list, rt);   // cached at <cacheDir>/results/pods-c1-eth0
 *   await cni.checkNetworkList(list, rt);
 *   await cni.delNetworkList(list, rt);                  // reverse order, cached result as prevResult
 *
 * What it reproduces (libcni/api.go, conf.go, pkg/invoke):
 * - stdin per plugin: the plugin's own object plus the list's `name` and `cniVersion`, `prevResult`
 *   when there is one, and `runtimeConfig` holding only the capabilities the plugin declares
 *   (`capabilities: {x: true}`) and the runtime supplies (`capabilityArgs.x`);
 * - env: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_ARGS` (`K=V;K=V`), `CNI_IFNAME` and
 *   `CNI_PATH` (pluginDirs joined by ':') are always set, empty when there is no value, as
 *   libcni's invoke.Args.AsEnv does; GC and STATUS send empty container/netns/ifname, VERSION
 *   sends "dummy" ones;
 * - the binary is `type` in the first plugin dir that holds a regular file of that name;
 * - ADD validates the container id, network name and ifname first (libcni's utils.Validate*,
 *   CNI error codes 3, 4, 7) and caches {kind: "cniCacheV1", containerId, config (the conflist
 *   JSON, base64 as Go marshals []byte), ifName, networkName, netns, cniArgs, capabilityArgs,
 *   result} at <cacheDir>/results/<net>-<cid>-<ifname> (mode 0600) only when every plugin succeeded;
 *   a failed ADD is neither cached nor undone: calling DEL is the caller's job, as for a runtime;
 * - the list's version is `cniVersion`, or the highest of `cniVersions` (plus `cniVersion`) that
 *   is not newer than 1.1.0; a result without `cniVersion` is taken to be in the list's version;
 * - errors: the `{code, msg, details}` JSON is read from stdout, from stderr only as a fallback
 *   (libcni itself never reads stderr); without JSON the CniError has code undefined.
 *
 * Simplifications: results are never converted between versions (a cached result handed to
 * CHECK/DEL only gets the list's `cniVersion`); keys keep their order instead of Go's sorted
 * map order; a timeout (default 30 s, libcni has none) SIGKILLs the plugin's process group.
 * With `hostNetns`, every plugin runs as `ip netns exec <hostNetns> <plugin>` (which also gives it
 * a private mount namespace with /sys remounted), so nothing runs in the caller's namespace.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signalProcess, trackProcess, untrackProcess } from './cleanup.js';
import { inNetnsArgv, shellQuote } from './exec.js';

export interface ConfList {
  cniVersion: string;
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  /** Each has `type` and optionally `capabilities` ({portMappings: true, ...}). */
  plugins: Record<string, unknown>[];
}

export interface RuntimeConf {
  containerId: string;
  /** Path of the pod's network namespace (CNI_NETNS); may be ''. */
  netns: string;
  ifname: string;
  /** CNI_ARGS, e.g. [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']]. */
  args?: [string, string][];
  /** Capability arguments (portMappings, ips, mac, bandwidth, dns...), filtered per plugin into runtimeConfig. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniRuntimeOptions {
  /** CNI_PATH: where plugins are looked up, in order. */
  pluginDirs: string[];
  /** libcni's cache dir (/var/lib/cni on a node); results go to <cacheDir>/results. */
  cacheDir: string;
  /** Name of the network namespace the plugins run in (`ip netns exec`); undefined: the caller's. */
  hostNetns?: string;
  /** Extra environment for every plugin (e.g. TWILL_CNI_SOCKET), merged over process.env. */
  env?: Record<string, string>;
  /** Per plugin call; SIGKILLs the plugin's process group. Default 30 s; 0 disables. */
  timeoutMs?: number;
}

/** A CNI result (spec 1.x shape); unknown keys are kept. */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; mtu?: number; sandbox?: string; socketPath?: string; pciID?: string }[];
  ips?: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string; mtu?: number; advmss?: number; priority?: number; table?: number; scope?: number }[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
  [key: string]: unknown;
}

/** One entry of GC's valid-attachments list. */
export interface GcAttachment {
  containerID: string;
  ifname: string;
}

/** What libcni writes to <cacheDir>/results/<net>-<cid>-<ifname>. */
export interface CniCacheEntry {
  kind: 'cniCacheV1';
  containerId: string;
  /** The conflist as JSON, base64-encoded (Go marshals []byte so). */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: CniResult;
}

export type CniCommand = 'ADD' | 'CHECK' | 'DEL' | 'GC' | 'STATUS' | 'VERSION';

/** Cache entry kind (libcni CNICacheV1). */
export const CNI_CACHE_KIND = 'cniCacheV1';
/** The newest spec version libcni implements: caps `cniVersions`, sent on VERSION's stdin. */
export const LIBCNI_SPEC_VERSION = '1.1.0';

const DEFAULT_TIMEOUT_MS = 30_000;
const STDERR_IN_MESSAGE = 2000;
/** libcni's utils.cniReg, for container ids and network names. */
const CNI_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * A plugin call failed: the plugin's CNI error (`code`, `details`; `msg` is in the message), a
 * non-zero exit without one (`code` undefined), a timeout or kill (`exitCode` null), or one of
 * libcni's own checks before the call (`exitCode` null, `stderr` empty).
 */
export class CniError extends Error {
  readonly code: number | undefined;
  readonly details: string | undefined;
  /** The plugin's `type`. */
  readonly plugin: string;
  /** CNI_COMMAND of the failed call. */
  readonly command: string;
  readonly stderr: string;
  /** null: killed (timeout, signal), could not start, or never run. */
  readonly exitCode: number | null;

  constructor(message: string, fields: {
    code?: number | undefined; details?: string | undefined; plugin: string; command: string; stderr?: string; exitCode?: number | null;
  }) {
    super(message);
    this.name = 'CniError';
    this.code = fields.code;
    this.details = fields.details;
    this.plugin = fields.plugin;
    this.command = fields.command;
    this.stderr = fields.stderr ?? '';
    this.exitCode = fields.exitCode ?? null;
  }
}

/** The CNI_* values of one call. */
interface CallArgs {
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  readonly args: string;
  /** CNI_PATH override (VERSION sends "dummy"). */
  readonly path?: string;
}

interface RawOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly spawnError: NodeJS.ErrnoException | undefined;
}

export class CniRuntime {
  readonly pluginDirs: readonly string[];
  readonly cacheDir: string;
  readonly hostNetns: string | undefined;
  private readonly env: Readonly<Record<string, string>>;
  private readonly timeoutMs: number;

  constructor(opts: CniRuntimeOptions) {
    this.pluginDirs = [...opts.pluginDirs];
    this.cacheDir = opts.cacheDir;
    this.hostNetns = opts.hostNetns;
    this.env = { ...opts.env };
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** ADD through every plugin in order, chaining results as prevResult; caches the final result. */
  async addNetworkList(list: ConfList, rt: RuntimeConf): Promise<CniResult> {
    const version = effectiveVersion(list);
    let result: CniResult | undefined;
    for (const plugin of list.plugins) {
      const type = pluginType(plugin);
      const path = this.findPlugin(type);
      validateForAdd(list.name, rt, type);
      const stdout = await this.exec(path, type, list.name, 'ADD', buildOneConfig(list.name, version, plugin, result, rt), callArgs(rt));
      result = parseResult(stdout, version, type, list.name);
    }
    this.writeCache(list, rt, result!);
    return result!;
  }

  /** CHECK through every plugin in order with the cached result; a no-op under disableCheck. */
  async checkNetworkList(list: ConfList, rt: RuntimeConf): Promise<void> {
    const version = effectiveVersion(list);
    if (!versionAtLeast(version, '0.4.0')) throw new Error(`configuration version "${version}" does not support the CHECK command`);
    if (list.disableCheck === true) return;
    const cached = this.getCachedResult(list, rt);
    for (const plugin of list.plugins) {
      const type = pluginType(plugin);
      const path = this.findPlugin(type);
      await this.exec(path, type, list.name, 'CHECK', buildOneConfig(list.name, version, plugin, cached, rt), callArgs(rt));
    }
  }

  /**
   * DEL through the plugins in reverse order, each with the cached result (lists >= 0.4.0; none
   * if nothing is cached); removes the cache entry only if every DEL succeeded. An unreadable
   * cache entry is removed and DEL goes on without prevResult, as libcni does.
   */
  async delNetworkList(list: ConfList, rt: RuntimeConf): Promise<void> {
    const version = effectiveVersion(list);
    let cached: CniResult | undefined;
    if (versionAtLeast(version, '0.4.0')) {
      try {
        cached = this.getCachedResult(list, rt);
      } catch {
        this.removeCache(list, rt);
      }
    }
    for (const plugin of [...list.plugins].reverse()) {
      const type = pluginType(plugin);
      const path = this.findPlugin(type);
      await this.exec(path, type, list.name, 'DEL', buildOneConfig(list.name, version, plugin, cached, rt), callArgs(rt));
    }
    if (cached !== undefined) this.removeCache(list, rt);
  }

  /**
   * libcni >= 1.2 GCNetworkList: nothing under disableGC; otherwise DEL for every cached
   * attachment of this network that is not in `validAttachments`, then (lists >= 1.1.0) GC to
   * every plugin with both `cni.dev/valid-attachments` and the older `cni.dev/attachments`.
   * Goes on past failures and throws them together at the end.
   */
  async gcNetworkList(list: ConfList, validAttachments: GcAttachment[]): Promise<void> {
    if (list.disableGC === true) return;
    const version = effectiveVersion(list);
    const errors: unknown[] = [];
    const valid = new Set(validAttachments.map((a) => `${a.containerID}\0${a.ifname}`));
    for (const entry of this.cachedAttachments()) {
      if (entry.networkName !== list.name || valid.has(`${entry.containerId}\0${entry.ifName}`)) continue;
      const rt: RuntimeConf = {
        containerId: entry.containerId, netns: entry.netns ?? '', ifname: entry.ifName,
        ...(entry.cniArgs && { args: entry.cniArgs }), ...(entry.capabilityArgs && { capabilityArgs: entry.capabilityArgs }),
      };
      try {
        await this.delNetworkList(list, rt);
      } catch (err) {
        errors.push(err);
      }
    }
    if (versionAtLeast(version, '1.1.0')) {
      const attachments = validAttachments.map((a) => ({ containerID: a.containerID, ifname: a.ifname }));
      for (const plugin of list.plugins) {
        const type = pluginType(plugin);
        try {
          const conf = { ...plugin, name: list.name, cniVersion: version, 'cni.dev/valid-attachments': attachments, 'cni.dev/attachments': attachments };
          await this.exec(this.findPlugin(type), type, list.name, 'GC', conf, { containerId: '', netns: '', ifname: '', args: '' });
        } catch (err) {
          errors.push(err);
        }
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `GC of network "${list.name}": ${errors.length} failures: ${errors.map(String).join('; ')}`);
  }

  /** STATUS to every plugin in order, stopping at the first failure; a no-op for lists < 1.1.0. */
  async statusNetworkList(list: ConfList): Promise<void> {
    const version = effectiveVersion(list);
    if (!versionAtLeast(version, '1.1.0')) return;
    for (const plugin of list.plugins) {
      const type = pluginType(plugin);
      const conf = { ...plugin, name: list.name, cniVersion: version };
      await this.exec(this.findPlugin(type), type, list.name, 'STATUS', conf, { containerId: '', netns: '', ifname: '', args: '' });
    }
  }

  /** The cached ADD result (with the list's cniVersion), undefined when nothing is cached. Throws on a corrupt entry. */
  getCachedResult(list: ConfList, rt: RuntimeConf): CniResult | undefined {
    const file = this.cacheFile(list, rt);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    const parsed = JSON.parse(text) as Partial<CniCacheEntry> & Record<string, unknown>;
    // Not a cniCacheV1 entry: libcni's legacy cache held the bare result.
    const raw = parsed.kind === CNI_CACHE_KIND ? parsed.result : parsed;
    if (!isObject(raw) || typeof raw.cniVersion !== 'string') throw new Error(`cached result ${file} holds no result with a cniVersion`);
    return { ...(raw as CniResult), cniVersion: effectiveVersion(list) };
  }

  /** <cacheDir>/results/<net>-<containerId>-<ifname>, where ADD caches its result. */
  cacheFile(list: ConfList, rt: RuntimeConf): string {
    if (list.name === '' || rt.containerId === '' || rt.ifname === '') {
      throw new Error(`cache file path requires network name ("${list.name}"), container ID ("${rt.containerId}"), and interface name ("${rt.ifname}")`);
    }
    return join(this.cacheDir, 'results', `${list.name}-${rt.containerId}-${rt.ifname}`);
  }

  /** The plugin's VERSION answer (libcni GetVersionInfo: stdin {"cniVersion":"1.1.0"}, dummy netns/ifname/path). */
  async version(pluginType: string): Promise<{ cniVersion: string; supportedVersions: string[] }> {
    const path = this.findPlugin(pluginType);
    let stdout: string;
    try {
      stdout = await this.exec(path, pluginType, '', 'VERSION', { cniVersion: LIBCNI_SPEC_VERSION },
        { containerId: '', netns: 'dummy', ifname: 'dummy', args: '', path: 'dummy' });
    } catch (err) {
      // Plugins older than VERSION itself (libcni's fallback).
      if (err instanceof CniError && /unknown CNI_COMMAND: VERSION/.test(err.message)) return { cniVersion: '0.1.0', supportedVersions: ['0.1.0'] };
      throw err;
    }
    let info: { cniVersion?: unknown; supportedVersions?: unknown };
    try {
      info = JSON.parse(stdout) as typeof info;
    } catch {
      throw new CniError(`VERSION of plugin type="${pluginType}": output is not JSON: ${stdout.slice(0, 200)}`, { plugin: pluginType, command: 'VERSION', exitCode: 0 });
    }
    if (typeof info.cniVersion !== 'string') throw new CniError(`VERSION of plugin type="${pluginType}": missing field cniVersion`, { plugin: pluginType, command: 'VERSION', exitCode: 0 });
    const supported = Array.isArray(info.supportedVersions) ? info.supportedVersions.filter((v): v is string => typeof v === 'string') : [];
    if (supported.length === 0) {
      if (info.cniVersion === '0.2.0') return { cniVersion: '0.2.0', supportedVersions: ['0.1.0', '0.2.0'] };
      throw new CniError(`VERSION of plugin type="${pluginType}": missing field supportedVersions`, { plugin: pluginType, command: 'VERSION', exitCode: 0 });
    }
    return { cniVersion: info.cniVersion, supportedVersions: supported };
  }

  // ---- internals ------------------------------------------------------------------------------

  /** libcni invoke.FindInPath: the first regular file named `type` in the plugin dirs. */
  private findPlugin(type: string): string {
    if (type === '') throw new Error('no plugin name provided');
    if (type.includes('/')) throw new Error(`invalid plugin name: ${type}`);
    if (this.pluginDirs.length === 0) throw new Error('no paths provided');
    for (const dir of this.pluginDirs) {
      const full = join(dir, type);
      try {
        if (statSync(full).isFile()) return full;
      } catch { /* not here */ }
    }
    throw new Error(`failed to find plugin "${type}" in path [${this.pluginDirs.join(' ')}]`);
  }

  private writeCache(list: ConfList, rt: RuntimeConf, result: CniResult): void {
    const entry: CniCacheEntry = {
      kind: CNI_CACHE_KIND,
      containerId: rt.containerId,
      config: Buffer.from(JSON.stringify(list)).toString('base64'),
      ifName: rt.ifname,
      networkName: list.name,
      ...(rt.netns !== '' && { netns: rt.netns }),
      ...(rt.args && rt.args.length > 0 && { cniArgs: rt.args }),
      ...(rt.capabilityArgs && Object.keys(rt.capabilityArgs).length > 0 && { capabilityArgs: rt.capabilityArgs }),
      result,
    };
    const file = this.cacheFile(list, rt);
    mkdirSync(join(this.cacheDir, 'results'), { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(entry), { mode: 0o600 });
  }

  /** libcni cacheDel: best effort. */
  private removeCache(list: ConfList, rt: RuntimeConf): void {
    try {
      rmSync(this.cacheFile(list, rt), { force: true });
    } catch { /* no valid path: nothing was cached */ }
  }

  /** libcni GetCachedAttachments(""): valid cniCacheV1 entries, by sorted file name. */
  private cachedAttachments(): CniCacheEntry[] {
    const dir = join(this.cacheDir, 'results');
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return [];
    }
    const out: CniCacheEntry[] = [];
    for (const name of names) {
      try {
        const e = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Partial<CniCacheEntry>;
        if (e.kind === CNI_CACHE_KIND && e.ifName && e.networkName && typeof e.containerId === 'string') out.push(e as CniCacheEntry);
      } catch { /* unreadable: skipped, as libcni does */ }
    }
    return out;
  }

  /** Runs one plugin call; resolves with stdout, throws CniError. Retries "text file busy" like libcni's RawExec. */
  private async exec(path: string, type: string, net: string, command: CniCommand, conf: unknown, call: CallArgs): Promise<string> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: call.containerId,
      CNI_NETNS: call.netns,
      CNI_ARGS: call.args,
      CNI_IFNAME: call.ifname,
      CNI_PATH: call.path ?? this.pluginDirs.join(':'),
    };
    const stdin = JSON.stringify(conf);
    let outcome: RawOutcome;
    for (let attempt = 0; ; attempt++) {
      outcome = await this.spawnOnce(path, stdin, env, type, command);
      const busy = outcome.spawnError?.code === 'ETXTBSY' || (outcome.code !== 0 && outcome.stdout === '' && /text file busy/i.test(outcome.stderr));
      if (!busy || attempt >= 5) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (outcome.code === 0 && outcome.spawnError === undefined) return outcome.stdout;
    throw pluginError(outcome, { type, net, command, path, hostNetns: this.hostNetns, timeoutMs: this.timeoutMs });
  }

  private spawnOnce(path: string, stdin: string, env: NodeJS.ProcessEnv, type: string, command: CniCommand): Promise<RawOutcome> {
    const [file, argv] = inNetnsArgv(this.hostNetns, path, []);
    return new Promise<RawOutcome>((resolve) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      let spawnError: NodeJS.ErrnoException | undefined;
      let timer: NodeJS.Timeout | undefined;
      // Its own process group (detached), so a timeout also reaches what the plugin started.
      const child = spawn(file, argv, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      child.once('spawn', () => {
        const pid = child.pid!;
        trackProcess(pid, { label: `CNI ${command} ${type}`, group: true });
        child.once('exit', () => untrackProcess(pid));
        if (this.timeoutMs > 0) {
          timer = setTimeout(() => {
            timedOut = true;
            signalProcess(pid, 'SIGKILL', true);
          }, this.timeoutMs);
        }
      });
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        clearTimeout(timer);
        resolve({
          stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), code, signal, timedOut, spawnError,
        });
      };
      child.once('error', (e: NodeJS.ErrnoException) => {
        spawnError = e;
        if (child.pid === undefined) finish(null, null);
      });
      child.once('close', finish);
      child.stdin.on('error', () => { /* exited without reading stdin: the exit status says why */ });
      child.stdin.end(stdin);
    });
  }
}

// ---- pure helpers ---------------------------------------------------------------------------------

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pluginType(plugin: Record<string, unknown>): string {
  if (typeof plugin.type !== 'string' || plugin.type === '') throw new Error(`error parsing configuration: missing 'type' in ${JSON.stringify(plugin).slice(0, 200)}`);
  return plugin.type;
}

function parseVersion(v: string): [number, number, number] {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) throw new Error(`invalid version "${v}": must be of the form x.y.z`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  return 0;
}

function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/**
 * The version libcni runs a list at (conf.go ConfListFromBytes): with `cniVersions`, the highest
 * of those and `cniVersion` that is not newer than 1.1.0; otherwise `cniVersion`.
 */
export function effectiveVersion(list: ConfList): string {
  if (list.name === undefined || list.name === '') throw new Error('error parsing configuration list: no name');
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) throw new Error('error parsing configuration list: no plugins in list');
  if (list.cniVersions === undefined) return list.cniVersion;
  const candidates = [...list.cniVersions, ...(list.cniVersion ? [list.cniVersion] : [])]
    .filter((v) => compareVersions(v, LIBCNI_SPEC_VERSION) <= 0)
    .sort(compareVersions);
  return candidates.at(-1) ?? list.cniVersion;
}

/** libcni buildOneConfig + injectRuntimeConfig. */
function buildOneConfig(name: string, version: string, plugin: Record<string, unknown>, prevResult: CniResult | undefined, rt: RuntimeConf): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name, cniVersion: version };
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  const caps = isObject(plugin.capabilities) ? plugin.capabilities : {};
  for (const [cap, enabled] of Object.entries(caps)) {
    if (enabled === true && rt.capabilityArgs !== undefined && Object.hasOwn(rt.capabilityArgs, cap)) runtimeConfig[cap] = rt.capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return conf;
}

function callArgs(rt: RuntimeConf): CallArgs {
  return { containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, args: (rt.args ?? []).map(([k, v]) => `${k}=${v}`).join(';') };
}

/** libcni utils.ValidateContainerID / ValidateNetworkName / ValidateInterfaceName, run before each ADD. */
function validateForAdd(net: string, rt: RuntimeConf, type: string): void {
  const fail = (code: number, msg: string, details: string): never => {
    throw new CniError(`plugin type="${type}" failed (add): ${msg}${details ? `: ${details}` : ''} (CNI error ${code})`,
      { code, details: details || undefined, plugin: type, command: 'ADD' });
  };
  if (rt.containerId === '') fail(3, 'missing containerID', '');
  if (!CNI_NAME_RE.test(rt.containerId)) fail(4, 'invalid characters in containerID', rt.containerId);
  if (net === '') fail(7, 'missing network name:', '');
  if (!CNI_NAME_RE.test(net)) fail(7, 'invalid characters found in network name', net);
  if (rt.ifname.length === 0) fail(4, 'interface name is empty', '');
  if (rt.ifname.length > 15) fail(4, 'interface name is too long', 'interface name should be less than 16 characters');
  if (rt.ifname === '.' || rt.ifname === '..') fail(4, 'interface name is . or ..', '');
  if (/[/:\s]/.test(rt.ifname)) fail(4, 'interface name contains / or : or whitespace characters', '');
}

function parseResult(stdout: string, version: string, type: string, net: string): CniResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new CniError(`plugin type="${type}" of network "${net}" (ADD): the result is not JSON: ${stdout.slice(0, 300)}`, { plugin: type, command: 'ADD', exitCode: 0 });
  }
  if (!isObject(parsed)) throw new CniError(`plugin type="${type}" of network "${net}" (ADD): the result is not an object: ${stdout.slice(0, 300)}`, { plugin: type, command: 'ADD', exitCode: 0 });
  // libcni fixupResultVersion (cni#895): a result without a version is in the config's version.
  return { ...parsed, cniVersion: typeof parsed.cniVersion === 'string' && parsed.cniVersion !== '' ? parsed.cniVersion : version } as CniResult;
}

/** A `{code, msg, details}` object in `text` (the whole text, else its last line that is one). */
export function parseCniErrorJson(text: string): { code?: number; msg?: string; details?: string } | undefined {
  const candidates = [text.trim(), ...text.trim().split('\n').reverse().map((l) => l.trim())];
  for (const c of candidates) {
    if (!c.startsWith('{')) continue;
    try {
      const v = JSON.parse(c) as unknown;
      if (isObject(v) && (typeof v.code === 'number' || typeof v.msg === 'string')) {
        return {
          ...(typeof v.code === 'number' && { code: v.code }),
          ...(typeof v.msg === 'string' && { msg: v.msg }),
          ...(typeof v.details === 'string' && v.details !== '' && { details: v.details }),
        };
      }
    } catch { /* not this one */ }
  }
  return undefined;
}

function pluginError(o: RawOutcome, ctx: { type: string; net: string; command: CniCommand; path: string; hostNetns: string | undefined; timeoutMs: number }): CniError {
  const where = ctx.hostNetns === undefined ? '' : ` in netns ${ctx.hostNetns}`;
  const what = `plugin type="${ctx.type}"${ctx.net ? ` of network "${ctx.net}"` : ''} failed (${ctx.command})${where}`;
  const stderr = o.stderr.trim();
  const stderrNote = stderr === '' ? '' : `\nstderr: ${stderr.length > STDERR_IN_MESSAGE ? `...${stderr.slice(-STDERR_IN_MESSAGE)}` : stderr}`;
  const base = { plugin: ctx.type, command: ctx.command, stderr: o.stderr, exitCode: o.code };
  if (o.spawnError !== undefined && o.code === null) {
    return new CniError(`${what}: cannot run ${shellQuote(ctx.path)}: ${o.spawnError.message}`, base);
  }
  if (o.timedOut) return new CniError(`${what}: timed out after ${ctx.timeoutMs} ms (process group killed)${stderrNote}`, base);
  const parsed = parseCniErrorJson(o.stdout) ?? parseCniErrorJson(o.stderr);
  if (parsed !== undefined) {
    const msg = `${parsed.msg ?? '(no msg)'}${parsed.details ? `: ${parsed.details}` : ''}${parsed.code === undefined ? '' : ` (CNI error ${parsed.code})`}`;
    return new CniError(`${what}: ${msg}${stderrNote}`, { ...base, code: parsed.code, details: parsed.details });
  }
  const how = o.signal ? `killed by ${o.signal}` : `exit code ${o.code}`;
  const stdoutNote = o.stdout.trim() === '' ? '' : `\nstdout: ${o.stdout.trim().slice(0, STDERR_IN_MESSAGE)}`;
  return new CniError(`${what}: ${how} without a CNI error${stdoutNote}${stderrNote}`, base);
}
