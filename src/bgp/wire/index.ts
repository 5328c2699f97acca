// The BGP message codec: pure functions over Buffers, no sockets, no timers. See decode.ts for
// decoding and RFC 7606 outcomes, packing.ts for bulk UPDATEs.
export { HEADER_LENGTH, MAX_MESSAGE, AS_TRANS } from './constants.js';
export { MessageReader } from './reader.js';
export { decodeMessage, decodeReceived, type CodecOptions, type Decoded, type DecodedReceived, type PackedUpdateMessage, type ReceivedMessage } from './decode.js';
export { joinableUpdate, joinUpdate, type JoinableUpdate } from './update-join.js';
export { packedEndOfRib, toUpdateMessage, type PackedMpReach, type PackedMpUnreach, type PackedUpdate } from './packed-update.js';
export { encodeOpen } from './open.js';
export { encodeKeepalive, encodeNotification, encodeRouteRefresh } from './simple-messages.js';
export { encodeUpdate, encodeEndOfRib, isEndOfRib } from './update-encode.js';
export { encodeAnnouncements, encodeWithdrawals } from './packing.js';
export { BgpMessageError, type ErrorAction } from './errors.js';
export {
  NotificationCode,
  UNSPECIFIC_SUBCODE,
  HeaderErrorSubcode,
  OpenErrorSubcode,
  UpdateErrorSubcode,
  FsmErrorSubcode,
  CeaseSubcode,
} from './notification-codes.js';
export { parsePrefix, formatPrefix, type ParsedPrefix } from './prefix.js';
export { formatIpv4, formatIpv6 } from './address.js';
