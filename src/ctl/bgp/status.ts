import type { RoutingPeer, RoutingRoute, RoutingStatus } from '../../backends/backend.js';
import { formatDuration } from '../../core/duration.js';
import { TwillError } from '../../core/errors.js';
import { probeAgent } from '../agent-probe.js';
import type { CommandResult } from '../commands.js';
import type { CtlFlags } from '../flags.js';
import { formatTable } from '../table.js';

// `twillctl bgp peers` and `twillctl bgp routes`: the local agent's BGP sessions and learned
// routes, read from its status endpoint (/bgp/peers, /bgp/routes on --healthz-addr).

/** The agent's answer: RoutingStatus (backend.ts) with either its peers or its routes. */
type Answer = Omit<RoutingStatus, 'peers' | 'routes'> & { readonly peers?: readonly RoutingPeer[]; readonly routes?: readonly RoutingRoute[] };

async function fetchStatus(flags: CtlFlags, path: '/bgp/peers' | '/bgp/routes'): Promise<Answer> {
  const probe = await probeAgent(flags.healthzAddr, path);
  if (probe.status === 'unreachable') throw new TwillError('EAGENT', `no agent answers at ${flags.healthzAddr} (is twilld running? see --healthz-addr)`);
  const body = probe.body as Record<string, unknown> | undefined;
  if (probe.status !== 200) throw new TwillError('EAGENT', `the agent at ${flags.healthzAddr}: ${typeof body?.['error'] === 'string' ? body['error'] : `answered ${probe.status}`}`);
  return body as Answer;
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

export async function bgpPeers(flags: CtlFlags): Promise<CommandResult> {
  const answer = await fetchStatus(flags, '/bgp/peers');
  if (flags.output === 'json') return { stdout: json(answer), exitCode: 0 };
  const peers = answer.peers ?? [];
  const rows = peers.map((p) => [p.address, String(p.asn), p.role, p.state, p.uptimeS === undefined ? '-' : formatDuration(p.uptimeS * 1000), String(p.received), String(p.accepted), String(p.sent), p.lastError ?? '']);
  const head = `speaker ${answer.speaker}, AS ${answer.asn}, router id ${answer.routerId}\n`;
  return { stdout: head + formatTable(['PEER', 'ASN', 'ROLE', 'STATE', 'UPTIME', 'RECEIVED', 'ACCEPTED', 'SENT', 'LAST ERROR'], rows), exitCode: 0 };
}

export async function bgpRoutes(flags: CtlFlags): Promise<CommandResult> {
  const answer = await fetchStatus(flags, '/bgp/routes');
  if (flags.output === 'json') return { stdout: json(answer), exitCode: 0 };
  const routes = answer.routes ?? [];
  const rows = routes.map((r) => [r.prefix, r.nextHops.join(',') || '-', r.peers.join(',') || '-', r.installed ? 'installed' : `not installed: ${r.reason ?? 'unknown'}`]);
  const rejected = answer.rejected.map((r) => `rejected from ${r.peer}: ${r.count} (${r.reason})\n`).join('');
  return { stdout: formatTable(['PREFIX', 'NEXT HOPS', 'PEERS', 'STATE'], rows) + rejected, exitCode: 0 };
}
