import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
// Only the raw socket: the package's index also loads its generated rtnetlink, nl80211 and
// wireguard codecs (~1.5 MB of JavaScript, ~40 ms of every start) that Twill never calls.
import rawNetlink from 'netlink/dist/raw.js';
import { NetlinkError } from './errors.js';
import { Fifo } from './fifo.js';
import {
  NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK, SOL_NETLINK, SOL_SOCKET, SO_RCVBUFFORCE,
  SO_SNDBUFFORCE, setsockoptInt,
} from './libc.js';
import { zeroPadding } from './wire.js';

const { RawNetlinkSocket } = rawNetlink;
type RawSocket = InstanceType<typeof RawNetlinkSocket>;

const NETLINK_ROUTE = 0;
const HEADER = 16;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
const NLM_F_DUMP_INTR = 0x10;
const DUMP_ATTEMPTS = 5;
const NLM_F_ACK_TLVS = 0x200;
const NLM_F_CAPPED = 0x100;
const NLMSG_NOOP = 0x1;
const NLMSG_ERROR = 0x2;
const NLMSG_DONE = 0x3;
const NLMSGERR_ATTR_MSG = 1;

/** Biggest datagram we send: well under the default socket send buffer (EMSGSIZE otherwise). */
const MAX_DATAGRAM = 32 * 1024;
/** Requests sent but not yet answered; above this, new requests wait (keeps replies within the receive buffer). */
const MAX_IN_FLIGHT = 4096;
const SOCKET_BUFFER = 8 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);
/** What an acknowledged mutation resolves with; shared, and never written to. */
const NO_PARTS: RawMessage[] = [];

export interface RawMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly data: Buffer;
}

/** What the caller knows about a request, for its error message. */
export interface RequestLabel {
  readonly op: string;
  readonly target?: string | undefined;
}

type Expect = 'ack' | 'reply' | 'dump';

/** One mutation, ready to send: what mutateAll() takes. */
export interface MutationRequest {
  readonly type: number;
  readonly flags: number;
  readonly body: Buffer;
  readonly label: RequestLabel;
}

/**
 * One mutateAll() call, queued as one item: its requests go out in order as datagrams have room,
 * and it holds their errors by request index and how many are unanswered. No object, map entry or
 * sequence number is made per request before it is sent (a sync of 20,000 entries made six
 * objects per request up front, all alive until answered, and the collector copied them around).
 */
interface Bulk {
  readonly requests: readonly MutationRequest[];
  /** The first request not sent yet. */
  next: number;
  readonly errors: Map<number, Error>;
  left: number;
  readonly resolve: (errors: Map<number, Error>) => void;
}

/** Requests `first`.. of `bulk` in one datagram, `count` of them, with sequence numbers `firstSeq`.. in order. */
interface Span {
  readonly bulk: Bulk;
  readonly first: number;
  readonly count: number;
  readonly firstSeq: number;
  /** How many of them the kernel refused so far (each answered by its own NLMSG_ERROR). */
  failed: number;
}

/** What one datagram carried, in order: mutate() requests (by sequence number) and runs of mutateAll() ones. */
interface Datagram {
  readonly seqs: number[];
  readonly spans: Span[];
}

/** A request of mutate(), get() or dump(), waiting for its answer. */
interface Pending {
  readonly label: RequestLabel;
  readonly expect: Expect;
  readonly resolve: (msgs: RawMessage[]) => void;
  readonly reject: (err: Error) => void;
  readonly parts: RawMessage[];
  sent: boolean;
}

/** One more request of `bulk` is answered; the last one resolves the mutateAll() call. */
function answered(bulk: Bulk, count = 1): void {
  bulk.left -= count;
  if (bulk.left === 0) bulk.resolve(bulk.errors);
}

/** Fails request `index` of `bulk`, unless it has failed already (the kernel refused it); true if it had not. */
function failBulkRequest(bulk: Bulk, index: number, err: Error & { errno?: number }): boolean {
  if (bulk.errors.has(index)) return false;
  bulk.errors.set(index, toNetlinkError(err, bulk.requests[index]!.label));
  answered(bulk);
  return true;
}

/**
 * A request waiting to be sent, not yet framed: flush() writes its header and body straight into
 * the datagram, so a message is copied once (a framed copy per request, then the datagram made of
 * them, cost a sync of 15,000 entries two allocations and two copies each).
 */
interface Outgoing {
  readonly seq: number;
  readonly type: number;
  /** NLM_F_REQUEST included. */
  readonly flags: number;
  readonly body: Buffer;
}

/** The bytes a message with `body` takes in a datagram: header and body, padded to 4 (NLMSG_ALIGN). */
function framedLength(body: Buffer): number {
  return (HEADER + body.length + 3) & ~3;
}

/**
 * One rtnetlink socket with many requests in flight.
 *
 * Mutations are sent without NLM_F_ACK, many to a datagram, each datagram closed by an
 * NLMSG_NOOP that does ask for an ACK (a "barrier"). The kernel handles the messages of a
 * datagram in order inside sendmsg() and queues an NLMSG_ERROR only for those that fail
 * (netlink_rcv_skb() in net/netlink/af_netlink.c), so when the barrier's ACK arrives every earlier
 * request without an error has succeeded. This halves the replies compared with one ACK per
 * request, as `ip -batch` does, and costs one sendmsg() per datagram instead of per request.
 *
 * Dumps run one at a time (the kernel answers EBUSY to a second dump on the same socket) and are
 * sent alone in their datagram.
 *
 * The socket is created in the network namespace the thread is in at construction time and stays
 * bound to it; see netns.ts for how to construct it inside another namespace.
 */
export class RtnlChannel {
  private readonly raw: RawSocket;
  private readonly pending = new Map<number, Pending>();
  /** Barrier seq -> the requests sent in its datagram. */
  private readonly batches = new Map<number, Datagram>();
  private readonly outbox = new Fifo<Outgoing | Bulk>();
  private readonly dumpQueue = new Fifo<Outgoing>();
  private dumpRunning = false;
  private flushScheduled = false;
  private inFlight = 0;
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private closed = false;
  /** Filled in at construction: the socket's fd, so socket options can be set on it. */
  readonly fd: number;

  constructor() {
    this.raw = new RawNetlinkSocket(NETLINK_ROUTE, { recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER });
    this.fd = findNetlinkSocketFd(this.raw.address().port);
    setsockoptInt(this.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    setsockoptInt(this.fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    setsockoptInt(this.fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1);
    // The *FORCE variants pass net.core.rmem_max (we hold CAP_NET_ADMIN); best effort otherwise.
    for (const opt of [SO_RCVBUFFORCE, SO_SNDBUFFORCE]) {
      try { setsockoptInt(this.fd, SOL_SOCKET, opt, SOCKET_BUFFER); } catch { /* keep the default size */ }
    }
    this.raw.on('message', (buf: Buffer) => this.receive(buf));
    this.raw.on('error', (err: Error & { errno?: number }) => this.failAll(err));
    this.raw.unref();
  }

  /**
   * A mutation: resolves when the kernel has applied it, rejects with its NetlinkError. `body` is
   * copied into a datagram when the request is sent, later: it must not change after the call
   * (every encoder makes a new buffer per request). The same holds for every method below.
   */
  mutate(type: number, flags: number, body: Buffer, label: RequestLabel): Promise<void> {
    // The ack's value (no messages) is never read: hand out enqueue's promise itself rather than
    // chain one more per request, thousands of which a big sync issues at once.
    return this.enqueue(type, flags, body, label, 'ack') as Promise<unknown> as Promise<void>;
  }

  /**
   * Many mutations, sent in order exactly as that many mutate() calls would be, but without a
   * promise each (a sync of thousands of entries spent a good part of its time allocating and
   * collecting them). Resolves once every one is answered, with the errors by request index:
   * empty when all were applied.
   */
  mutateAll(requests: readonly MutationRequest[]): Promise<Map<number, Error>> {
    if (requests.length === 0) return Promise.resolve(new Map<number, Error>());
    if (this.closed) return Promise.reject(new Error(`${requests[0]!.label.op}: netlink channel is closed`));
    return new Promise((resolve) => {
      this.outbox.push({ requests, next: 0, errors: new Map(), left: requests.length, resolve });
      this.scheduleFlush();
    });
  }

  /** A request answered by one message (RTM_GETLINK by name, say). */
  async get(type: number, body: Buffer, label: RequestLabel): Promise<RawMessage> {
    const [msg] = await this.enqueue(type, 0, body, label, 'reply');
    if (!msg) throw new Error(`${label.op}: the kernel sent no reply`);
    return msg;
  }

  /**
   * A dump request: resolves with every message of the multipart answer. The kernel flags a dump
   * that raced with a change (NLM_F_DUMP_INTR) as possibly inconsistent; such a dump is retried,
   * and after DUMP_ATTEMPTS interrupted answers the caller gets EINTR rather than a partial list.
   */
  async dump(type: number, body: Buffer, label: RequestLabel): Promise<RawMessage[]> {
    for (let attempt = 1; ; attempt++) {
      const parts = await this.enqueue(type, NLM_F_DUMP, body, label, 'dump');
      if (!parts.some((m) => m.flags & NLM_F_DUMP_INTR)) return parts;
      if (attempt >= DUMP_ATTEMPTS) throw new NetlinkError({ ...label, errno: 4 }, `dump interrupted by concurrent changes ${attempt} times`);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('netlink channel closed'));
    this.raw.close();
  }

  private enqueue(type: number, flags: number, body: Buffer, label: RequestLabel, expect: Expect): Promise<RawMessage[]> {
    if (this.closed) return Promise.reject(new Error(`${label.op}: netlink channel is closed`));
    const seq = this.nextSeq();
    const outgoing: Outgoing = { seq, type, flags: NLM_F_REQUEST | flags, body };
    return new Promise<RawMessage[]>((resolve, reject) => {
      this.pending.set(seq, { label, expect, resolve, reject, parts: expect === 'dump' ? [] : NO_PARTS, sent: false });
      (expect === 'dump' ? this.dumpQueue : this.outbox).push(outgoing);
      this.scheduleFlush();
    });
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // A microtask: every request issued in the same synchronous run shares datagrams.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.closed) return;
    if (!this.dumpRunning) {
      const dumpReq = this.dumpQueue.shift();
      if (dumpReq) {
        this.dumpRunning = true;
        this.markSent(dumpReq.seq);
        this.raw.ref();
        const bytes = Buffer.allocUnsafe(framedLength(dumpReq.body));
        writeFramed(bytes, 0, dumpReq.seq, dumpReq.type, dumpReq.flags, dumpReq.body);
        this.raw.send(bytes, undefined, (err) => err && this.failOne(dumpReq.seq, err));
      }
    }
    while (this.outbox.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const barrier = this.nextSeq();
      const sent: Datagram = { seqs: [], spans: [] };
      const pieces: (Outgoing | Span)[] = [];
      const size = this.fillDatagram(pieces, sent);
      this.batches.set(barrier, sent);
      const datagram = Buffer.allocUnsafe(size);
      let off = 0;
      for (const piece of pieces) {
        if ('bulk' in piece) {
          const requests = piece.bulk.requests;
          for (let i = 0; i < piece.count; i++) {
            const r = requests[piece.first + i]!;
            off = writeFramed(datagram, off, piece.firstSeq + i, r.type, NLM_F_REQUEST | r.flags, r.body);
          }
        } else {
          off = writeFramed(datagram, off, piece.seq, piece.type, piece.flags, piece.body);
        }
      }
      writeFramed(datagram, off, barrier, NLMSG_NOOP, NLM_F_REQUEST | NLM_F_ACK, EMPTY);
      this.raw.ref();
      this.raw.send(datagram, undefined, (err) => {
        if (err) this.failBarrier(barrier, err);
      });
    }
  }

  /**
   * Takes from the outbox, in order, what fits in one datagram (at least one request) and in the
   * in-flight limit: mutate() requests whole, a mutateAll() call as a run of its requests with
   * consecutive sequence numbers. Records them in `sent`, appends them to `pieces` in order, and
   * returns the datagram's size with the barrier.
   */
  private fillDatagram(pieces: (Outgoing | Span)[], sent: Datagram): number {
    let size = HEADER;
    while (this.outbox.length > 0 && this.inFlight < MAX_IN_FLIGHT) {
      const item = this.outbox.peek()!;
      if (!('requests' in item)) {
        const length = framedLength(item.body);
        if (pieces.length > 0 && size + length > MAX_DATAGRAM) return size;
        this.outbox.shift();
        pieces.push(item);
        size += length;
        sent.seqs.push(item.seq);
        this.markSent(item.seq);
        continue;
      }
      const first = item.next;
      // The run ends before the sequence number would wrap to 0, which nextSeq() skips.
      const room = Math.min(MAX_IN_FLIGHT - this.inFlight, item.requests.length - first, 0xffffffff - this.seq);
      let count = 0;
      for (; count < room; count++) {
        const length = framedLength(item.requests[first + count]!.body);
        if ((pieces.length > 0 || count > 0) && size + length > MAX_DATAGRAM) break;
        size += length;
      }
      if (count === 0) return size;
      const span: Span = { bulk: item, first, count, firstSeq: this.seq + 1, failed: 0 };
      this.seq += count;
      item.next += count;
      this.inFlight += count;
      pieces.push(span);
      sent.spans.push(span);
      if (item.next === item.requests.length) this.outbox.shift();
      if (count < room || this.seq === 0xffffffff) return size;
    }
    return size;
  }

  private receive(buf: Buffer): void {
    for (let off = 0; off + HEADER <= buf.length; ) {
      const len = buf.readUInt32LE(off);
      if (len < HEADER || off + len > buf.length) break;
      const msg: RawMessage = {
        type: buf.readUInt16LE(off + 4),
        flags: buf.readUInt16LE(off + 6),
        seq: buf.readUInt32LE(off + 8),
        data: buf.subarray(off + HEADER, off + len),
      };
      this.handle(msg);
      off += (len + 3) & ~3;
    }
    if (this.pending.size === 0 && this.batches.size === 0) this.raw.unref();
    if (this.outbox.length > 0 || (!this.dumpRunning && this.dumpQueue.length > 0)) this.flush();
  }

  private handle(msg: RawMessage): void {
    if (msg.type === NLMSG_ERROR) {
      const errno = -msg.data.readInt32LE(0);
      if (errno === 0) this.resolveBarrier(msg.seq);
      const p = this.pending.get(msg.seq);
      if (!p) {
        if (errno !== 0) this.refusedInBulk(msg, errno);
        return;
      }
      this.settle(msg.seq, p);
      if (errno === 0) p.resolve(p.parts);
      else p.reject(new NetlinkError({ ...p.label, errno, extack: parseExtack(msg) }));
      return;
    }
    const p = this.pending.get(msg.seq);
    if (!p) return;
    if (p.expect === 'dump') {
      if (msg.type === NLMSG_DONE) {
        // A dump can end in an error (NLMSG_DONE carrying a negative int), e.g. EINTR on a
        // concurrent change: report it so the caller retries instead of trusting a partial list.
        const errno = msg.data.length >= 4 ? -msg.data.readInt32LE(0) : 0;
        this.settle(msg.seq, p);
        if (errno > 0) p.reject(new NetlinkError({ ...p.label, errno }));
        else p.resolve(p.parts);
      } else {
        p.parts.push({ ...msg, data: Buffer.from(msg.data) });
      }
      return;
    }
    if (p.expect === 'reply') {
      this.settle(msg.seq, p);
      p.resolve([{ ...msg, data: Buffer.from(msg.data) }]);
    }
  }

  private markSent(seq: number): void {
    const p = this.pending.get(seq);
    if (p && !p.sent) {
      p.sent = true;
      this.inFlight++;
    }
  }

  private settle(seq: number, p: Pending): void {
    this.pending.delete(seq);
    if (p.sent) this.inFlight--;
    if (p.expect === 'dump') {
      this.dumpRunning = false;
      if (this.dumpQueue.length > 0) this.scheduleFlush();
    }
  }

  /**
   * The kernel refused request `msg.seq` of a mutateAll() call: found among the runs in flight
   * (a few datagrams' worth; refusals are rare), its error is recorded by its index.
   */
  private refusedInBulk(msg: RawMessage, errno: number): void {
    for (const sent of this.batches.values()) {
      for (const span of sent.spans) {
        const offset = (msg.seq - span.firstSeq) >>> 0;
        if (offset >= span.count) continue;
        const index = span.first + offset;
        const refusal = new NetlinkError({ ...span.bulk.requests[index]!.label, errno, extack: parseExtack(msg) });
        if (failBulkRequest(span.bulk, index, refusal)) {
          span.failed++;
          this.inFlight--;
        }
        return;
      }
    }
  }

  /** The barrier's ACK: every request of its datagram that has no error yet has succeeded. */
  private resolveBarrier(barrier: number): void {
    const sent = this.batches.get(barrier);
    if (!sent) return;
    this.batches.delete(barrier);
    for (const seq of sent.seqs) {
      const p = this.pending.get(seq);
      if (p && p.expect === 'ack') {
        this.settle(seq, p);
        p.resolve(NO_PARTS);
      }
    }
    for (const span of sent.spans) {
      const succeeded = span.count - span.failed;
      this.inFlight -= succeeded;
      if (succeeded > 0) answered(span.bulk, succeeded);
    }
  }

  private failBarrier(barrier: number, err: Error): void {
    const sent = this.batches.get(barrier);
    if (!sent) return;
    this.batches.delete(barrier);
    for (const seq of sent.seqs) this.failOne(seq, err);
    for (const span of sent.spans) this.failSpan(span, err);
  }

  private failOne(seq: number, err: Error & { errno?: number }): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.settle(seq, p);
    p.reject(toNetlinkError(err, p.label));
  }

  /** Every request of `span` not answered yet fails with `err`. */
  private failSpan(span: Span, err: Error & { errno?: number }): void {
    this.inFlight -= span.count - span.failed;
    span.failed = span.count;
    for (let i = 0; i < span.count; i++) failBulkRequest(span.bulk, span.first + i, err);
  }

  /** Socket-level failure (ENOBUFS: replies were dropped): nothing in flight can be trusted. */
  private failAll(err: Error & { errno?: number }): void {
    for (const seq of [...this.pending.keys()]) this.failOne(seq, err);
    for (const sent of this.batches.values()) for (const span of sent.spans) this.failSpan(span, err);
    // The unsent rest of each mutateAll() call (its mutate() neighbours failed above, as pending).
    for (let item = this.outbox.shift(); item !== undefined; item = this.outbox.shift()) {
      if ('requests' in item) for (let i = item.next; i < item.requests.length; i++) failBulkRequest(item, i, err);
    }
    this.dumpQueue.clear();
    this.batches.clear();
    this.dumpRunning = false;
  }
}

function toNetlinkError(err: Error & { errno?: number }, label: RequestLabel): Error {
  if (err instanceof NetlinkError) return err;
  if (typeof err.errno === 'number') return new NetlinkError({ ...label, errno: Math.abs(err.errno) });
  return err;
}

/** Writes a message framed (struct nlmsghdr, then its body, zero-padded) at `buf[off..]`; returns the offset after it. */
function writeFramed(buf: Buffer, off: number, seq: number, type: number, flags: number, body: Buffer): number {
  const len = HEADER + body.length;
  buf.writeUInt32LE(len, off);
  buf.writeUInt16LE(type, off + 4);
  buf.writeUInt16LE(flags, off + 6);
  buf.writeUInt32LE(seq, off + 8);
  buf.writeUInt32LE(0, off + 12); // nlmsg_pid: the kernel fills in the sender
  body.copy(buf, off + HEADER);
  const end = (off + len + 3) & ~3;
  zeroPadding(buf, off + len, end);
  return end;
}

/** The kernel's human-readable reason in an NLMSG_ERROR (RFC 3549 framing, extack TLVs). */
function parseExtack(msg: RawMessage): string | undefined {
  if (!(msg.flags & NLM_F_ACK_TLVS)) return undefined;
  // struct nlmsgerr: int error; struct nlmsghdr msg; [payload unless NLM_F_CAPPED]; TLVs.
  const origLen = msg.data.readUInt32LE(4);
  let off = 4 + (msg.flags & NLM_F_CAPPED ? HEADER : (origLen + 3) & ~3);
  while (off + 4 <= msg.data.length) {
    const len = msg.data.readUInt16LE(off);
    const type = msg.data.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4) break;
    if (type === NLMSGERR_ATTR_MSG) {
      return msg.data.subarray(off + 4, off + len).toString('utf8').replace(/\0+$/, '');
    }
    off += (len + 3) & ~3;
  }
  return undefined;
}

/**
 * node-netlink does not expose the socket's descriptor, and NETLINK_EXT_ACK must be set on it.
 * The kernel lists every netlink socket of the current namespace with its port id and inode in
 * /proc/thread-self/net/netlink; our descriptor is the one whose /proc/self/fd link names that inode.
 */
export function findNetlinkSocketFd(port: number): number {
  const lines = readFileSync('/proc/thread-self/net/netlink', 'utf8').split('\n').slice(1);
  let inode: string | undefined;
  for (const line of lines) {
    const cols = line.trim().split(/\s+/);
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    if (cols.length >= 10 && cols[1] === String(NETLINK_ROUTE) && Number(cols[2]) === port) inode = cols[9];
  }
  if (inode === undefined) throw new Error(`netlink socket with port ${port} not found in /proc/thread-self/net/netlink`);
  const wanted = `socket:[${inode}]`;
  for (const entry of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${entry}`) === wanted) return Number(entry);
    } catch { /* descriptor closed meanwhile */ }
  }
  throw new Error(`descriptor of netlink socket ${wanted} not found`);
}
