import { InvalidArgumentError } from '../core/errors.js';
import { parseIp, type IpAddress } from '../core/ip.js';
import { AF_INET, AF_INET6 } from './libc.js';

/** An IP address as a socket endpoint may name it: IPv6 link-local addresses may carry a zone ("fe80::1%eth0"). */
export interface SocketAddress {
  readonly ip: IpAddress;
  /** The "%zone" part (an interface name or index), only for IPv6. */
  readonly zone: string | undefined;
}

export function parseSocketAddress(text: string, what: string): SocketAddress {
  if (typeof text !== 'string') throw new InvalidArgumentError(what, text, 'not a string');
  const pct = text.indexOf('%');
  if (pct < 0) return { ip: parseIp(text, what), zone: undefined };
  const ip = parseIp(text.slice(0, pct), what);
  const zone = text.slice(pct + 1);
  if (ip.family !== 6 || zone === '') throw new InvalidArgumentError(what, text, 'a "%zone" needs an IPv6 address and an interface');
  return { ip, zone };
}

/** The socket family an address needs: AF_INET for IPv4, AF_INET6 for IPv6. */
export function familyOf(ip: IpAddress): number {
  return ip.family === 4 ? AF_INET : AF_INET6;
}

/** ::ffff:a.b.c.d, how an AF_INET6 socket names an IPv4 peer. */
function v4Mapped(ip: IpAddress): Buffer {
  const bytes = Buffer.alloc(16);
  bytes[10] = 0xff;
  bytes[11] = 0xff;
  ip.bytes.copy(bytes, 12);
  return bytes;
}

/**
 * Encodes struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes) for a socket of `socketFamily`,
 * into `out` when given (struct sockaddr_storage inside struct tcp_md5sig). An IPv4 address on an
 * AF_INET6 socket becomes v4-mapped; an IPv6 address on an AF_INET socket is an error.
 */
export function encodeSockaddr(socketFamily: number, ip: IpAddress, port: number, scopeId = 0, out?: Buffer): Buffer {
  if (socketFamily === AF_INET) {
    if (ip.family !== 4) throw new InvalidArgumentError('address', ip.text, 'an IPv6 address on an IPv4 socket');
    const buf = out ?? Buffer.alloc(16);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(port, 2);
    ip.bytes.copy(buf, 4);
    return buf;
  }
  const buf = out ?? Buffer.alloc(28);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  buf.writeUInt32LE(0, 4); // sin6_flowinfo
  (ip.family === 4 ? v4Mapped(ip) : ip.bytes).copy(buf, 8);
  buf.writeUInt32LE(scopeId, 24);
  return buf;
}
