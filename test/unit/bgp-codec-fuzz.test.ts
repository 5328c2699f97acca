/**
 * Property/fuzz suite for the BGP codec. A seeded PRNG (no dependencies) drives random messages
 * behind a valid header, random attribute lists, and mutations of valid messages (bit flips,
 * truncation, length-field and attribute-length corruption, splices). Properties:
 *  - decodeMessage and MessageReader throw nothing but BgpMessageError, with a code in 1..6 and an action;
 *  - every decoded message re-encodes, and the re-encoding decodes to the same value with no warnings.
 * BGP_FUZZ_CASES sets the total number of cases (default 100,000), BGP_FUZZ_SEED the seed.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import type { Message } from '../../src/bgp/types.js';
import {
  BgpMessageError, MessageReader, decodeMessage, encodeAnnouncements, encodeEndOfRib, encodeKeepalive, encodeNotification, encodeOpen,
  encodeRouteRefresh, encodeUpdate, encodeWithdrawals, type CodecOptions,
} from '../../src/bgp/wire/index.js';
import { AS2, AS4, hex, rawUpdate } from './bgp-codec-helpers.js';
import { prng, type Rng } from './bgp-prng.js';

const TOTAL = Number(process.env.BGP_FUZZ_CASES ?? 100_000);
const SEED = Number(process.env.BGP_FUZZ_SEED ?? 0x7411);
const ACTIONS = new Set(['session-reset', 'treat-as-withdraw', 'attribute-discard', 'afi-safi-disable']);

function withHeader(type: number, body: Buffer, length = 19 + body.length): Buffer {
  const out = Buffer.concat([Buffer.alloc(16, 0xff), Buffer.from([length >> 8, length & 0xff, type]), body]);
  return out;
}

/** Valid messages of every type, the seeds for mutation. */
function corpus(): { msg: Buffer; opts: CodecOptions }[] {
  const attrs = {
    origin: 1 as const, asPath: [{ type: 'confed-sequence' as const, asns: [64512] }, { type: 'sequence' as const, asns: [65001, 4200000000] }, { type: 'set' as const, asns: [7, 8] }],
    med: 5, localPref: 100, atomicAggregate: true, aggregator: { asn: 4200000001, address: '10.0.0.9' }, communities: [1, 2],
    largeCommunities: [[1, 2, 3]] as [number, number, number][], originatorId: '10.0.0.1', clusterList: ['10.0.0.2'],
    unknown: [{ flags: 0xc0, type: 16, value: hex('0002fde800000001') }],
  };
  const v4 = ['10.0.0.0/8', '10.244.1.0/24', '192.0.2.1/32', '0.0.0.0/0', '172.16.0.0/12'];
  const v6 = ['fd00:10:244:1::/64', '2001:db8::/32', '::/0', 'fd00::1/128'];
  const out: { msg: Buffer; opts: CodecOptions }[] = [];
  for (const opts of [AS2, AS4]) {
    out.push({ msg: encodeAnnouncements('ipv4-unicast', attrs, ['198.18.0.1'], v4, opts)[0]!, opts });
    out.push({ msg: encodeAnnouncements('ipv6-unicast', attrs, ['2001:db8::1', 'fe80::1'], v6, opts)[0]!, opts });
    out.push({ msg: encodeUpdate({ withdrawn: v4.slice(0, 2), nlri: v4.slice(2), attributes: { ...attrs, nextHop: '198.18.0.2' }, mpUnreach: { family: 'ipv6-unicast', withdrawn: v6 } }, opts), opts });
  }
  out.push({ msg: encodeWithdrawals('ipv4-unicast', v4)[0]!, opts: AS4 }, { msg: encodeWithdrawals('ipv6-unicast', v6)[0]!, opts: AS4 });
  out.push({ msg: encodeEndOfRib('ipv4-unicast'), opts: AS4 }, { msg: encodeEndOfRib('ipv6-unicast'), opts: AS4 });
  // AS_PATH [65001, 23456] plus AS4_PATH and AS4_AGGREGATOR, as a 2-octet speaker relays them.
  out.push({ msg: rawUpdate('', `40010100 400206 0202fde95ba0 400304c0000201
    c00706 5ba0 0a000001 c0110a 0202 0000fde9 fa56ea00 c01208 fa56ea00 0a000001`, '080a'), opts: AS2 });
  out.push({ msg: encodeOpen({
    version: 4, myAsn: 23456, holdTime: 90, routerId: '10.0.0.1',
    capabilities: {
      multiprotocol: ['ipv4-unicast', 'ipv6-unicast'], fourOctetAsn: 4200000000, routeRefresh: true, enhancedRouteRefresh: true,
      gracefulRestart: { restarting: true, restartTime: 120, families: [{ family: 'ipv4-unicast', forwardingPreserved: true }] },
      unknown: [{ code: 71, value: hex('0001010000000a') }, { code: 73, value: hex('046e6f646500') }],
    },
  }), opts: AS4 });
  out.push({ msg: encodeKeepalive(), opts: AS4 }, { msg: encodeRouteRefresh('ipv6-unicast', 1), opts: AS4 });
  out.push({ msg: encodeNotification(6, 2, { shutdownText: 'maintenance ✓' }), opts: AS4 }, { msg: encodeNotification(3, 1), opts: AS4 });
  return out;
}

/** Random messages behind a valid header, mostly of known types and modest length. */
function randomMessage(r: Rng): Buffer {
  const type = r.next() < 0.9 ? 1 + r.int(5) : r.int(256);
  const len = r.next() < 0.95 ? r.int(120) : r.int(4096 - 19);
  return withHeader(type, r.bytes(len));
}

const ATTR_TYPES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 99, 200];
const GOOD_FLAGS: Record<number, number> = { 1: 0x40, 2: 0x40, 3: 0x40, 4: 0x80, 5: 0x40, 6: 0x40, 7: 0xc0, 8: 0xc0, 9: 0x80, 10: 0x80, 14: 0x80, 15: 0x80, 17: 0xc0, 18: 0xc0, 32: 0xc0 };

function randomPrefixes(r: Rng, v6: boolean, count: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const max = v6 ? 128 : 32;
    const len = r.next() < 0.97 ? r.int(max + 1) : r.int(256);
    parts.push(Buffer.concat([Buffer.from([len]), r.bytes(Math.min((len + 7) >> 3, 16))]));
  }
  return Buffer.concat(parts);
}

/** A plausible value for an attribute type, valid more often than not. */
function attrValue(r: Rng, type: number, four: boolean): Buffer {
  if (r.next() < 0.15) return r.bytes(r.int(12));
  const asn = (): Buffer => (four ? r.bytes(4) : r.bytes(2));
  const path = (asnBytes: () => Buffer): Buffer => {
    const segs: Buffer[] = [];
    for (let s = r.int(3); s > 0; s--) {
      const n = 1 + r.int(4);
      segs.push(Buffer.from([1 + r.int(4), n]), ...Array.from({ length: n }, asnBytes));
    }
    return Buffer.concat(segs);
  };
  switch (type) {
    case 1: return Buffer.from([r.int(3)]);
    case 2: return path(asn);
    case 3: case 4: case 5: case 9: return r.bytes(4);
    case 6: return Buffer.alloc(0);
    case 7: return Buffer.concat([asn(), r.bytes(4)]);
    case 8: case 10: return r.bytes(4 * (1 + r.int(3)));
    case 14: {
      const v6 = r.next() < 0.5;
      const nh = v6 ? r.bytes(r.next() < 0.5 ? 16 : 32) : r.bytes(4);
      return Buffer.concat([Buffer.from([0, v6 ? 2 : 1, 1, nh.length]), nh, Buffer.from([0]), randomPrefixes(r, v6, r.int(4))]);
    }
    case 15: {
      const v6 = r.next() < 0.5;
      return Buffer.concat([Buffer.from([0, v6 ? 2 : 1, 1]), randomPrefixes(r, v6, r.int(4))]);
    }
    case 17: return path(() => r.bytes(4));
    case 18: return r.bytes(8);
    case 32: return r.bytes(12 * (1 + r.int(2)));
    default: return r.bytes(r.int(10));
  }
}

/** An UPDATE assembled from random attributes: reaches the attribute decoders far more often than random bytes. */
function randomUpdate(r: Rng, four: boolean): Buffer {
  const withdrawn = randomPrefixes(r, false, r.int(3));
  const attrs: Buffer[] = [];
  for (let n = r.int(9); n > 0; n--) {
    const type = r.pick(ATTR_TYPES);
    const value = attrValue(r, type, four);
    let flags = r.next() < 0.9 ? (GOOD_FLAGS[type] ?? (r.next() < 0.8 ? 0xc0 : 0x40)) : r.int(256) & 0xe0;
    if (value.length > 255 || r.next() < 0.1) flags |= 0x10;
    const head = flags & 0x10 ? Buffer.from([flags, type, value.length >> 8, value.length & 0xff]) : Buffer.from([flags, type, value.length]);
    attrs.push(head, value);
  }
  const a = Buffer.concat(attrs);
  const nlri = randomPrefixes(r, false, r.int(4));
  const body = Buffer.concat([Buffer.from([withdrawn.length >> 8, withdrawn.length & 0xff]), withdrawn, Buffer.from([a.length >> 8, a.length & 0xff]), a, nlri]);
  return withHeader(2, body);
}

/** A mutation of a valid message. */
function mutate(r: Rng, seed: Buffer): Buffer {
  const m = Buffer.from(seed);
  const fixLength = (b: Buffer): Buffer => {
    if (b.length >= 19 && r.next() < 0.8) b.writeUInt16BE(Math.min(b.length, 0xffff), 16);
    return b;
  };
  switch (r.int(6)) {
    case 0: // bit flips, past the marker most of the time
      for (let n = 1 + r.int(4); n > 0; n--) {
        const at = r.next() < 0.9 ? 16 + r.int(m.length - 16) : r.int(m.length);
        m[at]! ^= 1 << r.int(8);
      }
      return m;
    case 1: // truncation
      return fixLength(m.subarray(0, r.int(m.length + 1)));
    case 2: { // a length field: header, withdrawn, total attributes, or the first attribute's
      const at = r.pick([16, 19, 21, 23 + (m.length > 22 ? m.readUInt16BE(19) : 0) + 2]);
      if (at + 1 < m.length) m.writeUInt16BE(r.next() < 0.5 ? r.int(65536) : Math.max(0, m.readUInt16BE(at) + r.int(9) - 4), at);
      return m;
    }
    case 3: { // attribute-length corruption: walk the attributes and nudge one length octet
      const lengths = attributeLengthOffsets(m);
      if (lengths.length > 0) m[r.pick(lengths)] = r.next() < 0.5 ? r.int(256) : m[r.pick(lengths)]! + r.int(5) - 2;
      return m;
    }
    case 4: { // insert or delete bytes in the body
      const at = 19 + r.int(Math.max(1, m.length - 19));
      const out = r.next() < 0.5 ? Buffer.concat([m.subarray(0, at), r.bytes(1 + r.int(8)), m.subarray(at)]) : Buffer.concat([m.subarray(0, at), m.subarray(at + 1 + r.int(8))]);
      return fixLength(out);
    }
    default: // interesting values at random places
      for (let n = 1 + r.int(3); n > 0; n--) m[19 + r.int(Math.max(1, m.length - 19))] = r.pick([0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x21, 0x40]);
      return m.subarray(0, Math.min(m.length, seed.length));
  }
}

/** Offsets of the length octets of an UPDATE's attributes (best effort on odd input). */
function attributeLengthOffsets(m: Buffer): number[] {
  if (m.length < 23 || m[18] !== 2) return [];
  let p = 21 + m.readUInt16BE(19);
  if (p + 2 > m.length) return [];
  const end = Math.min(m.length, p + 2 + m.readUInt16BE(p));
  p += 2;
  const out: number[] = [];
  while (p + 3 <= end) {
    const ext = (m[p]! & 0x10) !== 0;
    out.push(p + 2);
    if (ext) out.push(p + 3);
    p += (ext ? 4 : 3) + (ext ? (p + 3 < m.length ? m.readUInt16BE(p + 2) : 0) : m[p + 2]!);
  }
  return out;
}

function reencode(m: Message, opts: CodecOptions): Buffer | undefined {
  switch (m.type) {
    case 1: return encodeOpen(m);
    case 2:
      try {
        return encodeUpdate(m, opts);
      } catch (err) {
        // Merging AS4_PATH (RFC 6793) can make a near-4096 2-octet UPDATE longer to re-send.
        if (err instanceof InvalidArgumentError && /more than 4096/.test(err.message)) return undefined;
        throw err;
      }
    case 3: return encodeNotification(m.code, m.subcode, m.data);
    case 4: return encodeKeepalive();
    case 5: return encodeRouteRefresh(m.family, m.subtype);
  }
}

interface Stats { cases: number; decoded: number; errors: number; warned: number; tooBig: number; failures: string[] }

/** Runs one case: decode, check the error contract or the round trip. */
function check(input: Buffer, opts: CodecOptions, stats: Stats, label: string): void {
  stats.cases++;
  let decoded;
  try {
    decoded = decodeMessage(input, opts);
  } catch (err) {
    stats.errors++;
    if (!(err instanceof BgpMessageError) || err.notificationCode < 1 || err.notificationCode > 6 || !ACTIONS.has(err.action)) {
      stats.failures.push(`${label}: threw ${String(err)} for ${input.toString('hex')}`);
    }
    return;
  }
  stats.decoded++;
  if (decoded.warnings.length > 0) stats.warned++;
  try {
    const again = reencode(decoded.message, opts);
    if (again === undefined) {
      stats.tooBig++;
      return;
    }
    const back = decodeMessage(again, opts);
    if (back.warnings.length > 0 || !isDeepStrictEqual(back.message, decoded.message)) {
      stats.failures.push(`${label}: round trip differs for ${input.toString('hex')} (re-encoded ${again.toString('hex')})`);
    }
  } catch (err) {
    stats.failures.push(`${label}: round trip threw ${String(err)} for ${input.toString('hex')}`);
  }
}

function newStats(): Stats {
  return { cases: 0, decoded: 0, errors: 0, warned: 0, tooBig: 0, failures: [] };
}

function report(stats: Stats): void {
  if (process.env.BGP_FUZZ_VERBOSE) console.log(JSON.stringify({ ...stats, failures: stats.failures.length }));
  expect(stats.failures.slice(0, 5)).toEqual([]);
  expect(stats.cases).toBeGreaterThan(0);
}

describe(`BGP codec fuzz (${TOTAL} cases, seed ${SEED})`, () => {
  const seeds = corpus();

  it('random bodies behind valid headers', { timeout: 120_000 }, () => {
    const r = prng(SEED);
    const stats = newStats();
    for (let i = 0; i < TOTAL * 0.3; i++) check(randomMessage(r), r.next() < 0.5 ? AS2 : AS4, stats, `random#${i}`);
    report(stats);
  });

  it('random attribute lists in otherwise well-formed UPDATEs', { timeout: 120_000 }, () => {
    const r = prng(SEED + 1);
    const stats = newStats();
    for (let i = 0; i < TOTAL * 0.3; i++) {
      const four = r.next() < 0.5;
      check(randomUpdate(r, four), four ? AS4 : AS2, stats, `update#${i}`);
    }
    report(stats);
    expect(stats.decoded).toBeGreaterThan(TOTAL * 0.3 * 0.1); // the generator reaches past the framing checks
    expect(stats.warned).toBeGreaterThan(0);
  });

  it('mutated valid messages (bit flips, truncation, length fields, attribute lengths, splices)', { timeout: 120_000 }, () => {
    const r = prng(SEED + 2);
    const stats = newStats();
    for (const s of seeds) check(s.msg, s.opts, stats, 'seed');
    expect(stats.errors).toBe(0);
    for (let i = 0; i < TOTAL * 0.38; i++) {
      const s = r.pick(seeds);
      const input = r.next() < 0.05 ? Buffer.concat([s.msg.subarray(0, r.int(s.msg.length)), r.pick(seeds).msg.subarray(19)]) : mutate(r, s.msg);
      check(input, r.next() < 0.8 ? s.opts : r.pick([AS2, AS4]), stats, `mutant#${i}`);
    }
    report(stats);
  });

  it('MessageReader on random chunkings of valid and corrupted streams', { timeout: 120_000 }, () => {
    const r = prng(SEED + 3);
    const failures: string[] = [];
    for (let i = 0; i < TOTAL * 0.02; i++) {
      const parts = Array.from({ length: 1 + r.int(6) }, () => (r.next() < 0.8 ? r.pick(seeds).msg : mutate(r, r.pick(seeds).msg)));
      const stream = Buffer.concat(parts);
      const reader = new MessageReader();
      let off = 0;
      try {
        while (off < stream.length) {
          const n = 1 + r.int(r.next() < 0.5 ? 64 : 5000);
          for (const m of reader.push(stream.subarray(off, off + n))) {
            if (m.readUInt16BE(16) !== m.length) failures.push(`reader returned a message of ${m.length} octets whose header says ${m.readUInt16BE(16)}`);
          }
          off += n;
        }
      } catch (err) {
        if (!(err instanceof BgpMessageError) || err.notificationCode !== 1) failures.push(`reader threw ${String(err)} on ${stream.toString('hex')}`);
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });
});
