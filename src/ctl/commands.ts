import { readFileSync } from 'node:fs';
import { registerBuiltins } from '../backends/builtins.js';
import { formatDuration } from '../core/duration.js';
import { InvalidArgumentError } from '../core/errors.js';
import { parseSubnetEnv, type SubnetEnv } from '../core/subnet-env.js';
import { networkPrefix, sortPrefixes } from '../core/ip.js';
import { ipv6Refusal } from '../backends/backend.js';
import { hasIpv4, parseNetworkConfigText } from '../ipam/network-config.js';
import { NO_IPV4_SUBNET, type SubnetStore } from '../store/index.js';
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
  const registry = registerBuiltins();
  const config = parseNetworkConfigText(text, registry.parseOptions);
  const refusal = config.ipv6 === undefined ? undefined : ipv6Refusal(registry.get(config.backend.type));
  if (refusal !== undefined) throw new InvalidArgumentError('network config', config.ipv6?.network, refusal);
  await store.putNetworkConfig(text);
  const ranges = [hasIpv4(config) ? config : undefined, config.ipv6].flatMap((r) => (r ? [`${r.network}, /${r.subnetLen} subnets ${r.subnetMin}..${r.subnetMax}`] : []));
  return ok(`network config stored: ${ranges.join('; ')}, backend ${config.backend.type}\n`);
}

function expiry(lease: SubnetLease, now: number): string {
  if (lease.etcdLeaseId === undefined) return 'reserved';
  if (lease.expiresAt === undefined) return 'unknown';
  return lease.expiresAt <= now ? 'expired' : `in ${formatDuration(Math.round((lease.expiresAt - now) / 1000) * 1000)}`;
}

function leaseJson(l: SubnetLease): Record<string, unknown> {
  return {
    subnet: l.subnet, ipv6Subnet: l.ipv6Subnet ?? null, publicIp: l.record.publicIp, publicIpv6: l.record.publicIpv6 ?? null,
    backendType: l.record.backendType, backendData: l.record.backendData ?? null, backendV6Data: l.record.backendV6Data ?? null,
    reservation: l.etcdLeaseId === undefined, expiresAt: l.expiresAt === undefined ? null : new Date(l.expiresAt).toISOString(),
  };
}

/** An IPv6-only lease has no IPv4 subnet (and PublicIP 0.0.0.0): shown as "-". */
const ipv4Cell = (l: SubnetLease): string => (l.subnet === NO_IPV4_SUBNET ? '-' : l.subnet);

export async function leases(store: SubnetStore, flags: CtlFlags, now = Date.now()): Promise<CommandResult> {
  const listing = await store.listLeases();
  // IPv6-only leases sort after the others, by their IPv6 subnet.
  const sorted = sortPrefixes(listing.leases, (l) => (l.subnet === NO_IPV4_SUBNET ? l.ipv6Subnet ?? l.subnet : l.subnet));
  if (flags.output === 'json') {
    return ok(json({ leases: sorted.map(leaseJson), malformed: listing.malformed }));
  }
  const warnings = listing.malformed.map((m) => `malformed: ${m.key}: ${m.reason}\n`).join('');
  // The IPv6 columns only when some lease has IPv6: an IPv4-only cluster's table stays as it was.
  if (!sorted.some((l) => l.ipv6Subnet !== undefined || typeof l.record.publicIpv6 === 'string')) {
    const rows = sorted.map((l) => [l.subnet, l.record.publicIp, l.record.backendType, expiry(l, now)]);
    return ok(formatTable(['SUBNET', 'PUBLIC IP', 'BACKEND', 'EXPIRES'], rows) + warnings);
  }
  const rows = sorted.map((l) => [ipv4Cell(l), l.ipv6Subnet ?? '-', ipv4Cell(l) === '-' ? '-' : l.record.publicIp, l.record.publicIpv6 ?? '-',
    l.record.backendType, expiry(l, now)]);
  return ok(formatTable(['SUBNET', 'IPV6 SUBNET', 'PUBLIC IP', 'PUBLIC IPV6', 'BACKEND', 'EXPIRES'], rows) + warnings);
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
    subnet: env?.subnet ?? null, network: env?.network ?? null, ipv6Subnet: env?.ipv6Subnet ?? null, ipv6Network: env?.ipv6Network ?? null,
    mtu: env?.mtu ?? null, ipMasq: env?.ipMasq ?? null,
    subnetFileError: fileError ?? null,
    lease: lease ? leaseJson(lease) : null,
    storeError: storeError ?? null,
    agent: { address: flags.healthzAddr, healthz: healthz.status, readyz: readyz.status, detail: readyz.body ?? null },
    ready,
  };
  if (flags.output === 'json') return { stdout: json(result), exitCode: ready ? 0 : 1 };
  const rows: [string, string][] = [
    ['subnet', env ? subnetLine(env) : `none: ${fileError}`],
    ['lease', lease ? `${lease.subnet} for ${lease.record.publicIp}, backend ${lease.record.backendType}, ${expiry(lease, Date.now())}` : storeError ? `unknown: ${storeError}` : 'not found in etcd'],
    ['agent', `${flags.healthzAddr}: healthz ${healthz.status}, readyz ${readyz.status}${agentReason === undefined ? '' : ` (${agentReason})`}`],
    ['ready', ready ? 'yes' : `no: ${!env ? 'no subnet file' : !lease ? 'no lease in etcd' : 'the agent is not ready'}`],
  ];
  return { stdout: rows.map(([k, v]) => `${k.padEnd(6)} ${v}\n`).join(''), exitCode: ready ? 0 : 1 };
}

/** "10.244.3.1/24 and fc00:0:0:3::1/64 (network 10.244.0.0/16 and fc00::/48, MTU 1450, ip-masq false)". */
function subnetLine(env: SubnetEnv): string {
  const both = (a: string, b: string | undefined): string => (b === undefined ? a : `${a} and ${b}`);
  return `${both(env.subnet, env.ipv6Subnet)} (network ${both(env.network, env.ipv6Network)}, MTU ${env.mtu}, ip-masq ${env.ipMasq})`;
}

/** The reason in /readyz's JSON body ({"ready":false,"reason":"..."}), if there is one. */
function readyzReason(body: unknown): string | undefined {
  const reason = typeof body === 'object' && body !== null ? (body as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason : undefined;
}
