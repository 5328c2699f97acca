// An UPDATE with its prefixes as numbers (../prefix/prefix-list.ts): what the session hands the
// speaker, so a table transfer makes no string and no object per prefix. It says exactly what
// the UpdateMessage of the same bytes says; toUpdateMessage() gives that text form, which the
// public decoder (decodeMessage) returns.

import type { PrefixList } from '../prefix/prefix-list.js';
import { MessageType, type Family, type PathAttributes, type UpdateMessage } from '../types.js';

export interface PackedMpReach {
  readonly family: Family;
  /** One next hop, or for IPv6 a global plus a link-local one (RFC 2545 §3). */
  readonly nextHops: readonly string[];
  readonly nlri: PrefixList;
}

export interface PackedMpUnreach {
  readonly family: Family;
  readonly withdrawn: PrefixList;
}

export interface PackedUpdate {
  /** IPv4 unicast withdrawals (the classic field). */
  readonly withdrawn: PrefixList;
  /** Absent when the UPDATE carries only withdrawals. */
  readonly attributes?: PathAttributes | undefined;
  /** IPv4 unicast NLRI (the classic field). */
  readonly nlri: PrefixList;
  readonly mpReach?: PackedMpReach | undefined;
  readonly mpUnreach?: PackedMpUnreach | undefined;
}

/** The same UPDATE with its prefixes as canonical text. */
export function toUpdateMessage(u: PackedUpdate): UpdateMessage {
  return {
    type: MessageType.UPDATE,
    withdrawn: u.withdrawn.texts(),
    ...(u.attributes ? { attributes: u.attributes } : {}),
    nlri: u.nlri.texts(),
    ...(u.mpReach ? { mpReach: { family: u.mpReach.family, nextHops: u.mpReach.nextHops, nlri: u.mpReach.nlri.texts() } } : {}),
    ...(u.mpUnreach ? { mpUnreach: { family: u.mpUnreach.family, withdrawn: u.mpUnreach.withdrawn.texts() } } : {}),
  };
}

/** The family whose End-of-RIB this UPDATE is (RFC 4724 §2), or undefined; isEndOfRib() for the packed form. */
export function packedEndOfRib(u: PackedUpdate): Family | undefined {
  if (u.withdrawn.count > 0 || u.nlri.count > 0 || u.attributes !== undefined || u.mpReach !== undefined) return undefined;
  if (u.mpUnreach === undefined) return 'ipv4-unicast';
  return u.mpUnreach.withdrawn.count === 0 ? u.mpUnreach.family : undefined;
}
