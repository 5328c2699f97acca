// The fixed message header (RFC 4271 §4.1) and its checks (§6.1), shared by the stream reader and
// the decoder so both reject the same things with the same NOTIFICATION.
import { MessageType } from '../types.js';
import { HEADER_LENGTH, MAX_MESSAGE } from './constants.js';
import { BgpMessageError } from './errors.js';
import { HeaderErrorSubcode, NotificationCode } from './notification-codes.js';

/** Smallest legal length per type (RFC 4271 §4.2-4.5; RFC 2918 §3 for ROUTE-REFRESH). */
const MIN_LENGTH: Record<number, number> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 23,
};
/** KEEPALIVE is exactly a header; ROUTE-REFRESH is a header plus AFI, subtype, SAFI. */
const EXACT_LENGTH: Record<number, number> = { [MessageType.KEEPALIVE]: 19, [MessageType.ROUTE_REFRESH]: 23 };

function headerError(subcode: number, message: string, data?: Uint8Array): BgpMessageError {
  return new BgpMessageError(NotificationCode.MESSAGE_HEADER_ERROR, subcode, message, data ? { data } : {});
}

/**
 * Checks the header at buf[off..off+19) and returns the message length. Throws Message Header
 * Errors: marker not all ones → 1/1; length outside 19..4096 or wrong for the type → 1/2 with the
 * length field as data; unknown type → 1/3 with the type as data (RFC 4271 §6.1).
 */
export function checkHeader(buf: Uint8Array, off: number): number {
  for (let i = 0; i < 16; i++) {
    if (buf[off + i] !== 0xff) {
      throw headerError(HeaderErrorSubcode.CONNECTION_NOT_SYNCHRONIZED, 'message marker is not all ones');
    }
  }
  const length = (buf[off + 16]! << 8) | buf[off + 17]!;
  const type = buf[off + 18]!;
  const lengthField = buf.subarray(off + 16, off + 18);
  if (length < HEADER_LENGTH || length > MAX_MESSAGE) {
    throw headerError(HeaderErrorSubcode.BAD_MESSAGE_LENGTH, `message length ${length} is outside ${HEADER_LENGTH}..${MAX_MESSAGE}`, lengthField);
  }
  const min = MIN_LENGTH[type];
  if (min === undefined) {
    throw headerError(HeaderErrorSubcode.BAD_MESSAGE_TYPE, `unknown message type ${type}`, buf.subarray(off + 18, off + 19));
  }
  const exact = EXACT_LENGTH[type];
  if (length < min || (exact !== undefined && length !== exact)) {
    throw headerError(HeaderErrorSubcode.BAD_MESSAGE_LENGTH, `length ${length} is wrong for message type ${type}`, lengthField);
  }
  return length;
}

/** Writes a header for a message of `length` octets and `type` at out[0..19). */
export function writeHeader(out: Uint8Array, type: MessageType, length: number): void {
  out.fill(0xff, 0, 16);
  out[16] = length >> 8;
  out[17] = length & 0xff;
  out[18] = type;
}

/** A whole message consisting of the header and `body`. */
export function message(type: MessageType, body: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  writeHeader(out, type, out.length);
  out.set(body, HEADER_LENGTH);
  return out;
}
