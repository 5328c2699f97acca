import { formatTable } from '../table.js';
import type { IperfResult, PingResult } from './measure.js';

// The demo's result: as JSON (--json) or as tables and a connectivity matrix for people.

export interface DemoHost {
  /** The host's namespace, e.g. twill-demo-host1. */
  readonly name: string;
  readonly underlayIp: string;
  /** The subnet twilld leased, e.g. 10.244.23.0/24. */
  readonly subnet: string;
  /** With --ipv6: the host's IPv6 underlay address and IPv6 subnet. */
  readonly underlayIpv6?: string | undefined;
  readonly subnetV6?: string | undefined;
}

export interface DemoPod {
  /** The pod's namespace, e.g. twill-demo-host1-pod1. */
  readonly name: string;
  /** Short label for the matrix, e.g. h1p1. */
  readonly label: string;
  readonly host: string;
  readonly ip: string;
  /** With --ipv6: the pod's IPv6 address. */
  readonly ipv6?: string | undefined;
}

export interface DemoResult {
  readonly backend: string;
  readonly hosts: readonly DemoHost[];
  readonly pods: readonly DemoPod[];
  readonly matrix: readonly PingResult[];
  /** With --ipv6: the same pairs pinged over IPv6. */
  readonly matrix6?: readonly PingResult[] | undefined;
  readonly iperf: IperfResult | null;
  /** Why there is no iperf figure, when there is none. */
  readonly iperfNote: string | null;
  /** Every ping succeeded. */
  readonly ok: boolean;
}

export function resultJson(r: DemoResult, extra: Record<string, unknown> = {}): string {
  const value = {
    backend: r.backend,
    hosts: r.hosts,
    pods: r.pods.map((p) => ({ name: p.name, host: p.host, ip: p.ip, ...(p.ipv6 !== undefined && { ipv6: p.ipv6 }) })),
    matrix: r.matrix.map((m) => ({ from: m.from, to: m.to, ok: m.ok, rttMs: m.rttMs, lossPct: m.lossPct })),
    ...(r.matrix6 !== undefined && { matrix6: r.matrix6.map((m) => ({ from: m.from, to: m.to, ok: m.ok, rttMs: m.rttMs, lossPct: m.lossPct })) }),
    iperf: r.iperf === null ? null : { ...r.iperf, gbps: Math.round(r.iperf.gbps * 100) / 100 },
    iperfNote: r.iperfNote,
    ok: r.ok,
    ...extra,
  };
  return `${JSON.stringify(value, null, 2)}\n`;
}

function rtt(ms: number): string {
  return ms < 10 ? ms.toFixed(3) : ms.toFixed(1);
}

/** Rows: from; columns: to; cells: average RTT in ms, FAIL, or "-" on the diagonal. */
export function formatMatrix(pods: readonly DemoPod[], matrix: readonly PingResult[], family: 4 | 6 = 4): string {
  const byPair = new Map(matrix.map((m) => [`${m.from}>${m.to}`, m]));
  let lossy = false;
  const rows = pods.map((from) => [
    `${from.label} ${family === 6 ? from.ipv6 ?? '-' : from.ip}`,
    ...pods.map((to) => {
      if (to === from) return '-';
      const m = byPair.get(`${from.name}>${to.name}`);
      if (!m || !m.ok || m.rttMs === null) return 'FAIL';
      if (m.lossPct > 0) lossy = true;
      return `${rtt(m.rttMs)}${m.lossPct > 0 ? '*' : ''}`;
    }),
  ]);
  const header = ['FROM \\ TO', ...pods.map((p) => p.label)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  // Left-aligned labels, right-aligned numbers.
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[0]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n' + (lossy ? '* some of the pings were lost\n' : '');
}

export function summaryLine(r: DemoResult): string {
  const sameHost = (m: PingResult): boolean => r.pods.find((p) => p.name === m.from)?.host === r.pods.find((p) => p.name === m.to)?.host;
  const count = (matrix: readonly PingResult[]): string => {
    const cross = matrix.filter((m) => !sameHost(m));
    const detail = cross.length > 0 ? ` (across hosts: ${cross.filter((m) => m.ok).length} of ${cross.length})` : '';
    return `${matrix.filter((m) => m.ok).length} of ${matrix.length} pod pairs reachable${detail}`;
  };
  const shape = `backend ${r.backend}, ${r.hosts.length} host${r.hosts.length === 1 ? '' : 's'}, ${r.pods.length} pods`;
  const reach = r.matrix6 === undefined ? count(r.matrix) : `over IPv4 ${count(r.matrix)}, over IPv6 ${count(r.matrix6)}`;
  return `${r.ok ? 'OK' : 'FAILED'}: ${reach}; ${shape}${r.matrix6 === undefined ? '' : ', dual-stack'}\n`;
}

export function formatHuman(r: DemoResult): string {
  const parts: string[] = [];
  if (r.matrix6 === undefined) {
    parts.push(formatTable(['HOST', 'UNDERLAY IP', 'POD SUBNET'], r.hosts.map((h) => [h.name, h.underlayIp, h.subnet])));
    parts.push(formatTable(['POD', 'NAMESPACE', 'HOST', 'IP'], r.pods.map((p) => [p.label, p.name, p.host, p.ip])));
    parts.push(`Ping, average round-trip time in ms (row pings column):\n${formatMatrix(r.pods, r.matrix)}`);
  } else {
    parts.push(formatTable(['HOST', 'UNDERLAY IP', 'UNDERLAY IPV6', 'POD SUBNET', 'IPV6 POD SUBNET'],
      r.hosts.map((h) => [h.name, h.underlayIp, h.underlayIpv6 ?? '-', h.subnet, h.subnetV6 ?? '-'])));
    parts.push(formatTable(['POD', 'NAMESPACE', 'HOST', 'IP', 'IPV6'], r.pods.map((p) => [p.label, p.name, p.host, p.ip, p.ipv6 ?? '-'])));
    parts.push(`Ping over IPv4, average round-trip time in ms (row pings column):\n${formatMatrix(r.pods, r.matrix)}`);
    parts.push(`Ping over IPv6 (ping -6), average round-trip time in ms (row pings column):\n${formatMatrix(r.pods, r.matrix6, 6)}`);
  }
  if (r.iperf !== null) parts.push(`iperf3 ${label(r, r.iperf.from)} -> ${label(r, r.iperf.to)} (across hosts): ${r.iperf.gbps.toFixed(2)} Gbit/s\n`);
  else if (r.iperfNote !== null) parts.push(`iperf3: ${r.iperfNote}\n`);
  parts.push(summaryLine(r));
  if (r.backend === 'alloc' && r.hosts.length > 1) {
    parts.push('(alloc leases subnets but installs no routes: pods on different hosts cannot reach each other. Try --backend vxlan.)\n');
  }
  return parts.join('\n');
}

function label(r: DemoResult, name: string): string {
  return r.pods.find((p) => p.name === name)?.label ?? name;
}
