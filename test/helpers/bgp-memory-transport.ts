/**
 * An in-memory BgpTransport, for speaker tests that run on fake time (vi.useFakeTimers): no
 * sockets and no ports, so nothing happens between two steps of a test but what the test does.
 * A connection is a pair of Duplex streams behaving as TCP does towards Node code (data, FIN
 * with `end()`, a reset with `destroy()`, 'close' once both directions are done). The test holds
 * the far end of each as a {@link MemoryEnd}.
 *
 *   const net = new MemoryNetwork();
 *   const speaker = await Speaker.start({ ..., listen: [{ host: '198.18.0.1', port: 179 }], transport: net.transport });
 *   const peer = net.dial('198.18.0.2');          // the peer connects to the speaker
 *   peer.send(openFrom({ asn: 65002, holdTime: 9 }));
 *   await settle();                                // let the streams deliver
 *
 * Connections the speaker opens itself wait in `pendingDials` until the test answers them
 * (`answer(dial, true)` connects, `false` refuses); unanswered, they time out on the (fake) clock
 * after the speaker's connect timeout, as a SYN to a silent host would.
 *
 * Several speakers may share one network. With `linkSpeakers`, a connection a speaker opens to
 * an address and port where another speaker of the network listens reaches that speaker at once
 * (from the dialling session's `localAddress`), with no MemoryEnd in between:
 *
 *   const net = new MemoryNetwork({ linkSpeakers: true });
 *   const r = await Speaker.start({ ..., listen: [{ host: '198.18.0.10', port: 179 }], transport: net.transport });
 *   const a = await Speaker.start({ ..., transport: net.transport });
 *   a.addPeer({ address: '198.18.0.10', localAddress: '198.18.0.1', ... });   // up once settled
 */
import { afterEach, beforeEach, vi } from 'vitest';
import type net from 'node:net';
import type { BgpListener, BgpTransport, ConnectOptions } from '../../src/bgp/index.js';
import { dialMemoryListener, memoryListener, MemorySocket } from '../../src/bgp/session/memory-socket.js';
import { recordMessages, type ReceivedMessage } from './bgp-scripted-peer.js';

/** The test's end of a connection: the peer's side. */
export class MemoryEnd {
  readonly received: ReceivedMessage[] = [];
  /** Set when the connection is over on the test's side (closed by either end). */
  closed = false;

  constructor(
    /** The peer's address: where the connection comes from (or goes to, for one the speaker opened). */
    readonly address: string,
    /** True when the speaker opened the connection. */
    readonly dialledBySpeaker: boolean,
    private readonly socket: MemorySocket,
    private readonly speakerSide: MemorySocket,
  ) {
    recordMessages(socket, this.received);
    socket.on('close', () => { this.closed = true; });
    socket.on('error', () => {});
  }

  /** True while the speaker has not closed its side. */
  get openAtSpeaker(): boolean {
    return !this.speakerSide.destroyed && !this.speakerSide.writableEnded;
  }

  send(message: Buffer): void {
    if (!this.socket.destroyed && !this.socket.writableEnded) this.socket.write(message);
  }

  /** Closes gracefully (FIN). */
  end(): void {
    this.socket.end();
  }

  /** Drops the connection at once. */
  reset(): void {
    this.socket.destroy();
  }
}

/** An outgoing connection the speaker asked for, not answered yet. */
export interface PendingDial {
  readonly opts: ConnectOptions;
  /** The speaker gave up on it (aborted or timed out). */
  readonly settled: boolean;
}

interface Dial extends PendingDial {
  settled: boolean;
  resolve(socket: net.Socket): void;
  reject(err: Error): void;
}

let nextPort = 40000;

interface Server {
  readonly host: string;
  readonly port: number;
  readonly server: net.Server;
}

export class MemoryNetwork {
  /** Every connection made so far with a test end, in order (speaker-to-speaker links have none). */
  readonly ends: MemoryEnd[] = [];
  private readonly servers: Server[] = [];
  private readonly dials: Dial[] = [];
  private readonly linkSpeakers: boolean;

  constructor(opts: { readonly linkSpeakers?: boolean } = {}) {
    this.linkSpeakers = opts.linkSpeakers ?? false;
  }

  readonly transport: BgpTransport = {
    connect: (opts) => this.connect(opts),
    listen: (opts) => Promise.resolve(this.listen(opts.host, opts.port)),
  };

  /** Outgoing connections waiting for answer(). */
  get pendingDials(): readonly PendingDial[] {
    return this.dials.filter((d) => !d.settled);
  }

  /** `from` connects to the listener on `to` (default: the first listener). Throws when there is none. */
  dial(from: string, to?: string): MemoryEnd {
    const listener = to === undefined ? this.servers[0] : this.servers.find((s) => s.host === to);
    if (!listener) throw new Error(`no speaker listens on ${to ?? 'any address'}`);
    const [speakerSide, end] = this.pair(listener.host, listener.port, from, false);
    listener.server.emit('connection', speakerSide);
    return end;
  }

  /** Completes (`accept`) or refuses one of the speaker's connection attempts. */
  answer(dial: PendingDial, accept: boolean): MemoryEnd | undefined {
    const d = dial as Dial;
    if (d.settled) return undefined;
    d.settled = true;
    if (!accept) {
      d.reject(new Error(`connect ECONNREFUSED ${d.opts.host}:${d.opts.port}`));
      return undefined;
    }
    const [speakerSide, end] = this.pair(d.opts.localAddress ?? '198.18.255.1', nextPort++, d.opts.host, true);
    d.resolve(speakerSide);
    return end;
  }

  private pair(speakerAddress: string, speakerPort: number, peerAddress: string, dialledBySpeaker: boolean): [net.Socket, MemoryEnd] {
    const peerPort = nextPort++;
    const [speakerSide, peerSide] = MemorySocket.pair({ address: speakerAddress, port: speakerPort }, { address: peerAddress, port: peerPort });
    const end = new MemoryEnd(peerAddress, dialledBySpeaker, peerSide, speakerSide);
    this.ends.push(end);
    return [speakerSide.asSocket, end];
  }

  private connect(opts: ConnectOptions): Promise<net.Socket> {
    const listener = this.linkSpeakers ? this.servers.find((s) => s.host === opts.host && s.port === opts.port) : undefined;
    if (listener) return Promise.resolve(this.link(opts, listener));
    return new Promise((resolve, reject) => {
      const dial: Dial = { opts, settled: false, resolve, reject };
      const fail = (why: string): void => {
        if (dial.settled) return;
        dial.settled = true;
        reject(new Error(why));
      };
      const timer = setTimeout(() => fail(`connect to ${opts.host}:${opts.port} timed out after ${opts.timeoutMs} ms`), opts.timeoutMs);
      opts.signal?.addEventListener('abort', () => fail('connect aborted'), { once: true });
      dial.resolve = (socket) => {
        clearTimeout(timer);
        resolve(socket);
      };
      this.dials.push(dial);
    });
  }

  /** A connection from one speaker (the dialler's side, returned) to another's listener. */
  private link(opts: ConnectOptions, listener: Server): net.Socket {
    return dialMemoryListener(listener.server, { address: opts.localAddress ?? '198.18.255.1', port: nextPort++ }, { address: listener.host, port: listener.port });
  }

  private listen(host: string, port: number): BgpListener {
    const bound = port === 0 ? 179 : port;
    const listener = memoryListener(host, bound, () => this.servers.splice(this.servers.findIndex((s) => s.server === listener.server), 1));
    this.servers.push({ host, port: bound, server: listener.server });
    return listener;
  }
}

/**
 * Lets every stream event, microtask and setImmediate callback queued so far run, and what they
 * queue in turn (a few rounds: a message in, the speaker's answer out, its flush on setImmediate).
 * Timers do not run: under vi.useFakeTimers they wait for the test to advance the clock.
 */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * For a test file of whole speakers on one linked network: fake timers and a fresh network per
 * test, and every speaker the test registers in `started` closed after it.
 *
 *   const bed = useLinkedSpeakers();
 *   const s = await Speaker.start({ ..., transport: bed.net.transport });
 *   bed.started.push(s);
 */
export function useLinkedSpeakers(): { readonly net: MemoryNetwork; readonly started: { close(): Promise<void> }[] } {
  const bed = { net: new MemoryNetwork({ linkSpeakers: true }), started: [] as { close(): Promise<void> }[] };
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    bed.net = new MemoryNetwork({ linkSpeakers: true });
  });
  afterEach(async () => {
    await Promise.all(bed.started.splice(0).map((s) => s.close()));
    vi.useRealTimers();
  });
  return bed;
}
