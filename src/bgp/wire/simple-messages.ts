// KEEPALIVE (RFC 4271 §4.4), NOTIFICATION (§4.5, RFC 9003 shutdown text) and ROUTE-REFRESH
// (RFC 2918 §3, RFC 7313 §3 subtypes).
import { isUtf8 } from 'node:buffer';
import { InvalidArgumentError } from '../../core/errors.js';
import { MessageType, type Family, type NotificationMessage, type RouteRefreshMessage } from '../types.js';
import { HEADER_LENGTH, MAX_MESSAGE, afiSafiOf, familyOf } from './constants.js';
import { BgpMessageError } from './errors.js';
import { message } from './header.js';
import { CeaseSubcode, NotificationCode, HeaderErrorSubcode } from './notification-codes.js';

const KEEPALIVE = message(MessageType.KEEPALIVE);
/** RFC 9003 §2: the shutdown communication is at most 255 octets of UTF-8. */
const MAX_SHUTDOWN_TEXT = 255;
const MAX_NOTIFICATION_DATA = MAX_MESSAGE - HEADER_LENGTH - 2;

export function encodeKeepalive(): Buffer {
  return Buffer.from(KEEPALIVE);
}

/**
 * A NOTIFICATION. `data` is sent as given (cut to what fits in 4096 octets: a NOTIFICATION is
 * the last word, better short than not at all), or built from a shutdown communication for
 * Cease/2 and Cease/4 (RFC 9003 §2: length octet + UTF-8, cut to 255 octets on a character boundary).
 */
export function encodeNotification(code: number, subcode: number, data?: Buffer | { shutdownText: string }): Buffer {
  for (const [what, v] of [['code', code], ['subcode', subcode]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 255) throw new InvalidArgumentError(`NOTIFICATION ${what}`, v, 'must be an integer 0..255');
  }
  let bytes: Uint8Array = data === undefined ? new Uint8Array(0) : Buffer.isBuffer(data) ? data : shutdownCommunication(data.shutdownText);
  if (bytes.length > MAX_NOTIFICATION_DATA) bytes = bytes.subarray(0, MAX_NOTIFICATION_DATA);
  const body = Buffer.allocUnsafe(2 + bytes.length);
  body[0] = code;
  body[1] = subcode;
  body.set(bytes, 2);
  return message(MessageType.NOTIFICATION, body);
}

function shutdownCommunication(text: string): Buffer {
  const utf8 = Buffer.from(text, 'utf8');
  let n = Math.min(utf8.length, MAX_SHUTDOWN_TEXT);
  // Back off over continuation octets (10xxxxxx) so no character is cut in half.
  if (n < utf8.length) while (n > 0 && (utf8[n]! & 0xc0) === 0x80) n--;
  const out = Buffer.allocUnsafe(1 + n);
  out[0] = n;
  utf8.copy(out, 1, 0, n);
  return out;
}

export function decodeNotification(msg: Buffer): NotificationMessage {
  const code = msg[HEADER_LENGTH]!;
  const subcode = msg[HEADER_LENGTH + 1]!;
  const data = Buffer.from(msg.subarray(HEADER_LENGTH + 2));
  const text = code === NotificationCode.CEASE && (subcode === CeaseSubcode.ADMINISTRATIVE_SHUTDOWN || subcode === CeaseSubcode.ADMINISTRATIVE_RESET) ? shutdownText(data) : undefined;
  return { type: MessageType.NOTIFICATION, code, subcode, data, ...(text !== undefined ? { shutdownText: text } : {}) };
}

/** RFC 9003 §2: a length octet and that many octets of UTF-8; anything else is not a communication. */
function shutdownText(data: Buffer): string | undefined {
  if (data.length === 0 || 1 + data[0]! > data.length) return undefined;
  const text = data.subarray(1, 1 + data[0]!);
  return isUtf8(text) ? text.toString('utf8') : undefined;
}

/** ROUTE-REFRESH: AFI, message subtype (RFC 7313 §3; 0 = plain request), SAFI. */
export function encodeRouteRefresh(family: Family, subtype = 0): Buffer {
  if (!Number.isInteger(subtype) || subtype < 0 || subtype > 255) throw new InvalidArgumentError('ROUTE-REFRESH subtype', subtype, 'must be an integer 0..255');
  const [afi, safi] = afiSafiOf(family);
  return message(MessageType.ROUTE_REFRESH, Buffer.from([afi >> 8, afi & 0xff, subtype, safi]));
}

/**
 * Decodes a ROUTE-REFRESH (length already checked to be 23). RFC 2918 §4 says to ignore one for an
 * AFI/SAFI that was not advertised; one Twill cannot even name is thrown with the action
 * 'afi-safi-disable' (nothing to send, nothing to refresh) so the session can log and drop it.
 */
export function decodeRouteRefresh(msg: Buffer): RouteRefreshMessage {
  const afi = msg.readUInt16BE(HEADER_LENGTH);
  const subtype = msg[HEADER_LENGTH + 2]!;
  const safi = msg[HEADER_LENGTH + 3]!;
  const family = familyOf(afi, safi);
  if (family === undefined) {
    throw new BgpMessageError(NotificationCode.MESSAGE_HEADER_ERROR, HeaderErrorSubcode.BAD_MESSAGE_TYPE, `ROUTE-REFRESH for AFI ${afi} SAFI ${safi}, not spoken here (RFC 2918 §4: ignore it)`, { action: 'afi-safi-disable' });
  }
  return { type: MessageType.ROUTE_REFRESH, family, subtype };
}
