/**
 * FRR 8.4 (Debian `frr`) as a test peer: its own zebra and bgpd, nothing under /etc/frr or
 * /var/run/frr; see bgp-peers.ts for the API.
 *
 * Invocation (all paths in <dir>/frr/, a folder owned by the `frr` user; <dir> is made traversable):
 *
 *   zebra -f zebra.conf -u frr -g frr -z zserv.api --vty_socket <frr dir> -i zebra.pid --log stdout
 *   bgpd  -f bgpd.conf  -u frr -g frr -z zserv.api --vty_socket <frr dir> -i bgpd.pid --log stdout
 *         -p <port> [-l <listen address> ...] -n
 *
 * - Why zebra: bgpd alone (`-Z`) knows no interfaces, so it treats every IPv6 UPDATE that carries
 *   a link-local next hop (BIRD and FRR send one on direct sessions) as an error and withdraws it
 *   ("sent a v6 LL next-hop and there's no peer interface information"). `-n` keeps bgpd's routes
 *   out of the namespace's kernel table, like the other two kinds.
 * - Why `-u frr -g frr`: as root, zebra refuses to start ("user(root) is not part of vty group
 *   specified(frrvty)") and has no `-S` (skip runas) as bgpd does.
 * - FRR puts a per-process dir /var/tmp/frr/<daemon>.<pid> (compiled in, not movable) and leaves
 *   it behind when killed: the harness removes it when the process exits (tracked for exit too).
 * - vtysh: `vtysh --vty_socket <frr dir> -d bgpd -c ...` from the test process (unix socket).
 *   Readers use JSON: `show bgp neighbors <a> json` (bgpState; for neighborStatus() also
 *   messageStats, gracefulRestartInfo.endOfRibRecv, connectionsEstablished), `show bgp <afi> unicast json
 *   detail` (one header object, then the paths, per prefix), `show bgp <afi> unicast summary json`.
 * - Config: `no bgp ebgp-requires-policy` (else nothing is sent, RFC 8212), `no bgp network
 *   import-check` (originate without a RIB route), `no bgp default ipv4-unicast` plus `activate`
 *   per family, per-neighbor `timers K H`, `timers connect 2`, `advertisement-interval 0`.
 *   Originated prefixes are `network` statements whose route-map sets tag 4242 (and communities,
 *   MED, next hop); the export route-map passes only tag 4242. (`match peer local` does not work
 *   for that: in an outbound route-map it matches the peer advertised to.) `bgp route-map
 *   delay-timer 1` (default 5 s) for route-map edits at run time.
 * - announceMany: `vtysh -d bgpd -f <file>` with one `network` line per prefix. That is FRR's CLI
 *   speed, not a fast path: use bird or gobgp for big tables.
 */
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bulkPrefix, canonicalIp, canonicalPrefix, checkCommunity, checkLargeCommunity, CONNECT_RETRY, DEFAULT_BULK_BASE, DEFAULT_HOLD_TIME,
  familiesOf, familyOfPrefix, isIpv6, keepaliveOf, parseBulkBase, route,
  type Announcement, type AnnounceOptions, type LearnedRoute, type MessageCounts, type NeighborStatus, type PeerDaemonOptions, type PeerFamily,
} from './bgp-peers-common.js';
import { PeerDaemonBase } from './bgp-peers-base.js';
import { exec } from './exec.js';

export const FRR_DIR = '/usr/lib/frr';
const LOCAL_TAG = 4242;

/** uid and gid of the `frr` user, or undefined. */
export function frrUser(): { uid: number; gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('frr:'));
    const f = line?.split(':');
    return f ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
  } catch {
    return undefined;
  }
}

interface FrrPath {
  aspath?: { segments?: { type?: string; list?: number[] }[] };
  nexthops?: { ip?: string; scope?: string }[];
  peer?: { peerId?: string; type?: string };
  community?: { list?: string[] };
  largeCommunity?: { list?: string[] };
  metric?: number;
  locPrf?: number;
  sourced?: boolean;
  local?: boolean;
  stale?: boolean;
}

/** The parts of `show bgp neighbors <a> json` that neighborStatus() reads. */
interface FrrNeighborJson {
  bgpState?: string;
  gracefulRestartInfo?: {
    endOfRibRecv?: Record<string, boolean>;
    /** The neighbor's R bit; per family (ipv4Unicast...) its F bit. */
    rBit?: boolean;
    timers?: { restartTimerRemaining?: number };
  } & Record<string, unknown>;
  messageStats?: Record<string, number>;
  connectionsEstablished?: number;
  connectionsDropped?: number;
}

/** FRR's JSON names of the address families. */
const FRR_FAMILIES: Readonly<Record<string, PeerFamily>> = { ipv4Unicast: 'ipv4-unicast', ipv6Unicast: 'ipv6-unicast' };

export class FrrPeer extends PeerDaemonBase {
  readonly kind = 'frr' as const;
  private readonly frrDir = join(this.dir, 'frr');
  /** Route-map number per originated prefix. */
  private readonly maps = new Map<string, number>();
  private nextMap = 1;

  constructor(opts: PeerDaemonOptions) {
    super(opts);
    const user = frrUser();
    if (!user) throw new Error('startPeerDaemon(frr): no "frr" user (is the Debian frr package installed?)');
    mkdirSync(this.frrDir, { mode: 0o700 });
    chownSync(this.frrDir, user.uid, user.gid);
    chmodSync(this.dir, 0o711); // the frr user must reach frr/
  }

  protected async launch(): Promise<void> {
    const f = (name: string): string => join(this.frrDir, name);
    writeFileSync(f('zebra.conf'), 'hostname zebra\n');
    writeFileSync(f('bgpd.conf'), this.config());
    const common = ['-u', 'frr', '-g', 'frr', '-z', f('zserv.api'), '--vty_socket', this.frrDir, '--log', 'stdout', '--log-level', 'info'];
    const tmp = (prog: string) => (pid: number): string[] => [`/var/tmp/frr/${prog}.${pid}`];
    await this.spawn({ name: 'zebra', cmd: join(FRR_DIR, 'zebra'), args: ['-f', f('zebra.conf'), '-i', f('zebra.pid'), ...common], extraPaths: tmp('zebra') });
    await this.waitReady(async () => (await this.vtysh(['-d', 'zebra', '-c', 'show version'], false)).includes('FRRouting'), 'zebra vty');
    const listen = this.listenAddresses().flatMap((a) => ['-l', a]);
    await this.spawn({
      name: 'bgpd', cmd: join(FRR_DIR, 'bgpd'), extraPaths: tmp('bgpd'),
      args: ['-f', f('bgpd.conf'), '-i', f('bgpd.pid'), ...common, '-p', String(this.opts.port ?? 179), ...listen, ...(this.opts.installRoutes ? [] : ['-n'])],
    });
    await this.waitReady(async () => (await this.vtysh(['-d', 'bgpd', '-c', 'show bgp summary json'], false)).includes('{'), 'bgpd vty');
  }

  /** vtysh against this instance; `check`: throw when FRR answers with a "% ..." error line. */
  private async vtysh(args: readonly string[], check = true): Promise<string> {
    let out: string;
    try {
      out = await exec('vtysh', ['--vty_socket', this.frrDir, ...args], { timeoutMs: 300_000 });
    } catch (err) {
      if (!check) throw err;
      this.fail(`vtysh ${args.join(' ')}`, err);
    }
    if (check && /^%/m.test(out)) this.fail(`vtysh ${args.join(' ')}`, new Error(out.trim()));
    return out;
  }

  private async configure(lines: readonly string[]): Promise<void> {
    await this.vtysh(['-d', 'bgpd', '-c', 'configure terminal', ...lines.flatMap((l) => ['-c', l]), '-c', 'end']);
  }

  private routeMap(a: Announcement, id: number): string[] {
    const v6 = familyOfPrefix(a.prefix) === 'ipv6-unicast';
    return [
      `route-map TWT-N-${id} permit 10`,
      ` set tag ${LOCAL_TAG}`,
      ...(a.communities && a.communities.length > 0 ? [` set community ${a.communities.map((c) => checkCommunity(c).join(':')).join(' ')}`] : []),
      ...(a.largeCommunities && a.largeCommunities.length > 0
        ? [` set large-community ${a.largeCommunities.map((c) => checkLargeCommunity(c).join(':')).join(' ')}`] : []),
      ...(a.med !== undefined ? [` set metric ${a.med}`] : []),
      ...(a.nextHop !== undefined ? [v6 ? ` set ipv6 next-hop global ${a.nextHop}` : ` set ip next-hop ${a.nextHop}`] : []),
      'exit',
    ];
  }

  private config(): string {
    const o = this.opts;
    const lines = [
      '! generated by test/helpers/bgp-peers-frr.ts',
      'frr defaults traditional',
      `hostname ${this.label}`,
      'bgp route-map delay-timer 1',
      `route-map TWT-IN ${o.acceptAll ?? true ? 'permit' : 'deny'} 10`, 'exit',
      'route-map TWT-OUT permit 10', ...(o.exportLearned ? [] : [` match tag ${LOCAL_TAG}`]), 'exit',
      'route-map TWT-LOCAL permit 10', ` set tag ${LOCAL_TAG}`, 'exit',
    ];
    for (const a of this.announced.values()) lines.push(...this.routeMap(a, this.mapId(a.prefix)));
    lines.push(`router bgp ${o.asn}`, ` bgp router-id ${o.routerId}`, ' no bgp ebgp-requires-policy', ' no bgp network import-check',
      ' no bgp default ipv4-unicast', ` timers bgp ${keepaliveOf(DEFAULT_HOLD_TIME)} ${DEFAULT_HOLD_TIME}`);
    for (const n of o.neighbors) {
      const a = n.address;
      const hold = n.holdTime ?? DEFAULT_HOLD_TIME;
      lines.push(` neighbor ${a} remote-as ${n.asn}`, ` neighbor ${a} timers ${keepaliveOf(hold)} ${hold}`,
        ` neighbor ${a} timers connect ${CONNECT_RETRY}`, ` neighbor ${a} advertisement-interval 0`);
      if (n.port !== undefined) lines.push(` neighbor ${a} port ${n.port}`);
      if (n.passive) lines.push(` neighbor ${a} passive`);
      if (n.md5 !== undefined) lines.push(` neighbor ${a} password ${n.md5}`);
      if (n.multihop !== undefined && !this.isIbgp(n)) lines.push(` neighbor ${a} ebgp-multihop ${n.multihop}`);
      // Off unless asked: FRR's default helper mode keeps a crashed peer's routes for 120 s.
      lines.push(` neighbor ${a} ${n.gracefulRestart ? 'graceful-restart' : 'graceful-restart-disable'}`);
      const local = this.localAddress(isIpv6(a) ? 'ipv6' : 'ipv4');
      if (local !== undefined) lines.push(` neighbor ${a} update-source ${local}`);
    }
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      lines.push(` address-family ${family === 'ipv6-unicast' ? 'ipv6' : 'ipv4'} unicast`);
      for (const a of this.announced.values()) {
        if (familyOfPrefix(a.prefix) === family) lines.push(`  network ${a.prefix} route-map TWT-N-${this.mapId(a.prefix)}`);
      }
      if (family === 'ipv4-unicast') {
        for (const set of this.bulk) for (let i = 0; i < set.count; i++) lines.push(`  network ${bulkPrefix(set, i)} route-map TWT-LOCAL`);
      }
      for (const n of o.neighbors) {
        if (!familiesOf(n).includes(family)) continue;
        lines.push(`  neighbor ${n.address} activate`, `  neighbor ${n.address} route-map TWT-IN in`, `  neighbor ${n.address} route-map TWT-OUT out`);
        if (n.routeReflectorClient) lines.push(`  neighbor ${n.address} route-reflector-client`);
        if (n.nextHopSelf) lines.push(`  neighbor ${n.address} next-hop-self`);
        if (o.maxPrefix !== undefined) lines.push(`  neighbor ${n.address} maximum-prefix ${o.maxPrefix}`);
      }
      lines.push(' exit-address-family');
    }
    lines.push('exit', '');
    return lines.join('\n');
  }

  private mapId(prefix: string): number {
    let id = this.maps.get(prefix);
    if (id === undefined) {
      id = this.nextMap++;
      this.maps.set(prefix, id);
    }
    return id;
  }

  private async neighborJson(neighbor: string): Promise<FrrNeighborJson & { bgpState: string }> {
    const n = this.neighbor(neighbor);
    const out = JSON.parse(await this.vtysh(['-d', 'bgpd', '-c', `show bgp neighbors ${n.address} json`])) as Record<string, FrrNeighborJson>;
    const entry = Object.entries(out).find(([k]) => canonicalIp(k) === canonicalIp(n.address))?.[1];
    if (!entry?.bgpState) throw new Error(`${this.label}: no bgpState for ${neighbor}`);
    return entry as FrrNeighborJson & { bgpState: string };
  }

  async sessionState(neighbor: string): Promise<string> {
    return (await this.neighborJson(neighbor)).bgpState.toLowerCase();
  }

  /**
   * From `show bgp neighbors <a> json`: gracefulRestartInfo.endOfRibRecv (kept with graceful restart
   * off too), messageStats, connectionsEstablished/Dropped. No upSince: bgpTimerUpEstablishedEpoch
   * is worked out from the uptime at each read and moves by a second between reads. Graceful
   * restart: helping while gracefulRestartInfo.timers.restartTimerRemaining runs; the neighbor's
   * R bit is gracefulRestartInfo.rBit, its F bits gracefulRestartInfo.<family>.fBit.
   */
  async neighborStatus(neighbor: string): Promise<NeighborStatus> {
    const e = await this.neighborJson(neighbor);
    const m = e.messageStats ?? {};
    const counts = (dir: 'Recv' | 'Sent'): MessageCounts => ({
      updates: m[`updates${dir}`] ?? 0, routeRefresh: m[`routeRefresh${dir}`] ?? 0, notifications: m[`notifications${dir}`] ?? 0,
    });
    const gr = e.gracefulRestartInfo;
    const established = e.bgpState === 'Established';
    return {
      state: e.bgpState.toLowerCase(),
      endOfRibReceived: Object.entries(gr?.endOfRibRecv ?? {}).filter(([, v]) => v).flatMap(([k]) => FRR_FAMILIES[k] ?? []),
      messages: { received: counts('Recv'), sent: counts('Sent') },
      connections: { established: e.connectionsEstablished ?? 0, dropped: e.connectionsDropped ?? 0 },
      gracefulRestart: {
        helping: gr?.timers?.restartTimerRemaining !== undefined,
        peerRestarting: established && gr?.rBit === true,
        peerForwarding: established
          ? Object.entries(FRR_FAMILIES).filter(([k]) => (gr?.[k] as { fBit?: boolean } | undefined)?.fBit === true).map(([, f]) => f)
          : [],
      },
    };
  }

  async requestRouteRefresh(neighbor: string): Promise<void> {
    // Without `soft-reconfiguration inbound` FRR keeps no Adj-RIB-In copy, so "soft in" is a ROUTE-REFRESH.
    await this.vtysh(['-d', 'bgpd', '-c', `clear bgp ${this.neighbor(neighbor).address} soft in`]);
  }

  async learned(family: PeerFamily = 'ipv4-unicast'): Promise<LearnedRoute[]> {
    const afi = family === 'ipv6-unicast' ? 'ipv6' : 'ipv4';
    const out = JSON.parse(await this.vtysh(['-d', 'bgpd', '-c', `show bgp ${afi} unicast json detail`])) as { routes?: Record<string, unknown[]> };
    const routes: LearnedRoute[] = [];
    for (const [prefix, entries] of Object.entries(out.routes ?? {})) {
      for (const p of entries.slice(1) as FrrPath[]) {
        if (p.sourced || p.local || p.peer?.type === undefined) continue; // originated here
        const nh = p.nexthops?.find((h) => h.scope !== 'link-local') ?? p.nexthops?.[0];
        routes.push(route({
          prefix, nextHop: nh?.ip ?? '',
          asPath: (p.aspath?.segments ?? []).flatMap((s) => s.list ?? []),
          communities: p.community?.list, largeCommunities: p.largeCommunity?.list,
          med: p.metric, localPref: p.locPrf, from: p.peer.peerId, stale: p.stale,
        }));
      }
    }
    return routes;
  }

  async learnedCount(family: PeerFamily = 'ipv4-unicast'): Promise<number> {
    const afi = family === 'ipv6-unicast' ? 'ipv6' : 'ipv4';
    const out = JSON.parse(await this.vtysh(['-d', 'bgpd', '-c', `show bgp ${afi} unicast summary json`])) as
      { peers?: Record<string, { pfxRcd?: number }> } & Record<string, { peers?: Record<string, { pfxRcd?: number }> } | unknown>;
    const peers = out.peers ?? (Object.values(out).find((v) => typeof v === 'object' && v !== null && 'peers' in v) as { peers?: Record<string, { pfxRcd?: number }> } | undefined)?.peers;
    return Object.values(peers ?? {}).reduce((sum, p) => sum + (p.pfxRcd ?? 0), 0);
  }

  async announce(prefix: string, opts: AnnounceOptions = {}): Promise<void> {
    const a: Announcement = { ...opts, prefix: canonicalPrefix(prefix) };
    if (this.announced.has(a.prefix)) await this.withdraw(a.prefix); // a changed route-map would wait for the delay timer
    this.announced.set(a.prefix, a);
    const id = this.mapId(a.prefix);
    const afi = familyOfPrefix(a.prefix) === 'ipv6-unicast' ? 'ipv6' : 'ipv4';
    await this.configure([...this.routeMap(a, id), `router bgp ${this.opts.asn}`, `address-family ${afi} unicast`,
      `network ${a.prefix} route-map TWT-N-${id}`]);
  }

  async withdraw(prefix: string): Promise<void> {
    const p = canonicalPrefix(prefix);
    const id = this.maps.get(p);
    this.announced.delete(p);
    this.maps.delete(p);
    const afi = familyOfPrefix(p) === 'ipv6-unicast' ? 'ipv6' : 'ipv4';
    await this.configure([`router bgp ${this.opts.asn}`, `address-family ${afi} unicast`, `no network ${p}`, 'exit-address-family', 'exit',
      ...(id === undefined ? [] : [`no route-map TWT-N-${id}`])]);
  }

  async announceMany(count: number, base: string = DEFAULT_BULK_BASE): Promise<void> {
    const set = parseBulkBase(count, base, this.nextBulkId());
    const file = join(this.frrDir, `bulk-${set.id}.conf`);
    const lines = [`router bgp ${this.opts.asn}`, ' address-family ipv4 unicast'];
    for (let i = 0; i < set.count; i++) lines.push(`  network ${bulkPrefix(set, i)} route-map TWT-LOCAL`);
    writeFileSync(file, `${lines.join('\n')}\n exit-address-family\nexit\n`);
    this.bulk.push(set);
    await this.vtysh(['-d', 'bgpd', '-f', file]);
  }
}
