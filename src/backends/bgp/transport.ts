import type { BgpTransport } from '../../bgp/index.js';
import { connectTcp, listenTcp, setTcpTtl } from '../../netlink/index.js';

/**
 * The speaker's transport on Twill's netlink layer: TCP MD5 keys (RFC 2385) and TTLs set through
 * socket options Node has no API for. `netnsPath` opens every socket inside that namespace. It
 * lives with the bgp backend, which peers through it, and `twillctl bgp serve` uses it too.
 */
/** 4 MiB: a 100k-route table arrives in about 2 MB; see TcpTransportOptions.receiveBuffer. */
const RECEIVE_BUFFER = 4 << 20;

/** See BgpTransport.readGatherMs: the buffer above holds what a trickling peer sends meanwhile. */
const READ_GATHER_MS = 1;

export function kernelTransport(netnsPath?: string): BgpTransport {
  const ns = { receiveBuffer: RECEIVE_BUFFER, ...(netnsPath !== undefined && { netnsPath }) };
  return {
    connect: (opts) => connectTcp({
      host: opts.host,
      port: opts.port,
      timeoutMs: opts.timeoutMs,
      ...(opts.localAddress !== undefined && { localAddress: opts.localAddress }),
      ...(opts.signal !== undefined && { signal: opts.signal }),
      ...(opts.md5 !== undefined && { md5: new Map([[opts.host, opts.md5]]) }),
      ...(opts.ttl !== undefined && { ttl: opts.ttl }),
      ...ns,
    }),
    listen: (opts) => listenTcp({ host: opts.host, port: opts.port, ...(opts.md5 !== undefined && { md5: opts.md5 }), ...ns }),
    setTtl: (socket, ttl) => setTcpTtl(socket, ttl, undefined),
    readGatherMs: READ_GATHER_MS,
  };
}
