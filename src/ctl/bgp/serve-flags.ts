import { readFileSync } from 'node:fs';
import { isIP, isIPv4 } from 'node:net';
import type { Family, LocalAdvertisement, SpeakerPeerConfig } from '../../bgp/index.js';
import { DEFAULT_MAX_PREFIXES, DEFAULT_WARM_UP_PREFIXES, MAX_WARM_UP_PREFIXES, parsePrefixRange } from '../../bgp/index.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { FlagValues, helpText, integerInRange, readCommandLine, type FlagSpec } from '../../core/flag-parser.js';
import { parseHostPort, type HostPort } from '../../core/host-port.js';
import { twillVersion } from '../../core/version.js';

// `twillctl bgp serve`: a standalone speaker from flags or a JSON file. Peer and announcement
// values are "main,key=value,..." so one flag describes one peer, as in the examples.

export interface ServeConfig {
  readonly asn: number;
  readonly routerId: string;
  readonly listen: readonly HostPort[];
  readonly peers: readonly SpeakerPeerConfig[];
  readonly announce: readonly LocalAdvertisement[];
  /** Import ranges, "10.244.0.0/16,le=32" form; empty: learn nothing. */
  readonly accept: readonly string[];
  /** Print every learned and withdrawn route (true) or per-peer counts only (false). */
  readonly printRoutes: boolean;
  /** Open every socket inside this network namespace (a /run/netns path). */
  readonly netns: string | undefined;
  /** Prefixes of the synthetic table run through throwaway speakers before start (src/bgp/warm-up.ts); 0: none. */
  readonly warmUpPrefixes: number;
}

export type ServeCommand = { readonly kind: 'run'; readonly config: ServeConfig } | { readonly kind: 'help' | 'version'; readonly text: string };

const ENV_PREFIX = 'TWILL_BGP';

const FLAGS: readonly FlagSpec[] = [
  { name: 'config', kind: 'string', arg: 'FILE', help: 'JSON file with any of: asn, routerId, listen ["addr:port"], peers [{address, port, asn, passive, md5, multihop, localAddress, families, holdTime, gracefulRestartTime, maxPrefixes, nextHopSelfIpv6}], announce [{prefix, nextHop}], accept ["prefix,le=N"]; flags add to it and override asn/routerId.' },
  { name: 'asn', kind: 'string', arg: 'N', help: 'local AS number, 1..4294967295 (4-octet ASNs per RFC 6793).' },
  { name: 'router-id', kind: 'string', arg: 'IPv4', help: 'BGP identifier, a non-zero dotted quad.' },
  { name: 'listen', kind: 'repeated', arg: 'ADDR:PORT', help: 'accept connections here (repeatable; [v6]:port for IPv6). Without it the speaker only connects out, and passive peers are refused.' },
  { name: 'peer', kind: 'repeated', arg: 'ADDR[:PORT],asn=N[,passive][,md5=KEY][,multihop=TTL][,local=IP][,families=ipv4|ipv6|ipv4+ipv6][,hold=S][,max-prefix=N][,nexthop6=IPv6][,graceful-restart=S]', help: `a peer (repeatable). IPv6 with a port: [addr]:port. max-prefix: most routes per family taken from the peer before Cease/1 (default ${DEFAULT_MAX_PREFIXES}). graceful-restart: the restart time advertised (RFC 4724, receiving speaker; default 120, 0 = no capability).` },
  { name: 'announce', kind: 'repeated', arg: 'PREFIX[,nexthop=IP]', help: 'originate this prefix (repeatable); next hop self unless given.' },
  { name: 'accept', kind: 'repeated', arg: 'PREFIX[,le=N][,ge=N]', help: 'learn prefixes inside this range (repeatable); the default route is never learned. Without any, nothing is learned.' },
  { name: 'print-routes', kind: 'boolean', default: 'true', help: 'print a JSON line per learned or withdrawn route; --no-print-routes prints per-peer route counts instead, at most every 5 ms (large tables).' },
  { name: 'netns', kind: 'string', arg: 'PATH', help: 'open the speaker\'s sockets inside this network namespace (e.g. /run/netns/tor1).' },
  { name: 'warm-up-prefixes', kind: 'string', arg: 'N', default: String(DEFAULT_WARM_UP_PREFIXES), help: 'before starting, run a synthetic table of N prefixes between two throwaway speakers in memory, so the first real table is taken in by compiled code (about twice as fast); 0 starts at once.' },
];

export function serveHelpText(): string {
  return helpText('Usage: twillctl bgp serve [options]', [
    'Runs Twill\'s own BGP speaker on its own: sessions to the given peers, the given prefixes announced, routes inside the accepted ranges learned. It prints one JSON line per event on stdout: ready, session (state changes with reasons and NOTIFICATIONs), learned, withdrawn, rejected, end-of-rib, collision (one of two connections to a peer closed with Cease/7) and warning. SIGINT or SIGTERM sends Cease/2 (administrative shutdown) to every peer and exits. TCP MD5 and TTL settings need root (CAP_NET_ADMIN is not required, but setsockopt on raw options is done through libc).',
  ], FLAGS, ENV_PREFIX);
}

/** "a.b.c.d", "a.b.c.d:179", "[v6]:179" or a bare IPv6 address. */
function peerAddress(text: string, what: string): { address: string; port: number | undefined } {
  if (isIP(text) !== 0) return { address: text, port: undefined };
  const hp = parseHostPort(text, what);
  if (isIP(hp.host) === 0) throw new InvalidArgumentError(what, text, 'the peer must be an IP address');
  return { address: hp.host, port: hp.port };
}

function families(text: string, what: string): Family[] {
  const map: Record<string, Family[]> = { ipv4: ['ipv4-unicast'], ipv6: ['ipv6-unicast'], 'ipv4+ipv6': ['ipv4-unicast', 'ipv6-unicast'], 'ipv6+ipv4': ['ipv4-unicast', 'ipv6-unicast'] };
  const f = map[text];
  if (!f) throw new InvalidArgumentError(what, text, 'must be ipv4, ipv6 or ipv4+ipv6');
  return f;
}

/** Splits "main,key=value,flag" into the main part and its options; unknown keys are errors. */
function splitOptions(text: string, what: string, known: readonly string[]): { main: string; opts: Map<string, string> } {
  const [main = '', ...rest] = text.split(',').map((s) => s.trim());
  const opts = new Map<string, string>();
  for (const item of rest) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (!known.includes(key)) throw new InvalidArgumentError(what, text, `unknown option "${key}" (known: ${known.join(', ')})`);
    if (opts.has(key)) throw new InvalidArgumentError(what, text, `"${key}" given twice`);
    opts.set(key, eq < 0 ? '' : item.slice(eq + 1));
  }
  return { main, opts };
}

const PEER_KEYS = ['asn', 'passive', 'md5', 'multihop', 'local', 'families', 'hold', 'max-prefix', 'nexthop6', 'graceful-restart'] as const;

export function parsePeer(text: string, what = '--peer', accept: readonly string[] = []): SpeakerPeerConfig {
  const { main, opts } = splitOptions(text, what, PEER_KEYS);
  const { address, port } = peerAddress(main, what);
  const asn = opts.get('asn');
  if (asn === undefined) throw new InvalidArgumentError(what, text, 'asn=N is required');
  const passive = opts.get('passive');
  if (passive !== undefined && passive !== '' && passive !== 'true' && passive !== 'false') throw new InvalidArgumentError(what, text, 'passive takes no value (or true/false)');
  const hold = opts.get('hold');
  const max = opts.get('max-prefix');
  const local = opts.get('local');
  if (local !== undefined && isIP(local) === 0) throw new InvalidArgumentError(what, text, 'local= must be an IP address');
  const nh6 = opts.get('nexthop6');
  const peer: SpeakerPeerConfig = {
    address,
    ...(port !== undefined && { port }),
    asn: integerInRange(asn, `${what} asn`, 1, 0xffffffff),
    passive: passive !== undefined && passive !== 'false',
    ...(opts.has('md5') && { md5: opts.get('md5')! }),
    ...(opts.has('multihop') && { multihop: integerInRange(opts.get('multihop')!, `${what} multihop`, 1, 255) }),
    ...(local !== undefined && { localAddress: local }),
    ...(opts.has('families') && { families: families(opts.get('families')!, `${what} families`) }),
    ...(hold !== undefined && { timers: { holdTime: integerInRange(hold, `${what} hold`, 0, 65535) } }),
    ...(opts.has('graceful-restart') && { gracefulRestartTime: integerInRange(opts.get('graceful-restart')!, `${what} graceful-restart`, 0, 4095) }),
    ...((max !== undefined || accept.length > 0) && { import: { accept, ...(max !== undefined && { maxPrefixes: integerInRange(max, `${what} max-prefix`, 1, 100_000_000) }) } }),
    ...(nh6 !== undefined && { export: { nextHopSelf: { ipv6: nh6 } } }),
  };
  return peer;
}

export function parseAnnouncement(text: string, what = '--announce'): LocalAdvertisement {
  const { main, opts } = splitOptions(text, what, ['nexthop']);
  const nextHop = opts.get('nexthop');
  if (nextHop !== undefined && isIP(nextHop) === 0) throw new InvalidArgumentError(what, text, 'nexthop= must be an IP address');
  return { prefix: main, ...(nextHop !== undefined && { nextHop }) };
}

interface ConfigFile {
  asn?: number; routerId?: string; listen?: string[]; accept?: string[];
  announce?: { prefix: string; nextHop?: string }[];
  peers?: (Record<string, unknown> & { address: string; asn: number })[];
}

function readConfigFile(path: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError('--config', path, `cannot read it as JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidArgumentError('--config', path, 'must hold a JSON object');
  // A misspelt key ("holdtime", "keepalive") must not be dropped silently: the session would run
  // with a default the operator did not choose.
  onlyKnownKeys(raw as Record<string, unknown>, FILE_KEYS, '--config');
  const file = raw as ConfigFile;
  for (const p of Array.isArray(file.peers) ? file.peers : []) {
    if (typeof p === 'object' && p !== null) onlyKnownKeys(p, FILE_PEER_KEYS, `--config peer ${String(p.address)}`);
  }
  for (const a of Array.isArray(file.announce) ? file.announce : []) {
    if (typeof a === 'object' && a !== null) onlyKnownKeys(a, ['prefix', 'nextHop'], '--config announce');
  }
  return file;
}

const FILE_KEYS = ['asn', 'routerId', 'listen', 'peers', 'announce', 'accept'];
const FILE_PEER_KEYS = ['address', 'port', 'asn', 'passive', 'md5', 'multihop', 'localAddress', 'families', 'holdTime', 'gracefulRestartTime', 'maxPrefixes', 'nextHopSelfIpv6'];

function onlyKnownKeys(obj: Record<string, unknown>, known: readonly string[], what: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw new InvalidArgumentError(what, key, `is not a known key (known: ${known.join(', ')})`);
  }
}

/** A file peer in the flag's own syntax, so both paths share one validation. */
function filePeerToFlag(p: Record<string, unknown>): string {
  const keys: [string, string][] = [['asn', 'asn'], ['md5', 'md5'], ['multihop', 'multihop'], ['localAddress', 'local'], ['holdTime', 'hold'], ['maxPrefixes', 'max-prefix'], ['nextHopSelfIpv6', 'nexthop6'], ['gracefulRestartTime', 'graceful-restart']];
  const parts = [typeof p.port === 'number' ? (isIPv4(String(p.address)) ? `${String(p.address)}:${p.port}` : `[${String(p.address)}]:${p.port}`) : String(p.address)];
  for (const [field, key] of keys) {
    const value = p[field];
    if (value === undefined) continue;
    if (typeof value !== 'string' && typeof value !== 'number') throw new InvalidArgumentError(`--config peer ${String(p.address)} ${field}`, value, 'must be a string or a number');
    parts.push(`${key}=${value}`);
  }
  if (p.passive === true) parts.push('passive');
  if (Array.isArray(p.families)) parts.push(`families=${(p.families as string[]).map((f) => f.replace('-unicast', '')).join('+')}`);
  return parts.join(',');
}

export function parseServeFlags(argv: readonly string[], env: NodeJS.ProcessEnv): ServeCommand {
  const cli = readCommandLine(argv, env, { program: 'twillctl bgp serve', envPrefix: ENV_PREFIX, flags: FLAGS });
  if (cli.help) return { kind: 'help', text: serveHelpText() };
  if (cli.version) return { kind: 'version', text: `twillctl ${twillVersion()}\n` };
  const v = new FlagValues(cli.raw);
  const configPath = v.optional('config');
  const file: ConfigFile = configPath === undefined ? {} : readConfigFile(configPath);
  const asnText = v.optional('asn') ?? (file.asn !== undefined ? String(file.asn) : undefined);
  const routerId = v.optional('router-id') ?? file.routerId;
  if (asnText === undefined) throw new InvalidArgumentError('--asn', '', 'is required (or "asn" in --config)');
  if (routerId === undefined) throw new InvalidArgumentError('--router-id', '', 'is required (or "routerId" in --config)');
  const accept = [...(file.accept ?? []), ...v.all('accept').items];
  for (const a of accept) parsePrefixRange(a, '--accept');
  const listen = [...(file.listen ?? []), ...v.all('listen').items].map((l) => parseHostPort(l, '--listen'));
  const peers = [
    ...(file.peers ?? []).map((p) => parsePeer(filePeerToFlag(p), `--config peer ${String(p.address)}`, accept)),
    ...v.all('peer').items.map((p) => parsePeer(p, '--peer', accept)),
  ];
  if (peers.some((p) => p.passive) && listen.length === 0) throw new InvalidArgumentError('--listen', '', 'is required when a peer is passive (nothing would accept its connection)');
  const announce = [...(file.announce ?? []).map((a) => ({ prefix: a.prefix, ...(a.nextHop !== undefined && { nextHop: a.nextHop }) })), ...v.all('announce').items.map((a) => parseAnnouncement(a))];
  const warmUp = v.required('warm-up-prefixes');
  return {
    kind: 'run',
    config: Object.freeze({
      asn: integerInRange(asnText.trim(), '--asn', 1, 0xffffffff),
      routerId,
      listen,
      peers,
      announce,
      accept,
      printRoutes: v.bool('print-routes'),
      netns: v.optional('netns'),
      warmUpPrefixes: integerInRange(warmUp.value, warmUp.what, 0, MAX_WARM_UP_PREFIXES),
    }),
  };
}
