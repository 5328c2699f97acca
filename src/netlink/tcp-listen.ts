import { fstatSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { InvalidArgumentError } from '../core/errors.js';
import { NetlinkError } from './errors.js';
import { SOL_SOCKET, SO_REUSEADDR, bind, closeFd, listen, setsockoptInt } from './libc.js';
import { encodeSockaddr, familyOf, parseSocketAddress } from './sockaddr.js';
import { formatEndpoint } from './tcp-connect.js';
import { setMd5Key, validateMd5Keys } from './tcp-md5.js';
import { applyTransportOptions, openTcpSocket, validatePort, validateTtl, type TcpTransportOptions } from './tcp-socket.js';

const EBADF = 9;
const DEFAULT_BACKLOG = 511;

export interface ListenTcpOptions extends TcpTransportOptions {
  /** Address to listen on: "0.0.0.0", "::" (dual-stack unless net.ipv6.bindv6only), or one address. */
  readonly host: string;
  /** 0 lets the kernel choose; read it back from `port`. */
  readonly port: number;
  readonly backlog?: number | undefined;
}

export interface TcpListener {
  /** Already listening. Accepted sockets inherit the listener's TTL, min TTL and their peer's MD5 key. */
  readonly server: Server;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /**
   * Adds, replaces (key given) or removes (undefined) the MD5 key for `peer` (an address or a
   * prefix) on the listening socket, for connections accepted from now on. Throws EBADF once closed.
   */
  setMd5Key(peer: string, key: string | undefined): void;
  /** Stops listening; the port is free when this resolves. Accepted sockets stay open (they are the caller's). */
  close(): Promise<void>;
}

/** True while `fd` still names the socket with inode `ino` (it may have been closed and the number reused). */
function stillSameSocket(fd: number, ino: number): boolean {
  try {
    return fstatSync(fd).ino === ino;
  } catch {
    return false;
  }
}

/**
 * A listening TCP server with the transport options on the listening socket itself. The socket is
 * made here (in `netnsPath` when given), keyed, bound and put in listen state, then handed to Node
 * with `server.listen({ fd })`. Linux copies TTL, min TTL and the peer's MD5 key into each
 * accepted socket, so sessions accepted are protected from their first segment.
 */
export async function listenTcp(opts: ListenTcpOptions): Promise<TcpListener> {
  const address = parseSocketAddress(opts.host, 'listen address');
  validatePort(opts.port, 'listen port', 0);
  const backlog = opts.backlog ?? DEFAULT_BACKLOG;
  if (!Number.isInteger(backlog) || backlog < 1) throw new InvalidArgumentError('listen backlog', backlog, 'must be a positive integer');
  const family = familyOf(address.ip);
  validateTtl(opts.ttl, opts.minTtl);
  validateMd5Keys(opts.md5, family, true);
  const target = formatEndpoint(opts.host, opts.port);

  const { fd, scopeIds } = openTcpSocket(family, opts.netnsPath, [address]);
  let ino: number;
  try {
    ino = fstatSync(fd).ino;
    setsockoptInt(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    applyTransportOptions(fd, family, opts);
    bind(fd, encodeSockaddr(family, address.ip, opts.port, scopeIds[0]), target);
    listen(fd, backlog, target);
  } catch (err) {
    closeFd(fd);
    throw err;
  }

  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Node opens the fd as its handle and calls listen(2) again, with the same backlog: harmless.
      server.listen({ fd }, backlog, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    // If Node took the fd it closes it with the server; if not, it is still ours to close.
    if (server.listening) server.close();
    else if (stillSameSocket(fd, ino)) closeFd(fd);
    throw err;
  }

  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : opts.port;
  const open = (): boolean => server.listening && stillSameSocket(fd, ino);
  return {
    server,
    port,
    setMd5Key(peer: string, key: string | undefined): void {
      if (!open()) throw new NetlinkError({ op: key === undefined ? 'tcp.md5.delete' : 'tcp.md5.set', errno: EBADF, target: peer }, 'the listener is closed');
      setMd5Key(fd, family, peer, key);
    },
    async close(): Promise<void> {
      // uv_close() closes the fd at once; the server's 'close' event waits for accepted sockets.
      if (server.listening) server.close();
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}
