import net from 'node:net';

// How sessions reach the network. The speaker is a library that imports nothing but src/core, so
// TCP options it cannot set from Node (RFC 2385 MD5 keys, TTL for single-hop eBGP, GTSM) come
// from a transport the caller injects; twillctl and the agent pass one built on src/netlink.

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** RFC 2385 key for this peer. */
  readonly md5?: string | undefined;
  /** Outgoing TTL / hop limit (1 for single-hop eBGP). */
  readonly ttl?: number | undefined;
}

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** RFC 2385 keys by peer address, set on the listener so accepted connections carry them. */
  readonly md5?: ReadonlyMap<string, string> | undefined;
}

export interface BgpListener {
  readonly server: net.Server;
  /** Adds (key) or removes (undefined) a peer's MD5 key while listening. */
  setMd5Key(peer: string, key: string | undefined): void;
  close(): Promise<void>;
}

export interface BgpTransport {
  connect(opts: ConnectOptions): Promise<net.Socket>;
  listen(opts: ListenOptions): Promise<BgpListener>;
  /** Applies the TTL to an accepted connection; optional (plain Node cannot). */
  setTtl?(socket: net.Socket, ttl: number | undefined): void;
  /**
   * Milliseconds a session stops reading after a small read of UPDATEs, letting the peer's next
   * UPDATEs gather in the socket's receive buffer to be read and decoded together (a peer that
   * sends one prefix per UPDATE otherwise costs a wakeup, a read and a decode per prefix). Meant
   * for TCP sockets with a receive buffer that holds what comes meanwhile (the kernel transport
   * sets 4 MiB); 0 or absent: every read is taken at once. Longer pauses throttle a fast peer
   * through the TCP window: 1 ms halved the agent's CPU for a gobgpd table of one-prefix UPDATEs,
   * 4 ms made the transfer 1.6-3.5x slower.
   */
  readonly readGatherMs?: number;
}

/** Plain Node sockets: no MD5, no TTL. Refuses MD5 rather than silently connecting without it. */
export const nodeTransport: BgpTransport = {
  connect(opts) {
    if (opts.md5 !== undefined) return Promise.reject(new Error('TCP MD5 needs a transport that can set TCP_MD5SIG (the plain Node transport cannot)'));
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: opts.host, port: opts.port, ...(opts.localAddress !== undefined && { localAddress: opts.localAddress }) });
      const timer = setTimeout(() => fail(new Error(`connect to ${opts.host}:${opts.port} timed out after ${opts.timeoutMs} ms`)), opts.timeoutMs);
      const onAbort = (): void => fail(new Error('connect aborted'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      function done(): void {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        socket.removeListener('error', fail);
      }
      function fail(err: Error): void {
        done();
        socket.destroy();
        reject(err);
      }
      socket.once('error', fail);
      socket.once('connect', () => {
        done();
        resolve(socket);
      });
    });
  },
  listen(opts) {
    if (opts.md5 && opts.md5.size > 0) return Promise.reject(new Error('TCP MD5 needs a transport that can set TCP_MD5SIG (the plain Node transport cannot)'));
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen({ host: opts.host, port: opts.port }, () => {
        server.removeListener('error', reject);
        resolve({
          server,
          setMd5Key(_peer, key) {
            if (key !== undefined) throw new Error('TCP MD5 needs a transport that can set TCP_MD5SIG');
          },
          close: () => new Promise<void>((r) => server.close(() => r())),
        });
      });
    });
  },
};
