// OPEN (RFC 4271 §4.2) with capabilities as optional parameters (RFC 5492 §4) and the RFC 9072
// extended parameter length when they need more than 255 octets.
import { InvalidArgumentError } from '../../core/errors.js';
import { MessageType, type OpenMessage } from '../types.js';
import { parseIpv4Value } from '../../core/ip.js';
import { formatIpv4 } from './address.js';
import { decodeCapabilities, encodeCapabilities, finishCapabilities, newCapabilities } from './capabilities.js';
import { HEADER_LENGTH, MAX_MESSAGE, OPT_PARAM_CAPABILITIES, OPT_PARAM_EXTENDED } from './constants.js';
import { BgpMessageError } from './errors.js';
import { message } from './header.js';
import { NotificationCode, OpenErrorSubcode, UNSPECIFIC_SUBCODE } from './notification-codes.js';
import { ByteWriter } from './writer.js';

const BGP_VERSION = 4;

function openError(subcode: number, text: string, data?: Uint8Array): BgpMessageError {
  return new BgpMessageError(NotificationCode.OPEN_MESSAGE_ERROR, subcode, `OPEN: ${text}`, data ? { data } : {});
}

/** Decodes an OPEN whose header checkHeader() accepted (so it has at least 29 octets). */
export function decodeOpen(msg: Buffer): OpenMessage {
  let p = HEADER_LENGTH;
  const version = msg[p]!;
  // RFC 4271 §6.2: the data is the largest locally supported version, as 2 octets.
  if (version !== BGP_VERSION) throw openError(OpenErrorSubcode.UNSUPPORTED_VERSION_NUMBER, `version ${version} is not 4`, Buffer.from([0, BGP_VERSION]));
  const myAsn = msg.readUInt16BE(p + 1);
  if (myAsn === 0) throw openError(OpenErrorSubcode.BAD_PEER_AS, 'My Autonomous System is 0 (RFC 7607 §2)');
  const holdTime = msg.readUInt16BE(p + 3);
  if (holdTime === 1 || holdTime === 2) throw openError(OpenErrorSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime} s: must be 0 or at least 3 (RFC 4271 §4.2)`);
  if (msg.readUInt32BE(p + 5) === 0) throw openError(OpenErrorSubcode.BAD_BGP_IDENTIFIER, 'BGP Identifier is 0.0.0.0 (RFC 6286 §2.1)');
  const routerId = formatIpv4(msg, p + 5);
  p += 10;
  const caps = newCapabilities();
  forEachParameter(msg, p - 1, (type, start, end) => {
    if (type !== OPT_PARAM_CAPABILITIES) throw openError(OpenErrorSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, `optional parameter type ${type} is not supported`);
    decodeCapabilities(msg, start, end, caps);
  });
  return { type: MessageType.OPEN, version, myAsn, holdTime, routerId, capabilities: finishCapabilities(caps) };
}

/**
 * Walks the optional parameters. `lenAt` is the Opt Parm Len octet. RFC 9072 §2: a length of 255
 * followed by a parameter type of 255 announces a 2-octet total length and 2-octet parameter lengths.
 */
function forEachParameter(msg: Buffer, lenAt: number, fn: (type: number, start: number, end: number) => void): void {
  let p = lenAt + 1;
  let end = p + msg[lenAt]!;
  let lenSize = 1;
  if (msg[lenAt] === 255 && msg.length > p && msg[p] === OPT_PARAM_EXTENDED) {
    if (msg.length < p + 3) throw openError(UNSPECIFIC_SUBCODE, 'extended optional parameters length is truncated (RFC 9072 §2)');
    end = p + 3 + msg.readUInt16BE(p + 1);
    p += 3;
    lenSize = 2;
  }
  if (end !== msg.length) throw openError(UNSPECIFIC_SUBCODE, `optional parameters end at ${end}, the message at ${msg.length}`);
  while (p < end) {
    if (end - p < 1 + lenSize) throw openError(UNSPECIFIC_SUBCODE, 'optional parameter header is truncated');
    const type = msg[p]!;
    const len = lenSize === 1 ? msg[p + 1]! : msg.readUInt16BE(p + 1);
    const start = p + 1 + lenSize;
    if (start + len > end) throw openError(UNSPECIFIC_SUBCODE, `optional parameter ${type} runs past the parameters`);
    fn(type, start, start + len);
    p = start + len;
  }
}

/** Encodes an OPEN. Capabilities are packed into as few parameters as fit in 255 octets each. */
export function encodeOpen(open: Omit<OpenMessage, 'type'>): Buffer {
  checkField('version', open.version, 255);
  checkField('My Autonomous System', open.myAsn, 0xffff);
  checkField('hold time', open.holdTime, 0xffff);
  const id = parseIpv4Value(open.routerId, 0, open.routerId.length);
  if (id < 0) throw new InvalidArgumentError('BGP identifier', open.routerId, 'not a dotted quad');
  const caps = encodeCapabilities(open.capabilities);
  const w = new ByteWriter(64);
  w.u8(open.version).u16(open.myAsn).u16(open.holdTime).u32(id);
  writeParameters(w, caps);
  if (HEADER_LENGTH + w.pos > MAX_MESSAGE) throw new InvalidArgumentError('OPEN', HEADER_LENGTH + w.pos, `more than ${MAX_MESSAGE} octets`);
  return message(MessageType.OPEN, w.buf.subarray(0, w.pos));
}

function checkField(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new InvalidArgumentError(`OPEN ${what}`, v, `must be an integer 0..${max}`);
}

function writeParameters(w: ByteWriter, caps: readonly Buffer[]): void {
  const params: Buffer[][] = [];
  let size = 0;
  for (const cap of caps) {
    const last = params[params.length - 1];
    const lastSize = last ? last.reduce((n, c) => n + c.length, 0) : 256;
    if (last && lastSize + cap.length <= 255) last.push(cap);
    else params.push([cap]);
    size += cap.length;
  }
  const normalSize = size + 2 * params.length;
  if (normalSize <= 255 && caps.every((c) => c.length <= 255)) {
    w.u8(normalSize);
    for (const param of params) {
      w.u8(OPT_PARAM_CAPABILITIES).u8(param.reduce((n, c) => n + c.length, 0));
      for (const cap of param) w.bytes(cap);
    }
    return;
  }
  // RFC 9072 §2: one capabilities parameter with a 2-octet length holds them all.
  w.u8(255).u8(OPT_PARAM_EXTENDED).u16(size + 3).u8(OPT_PARAM_CAPABILITIES).u16(size);
  for (const cap of caps) w.bytes(cap);
}
