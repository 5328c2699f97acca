import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cleanup.js';
import type { Daemon } from './daemon.js';
import { run, type RunResult } from './exec.js';
import { createTestNetns, type TestNetns } from './netns.js';
import { repoRoot } from './twilld.js';
import { waitFor } from './wait.js';

/**
 * Calling Twill's CNI plugin from tests the way a runtime does: the executable `dist/cni/twill`
 * (the C shim), run inside the host's namespace with CNI_* variables and the config on stdin.
 * With `socket` the shim hands the call to a CNI service (the agent's side, started with
 * startCniServer); without, it falls back to the in-process Node plugin.
 */

export const CNI_SHIM = join(repoRoot(), 'dist/cni/twill');
export const CNI_SERVER_FIXTURE = join(repoRoot(), 'test/helpers/fixtures/cni-server.mjs');

export interface CniCallOptions {
  readonly command: string;
  readonly containerId?: string;
  readonly netns?: string;
  readonly ifname?: string;
  readonly args?: string;
  /** The config object (serialised here) or raw stdin text. */
  readonly conf: Record<string, unknown> | string;
  /** The agent's socket; undefined = a path that does not exist (the shim falls back). */
  readonly socket?: string | undefined;
  /** Replace or remove (undefined) variables, e.g. { CNI_COMMAND: undefined }. */
  readonly env?: Record<string, string | undefined>;
  /** Kill the plugin after this long (default 60 s); the result's code is then null. */
  readonly timeoutMs?: number;
}

export interface CniCallResult extends RunResult {
  /** stdout parsed as JSON, when it is JSON. */
  readonly json: Record<string, unknown> | undefined;
}

/** Runs the plugin once inside `host`; never throws for a non-zero exit. */
export async function cniCall(host: TestNetns, opts: CniCallOptions): Promise<CniCallResult> {
  const env: Record<string, string | undefined> = {
    CNI_COMMAND: opts.command,
    CNI_CONTAINERID: opts.containerId,
    CNI_NETNS: opts.netns,
    CNI_IFNAME: opts.ifname ?? (opts.containerId !== undefined ? 'eth0' : undefined),
    CNI_ARGS: opts.args,
    CNI_PATH: '/usr/lib/cni',
    TWILL_CNI_SOCKET: opts.socket ?? '/nonexistent/twill-cni.sock',
    ...opts.env,
  };
  const input = typeof opts.conf === 'string' ? opts.conf : JSON.stringify(opts.conf);
  // run() merges env over process.env; a variable set to undefined must be absent.
  const clean: Record<string, string | undefined> = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('CNI_')) clean[key] = undefined;
  const result = await run(CNI_SHIM, [], { netns: host.name, env: { ...clean, ...env }, input, allowFailure: true, timeoutMs: opts.timeoutMs ?? 60_000 });
  let json: Record<string, unknown> | undefined;
  try {
    json = result.stdout.trim() ? (JSON.parse(result.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { ...result, json };
}

/** A subnet.env as the agent writes it, in a temp dir; returns its path. */
export function writeSubnetFile(opts: { network?: string; subnet: string; mtu?: number; ipMasq?: boolean; dir?: string }): string {
  const dir = opts.dir ?? tempDir('cni-subnet');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'subnet.env');
  writeFileSync(file, `FLANNEL_NETWORK=${opts.network ?? '10.244.0.0/16'}\nFLANNEL_SUBNET=${opts.subnet}\nFLANNEL_MTU=${opts.mtu ?? 1450}\nFLANNEL_IPMASQ=${opts.ipMasq ?? true}\n`);
  return file;
}

export interface CniServerOptions {
  readonly dataDir: string;
  readonly socket?: string;
  /** twilld --cni-timeout, in ms. */
  readonly timeoutMs?: number;
  /** twilld --cni-conf-dir. */
  readonly confDir?: string;
  /** twilld --cni-socket-group. */
  readonly socketGroup?: number;
  /** Wrap the command, e.g. ['unshare', '-m', ...] for a mount namespace of its own. */
  readonly wrapper?: readonly string[];
  /** More environment for the service (PATH with a fake nft, say). */
  readonly env?: Record<string, string>;
}

/** The agent's CNI service alone (no etcd), inside `host`: what the shim talks to. */
export async function startCniServer(host: TestNetns, opts: CniServerOptions): Promise<{ socket: string; daemon: Daemon }> {
  const socket = opts.socket ?? join(tempDir('cni-sock'), 'cni.sock');
  const env = {
    TWILL_CNI_TIMEOUT_MS: opts.timeoutMs?.toString(),
    TWILL_CNI_CONF_DIR: opts.confDir,
    TWILL_CNI_SOCKET_GROUP: opts.socketGroup?.toString(),
    ...opts.env,
  };
  const [cmd, ...args] = [...(opts.wrapper ?? []), 'node', CNI_SERVER_FIXTURE, socket, opts.dataDir];
  const daemon = await host.spawn(cmd!, args, { label: 'cni-server', env, stopTimeoutMs: 30_000 });
  await waitFor(() => existsSync(socket), { timeoutMs: 15_000, what: `CNI socket ${socket}` });
  return { socket, daemon };
}

/** How a test reaches the plugin: through the agent's socket, or the shim's in-process fallback. */
export type CniMode = 'agent' | 'in-process';
export const CNI_MODES: readonly CniMode[] = ['agent', 'in-process'];

/**
 * A "host" namespace for CNI tests: its subnet file (the lease `gateway`/24 of 10.244.0.0/16), a
 * dataDir, and in agent mode a CNI service inside it. Pods are namespaces of their own.
 */
export interface CniBed {
  readonly host: TestNetns;
  readonly subnetFile: string;
  readonly dataDir: string;
  readonly socket: string | undefined;
}

export async function createCniBed(mode: CniMode, gateway: string, server: Omit<CniServerOptions, 'dataDir'> = {}): Promise<CniBed> {
  const host = await createTestNetns('cnihost');
  const dir = tempDir('cni');
  const subnetFile = writeSubnetFile({ subnet: `${gateway}/24`, dir });
  const dataDir = join(dir, 'ipam');
  const socket = mode === 'agent' ? (await startCniServer(host, { ...server, dataDir })).socket : undefined;
  return { host, subnetFile, dataDir, socket };
}

/** twill's network config "twill-test" on `bed`, with `extra` keys, in `version`. */
export function bedConf(bed: Pick<CniBed, 'subnetFile' | 'dataDir'>, extra: Record<string, unknown> = {}, version = '1.1.0'): Record<string, unknown> {
  return { cniVersion: version, name: 'twill-test', type: 'twill', subnetFile: bed.subnetFile, dataDir: bed.dataDir, ...extra };
}

/** cniCall on the bed's host, through its agent when it has one. */
export function bedCall(bed: Pick<CniBed, 'host' | 'socket'>, opts: Omit<CniCallOptions, 'socket'>): Promise<CniCallResult> {
  return cniCall(bed.host, { ...opts, socket: bed.socket });
}

/** The address files of a network in a dataDir. */
export function addressFiles(dataDir: string, network = 'twill-test'): string[] {
  const dir = join(dataDir, network);
  return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
}

/** The veth ends in a namespace (the host ends of pods, on a bed's host). */
export async function vethNames(ns: TestNetns): Promise<string[]> {
  return (await ns.links()).filter((l) => l.linkinfo?.info_kind === 'veth').map((l) => l.ifname);
}

/** The pod address of an ADD's result, without the prefix length. */
export function resultAddress(result: CniCallResult): string {
  return (result.json!.ips as { address: string }[])[0]!.address.split('/')[0]!;
}

/** `nft list set ip twill-cni masq-pods` in `ns` (the plugin's ipMasq elements); '' without the table. */
export async function masqueradedPods(ns: TestNetns): Promise<string> {
  return (await run('nft', ['list', 'set', 'ip', 'twill-cni', 'masq-pods'], { netns: ns.name, allowFailure: true })).stdout;
}
