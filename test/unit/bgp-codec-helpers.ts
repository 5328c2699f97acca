// Shared by the bgp-codec-* tests: hex helpers and a few UPDATE builders.
import { expect } from 'vitest';
import { BgpMessageError, decodeMessage, type CodecOptions, type ErrorAction } from '../../src/bgp/wire/index.js';
import type { PathAttributes, UpdateMessage } from '../../src/bgp/types.js';

export const AS2: CodecOptions = { fourOctetAsn: false };
export const AS4: CodecOptions = { fourOctetAsn: true };

/** Hex with spaces, newlines and `|` separators allowed (for annotated vectors). */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/[\s|]/g, ''), 'hex');
}

const MARKER = 'ff'.repeat(16);

/** A whole message of `type` around `body` (hex or bytes). */
export function msg(type: number, body: string | Buffer): Buffer {
  const b = typeof body === 'string' ? hex(body) : body;
  const out = Buffer.concat([hex(MARKER), Buffer.from([0, 0, type]), b]);
  out.writeUInt16BE(out.length, 16);
  return out;
}

/** A raw UPDATE from its three parts (withdrawn, attributes, NLRI), lengths filled in. */
export function rawUpdate(withdrawn: string, attrs: string, nlri = ''): Buffer {
  const w = hex(withdrawn);
  const a = hex(attrs);
  const lens = Buffer.alloc(2);
  lens.writeUInt16BE(w.length);
  const alen = Buffer.alloc(2);
  alen.writeUInt16BE(a.length);
  return msg(2, Buffer.concat([lens, w, alen, a, hex(nlri)]));
}

/** ORIGIN IGP, AS_PATH [65001] (2-octet) and NEXT_HOP 192.0.2.1: a minimal valid attribute set. */
export const BASE_ATTRS_2 = '40010100 400204 0201fde9 400304 c0000201';
export const BASE_ATTRS_4 = '40010100 400206 0201 0000fde9 400304 c0000201';

export function decodeUpdate(m: Buffer, opts: CodecOptions = AS2): { update: UpdateMessage; warnings: readonly BgpMessageError[] } {
  const d = decodeMessage(m, opts);
  expect(d.message.type).toBe(2);
  return { update: d.message as UpdateMessage, warnings: d.warnings };
}

/** Asserts decodeMessage throws a BgpMessageError with this code/subcode/action. */
export function expectThrows(m: Buffer, code: number, subcode: number, opts: CodecOptions = AS2, action: ErrorAction = 'session-reset'): BgpMessageError {
  let caught: unknown;
  try {
    decodeMessage(m, opts);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BgpMessageError);
  const e = caught as BgpMessageError;
  expect({ code: e.notificationCode, subcode: e.subcode, action: e.action }).toEqual({ code, subcode, action });
  return e;
}

/** Asserts the UPDATE decodes with exactly one warning of this subcode/action. */
export function expectWarning(m: Buffer, subcode: number, action: ErrorAction, opts: CodecOptions = AS2): UpdateMessage {
  const { update, warnings } = decodeUpdate(m, opts);
  expect(warnings.map((w) => ({ code: w.notificationCode, subcode: w.subcode, action: w.action }))).toEqual([{ code: 3, subcode, action }]);
  return update;
}

export const ATTRS: PathAttributes = {
  origin: 0,
  asPath: [{ type: 'sequence', asns: [65001, 65002] }],
  nextHop: '192.0.2.1',
};

