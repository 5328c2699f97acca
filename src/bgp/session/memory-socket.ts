import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { Duplex } from 'node:stream';
import type { BgpListener } from './transport.js';

/**
 * One end of a connection held in memory: what a session's Connection reads from a net.Socket
 * (data, FIN with `end()`, a reset with `destroy()`, 'close' once both directions are done, its
 * addresses and setNoDelay), with no socket, port or network namespace under it. The speaker's
 * warm-up joins two throwaway speakers with a pair of them; the speaker tests join a speaker
 * to a scripted peer.
 */
export class MemorySocket extends Duplex {
  private other: MemorySocket | undefined;
  private eof = false;

  constructor(readonly localAddress: string, readonly localPort: number, readonly remoteAddress: string, readonly remotePort: number) {
    super({ allowHalfOpen: false });
  }

  setNoDelay(): this {
    return this;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.other?.deliver(chunk);
    callback();
  }

  /** end(): a FIN to the other side. */
  override _final(callback: (err?: Error | null) => void): void {
    this.other?.deliver(null);
    callback();
  }

  /** destroy(): the other side sees the connection end too (a reset reads as an end here). */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.other?.deliver(null);
    callback(err);
  }

  private deliver(chunk: Buffer | null): void {
    if (this.eof || this.destroyed) return;
    if (chunk === null) this.eof = true;
    this.push(chunk);
  }

  /** Two ends joined: what one writes, the other reads. */
  static pair(a: { readonly address: string; readonly port: number }, b: { readonly address: string; readonly port: number }): [MemorySocket, MemorySocket] {
    const atA = new MemorySocket(a.address, a.port, b.address, b.port);
    const atB = new MemorySocket(b.address, b.port, a.address, a.port);
    atA.other = atB;
    atB.other = atA;
    return [atA, atB];
  }

  /** This end as the net.Socket a Connection takes (it reads only what a MemorySocket has). */
  get asSocket(): net.Socket {
    return this as unknown as net.Socket;
  }
}

/**
 * A listener with no socket under it, for a BgpTransport held in memory: a connection comes in
 * when the transport emits 'connection' on its server with the accepted end of a pair.
 * `address()` answers what the speaker asks of it (listenAddresses); `onClose` runs on close().
 */
export function memoryListener(host: string, port: number, onClose: () => void): BgpListener {
  const server = Object.assign(new EventEmitter(), { address: () => ({ address: host, port, family: host.includes(':') ? 'IPv6' : 'IPv4' }) });
  return {
    server: server as unknown as net.Server,
    setMd5Key: () => {},
    close: () => {
      onClose();
      return Promise.resolve();
    },
  };
}

/**
 * A connection in memory from `from` to a listener at `to` (its server a memoryListener's): the
 * listener's server gets the accepted end at once; returns the dialler's end. Either side's
 * messages wait in the other's stream until its Connection reads them.
 */
export function dialMemoryListener(server: net.Server, from: { readonly address: string; readonly port: number }, to: { readonly address: string; readonly port: number }): net.Socket {
  const [dialler, accepted] = MemorySocket.pair(from, to);
  server.emit('connection', accepted.asSocket);
  return dialler.asSocket;
}
