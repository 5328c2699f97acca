import { parseIp } from '../../core/ip.js';
import type { HostBgpPeer } from '../backend.js';
import { booleanOption, integerOption, option, optionError, rejectUnknownOptions } from '../options.js';

/**
 * The bgp backend's options, from the network config's Backend object (names case-insensitive,
 * as flannel reads its options):
 *
 *   {"Type": "bgp", "ASN": 64512, "Mesh": true, "HoldTime": 90, "GracefulRestart": true,
 *    "RouteReflectors": ["198.18.0.1"], "Speaker": "builtin",
 *    "Peers": [{"Address": "198.18.0.254", "ASN": 65000, "Password": "s3cret", "Port": 179, "Multihop": 2}]}
 *
 * These are the cluster-wide settings; each host adds its own (its ASN, its ToR) with twilld's
 * --bgp-* flags.
 */
export interface BgpOptions {
  /** The cluster's AS number; a host's --bgp-asn overrides it (eBGP to its ToR). */
  readonly asn: number;
  /** iBGP full mesh among all hosts, peers following the leases. */
  readonly mesh: boolean;
  /** PublicIPs of the hosts that reflect routes (RFC 4456): the others peer with them only. */
  readonly routeReflectors: readonly string[];
  /** External peers every host has (a route server, a pair of spines). */
  readonly peers: readonly BgpPeerOption[];
  /** Proposed hold time in seconds: 0 (no keepalives) or 3..65535 (RFC 4271 §4.2). */
  readonly holdTimeS: number;
  /** Graceful restart (RFC 4724), both as the restarting and as the receiving speaker. */
  readonly gracefulRestart: boolean;
  readonly speaker: BgpSpeakerKind;
}

/** An external peer: the same shape as a host's --bgp-peer (backend.ts). */
export type BgpPeerOption = HostBgpPeer;

export type BgpSpeakerKind = 'builtin' | 'gobgp';

export const TYPE = 'bgp';
/** The first private 2-byte ASN (RFC 6996), Calico's default too. */
export const DEFAULT_ASN = 64512;
export const DEFAULT_HOLD_TIME_S = 90;
/** How long peers keep Twill's routes while it restarts (RFC 4724 Restart Time, 12 bits). */
export const RESTART_TIME_S = 120;
export const BGP_PORT = 179;
/** Linux's TCP_MD5SIG_MAXKEYLEN. */
const MAX_PASSWORD_BYTES = 80;
const SPEAKERS: readonly BgpSpeakerKind[] = ['builtin', 'gobgp'];

const KNOWN = ['ASN', 'Mesh', 'RouteReflectors', 'Peers', 'HoldTime', 'GracefulRestart', 'Speaker'];
const PEER_KNOWN = ['Address', 'ASN', 'Password', 'Port', 'Multihop'];

export function parseBgpOptions(raw: Readonly<Record<string, unknown>>): BgpOptions {
  rejectUnknownOptions(TYPE, raw, KNOWN);
  const routeReflectors = parseRouteReflectors(option(raw, 'RouteReflectors'));
  const meshSet = option(raw, 'Mesh') !== undefined && option(raw, 'Mesh') !== null;
  const mesh = meshSet ? booleanOption(TYPE, raw, 'Mesh') : routeReflectors.length === 0;
  // With reflectors the hosts peer with them only; a full mesh as well would defeat the point
  // (Calico asks the same: turn the node-to-node mesh off first).
  if (mesh && routeReflectors.length > 0) {
    throw optionError(TYPE, 'Mesh', true, 'cannot be true together with RouteReflectors (every host peers with the reflectors instead); remove Mesh or set it to false');
  }
  const holdTimeS = integerOption(TYPE, raw, 'HoldTime', 0, 65535) ?? DEFAULT_HOLD_TIME_S;
  if (holdTimeS === 1 || holdTimeS === 2) throw optionError(TYPE, 'HoldTime', holdTimeS, 'must be 0 or at least 3 seconds (RFC 4271 §4.2)');
  const gr = option(raw, 'GracefulRestart');
  return Object.freeze({
    asn: parseAsn(option(raw, 'ASN'), 'ASN') ?? DEFAULT_ASN,
    mesh,
    routeReflectors,
    peers: parsePeers(option(raw, 'Peers')),
    holdTimeS,
    gracefulRestart: gr === undefined || gr === null ? true : booleanOption(TYPE, raw, 'GracefulRestart'),
    speaker: parseSpeaker(option(raw, 'Speaker')),
  });
}

/**
 * A 4-byte AS number (RFC 6793). 0 and 65535/4294967295 are reserved (RFC 7607, RFC 7300), and
 * 23456 is AS_TRANS, which stands in for a 4-byte ASN towards old speakers and is no AS of its own.
 */
export function parseAsn(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 4294967294) {
    throw optionError(TYPE, name, value, 'must be an AS number 1..4294967294');
  }
  if (value === 23456 || value === 65535) throw optionError(TYPE, name, value, `is reserved (${value === 23456 ? 'AS_TRANS, RFC 6793' : 'RFC 7300'})`);
  return value;
}

/** An IPv4 or IPv6 address (an external peer: an IPv6 ToR of a dual-stack or IPv6-only host). */
function ipAddress(value: unknown, name: string): string {
  if (typeof value !== 'string') throw optionError(TYPE, name, value, 'must be an IPv4 or IPv6 address in a string');
  try {
    return parseIp(value, name).text;
  } catch {
    throw optionError(TYPE, name, value, 'must be an IPv4 or IPv6 address');
  }
}

function ipv4(value: unknown, name: string): string {
  if (typeof value !== 'string') throw optionError(TYPE, name, value, 'must be an IPv4 address in a string');
  let ip: ReturnType<typeof parseIp> | undefined;
  try {
    ip = parseIp(value, name);
  } catch {
    ip = undefined;
  }
  if (ip?.family !== 4) throw optionError(TYPE, name, value, 'must be an IPv4 address (the underlay is IPv4)');
  return ip.text;
}

function parseRouteReflectors(value: unknown): readonly string[] {
  return uniqueList(value, 'RouteReflectors', 'the reflector hosts\' PublicIPs', ipv4, (ip) => ip, '');
}

function parsePeers(value: unknown): readonly BgpPeerOption[] {
  return uniqueList(value, 'Peers', '{"Address", "ASN", ...} objects', parsePeer, (peer) => peer.address, '.Address');
}

/** A list option whose entries must differ by `keyOf`: a reflector or a peer listed twice is a mistake. */
function uniqueList<T>(
  value: unknown, name: string, expected: string, parse: (v: unknown, where: string) => T, keyOf: (item: T) => string, keyField: string,
): readonly T[] {
  if (value === undefined || value === null) return Object.freeze([]);
  if (!Array.isArray(value)) throw optionError(TYPE, name, value, `must be a list of ${expected}`);
  const seen = new Set<string>();
  return Object.freeze(value.map((v: unknown, i) => {
    const item = parse(v, `${name}[${i}]`);
    const key = keyOf(item);
    if (seen.has(key)) throw optionError(TYPE, `${name}[${i}]${keyField}`, key, 'is listed twice');
    seen.add(key);
    return item;
  }));
}

/** One external peer, from the network config or from a --bgp-peer flag; `where` names it in errors. */
export function parsePeer(value: unknown, where: string): BgpPeerOption {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw optionError(TYPE, where, value, 'must be an object with Address and ASN');
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!PEER_KNOWN.some((k) => k.toLowerCase() === key.toLowerCase())) {
      throw optionError(TYPE, `${where}.${key}`, raw[key], `is not a peer setting (known: ${PEER_KNOWN.join(', ')})`);
    }
  }
  const address = option(raw, 'Address');
  if (address === undefined || address === null) throw optionError(TYPE, `${where}.Address`, address, 'is required');
  const asn = parseAsn(option(raw, 'ASN'), `${where}.ASN`);
  if (asn === undefined) throw optionError(TYPE, `${where}.ASN`, undefined, 'is required');
  const password = option(raw, 'Password');
  if (password !== undefined && password !== null
    && (typeof password !== 'string' || password.length === 0 || Buffer.byteLength(password) > MAX_PASSWORD_BYTES)) {
    // The value itself stays out of the error: it is a secret.
    throw optionError(TYPE, `${where}.Password`, '(hidden)', `must be a string of 1..${MAX_PASSWORD_BYTES} bytes (a TCP MD5 key)`);
  }
  return Object.freeze({
    address: ipAddress(address, `${where}.Address`),
    asn,
    password: typeof password === 'string' ? password : undefined,
    port: integerOption(TYPE, raw, 'Port', 1, 65535, undefined, `${where}.Port`) ?? BGP_PORT,
    multihop: integerOption(TYPE, raw, 'Multihop', 1, 255, undefined, `${where}.Multihop`),
  });
}

/** The Speaker option, or a host's --bgp-speaker (`name`). */
export function parseSpeaker(value: unknown, name = 'Speaker'): BgpSpeakerKind {
  if (value === undefined || value === null) return 'builtin';
  if (typeof value !== 'string' || !SPEAKERS.includes(value.toLowerCase() as BgpSpeakerKind)) {
    throw optionError(TYPE, name, value, `must be one of ${SPEAKERS.map((s) => `"${s}"`).join(', ')}`);
  }
  return value.toLowerCase() as BgpSpeakerKind;
}

/**
 * A host's own peer from twilld's `--bgp-peer ADDR,asn=N[,password=S][,port=P][,multihop=H]`
 * (its ToR), in the same shape and with the same checks as a `Peers` entry of the network config.
 */
export function parsePeerFlag(text: string): BgpPeerOption {
  const where = '--bgp-peer';
  const [address, ...settings] = text.split(',');
  const raw: Record<string, unknown> = { Address: address?.trim() === '' ? undefined : address?.trim() };
  const names: Record<string, string> = { asn: 'ASN', password: 'Password', port: 'Port', multihop: 'Multihop' };
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    const key = eq < 0 ? setting : setting.slice(0, eq);
    const name = names[key.trim().toLowerCase()];
    if (eq < 0 || name === undefined || name in raw) {
      // Only the setting's name is shown: a password holding a comma splits into a second
      // "setting" whose text is part of the secret.
      const shown = eq < 0 ? 'a setting without "="' : name === undefined ? `an unknown setting "${key.trim().slice(0, 16)}"` : `${key.trim()} twice`;
      throw optionError(TYPE, where, shown, `expected ADDR,asn=N[,password=S][,port=P][,multihop=H], each setting once (a password cannot contain a comma)`);
    }
    const value = setting.slice(eq + 1);
    raw[name] = name === 'Password' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  }
  return parsePeer(raw, where);
}

/** twilld's `--bgp-listen ADDR:PORT` (`[IPV6]:PORT` in an IPv6-only cluster): where the speaker accepts sessions. */
export function parseListenFlag(text: string): { readonly address: string; readonly port: number } {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  if (colon < 0 || !/^\d+$/.test(text.slice(colon + 1)) || port < 1 || port > 65535) {
    throw optionError(TYPE, '--bgp-listen', text, 'expected an IPv4 address and a port, e.g. 198.18.0.1:179, or [IPv6]:port');
  }
  const host = text.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) {
    const address = ipAddress(host.slice(1, -1), '--bgp-listen');
    if (!address.includes(':')) throw optionError(TYPE, '--bgp-listen', text, 'brackets are for an IPv6 address');
    return Object.freeze({ address, port });
  }
  return Object.freeze({ address: ipv4(host, '--bgp-listen'), port });
}
