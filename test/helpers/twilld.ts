/**
 * Runs the real `twilld` (the built dist/, so `npm run build` first) inside a test host namespace,
 * and reads what a user would: its subnet file, /healthz, /readyz and /metrics.
 *
 *   const agent = await startAgent(host, { etcd: etcd.clientUrl, dir, args: ['--subnet-lease-ttl', '3s'] });
 *   await agent.waitReady();
 *   expect((await agent.subnetEnv()).FLANNEL_SUBNET).toMatch(/^10\.244\./);
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Daemon } from './daemon.js';
import { exec } from './exec.js';
import type { TestNetns } from './netns.js';
import { waitFor } from './wait.js';

/** The repository root: the nearest folder above this file holding package.json (works from test/ and dist/test/). */
export function repoRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

export const AGENT_MAIN = resolve(repoRoot(), 'dist/src/agent/main.js');

export interface AgentOptions {
  /** etcd client URL(s), comma-separated. */
  readonly etcd: string;
  /** A directory of the test's own; the agent's subnet file goes in it. */
  readonly dir: string;
  readonly args?: readonly string[];
  readonly env?: Record<string, string>;
  /** Arguments for node itself, before the script (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
}

export interface TestAgent {
  readonly daemon: Daemon;
  readonly host: TestNetns;
  readonly subnetFile: string;
  /** The agent's --cni-socket, where Twill's CNI plugin reaches it. */
  readonly cniSocket: string;
  /** The parsed subnet file (FLANNEL_* variables), or undefined before it exists. */
  subnetEnv(): Record<string, string> | undefined;
  /** GET http://127.0.0.1:9101<path> inside the host namespace: status and body. */
  http(path: string): Promise<{ status: number; body: string }>;
  /** One sample of /metrics, e.g. metric('twill_leases_known'). */
  metric(name: string, labels?: string): Promise<number | undefined>;
  waitReady(timeoutMs?: number): Promise<void>;
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export async function startAgent(host: TestNetns, opts: AgentOptions): Promise<TestAgent> {
  if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run \`npm run build\` before the integration tests`);
  const subnetFile = join(opts.dir, 'subnet.env');
  const cniSocket = join(opts.dir, 'cni.sock');
  const daemon = await host.spawn('node', [...(opts.nodeArgs ?? []), AGENT_MAIN,
    '--etcd-endpoints', opts.etcd,
    '--subnet-file', subnetFile,
    '--healthz-addr', '127.0.0.1:9101',
    // Per agent: the defaults under /run/twill are one path for every agent on this machine.
    '--cni-socket', cniSocket,
    '--cni-data-dir', join(opts.dir, 'ipam'),
    ...(opts.args ?? [])], { env: { ...opts.env }, stopSignal: 'SIGTERM', label: `twilld-${host.name}` });
  const http = async (path: string): Promise<{ status: number; body: string }> => {
    // The test process lives in the root namespace; the agent listens on the host's loopback.
    const script = `fetch('http://127.0.0.1:9101${path}').then(async r => console.log(JSON.stringify({status: r.status, body: await r.text()}))).catch(e => console.log(JSON.stringify({status: 0, body: String(e)})))`;
    return JSON.parse(await exec('ip', ['netns', 'exec', host.name, 'node', '-e', script])) as { status: number; body: string };
  };
  return {
    daemon,
    host,
    subnetFile,
    cniSocket,
    subnetEnv: () => (existsSync(subnetFile) ? parseEnvFile(readFileSync(subnetFile, 'utf8')) : undefined),
    http,
    async metric(name, labels = '') {
      const { status, body } = await http('/metrics');
      if (status !== 200) return undefined;
      const series = labels ? `${name}{${labels}}` : name;
      const line = body.split('\n').find((l) => l.split(' ')[0] === series);
      return line === undefined ? undefined : Number(line.split(' ').pop());
    },
    async waitReady(timeoutMs = 20_000) {
      try {
        await waitFor(async () => daemon.running && (await http('/readyz')).status === 200, { timeoutMs, what: `twilld in ${host.name} to be ready` });
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- twilld output ---\n${daemon.output().slice(-3000)}`);
      }
    },
  };
}
