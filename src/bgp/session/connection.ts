import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { MessageType } from '../types.js';
import { BgpMessageError, decodeReceived, joinableUpdate, joinUpdate, MessageReader, type CodecOptions, type JoinableUpdate, type ReceivedMessage } from '../wire/index.js';

const NO_WARNINGS: readonly BgpMessageError[] = Object.freeze([]);

/** What a Connection reports; a connection never logs. */
interface ConnectionEvents {
  /** An UPDATE comes with its prefixes as numbers (wire/packed-update.ts). */
  message: [message: ReceivedMessage, warnings: readonly BgpMessageError[]];
  /** A message that could not be decoded: the session answers with its NOTIFICATION. */
  'protocol-error': [err: BgpMessageError];
  /** A message the codec dropped without ending the session (RFC 2918 §4: a ROUTE-REFRESH for an unknown family). */
  'ignored': [err: BgpMessageError];
  /** The TCP connection ended or failed; emitted once. */
  closed: [err: Error | undefined];
}

/** Writes are gathered into chunks of about this size (one syscall for many UPDATEs). */
const WRITE_CHUNK = 64 * 1024;

/**
 * A read of UPDATEs smaller than this means the peer trickles them (gobgpd, for one, sends a table
 * one prefix per UPDATE and per segment); a larger one means a backlog, taken on at once.
 */
const READ_GATHER_BELOW = 16 * 1024;

/**
 * One TCP connection carrying BGP: framing (MessageReader), decoding with the options the session
 * negotiated, and writes with backpressure. Which peer it belongs to and what the messages mean
 * is the session's business.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  private readonly reader = new MessageReader();
  private codec: CodecOptions = { fourOctetAsn: false };
  private ended = false;
  private pendingOut: Buffer[] = [];
  private pendingBytes = 0;
  private readPause: NodeJS.Timeout | undefined;

  /**
   * `readGatherMs` (0: off; BgpTransport.readGatherMs) is how long reading pauses after a small
   * read of UPDATEs, so that the next read takes the UPDATEs of that time together: each read,
   * decode and report has a fixed cost, and a run of UPDATEs under the same attributes is
   * reported as one (wire/update-join.ts). An UPDATE waits at most that long.
   */
  constructor(private readonly socket: net.Socket, readonly initiatedLocally: boolean, private readonly readGatherMs = 0) {
    super();
    this.remoteAddress = normaliseAddress(socket.remoteAddress ?? '');
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = normaliseAddress(socket.localAddress ?? '');
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish(undefined));
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /** Called once the OPENs are exchanged: later UPDATEs are read with 4-octet AS_PATHs or not. */
  setCodecOptions(opts: CodecOptions): void {
    this.codec = opts;
  }

  /** Queues one encoded message; sent at the end of the current tick, many per write. */
  send(message: Buffer): void {
    if (this.ended) return;
    this.pendingOut.push(message);
    this.pendingBytes += message.length;
    if (this.pendingBytes >= WRITE_CHUNK) this.flush();
    else if (this.pendingOut.length === 1) queueMicrotask(() => this.flush());
  }

  /** Sends everything queued; resolves when the socket can take more (backpressure). */
  async drain(): Promise<void> {
    this.flush();
    if (this.ended || !this.socket.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.removeListener('drain', done);
        this.removeListener('closed', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.once('closed', done);
    });
  }

  /** Sends `last` (a NOTIFICATION, usually), then closes the connection gracefully. */
  close(last?: Buffer): void {
    if (this.ended) return;
    if (last) this.send(last);
    this.flush();
    this.socket.end();
    // A peer that never reads must not keep the socket forever.
    setTimeout(() => this.socket.destroy(), 2000).unref();
    this.finish(undefined);
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.socket.destroy();
    this.finish(undefined);
  }

  private flush(): void {
    if (this.pendingOut.length === 0 || this.ended) return;
    const data = this.pendingOut.length === 1 ? this.pendingOut[0]! : Buffer.concat(this.pendingOut, this.pendingBytes);
    this.pendingOut = [];
    this.pendingBytes = 0;
    this.socket.write(data);
  }

  private onData(chunk: Buffer): void {
    const sawUpdate = this.receive(chunk);
    if (sawUpdate && this.readGatherMs > 0 && chunk.length < READ_GATHER_BELOW) this.pauseReading();
  }

  /** What comes meanwhile waits in the socket's receive buffer. */
  private pauseReading(): void {
    if (this.ended || this.readPause !== undefined) return;
    this.socket.pause();
    this.readPause = setTimeout(() => {
      this.readPause = undefined;
      if (!this.ended) this.socket.resume();
    }, this.readGatherMs);
  }

  /**
   * Decodes and reports the messages of one read. A run of UPDATEs that only add prefixes under
   * the same attributes is reported as one (wire/update-join.ts says why that is the same).
   * True if the read held an UPDATE.
   */
  private receive(chunk: Buffer): boolean {
    if (this.ended) return false;
    let messages: Buffer[];
    try {
      messages = this.reader.push(chunk);
    } catch (err) {
      this.protocolError(err);
      return false;
    }
    let run: JoinableUpdate | undefined;
    let sawUpdate = false;
    const reportRun = (r: JoinableUpdate): void => { this.emit('message', { type: MessageType.UPDATE, update: r.update }, NO_WARNINGS); };
    for (const raw of messages) {
      if (this.ended) return false;
      if (run !== undefined) {
        if (joinUpdate(run, raw)) continue;
        reportRun(run);
        run = undefined;
        if (this.ended) return false;
      }
      let decoded;
      try {
        decoded = decodeReceived(raw, this.codec);
      } catch (err) {
        if (err instanceof BgpMessageError && err.action !== 'session-reset') {
          this.emit('ignored', err);
          continue;
        }
        this.protocolError(err);
        return false;
      }
      const message = decoded.message;
      if (message.type === MessageType.UPDATE) {
        sawUpdate = true;
        if (decoded.warnings.length === 0) run = joinableUpdate(raw, message.update);
      }
      if (run === undefined) this.emit('message', message, decoded.warnings);
    }
    if (run !== undefined && !this.ended) reportRun(run);
    return sawUpdate;
  }

  private protocolError(err: unknown): void {
    if (err instanceof BgpMessageError) this.emit('protocol-error', err);
    else this.finish(err instanceof Error ? err : new Error(String(err)));
  }

  private finish(err: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.readPause);
    this.readPause = undefined;
    this.pendingOut = [];
    this.pendingBytes = 0;
    this.emit('closed', err);
  }
}

/** "::ffff:10.0.0.1" (an IPv4 peer on a dual-stack socket) → "10.0.0.1". */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
