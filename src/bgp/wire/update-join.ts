// Consecutive UPDATEs that only add prefixes under the very same path attributes, joined into one.
//
// Some speakers send a table one prefix per UPDATE: gobgpd does, so a ToR's 10,000 host routes
// arrive as 10,000 messages of 47 octets, and each one went through the whole chain on its own:
// attribute decoding, an RIB batch, a 'routes' event, the backend's bookkeeping. The session
// joins such a run within one TCP read: the first UPDATE is decoded as usual, and each following
// one whose attribute octets are identical and which withdraws nothing adds its NLRI to the
// first. Applying the joined UPDATE is applying them one after the other: the same attributes
// decode to the same path (decoding is a function of the octets and the session's codec
// options), the first one's withdrawals still come before any of the announcements, and a
// prefix announced twice under one path ends as one route either way. Anything else (a
// withdrawal, MP_REACH/MP_UNREACH, an RFC 7606 warning, other attributes, any error) ends the run
// and is decoded on its own; a message that fails is reported after the run before it.

import { HEADER_LENGTH } from './constants.js';
import { checkHeader } from './header.js';
import type { PackedUpdate } from './packed-update.js';
import { readPrefixesInto } from './prefix.js';
import { MessageType } from '../types.js';

/** An UPDATE that later ones may join, with the attribute octets they must repeat. */
export interface JoinableUpdate {
  readonly update: PackedUpdate;
  readonly attributeOctets: Buffer;
}

/** Where an UPDATE's path attributes lie, or undefined when the lengths do not fit (the decoder then says why). */
function attributeRange(msg: Buffer): { start: number; end: number; withdrawnLength: number } | undefined {
  if (msg.length < HEADER_LENGTH + 4) return undefined;
  const withdrawnLength = msg.readUInt16BE(HEADER_LENGTH);
  const lengthAt = HEADER_LENGTH + 2 + withdrawnLength;
  if (lengthAt + 2 > msg.length) return undefined;
  const start = lengthAt + 2;
  const end = start + msg.readUInt16BE(lengthAt);
  return end > msg.length ? undefined : { start, end, withdrawnLength };
}

/**
 * `update`, decoded from `msg` without warnings, as the start of a run, or undefined when nothing
 * may join it: it must announce IPv4 prefixes through the classic NLRI field, and nothing through
 * MP_REACH or MP_UNREACH. Its withdrawals, if any, stay first.
 */
export function joinableUpdate(msg: Buffer, update: PackedUpdate): JoinableUpdate | undefined {
  if (update.attributes === undefined || update.mpReach !== undefined || update.mpUnreach !== undefined || update.nlri.count === 0) return undefined;
  const range = attributeRange(msg);
  return range === undefined ? undefined : { update, attributeOctets: msg.subarray(range.start, range.end) };
}

/**
 * Adds `msg` to `run` when it is an UPDATE that withdraws nothing and announces IPv4 prefixes
 * under exactly the run's attribute octets; returns false, and leaves the run as it was, for any
 * other message, including one that is malformed (the decoder then reports it).
 */
export function joinUpdate(run: JoinableUpdate, msg: Buffer): boolean {
  if (msg.length < HEADER_LENGTH || msg[18] !== MessageType.UPDATE) return false;
  const range = attributeRange(msg);
  const octets = run.attributeOctets;
  if (range === undefined || range.withdrawnLength !== 0 || range.end - range.start !== octets.length || range.end === msg.length) return false;
  if (msg.compare(octets, 0, octets.length, range.start, range.end) !== 0) return false;
  try {
    if (checkHeader(msg, 0) !== msg.length) return false;
    // The first UPDATE's list is this run's own (nothing has seen it yet): it grows in place. A
    // bad NLRI field throws before anything is written, leaving the run as it was.
    readPrefixesInto(run.update.nlri, msg, range.end, msg.length);
  } catch {
    return false;
  }
  return true;
}
