import type { Socket } from 'node:net';
import { InvalidArgumentError } from '../core/errors.js';
import { NetlinkError } from './errors.js';
import {
  AF_INET, AF_INET6, IPPROTO_IP, IPPROTO_IPV6, IPV6_MINHOPCOUNT, IPV6_UNICAST_HOPS, IP_MINTTL, IP_TTL, SOCK_CLOEXEC, SOCK_NONBLOCK,
  SOCK_STREAM, SOL_SOCKET, SO_RCVBUF, SO_RCVBUFFORCE, getsockoptInt, ifNameToIndex, setsockoptInt, socket,
} from './libc.js';
import { runInNetns } from './netns.js';
import { applyMd5Keys } from './tcp-md5.js';
import type { SocketAddress } from './sockaddr.js';

/** Socket options a BGP transport needs and Node cannot set. */
export interface TcpTransportOptions {
  /**
   * RFC 2385 keys: peer address -> key (1..80 bytes, TCP_MD5SIG_MAXKEYLEN). A peer may also be a
   * prefix ("198.18.0.0/24", TCP_MD5SIG_EXT) for a listener that accepts a range of peers.
   */
  readonly md5?: ReadonlyMap<string, string> | undefined;
  /** Outgoing IP TTL / IPv6 unicast hops, 1..255 (eBGP single-hop: 1; multihop: n; GTSM: 255). */
  readonly ttl?: number | undefined;
  /** GTSM, RFC 5082: IP_MINTTL / IPV6_MINHOPCOUNT, 0..255 (0: off): segments arriving with less are dropped. */
  readonly minTtl?: number | undefined;
  /**
   * SO_RCVBUF in bytes, set before the handshake so the window scale fits it. A full table
   * arrives faster than the speaker decodes it; with the default buffer the kernel drops segments
   * and the sender waits out retransmission timeouts (seconds, measured with BIRD).
   */
  readonly receiveBuffer?: number | undefined;
  /**
   * Network namespace to create the socket in (a /run/netns entry or /proc/<pid>/ns/net), via
   * setns(2) around socket(2) only: the socket stays bound to that namespace for life. Default:
   * the namespace the calling (main) thread is in.
   */
  readonly netnsPath?: string | undefined;
}

export function validateTtl(ttl: number | undefined, minTtl: number | undefined): void {
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 255)) {
    throw new InvalidArgumentError('TTL', ttl, 'must be an integer 1..255');
  }
  if (minTtl !== undefined && (!Number.isInteger(minTtl) || minTtl < 0 || minTtl > 255)) {
    throw new InvalidArgumentError('minimum TTL', minTtl, 'must be an integer 0..255 (0: off)');
  }
}

/**
 * Sets TTL / min TTL on a TCP socket fd. An AF_INET6 socket gets both the IPv6 options and the
 * IPv4 ones, which govern its IPv4-mapped peers (a dual-stack listener's IPv4 sessions).
 */
/** A TCP port in min..65535 (0 only for a listener: the kernel picks one). */
export function validatePort(port: number, what: string, min: number): void {
  if (!Number.isInteger(port) || port < min || port > 65535) throw new InvalidArgumentError(what, port, `must be an integer ${min}..65535`);
}

/** Everything a transport sets on a fresh socket before bind/connect: MD5 keys, TTLs, receive buffer. */
export function applyTransportOptions(fd: number, socketFamily: number, opts: TcpTransportOptions): void {
  applyMd5Keys(fd, socketFamily, opts.md5);
  applyTtl(fd, socketFamily, opts.ttl, opts.minTtl);
  applyReceiveBuffer(fd, opts.receiveBuffer);
}

/** SO_RCVBUFFORCE (we usually hold CAP_NET_ADMIN: past net.core.rmem_max), else SO_RCVBUF. */
function applyReceiveBuffer(fd: number, bytes: number | undefined): void {
  if (bytes === undefined) return;
  if (!Number.isInteger(bytes) || bytes < 4096 || bytes > 1 << 30) throw new InvalidArgumentError('receive buffer', bytes, 'must be an integer from 4096 to 1 GiB');
  try {
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes);
  } catch {
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
  }
}

export function applyTtl(fd: number, socketFamily: number, ttl: number | undefined, minTtl: number | undefined): void {
  if (socketFamily !== AF_INET) {
    if (ttl !== undefined) setsockoptInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl);
    if (minTtl !== undefined) setsockoptInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT, minTtl);
  }
  if (ttl !== undefined) setsockoptInt(fd, IPPROTO_IP, IP_TTL, ttl);
  if (minTtl !== undefined) setsockoptInt(fd, IPPROTO_IP, IP_MINTTL, minTtl);
}

/** Resolves an IPv6 "%zone" (an interface name or index) to a scope id; 0 without a zone. */
function scopeIdOf(address: SocketAddress | undefined): number {
  if (address?.zone === undefined) return 0;
  return /^\d+$/.test(address.zone) ? Number(address.zone) : ifNameToIndex(address.zone);
}

export interface OpenedSocket {
  readonly fd: number;
  /** Scope ids of the addresses given, resolved in the socket's namespace (0 without a zone). */
  readonly scopeIds: readonly number[];
}

/**
 * socket(AF_INET[6], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC): non-blocking and close-on-exec
 * from birth, so Node can take it over and no child process inherits it. Created inside
 * `netnsPath` when given; interface names in zones are resolved there too.
 */
export function openTcpSocket(socketFamily: number, netnsPath: string | undefined, zoned: readonly (SocketAddress | undefined)[] = []): OpenedSocket {
  const open = (): OpenedSocket => {
    const scopeIds = zoned.map(scopeIdOf);
    return { fd: socket(socketFamily, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), scopeIds };
  };
  return netnsPath === undefined ? open() : runInNetns(netnsPath, open);
}

/** The kernel fd under a connected or accepted net.Socket (its libuv handle's). */
export function fdOfSocket(sock: Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new NetlinkError({ op: 'tcp.fd', errno: 9 }, 'the socket is not open (destroyed, or not a TCP socket)');
  }
  return fd;
}

/** True when the socket talks IPv4 on the wire (an AF_INET socket, or an AF_INET6 one with a v4-mapped peer). */
function speaksIpv4(sock: Socket): boolean {
  const local = sock.localAddress ?? '';
  return sock.localFamily === 'IPv4' || (local.startsWith('::ffff:') && local.includes('.'));
}

/**
 * Applies TTL and/or min TTL to an already connected or accepted socket (a passive session that
 * needs other values than its listener's). `undefined` leaves a value as it is.
 */
export function setTcpTtl(sock: Socket, ttl: number | undefined, minTtl: number | undefined): void {
  validateTtl(ttl, minTtl);
  const fd = fdOfSocket(sock);
  applyTtl(fd, sock.localFamily === 'IPv4' ? AF_INET : AF_INET6, ttl, minTtl);
}

/** Reads back the TTL (hop limit) and minimum TTL in effect on a connected or accepted socket. */
export function readTcpTtl(sock: Socket): { ttl: number; minTtl: number } {
  const fd = fdOfSocket(sock);
  if (speaksIpv4(sock)) {
    return { ttl: getsockoptInt(fd, IPPROTO_IP, IP_TTL), minTtl: getsockoptInt(fd, IPPROTO_IP, IP_MINTTL) };
  }
  return { ttl: getsockoptInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS), minTtl: getsockoptInt(fd, IPPROTO_IPV6, IPV6_MINHOPCOUNT) };
}
