import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './cleanup.js';
import type { Daemon } from './daemon.js';
import { run, type RunResult } from './exec.js';
import type { TestNetns } from './netns.js';
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
  const result = await run(CNI_SHIM, [], { netns: host.name, env: { ...clean, ...env }, input, allowFailure: true, timeoutMs: 60_000 });
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

/** The agent's CNI service alone (no etcd), inside `host`: what the shim talks to. */
export async function startCniServer(host: TestNetns, opts: { dataDir: string; socket?: string }): Promise<{ socket: string; daemon: Daemon }> {
  const socket = opts.socket ?? join(tempDir('cni-sock'), 'cni.sock');
  const daemon = await host.spawn('node', [CNI_SERVER_FIXTURE, socket, opts.dataDir], { label: 'cni-server' });
  await waitFor(() => existsSync(socket), { timeoutMs: 15_000, what: `CNI socket ${socket}` });
  return { socket, daemon };
}
