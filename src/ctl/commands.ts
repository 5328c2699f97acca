import { readFileSync } from 'node:fs';
import { registerBuiltins } from '../backends/builtins.js';
import { formatDuration } from '../core/duration.js';
import { InvalidArgumentError } from '../core/errors.js';
import { parseSubnetEnv } from '../core/subnet-env.js';
import { networkPrefix, sortPrefixes } from '../core/ip.js';
import { parseNetworkConfigText } from '../ipam/network-config.js';
import type { SubnetStore } from '../store/index.js';
import type { SubnetLease } from '../store/types.js';
import { probeAgent } from './agent-probe.js';
import type { CtlFlags } from './flags.js';
import { formatTable } from './table.js';

/** What a command prints and its exit code; main.ts writes it. */
export interface CommandResult {
  readonly stdout: string;
  readonly exitCode: number;
}

const ok = (stdout: string): CommandResult => ({ stdout, exitCode: 0 });
const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

export async function configGet(store: SubnetStore, flags: CtlFlags): Promise<CommandResult> {
  const text = await store.getNetworkConfig();
  if (text === undefined) throw new InvalidArgumentError('network config', `${flags.etcdPrefix}/config`, 'is not set; store one with `twillctl config set FILE`');
  return ok(text.endsWith('\n') ? text : `${text}\n`);
}

/** Validates before writing: a config the agents would reject never reaches etcd. */
export async function configSet(store: SubnetStore, source: string | undefined, readStdin: () => string): Promise<CommandResult> {
  if (source === undefined) throw new InvalidArgumentError('config set', '', 'needs a file name, or - to read standard input');
  const text = (source === '-' ? readStdin() : readFileSync(source, 'utf8')).trim();
  const config = parseNetworkConfigText(text, registerBuiltins().parseOptions);
  await store.putNetworkConfig(text);
  return ok(`network config stored: ${config.network}, /${config.subnetLen} subnets ${config.subnetMin}..${config.subnetMax}, backend ${config.backend.type}\n`);
}

function expiry(lease: SubnetLease, now: number): string {
  if (lease.etcdLeaseId === undefined) return 'reserved';
  if (lease.expiresAt === undefined) return 'unknown';
  return lease.expiresAt <= now ? 'expired' : `in ${formatDuration(Math.round((lease.expiresAt - now) / 1000) * 1000)}`;
}

function leaseJson(l: SubnetLease): Record<string, unknown> {
  return {
    subnet: l.subnet, publicIp: l.record.publicIp, backendType: l.record.backendType, backendData: l.record.backendData ?? null,
    reservation: l.etcdLeaseId === undefined, expiresAt: l.expiresAt === undefined ? null : new Date(l.expiresAt).toISOString(),
  };
}

export async function leases(store: SubnetStore, flags: CtlFlags, now = Date.now()): Promise<CommandResult> {
  const listing = await store.listLeases();
  const sorted = sortPrefixes(listing.leases, (l) => l.subnet);
  if (flags.output === 'json') {
    return ok(json({ leases: sorted.map(leaseJson), malformed: listing.malformed }));
  }
  const rows = sorted.map((l) => [l.subnet, l.record.publicIp, l.record.backendType, expiry(l, now)]);
  const warnings = listing.malformed.map((m) => `malformed: ${m.key}: ${m.reason}\n`).join('');
  return ok(formatTable(['SUBNET', 'PUBLIC IP', 'BACKEND', 'EXPIRES'], rows) + warnings);
}

/** This host: the subnet file, the matching lease in etcd, and the agent's own health. */
export async function status(store: SubnetStore | undefined, flags: CtlFlags): Promise<CommandResult> {
  let env;
  let fileError: string | undefined;
  try {
    env = parseSubnetEnv(readFileSync(flags.subnetFile, 'utf8'), flags.subnetFile);
  } catch (err) {
    fileError = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${flags.subnetFile} does not exist (no lease yet?)` : (err as Error).message;
  }
  const [healthz, readyz] = await Promise.all([probeAgent(flags.healthzAddr, '/healthz'), probeAgent(flags.healthzAddr, '/readyz')]);
  let lease: SubnetLease | undefined;
  let storeError: string | undefined;
  if (env && store) {
    const network = networkPrefix(env.subnet);
    try {
      lease = (await store.listLeases()).leases.find((l) => l.subnet === network);
    } catch (err) {
      storeError = (err as Error).message;
    }
  }
  // Ready means what a user asks: this host has its subnet file, its lease is in etcd, and the
  // agent says ready. An agent that answers ready for another subnet file (twillctl pointed at
  // the wrong one) or a lease twillctl cannot see is no "ready" to report.
  const agentReason = readyz.status === 200 ? undefined : readyzReason(readyz.body) ?? (readyz.status === 'unreachable' ? 'no answer' : `readyz ${readyz.status}`);
  const ready = readyz.status === 200 && env !== undefined && lease !== undefined;
  const result = {
    subnetFile: flags.subnetFile,
    subnet: env?.subnet ?? null, network: env?.network ?? null, mtu: env?.mtu ?? null, ipMasq: env?.ipMasq ?? null,
    subnetFileError: fileError ?? null,
    lease: lease ? leaseJson(lease) : null,
    storeError: storeError ?? null,
    agent: { address: flags.healthzAddr, healthz: healthz.status, readyz: readyz.status, detail: readyz.body ?? null },
    ready,
  };
  if (flags.output === 'json') return { stdout: json(result), exitCode: ready ? 0 : 1 };
  const rows: [string, string][] = [
    ['subnet', env ? `${env.subnet} (network ${env.network}, MTU ${env.mtu}, ip-masq ${env.ipMasq})` : `none: ${fileError}`],
    ['lease', lease ? `${lease.subnet} for ${lease.record.publicIp}, backend ${lease.record.backendType}, ${expiry(lease, Date.now())}` : storeError ? `unknown: ${storeError}` : 'not found in etcd'],
    ['agent', `${flags.healthzAddr}: healthz ${healthz.status}, readyz ${readyz.status}${agentReason === undefined ? '' : ` (${agentReason})`}`],
    ['ready', ready ? 'yes' : `no: ${!env ? 'no subnet file' : !lease ? 'no lease in etcd' : 'the agent is not ready'}`],
  ];
  return { stdout: rows.map(([k, v]) => `${k.padEnd(6)} ${v}\n`).join(''), exitCode: ready ? 0 : 1 };
}

/** The reason in /readyz's JSON body ({"ready":false,"reason":"..."}), if there is one. */
function readyzReason(body: unknown): string | undefined {
  const reason = typeof body === 'object' && body !== null ? (body as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason : undefined;
}
