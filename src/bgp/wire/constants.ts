// Wire constants of BGP-4 (RFC 4271 §4) and its extensions, named after the RFCs that define them.
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, type Family } from '../types.js';

/** RFC 4271 §4: no message may be longer than 4096 octets (RFC 8654 extended messages not spoken). */
export const MAX_MESSAGE = 4096;
/** Marker (16) + Length (2) + Type (1). */
export const HEADER_LENGTH = 19;

/** RFC 6793 §9: the 2-octet stand-in for an AS number that needs 4 octets. */
export const AS_TRANS = 23456;

/** Path attribute type codes (IANA "BGP Path Attributes"). */
export const AttrType = {
  ORIGIN: 1,
  AS_PATH: 2,
  NEXT_HOP: 3,
  MED: 4,
  LOCAL_PREF: 5,
  ATOMIC_AGGREGATE: 6,
  AGGREGATOR: 7,
  COMMUNITIES: 8,
  ORIGINATOR_ID: 9,
  CLUSTER_LIST: 10,
  MP_REACH_NLRI: 14,
  MP_UNREACH_NLRI: 15,
  AS4_PATH: 17,
  AS4_AGGREGATOR: 18,
  LARGE_COMMUNITIES: 32,
} as const;

/** Attribute flag bits (RFC 4271 §4.3). The low four bits are unused: zero when sent, ignored when read. */
export const AttrFlag = { OPTIONAL: 0x80, TRANSITIVE: 0x40, PARTIAL: 0x20, EXTENDED_LENGTH: 0x10 } as const;
/** The flag bits that carry meaning (Optional, Transitive, Partial); Extended Length is framing only. */
export const ATTR_FLAG_MEANING = 0xe0;

/** Capability codes (IANA "Capability Codes"). */
export const CapabilityCode = {
  MULTIPROTOCOL: 1,
  ROUTE_REFRESH: 2,
  GRACEFUL_RESTART: 64,
  FOUR_OCTET_AS: 65,
  ENHANCED_ROUTE_REFRESH: 70,
} as const;

/** OPEN optional parameter types (RFC 5492 §4; 255 is the RFC 9072 extended-length escape). */
export const OPT_PARAM_CAPABILITIES = 2;
export const OPT_PARAM_EXTENDED = 255;

/** The AFI/SAFI pair of a family (RFC 4760 §5). */
export function afiSafiOf(family: Family): readonly [afi: number, safi: number] {
  return family === 'ipv4-unicast' ? [AFI_IPV4, SAFI_UNICAST] : [AFI_IPV6, SAFI_UNICAST];
}

/** The family of an AFI/SAFI pair, or undefined for one Twill does not speak. */
export function familyOf(afi: number, safi: number): Family | undefined {
  if (safi !== SAFI_UNICAST) return undefined;
  if (afi === AFI_IPV4) return 'ipv4-unicast';
  if (afi === AFI_IPV6) return 'ipv6-unicast';
  return undefined;
}
