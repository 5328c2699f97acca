// One entry point for a whole received message: header checks, then the per-type decoder.
import { MessageType, type Message, type UpdateMessage } from '../types.js';
import { BgpMessageError } from './errors.js';
import { checkHeader } from './header.js';
import { HeaderErrorSubcode, NotificationCode } from './notification-codes.js';
import { decodeOpen } from './open.js';
import { decodeNotification, decodeRouteRefresh } from './simple-messages.js';
import type { PackedUpdate } from './packed-update.js';
import { decodePackedUpdate, decodeUpdate } from './update-decode.js';

export interface CodecOptions {
  /** Both sides advertised the 4-octet AS capability (RFC 6793): AS_PATH/AGGREGATOR use 4-byte ASNs. */
  readonly fourOctetAsn: boolean;
}

export interface Decoded {
  readonly message: Message;
  /** RFC 7606 outcomes short of a session reset (treat-as-withdraw, attribute-discard), to log. */
  readonly warnings: readonly BgpMessageError[];
}

const NO_WARNINGS: readonly BgpMessageError[] = Object.freeze([]);

/** An UPDATE as the session takes it: prefixes as numbers (packed-update.ts). */
export interface PackedUpdateMessage {
  readonly type: typeof MessageType.UPDATE;
  readonly update: PackedUpdate;
}

/** What decodeReceived() returns: every message as decodeMessage() has it, but an UPDATE packed. */
export type ReceivedMessage = Exclude<Message, UpdateMessage> | PackedUpdateMessage;

export interface DecodedReceived {
  readonly message: ReceivedMessage;
  readonly warnings: readonly BgpMessageError[];
}

/**
 * Decodes one whole message (header included), as MessageReader hands them out. Throws
 * BgpMessageError: with action 'session-reset' for anything that must end the session with the
 * error's NOTIFICATION; with 'afi-safi-disable' only for a ROUTE-REFRESH naming an AFI/SAFI
 * Twill does not speak, which is to be ignored (RFC 2918 §4). RFC 7606 treat-as-withdraw and
 * attribute-discard outcomes come back as warnings, with the UPDATE already rewritten.
 */
export function decodeMessage(msg: Buffer, opts: CodecOptions): Decoded {
  const type = checkWhole(msg);
  return type === MessageType.UPDATE ? decodeUpdate(msg, opts.fourOctetAsn) : decodeOther(msg, type);
}

/**
 * decodeMessage() for a session: the same checks and outcomes, but an UPDATE keeps its prefixes
 * as numbers, so a table transfer makes no string per prefix.
 */
export function decodeReceived(msg: Buffer, opts: CodecOptions): DecodedReceived {
  const type = checkWhole(msg);
  if (type !== MessageType.UPDATE) return decodeOther(msg, type);
  const { update, warnings } = decodePackedUpdate(msg, opts.fourOctetAsn);
  return { message: { type: MessageType.UPDATE, update }, warnings };
}

/** The header checks of a whole message; returns its type. */
function checkWhole(msg: Buffer): MessageType {
  if (msg.length < 19) {
    throw new BgpMessageError(NotificationCode.MESSAGE_HEADER_ERROR, HeaderErrorSubcode.BAD_MESSAGE_LENGTH, `message of ${msg.length} octets is shorter than a header`);
  }
  const length = checkHeader(msg, 0);
  if (length !== msg.length) {
    throw new BgpMessageError(NotificationCode.MESSAGE_HEADER_ERROR, HeaderErrorSubcode.BAD_MESSAGE_LENGTH, `header says ${length} octets, the message has ${msg.length}`, { data: msg.subarray(16, 18) });
  }
  return msg[18] as MessageType;
}

function decodeOther(msg: Buffer, type: Exclude<MessageType, typeof MessageType.UPDATE>): { message: Exclude<Message, UpdateMessage>; warnings: readonly BgpMessageError[] } {
  switch (type) {
    case MessageType.OPEN:
      return { message: decodeOpen(msg), warnings: NO_WARNINGS };
    case MessageType.NOTIFICATION:
      return { message: decodeNotification(msg), warnings: NO_WARNINGS };
    case MessageType.KEEPALIVE:
      return { message: { type: MessageType.KEEPALIVE }, warnings: NO_WARNINGS };
    case MessageType.ROUTE_REFRESH:
      return { message: decodeRouteRefresh(msg), warnings: NO_WARNINGS };
  }
}
