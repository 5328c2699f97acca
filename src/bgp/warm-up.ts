import type { LocalAdvertisement } from './rib/rib.js';
import { parsePrefixRange } from './policy/prefix-set.js';
import { formatIpv4Prefix } from './prefix/prefix-text.js';
import { dialMemoryListener, memoryListener } from './session/memory-socket.js';
import type { BgpListener, BgpTransport } from './session/transport.js';
import { Speaker } from './speaker.js';

// A fresh process runs the speaker's per-prefix code (UPDATE decoding, import policy, Adj-RIB-In,
// best path, Adj-RIB-Out, UPDATE encoding) in V8's interpreter until each function has run often
// enough to be compiled. So the first full table a started or restarted speaker takes in used to
// cost about twice what later ones do: 100,000 prefixes from BIRD took 58 ms against 28 once warm
// (docs/benchmarks.md, bgp). And a restart is when a host most needs its routes back fast.
//
// warmUpSpeaker() runs a synthetic table between two throwaway speakers joined in memory, before
// the real speaker starts: the same code, the same object shapes, so V8 has compiled the hot
// paths by the time a peer sends. Nothing of it leaves the function: no socket, no port, no
// kernel state, no events of the caller's speaker; both speakers are closed when it returns.

/** How many prefixes the synthetic table holds unless told otherwise. */
export const DEFAULT_WARM_UP_PREFIXES = 20_000;
/** The most the synthetic table can hold: every /32 of its range. */
export const MAX_WARM_UP_PREFIXES = 2 ** 22;
const DEFAULT_TIMEOUT_MS = 3_000;

// RFC 5737 TEST-NET-1 addresses and private ASNs: the two speakers meet only in memory.
const RECEIVER = { address: '192.0.2.1', port: 179, asn: 64512 };
const SENDER = { address: '192.0.2.2', asn: 64513 };
/** The table: /32s of 100.64.0.0/10 (RFC 6598), which holds 4 Mi of them. */
const TABLE_RANGE = '100.64.0.0/10';
const TABLE_BASE = 0x64400000;

export interface WarmUpOptions {
  /** Prefixes in the synthetic table (at most MAX_WARM_UP_PREFIXES). */
  readonly prefixes?: number | undefined;
  /** The warm-up ends by then even if the table is not all in (it then only warmed less). */
  readonly timeoutMs?: number | undefined;
}

export interface WarmUpResult {
  readonly prefixes: number;
  /** How many of them the receiving speaker took in before the end. */
  readonly received: number;
  readonly ms: number;
}

/** Runs the synthetic table through two throwaway speakers; see the file comment. */
export async function warmUpSpeaker(opts: WarmUpOptions = {}): Promise<WarmUpResult> {
  const prefixes = opts.prefixes ?? DEFAULT_WARM_UP_PREFIXES;
  if (!Number.isInteger(prefixes) || prefixes < 1 || prefixes > MAX_WARM_UP_PREFIXES) throw new RangeError(`warm-up prefixes ${prefixes}: between 1 and ${MAX_WARM_UP_PREFIXES}`);
  const started = performance.now();
  const transport = memoryTransport();
  const speakers: Speaker[] = [];
  try {
    const receiver = await Speaker.start({
      local: { asn: RECEIVER.asn, routerId: RECEIVER.address },
      listen: [{ host: RECEIVER.address, port: RECEIVER.port }],
      transport,
      import: { accept: [parsePrefixRange(`${TABLE_RANGE},le=32`)], maxPrefixes: prefixes },
    });
    speakers.push(receiver);
    const sender = await Speaker.start({ local: { asn: SENDER.asn, routerId: SENDER.address }, transport });
    speakers.push(sender);
    sender.set(table(prefixes));
    const received = receivedCount(receiver, prefixes, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    receiver.addPeer({ address: SENDER.address, asn: SENDER.asn, passive: true });
    sender.addPeer({ address: RECEIVER.address, port: RECEIVER.port, asn: RECEIVER.asn, localAddress: SENDER.address });
    return { prefixes, received: await received, ms: performance.now() - started };
  } finally {
    await Promise.all(speakers.map((s) => s.close('warm-up over')));
  }
}

function table(count: number): LocalAdvertisement[] {
  const out: LocalAdvertisement[] = [];
  for (let i = 0; i < count; i++) out.push({ prefix: formatIpv4Prefix(TABLE_BASE + i, 32), nextHop: SENDER.address });
  return out;
}

/** Resolves with the receiver's IPv4 count once it holds `count`, or at the timeout with what it has. */
function receivedCount(receiver: Speaker, count: number, timeoutMs: number): Promise<number> {
  const have = (): number => {
    const received = receiver.stats().peers[0]?.received;
    return typeof received === 'object' ? received['ipv4-unicast'] : (received ?? 0);
  };
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      receiver.off('routes', check);
      resolve(have());
    };
    const check = (): void => {
      if (have() >= count) done();
    };
    const timer = setTimeout(done, timeoutMs);
    receiver.on('routes', check);
  });
}

/** Listeners and connections in memory: a connect reaches the listener on its host and port at once. */
function memoryTransport(): BgpTransport {
  const listeners = new Map<string, BgpListener>();
  let nextPort = 40_000;
  return {
    listen(opts) {
      const key = `${opts.host}:${opts.port}`;
      const listener = memoryListener(opts.host, opts.port, () => listeners.delete(key));
      listeners.set(key, listener);
      return Promise.resolve(listener);
    },
    connect(opts) {
      const listener = listeners.get(`${opts.host}:${opts.port}`);
      if (listener === undefined) return Promise.reject(new Error(`connect ECONNREFUSED ${opts.host}:${opts.port}`));
      return Promise.resolve(dialMemoryListener(listener.server, { address: opts.localAddress ?? SENDER.address, port: nextPort++ }, { address: opts.host, port: opts.port }));
    },
  };
}
