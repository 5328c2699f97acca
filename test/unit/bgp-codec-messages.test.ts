/**
 * BGP codec: OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH, framing, and the captured-style hex
 * vectors (an OPEN as BIRD 2 sends it, a NOTIFICATION with an RFC 9003 shutdown communication).
 */
import { describe, expect, it } from 'vitest';
import type { OpenMessage } from '../../src/bgp/types.js';
import {
  BgpMessageError, MessageReader, decodeMessage, encodeKeepalive, encodeNotification, encodeOpen, encodeRouteRefresh, encodeEndOfRib,
} from '../../src/bgp/wire/index.js';
import { AS4, hex } from './bgp-codec-helpers.js';

/**
 * An OPEN laid out as BIRD 2.0.12 sends it (bgp.md: MP, RR, GR, AS4, enhanced RR, LLGR), all
 * capabilities in one optional parameter (RFC 5492 §4). AS 65000, hold 240 s, router id 10.0.0.2.
 */
const BIRD_OPEN = hex(`
  ffffffffffffffffffffffffffffffff 0040 01
  04 | fde8 | 00f0 | 0a000002 | 23
  02 21
    01 04 0001 00 01
    02 00
    40 06 0078 0001 01 00
    41 04 0000fde8
    46 00
    47 07 0001 01 00 000000
`);

describe('OPEN', () => {
  it('decodes the BIRD 2 OPEN vector field by field, keeping LLGR as unknown', () => {
    const { message, warnings } = decodeMessage(BIRD_OPEN, AS4);
    expect(warnings).toEqual([]);
    expect(message).toEqual({
      type: 1, version: 4, myAsn: 65000, holdTime: 240, routerId: '10.0.0.2',
      capabilities: {
        multiprotocol: ['ipv4-unicast'], routeRefresh: true, enhancedRouteRefresh: true, fourOctetAsn: 65000,
        gracefulRestart: { restarting: false, restartTime: 120, families: [{ family: 'ipv4-unicast', forwardingPreserved: false }] },
        unknown: [{ code: 71, value: hex('0001 01 00 000000') }],
      },
    });
  });

  it('re-encodes the BIRD OPEN to the same bytes (caps packed in one parameter, code order)', () => {
    const open = decodeMessage(BIRD_OPEN, AS4).message as OpenMessage;
    expect(encodeOpen(open).toString('hex')).toBe(BIRD_OPEN.toString('hex'));
  });

  it('round-trips a dual-stack OPEN with AS_TRANS, GR with the R and F bits and several unknown caps', () => {
    const open: Omit<OpenMessage, 'type'> = {
      version: 4, myAsn: 23456, holdTime: 90, routerId: '198.18.0.1',
      capabilities: {
        multiprotocol: ['ipv4-unicast', 'ipv6-unicast'], fourOctetAsn: 4200000001, routeRefresh: true, enhancedRouteRefresh: false,
        gracefulRestart: { restarting: true, restartTime: 4095, families: [{ family: 'ipv6-unicast', forwardingPreserved: true }] },
        unknown: [{ code: 5, value: hex('0001 0001 0002') }, { code: 73, value: Buffer.from('\u0005node1\u0000') }],
      },
    };
    expect(decodeMessage(encodeOpen(open), AS4).message).toEqual({ type: 1, ...open });
  });

  it('uses the RFC 9072 extended parameter length when capabilities exceed 255 octets', () => {
    const unknown = [200, 201].map((code) => ({ code, value: Buffer.alloc(200, code) }));
    const open: Omit<OpenMessage, 'type'> = {
      version: 4, myAsn: 65000, holdTime: 0, routerId: '10.0.0.1',
      capabilities: { multiprotocol: [], routeRefresh: false, enhancedRouteRefresh: false, unknown },
    };
    const wire = encodeOpen(open);
    expect(wire[28]).toBe(255);
    expect(wire[29]).toBe(255);
    expect(decodeMessage(wire, AS4).message).toEqual({ type: 1, ...open });
  });

  it('keeps malformed known capabilities and MP for unknown families as unknown, never an error', () => {
    const m = hex(`ffffffffffffffffffffffffffffffff 0035 01 04 fde8 00b4 0a000001 18
      02 16 | 01 04 0019 00 46 | 01 03 000100 | 02 01 00 | 41 02 0000 | 40 03 00 00 00`);
    m.writeUInt16BE(m.length, 16);
    m[28] = m.length - 29;
    m[30] = m.length - 31;
    const open = decodeMessage(m, AS4).message as OpenMessage;
    expect(open.capabilities).toEqual({
      multiprotocol: [], routeRefresh: false, enhancedRouteRefresh: false,
      unknown: [
        { code: 1, value: hex('0019 00 46') }, { code: 1, value: hex('000100') }, { code: 2, value: hex('00') },
        { code: 65, value: hex('0000') }, { code: 64, value: hex('000000') },
      ],
    });
  });
});

describe('KEEPALIVE and ROUTE-REFRESH', () => {
  it('round-trips a KEEPALIVE (a bare 19-octet header)', () => {
    const k = encodeKeepalive();
    expect(k.toString('hex')).toBe(`${'ff'.repeat(16)}001304`);
    expect(decodeMessage(k, AS4).message).toEqual({ type: 4 });
  });

  it('round-trips ROUTE-REFRESH for both families and the RFC 7313 subtypes', () => {
    expect(encodeRouteRefresh('ipv6-unicast').subarray(19).toString('hex')).toBe('00020001');
    for (const family of ['ipv4-unicast', 'ipv6-unicast'] as const) {
      for (const subtype of [0, 1, 2]) {
        expect(decodeMessage(encodeRouteRefresh(family, subtype), AS4).message).toEqual({ type: 5, family, subtype });
      }
    }
  });

  it('reports a ROUTE-REFRESH for an AFI/SAFI it cannot name as afi-safi-disable, to be ignored (RFC 2918 §4)', () => {
    const m = encodeRouteRefresh('ipv4-unicast');
    m[22] = 128; // SAFI 128 (L3VPN)
    expect(() => decodeMessage(m, AS4)).toThrow(expect.objectContaining({ action: 'afi-safi-disable', notificationCode: 1 }));
  });
});

describe('NOTIFICATION', () => {
  const VECTOR = hex(`ffffffffffffffffffffffffffffffff 0021 03 06 02 0b 6d61696e74656e616e6365`);

  it('decodes a Cease/2 vector with its RFC 9003 shutdown communication', () => {
    expect(decodeMessage(VECTOR, AS4).message).toEqual({ type: 3, code: 6, subcode: 2, data: hex('0b6d61696e74656e616e6365'), shutdownText: 'maintenance' });
    expect(encodeNotification(6, 2, { shutdownText: 'maintenance' })).toEqual(VECTOR);
  });

  it('keeps raw data and round-trips code, subcode and data', () => {
    const n = encodeNotification(2, 1, Buffer.from([0, 4]));
    expect(decodeMessage(n, AS4).message).toEqual({ type: 3, code: 2, subcode: 1, data: Buffer.from([0, 4]) });
    expect(decodeMessage(encodeNotification(4, 0), AS4).message).toEqual({ type: 3, code: 4, subcode: 0, data: Buffer.alloc(0) });
  });

  it('truncates a long shutdown text to 255 octets on a character boundary', () => {
    const text = `${'a'.repeat(254)}é and more`; // é is 2 octets at 254..255: it must go whole
    const n = encodeNotification(6, 4, { shutdownText: text });
    const decoded = decodeMessage(n, AS4).message;
    expect(decoded).toMatchObject({ code: 6, subcode: 4, shutdownText: 'a'.repeat(254) });
    expect(n.length).toBe(19 + 2 + 1 + 254);
    const emoji = encodeNotification(6, 2, { shutdownText: '🛠'.repeat(100) }); // 4 octets each
    expect(decodeMessage(emoji, AS4).message).toMatchObject({ shutdownText: '🛠'.repeat(63) });
  });

  it('leaves shutdownText out when the data is not a valid communication or the subcode is not 2/4', () => {
    expect(decodeMessage(encodeNotification(6, 2, hex('05 414243')), AS4).message).not.toHaveProperty('shutdownText');
    expect(decodeMessage(encodeNotification(6, 2, hex('02 c328')), AS4).message).not.toHaveProperty('shutdownText');
    expect(decodeMessage(encodeNotification(6, 3, hex('01 41')), AS4).message).not.toHaveProperty('shutdownText');
    expect(decodeMessage(encodeNotification(6, 4, hex('00')), AS4).message).toMatchObject({ shutdownText: '' });
  });
});

describe('MessageReader', () => {
  const stream = Buffer.concat([encodeKeepalive(), encodeEndOfRib('ipv6-unicast'), encodeNotification(6, 2, { shutdownText: 'bye' }), encodeKeepalive()]);

  it('splits a stream fed one octet at a time and in one piece', () => {
    const one = new MessageReader();
    const bytewise = [...stream].flatMap((b) => one.push(Buffer.from([b])));
    expect(Buffer.concat(bytewise)).toEqual(stream);
    expect(bytewise.map((m) => m[18])).toEqual([4, 2, 3, 4]);
    expect(one.buffered).toBe(0);
    expect(new MessageReader().push(stream).map((m) => m.length)).toEqual(bytewise.map((m) => m.length));
  });

  it('keeps the remainder across chunk boundaries at every split point', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const r = new MessageReader();
      const first = r.push(stream.subarray(0, cut));
      expect(r.buffered).toBe(cut - first.reduce((n, m) => n + m.length, 0));
      const all = [...first, ...r.push(stream.subarray(cut))];
      expect(Buffer.concat(all)).toEqual(stream);
      expect(r.buffered).toBe(0);
    }
  });

  it('throws header errors as soon as the header is complete: 1/1, 1/2, 1/3', () => {
    const cases: [Buffer, number][] = [
      [Buffer.concat([Buffer.alloc(16, 0xfe), hex('001304')]), 1],
      [hex(`${'ff'.repeat(16)} 1001 02`), 2],
      [hex(`${'ff'.repeat(16)} 0012 04`), 2],
      [hex(`${'ff'.repeat(16)} 0014 04 00`), 2],
      [hex(`${'ff'.repeat(16)} 0013 07`), 3],
    ];
    for (const [bytes, subcode] of cases) {
      const r = new MessageReader();
      r.push(bytes.subarray(0, 10));
      expect(() => r.push(bytes.subarray(10))).toThrow(expect.objectContaining({ notificationCode: 1, subcode, action: 'session-reset' }));
    }
    let err: BgpMessageError | undefined;
    try {
      new MessageReader().push(cases[1]![0]);
    } catch (e) {
      err = e as BgpMessageError;
    }
    expect(err?.data).toEqual(hex('1001'));
    expect(err?.code).toBe('EBGP_HEADER');
  });
});
