/**
 * A Connection reports a run of UPDATEs that only add prefixes under the same attribute octets as
 * one UPDATE (wire/update-join.ts). What a session makes of the joined messages must be what it
 * makes of them one by one: checked here on chosen cases and on random streams, against each
 * message decoded on its own.
 */
import { describe, expect, it } from 'vitest';
import { Connection } from '../../src/bgp/session/connection.js';
import { standInSocket } from '../helpers/bgp-stand-in-socket.js';
import { MessageType, type PathAttributes } from '../../src/bgp/types.js';
import { BgpMessageError, decodeReceived, encodeKeepalive, encodeUpdate, toUpdateMessage, type ReceivedMessage } from '../../src/bgp/wire/index.js';
import type { UpdateMessage } from '../../src/bgp/types.js';

const OPTS = { fourOctetAsn: true };
const A: PathAttributes = { origin: 0, asPath: [{ type: 'sequence', asns: [65000] }], nextHop: '198.18.64.1' };
const B: PathAttributes = { origin: 0, asPath: [{ type: 'sequence', asns: [65000, 65001] }], nextHop: '198.18.64.2' };

interface Reported {
  readonly messages: { message: ReceivedMessage; warnings: readonly BgpMessageError[] }[];
  readonly errors: BgpMessageError[];
}

/** A Connection over a stand-in socket: each chunk given is one read. */
function connectionReading(chunks: Buffer[]): Reported {
  const socket = standInSocket();
  const conn = new Connection(socket.socket, false);
  conn.setCodecOptions(OPTS);
  const reported: Reported = { messages: [], errors: [] };
  conn.on('message', (message, warnings) => reported.messages.push({ message, warnings }));
  conn.on('protocol-error', (err) => reported.errors.push(err));
  for (const chunk of chunks) socket.emit('data', chunk);
  return reported;
}

const update = (u: Partial<Omit<UpdateMessage, 'type'>>): Buffer => encodeUpdate({ withdrawn: [], nlri: [], ...u }, OPTS);

/** The UPDATEs reported, as text. */
function updates(r: Reported): Omit<UpdateMessage, 'type'>[] {
  return r.messages.filter((m) => m.message.type === MessageType.UPDATE).map((m) => {
    const { type: _type, ...rest } = toUpdateMessage((m.message as { update: Parameters<typeof toUpdateMessage>[0] }).update);
    return rest;
  });
}

describe('Connection: UPDATEs joined within one read', () => {
  it('reports a run of single-prefix UPDATEs under one path as one UPDATE, in order', () => {
    const r = connectionReading([Buffer.concat([
      update({ withdrawn: ['10.9.0.0/24'], attributes: A, nlri: ['10.1.0.0/24'] }),
      update({ attributes: A, nlri: ['10.2.0.0/24'] }),
      update({ attributes: A, nlri: ['10.3.0.0/24', '10.1.0.0/24'] }),
    ])]);
    expect(updates(r)).toEqual([{ withdrawn: ['10.9.0.0/24'], attributes: A, nlri: ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/24', '10.1.0.0/24'] }]);
  });

  it('ends a run at other attributes, a withdrawal, MP_REACH, a KEEPALIVE or the end of the read', () => {
    const r = connectionReading([
      Buffer.concat([
        update({ attributes: A, nlri: ['10.1.0.0/24'] }),
        update({ attributes: B, nlri: ['10.2.0.0/24'] }),
        update({ attributes: B, nlri: ['10.3.0.0/24'] }),
        update({ withdrawn: ['10.1.0.0/24'], attributes: B, nlri: ['10.4.0.0/24'] }),
        update({ withdrawn: ['10.2.0.0/24'] }),
        update({ attributes: B, nlri: ['10.5.0.0/24'], mpReach: { family: 'ipv6-unicast', nextHops: ['fd00::1'], nlri: ['fd00:1::/64'] } }),
        update({ attributes: B, nlri: ['10.6.0.0/24'] }),
        encodeKeepalive(),
        update({ attributes: B, nlri: ['10.7.0.0/24'] }),
      ]),
      update({ attributes: B, nlri: ['10.8.0.0/24'] }),
    ]);
    expect(updates(r).map((u) => [u.withdrawn, u.nlri])).toEqual([
      [[], ['10.1.0.0/24']],
      [[], ['10.2.0.0/24', '10.3.0.0/24']],
      [['10.1.0.0/24'], ['10.4.0.0/24']],
      [['10.2.0.0/24'], []],
      [[], ['10.5.0.0/24']],
      [[], ['10.6.0.0/24']],
      [[], ['10.7.0.0/24']],
      [[], ['10.8.0.0/24']],
    ]);
    expect(r.messages.map((m) => m.message.type)).toEqual([2, 2, 2, 2, 2, 2, 4, 2, 2]);
  });

  it('reports the run before a malformed UPDATE that would have joined it, then the error', () => {
    const bad = update({ attributes: A, nlri: ['10.2.0.0/24'] });
    bad[bad.length - 4] = 33; // the prefix length octet: /33 is not IPv4
    const r = connectionReading([Buffer.concat([update({ attributes: A, nlri: ['10.1.0.0/24'] }), bad, update({ attributes: A, nlri: ['10.3.0.0/24'] })])]);
    expect(updates(r)).toEqual([{ withdrawn: [], attributes: A, nlri: ['10.1.0.0/24'] }]);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.message).toMatch(/prefix length 33/);
  });

  it('adds nothing of a malformed UPDATE to the run, not even the prefixes before its bad one', () => {
    const bad = update({ attributes: A, nlri: ['10.2.0.0/24', '10.4.0.0/24'] });
    bad[bad.length - 4] = 33; // the second prefix's length octet
    const r = connectionReading([Buffer.concat([update({ attributes: A, nlri: ['10.1.0.0/24'] }), bad])]);
    expect(updates(r)).toEqual([{ withdrawn: [], attributes: A, nlri: ['10.1.0.0/24'] }]);
    expect(r.errors[0]!.message).toMatch(/prefix length 33/);
  });

  it('leaves every random stream of UPDATEs with the routes its messages give one by one', () => {
    let seed = 11;
    // The high bits of the LCG: its low bits repeat with a short period.
    const next = (n: number): number => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 65536) % n;
    const prefixes = Array.from({ length: 12 }, (_, i) => `10.${i}.0.0/24`);
    const pick = (): string[] => Array.from({ length: next(3) }, () => prefixes[next(prefixes.length)]!);
    /** Adj-RIB-In after each UPDATE in order: withdrawals, then announcements under its attributes. */
    const apply = (rib: Map<string, string>, u: Omit<UpdateMessage, 'type'>): void => {
      for (const p of u.withdrawn) rib.delete(p);
      for (const p of u.nlri) rib.set(p, JSON.stringify(u.attributes));
    };
    let joined = 0;
    for (let round = 0; round < 300; round++) {
      const sent = Array.from({ length: 1 + next(12) }, () => {
        const nlri = next(4) === 0 ? [] : [prefixes[next(prefixes.length)]!, ...pick()];
        return update({ withdrawn: next(3) === 0 ? pick() : [], ...(nlri.length > 0 && { attributes: next(2) === 0 ? A : B }), nlri });
      });
      const reported = connectionReading([Buffer.concat(sent)]);
      const viaJoined = new Map<string, string>();
      for (const u of updates(reported)) apply(viaJoined, u);
      const oneByOne = new Map<string, string>();
      for (const msg of sent) {
        const { message } = decodeReceived(msg, OPTS);
        if (message.type === MessageType.UPDATE) {
          const { type: _type, ...u } = toUpdateMessage(message.update);
          apply(oneByOne, u);
        }
      }
      expect([...viaJoined].sort(), `round ${round}`).toEqual([...oneByOne].sort());
      joined += sent.length - reported.messages.length;
    }
    expect(joined).toBeGreaterThan(100); // the streams did exercise joining
  });
});
