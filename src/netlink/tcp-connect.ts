import { Socket } from 'node:net';
import { InvalidArgumentError } from '../core/errors.js';
import { NetlinkError } from './errors.js';
import { EINPROGRESS, SOL_SOCKET, SO_ERROR, bind, closeFd, connectErrno, getsockoptInt } from './libc.js';
import { encodeSockaddr, familyOf, parseSocketAddress } from './sockaddr.js';
import { validateMd5Keys } from './tcp-md5.js';
import { applyTransportOptions, openTcpSocket, validatePort, validateTtl, type TcpTransportOptions } from './tcp-socket.js';
import { waitWritable } from './writable-poller.js';

const ETIMEDOUT = 110;
const ECANCELED = 125;

export interface ConnectTcpOptions extends TcpTransportOptions {
  /** The peer's IP address (no DNS); an IPv6 link-local one may carry "%zone". */
  readonly host: string;
  readonly port: number;
  /** Source address to bind before connecting (same family as host); port chosen by the kernel. */
  readonly localAddress?: string | undefined;
  /** Gives up (ETIMEDOUT) when the handshake has not finished by then. */
  readonly timeoutMs: number;
  /** Aborting gives up at once (ECANCELED). */
  readonly signal?: AbortSignal | undefined;
}

/**
 * A TCP connect that failed, timed out or was cancelled. `code` is the errno name: ETIMEDOUT
 * (no answer: also what a TCP MD5 key mismatch looks like), ECONNREFUSED, EHOSTUNREACH,
 * ENETUNREACH, ECANCELED (the AbortSignal fired; `cause` is its reason), EADDRNOTAVAIL (bad
 * localAddress), ...
 */
export class TcpConnectError extends NetlinkError {
  readonly host: string;
  readonly port: number;

  constructor(host: string, port: number, errno: number, hint?: string, cause?: unknown) {
    super({ op: 'tcp.connect', errno, target: formatEndpoint(host, port) }, hint);
    this.host = host;
    this.port = port;
    if (cause !== undefined) this.cause = cause;
  }
}

export function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function hintFor(errno: number, timeoutMs: number): string | undefined {
  switch (errno) {
    case ETIMEDOUT:
      return `no answer within ${timeoutMs} ms: the peer is down, filtered, or its TCP MD5 key differs (a missing or wrong key drops the SYN silently)`;
    case 111:
      return 'nothing listens there (connection refused)';
    default:
      return undefined;
  }
}

function bindLocal(fd: number, addr: Buffer, opts: ConnectTcpOptions): void {
  try {
    bind(fd, addr, opts.localAddress);
  } catch (err) {
    if (!(err instanceof NetlinkError)) throw err;
    // EADDRNOTAVAIL: the namespace has no such address (yet: an IPv6 one may still be tentative).
    throw new TcpConnectError(opts.host, opts.port, err.errno, `cannot bind the local address ${opts.localAddress ?? ''}`);
  }
}

/**
 * Opens a TCP connection to host:port with the transport options applied before the SYN (TCP MD5
 * must be: the SYN is signed), from `localAddress` when given. Resolves with a connected
 * net.Socket that owns the fd; rejects with TcpConnectError (or InvalidArgumentError for bad
 * options). Never blocks the event loop: the socket is non-blocking and the handshake is awaited
 * by one shared poll(2) on a libuv worker thread (writable-poller.ts). The fd is closed on every
 * failure path, including timeout and abort.
 *
 * The socket lives in `netnsPath` when given, else in the calling thread's namespace.
 */
export async function connectTcp(opts: ConnectTcpOptions): Promise<Socket> {
  const host = parseSocketAddress(opts.host, 'TCP peer address');
  validatePort(opts.port, 'TCP peer port', 1);
  const local = opts.localAddress === undefined ? undefined : parseSocketAddress(opts.localAddress, 'local address');
  if (local && local.ip.family !== host.ip.family) {
    throw new InvalidArgumentError('local address', opts.localAddress, `not of the peer's family (IPv${host.ip.family})`);
  }
  if (typeof opts.timeoutMs !== 'number' || !(opts.timeoutMs > 0) || opts.timeoutMs > 2_147_483_647) {
    throw new InvalidArgumentError('connect timeout (ms)', opts.timeoutMs, 'must be a positive number of milliseconds');
  }
  const family = familyOf(host.ip);
  validateTtl(opts.ttl, opts.minTtl);
  validateMd5Keys(opts.md5, family, false);
  if (opts.signal?.aborted) throw new TcpConnectError(opts.host, opts.port, ECANCELED, 'aborted', opts.signal.reason);

  const { fd, scopeIds } = openTcpSocket(family, opts.netnsPath, [host, local]);
  let owned = true;
  try {
    applyTransportOptions(fd, family, opts);
    if (local) bindLocal(fd, encodeSockaddr(family, local.ip, 0, scopeIds[1]), opts);
    const errno = connectErrno(fd, encodeSockaddr(family, host.ip, opts.port, scopeIds[0]));
    if (errno === EINPROGRESS) {
      const outcome = await waitWritable(fd, opts.timeoutMs, opts.signal);
      if (outcome === 'timeout') throw new TcpConnectError(opts.host, opts.port, ETIMEDOUT, hintFor(ETIMEDOUT, opts.timeoutMs));
      if (outcome === 'aborted') throw new TcpConnectError(opts.host, opts.port, ECANCELED, 'aborted', opts.signal?.reason);
      const soError = getsockoptInt(fd, SOL_SOCKET, SO_ERROR);
      if (soError !== 0) throw new TcpConnectError(opts.host, opts.port, soError, hintFor(soError, opts.timeoutMs));
    } else if (errno !== 0) {
      throw new TcpConnectError(opts.host, opts.port, errno, hintFor(errno, opts.timeoutMs));
    }
    // From here on Node's handle owns the fd (uv_tcp_open), and closes it with the socket.
    const sock = new Socket({ fd, readable: true, writable: true });
    owned = false;
    return sock;
  } finally {
    if (owned) closeFd(fd);
  }
}
