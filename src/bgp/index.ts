// The BGP speaker's public surface: what the bgp backend, twillctl and tests use. Everything else
// under src/bgp is internal (dependency-cruiser: backends reach the speaker through this file).
export { Speaker, type SpeakerOptions, type SpeakerPeerConfig, type SpeakerPeerState, type SessionEvent, type PeerRoutesEvent } from './speaker.js';
export { DEFAULT_SELECTION_DEFERRAL_TIME } from './speaker-deferral.js';
export type { LocalConfig, PeerConfig, SessionTimers } from './session/config.js';
export { DEFAULT_TIMERS } from './session/config.js';
export type { CollisionEvent, SessionState, SessionDown, SessionNotification } from './session/session.js';
export type { Negotiated } from './session/open.js';
export { nodeTransport, type BgpTransport, type BgpListener, type ConnectOptions, type ListenOptions } from './session/transport.js';
export { DEFAULT_MAX_PREFIXES, type ImportPolicyConfig, type RejectReason } from './policy/import-policy.js';
export type { ExportPolicyConfig } from './policy/export-policy.js';
export { parsePrefixRange, PrefixRange } from './policy/prefix-set.js';
export type { BestChange, LocalAdvertisement, Rejection } from './rib/rib.js';
export type * from './types.js';
export { Origin, MessageType } from './types.js';
export { DEFAULT_WARM_UP_PREFIXES, MAX_WARM_UP_PREFIXES, warmUpSpeaker, type WarmUpOptions, type WarmUpResult } from './warm-up.js';
