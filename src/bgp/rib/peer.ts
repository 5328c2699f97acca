// What the RIB keeps per peer: its Adj-RIB-In and Adj-RIB-Out, the facts best-path ranks it by,
// and the facts export decides by. One object plays all three roles (PathSource, ExportTarget,
// and holder of the ImportContext), so "never send a route back to the peer it came from" is an
// identity comparison.

import { InvalidArgumentError } from '../../core/errors.js';
import { parseIp, parseIpv4Value } from '../../core/ip.js';
import { exportAttributes, type ExportPolicy, type ExportTarget, type OutboundAttributes } from '../policy/export-policy.js';
import type { ImportContext, ImportPolicy } from '../policy/import-policy.js';
import type { PeerImport } from '../policy/peer-import.js';
import type { Family, PathAttributes, RoutePath } from '../types.js';
import { AdjRibIn } from './adj-rib-in.js';
import { AdjRibOut } from './adj-rib-out.js';
import { addressSortKey, type PathSource } from './best-path.js';

/** The speaker itself, as the RIB needs it. */
export interface LocalIdentity {
  readonly asn: number;
  /** BGP identifier, dotted quad. */
  readonly routerId: string;
  /** RFC 4456 cluster id; default the router id. */
  readonly clusterId?: string | undefined;
  /**
   * The speaker's other own addresses (configured local and listen addresses, its sessions'
   * ends), canonical text: a route with one of them as its next hop is refused (RFC 4271 §6.3).
   * The owner may add to the set while the RIB runs; every peer sees the additions.
   */
  readonly ownAddresses?: ReadonlySet<string> | undefined;
}

const NO_ADDRESSES: ReadonlySet<string> = new Set();

/** A peer, as the session describes it when it reaches Established. */
export interface PeerInfo {
  readonly asn: number;
  /** The peer's BGP identifier from its OPEN. */
  readonly routerId: string;
  readonly address: string;
  /** Same AS as ours; must agree with `asn`. */
  readonly ibgp: boolean;
  /** Our address on this session: next hop self (see ExportPolicyConfig.nextHopSelf for the other family). */
  readonly localAddress: string;
  readonly importPolicy: ImportPolicy;
  readonly exportPolicy: ExportPolicy;
  /** Families negotiated with the peer (RFC 4760); only these are sent. Default: IPv4 unicast. */
  readonly families?: readonly Family[] | undefined;
  /** An iBGP peer whose routes we reflect, and to which we reflect (RFC 4456 §6). Default false. */
  readonly routeReflectorClient?: boolean | undefined;
}

/** Checks our own AS and identifiers. */
export function checkIdentity(identity: LocalIdentity): void {
  const { asn, routerId, clusterId } = identity;
  if (!Number.isInteger(asn) || asn < 1 || asn > 0xffffffff) throw new InvalidArgumentError('local AS', asn, 'must be 1..4294967295');
  for (const [what, id] of [['router id', routerId], ['cluster id', clusterId]] as const) {
    if (id !== undefined && parseIp(id, what).family !== 4) throw new InvalidArgumentError(what, id, 'must be a dotted quad');
  }
}

/** One export result cached per received attributes object (see Rib.exportFor). */
interface CachedExport {
  readonly source: PathSource;
  readonly family: Family;
  readonly nextHop: string;
  readonly out: OutboundAttributes | undefined;
}

export class PeerState implements PathSource, ExportTarget {
  readonly local = false;
  readonly ibgp: boolean;
  readonly routeReflectorClient: boolean;
  readonly routerId: string;
  readonly routerIdNumber: number;
  readonly addressKey: string;
  readonly routes = new AdjRibIn();
  readonly out: AdjRibOut;
  readonly localAsn: number;
  readonly clusterId: string;
  readonly localAddress: string;
  readonly families: readonly Family[];
  readonly importContext: ImportContext;
  readonly importPolicy: ImportPolicy;
  /** The import policy compiled for this peer, once, when its session came up. */
  readonly importer: PeerImport;
  policy: ExportPolicy;
  /** Announcements import policy refused (RibStats). */
  rejected = 0;
  private exportCache = new WeakMap<PathAttributes, CachedExport>();

  constructor(
    readonly id: string,
    readonly info: PeerInfo,
    identity: LocalIdentity,
  ) {
    const what = `peer ${id}`;
    if (!Number.isInteger(info.asn) || info.asn < 1 || info.asn > 0xffffffff) throw new InvalidArgumentError(`${what} AS`, info.asn, 'must be 1..4294967295');
    if (info.ibgp !== (info.asn === identity.asn)) {
      throw new InvalidArgumentError(`${what} ibgp`, info.ibgp, `peer AS ${info.asn} and our AS ${identity.asn} say ${info.asn === identity.asn ? 'iBGP' : 'eBGP'}`);
    }
    const routerId = parseIp(info.routerId, `${what} router id`);
    if (routerId.family !== 4) throw new InvalidArgumentError(`${what} router id`, info.routerId, 'must be a dotted quad');
    const address = parseIp(info.address, `${what} address`);
    this.localAddress = parseIp(info.localAddress, `${what} local address`).text;
    this.ibgp = info.ibgp;
    const client = info.routeReflectorClient ?? false;
    if (client && !info.ibgp) throw new InvalidArgumentError(`${what} route reflector client`, client, 'only an iBGP peer can be one (RFC 4456 §6)');
    this.routeReflectorClient = client;
    this.routerId = routerId.text;
    this.routerIdNumber = parseIpv4Value(routerId.text);
    this.addressKey = addressSortKey(address.family, address.bytes);
    this.families = [...new Set<Family>(info.families ?? ['ipv4-unicast'])];
    this.localAsn = identity.asn;
    this.clusterId = identity.clusterId ?? identity.routerId;
    this.importPolicy = info.importPolicy;
    this.policy = info.exportPolicy;
    this.importContext = Object.freeze({
      localAsn: identity.asn,
      routerId: identity.routerId,
      clusterId: this.clusterId,
      ibgp: info.ibgp,
      localAddress: this.localAddress,
      ownAddresses: identity.ownAddresses ?? NO_ADDRESSES,
    });
    this.importer = info.importPolicy.forPeer(this.importContext);
    this.out = new AdjRibOut(this.families);
  }

  /** A new export policy: cached results are void, and everything is compared again. */
  setExportPolicy(policy: ExportPolicy): void {
    this.policy = policy;
    this.exportCache = new WeakMap();
    this.out.requireFull(undefined, false);
  }

  /**
   * exportAttributes() for `route`, remembered per attributes object: every prefix of one
   * received UPDATE shares it, so a 100k-route table costs a few hundred computations per peer.
   */
  outboundFor(route: RoutePath, source: PathSource): OutboundAttributes | undefined {
    const hit = this.exportCache.get(route.attributes);
    if (hit !== undefined && hit.source === source && hit.family === route.family && hit.nextHop === route.nextHop) return hit.out;
    const out = exportAttributes(route, source, this);
    this.exportCache.set(route.attributes, { source, family: route.family, nextHop: route.nextHop, out });
    return out;
  }
}

/** The local advertisements as a route source: ranked first, sent to every peer. */
export function localSource(): PathSource & { readonly id: undefined } {
  return { id: undefined, local: true, ibgp: false, routerIdNumber: 0, addressKey: '', routes: new AdjRibIn() };
}
