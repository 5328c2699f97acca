// Small builders shared by the bgp-rib-*.test.ts files.

import { ExportPolicy } from '../../src/bgp/policy/export-policy.js';
import { PrefixList } from '../../src/bgp/prefix/prefix-list.js';
import { IPV6_FLAG, readPrefixWords } from '../../src/bgp/prefix/prefix-text.js';
import { ImportPolicy, type ImportPolicyConfig } from '../../src/bgp/policy/import-policy.js';
import { Rib, type PeerInfo, type PendingUpdate } from '../../src/bgp/rib/rib.js';
import type { AsPathSegment, Family, PathAttributes, Route } from '../../src/bgp/types.js';

export const LOCAL_ASN = 65000;
export const ROUTER_ID = '192.168.0.100';

export const ACCEPT_ALL = new ImportPolicy({ accept: ['10.0.0.0/8,le=32', 'fd00::/8,le=128'] });
export const importPolicy = (config: Partial<ImportPolicyConfig> = {}): ImportPolicy =>
  new ImportPolicy({ accept: ['10.0.0.0/8,le=32', 'fd00::/8,le=128'], ...config });

export function newRib(): Rib {
  return new Rib({ asn: LOCAL_ASN, routerId: ROUTER_ID });
}

/** Adds a peer; iBGP when `asn` is ours. Address and router id default from the last octet `n`. */
export function addPeer(rib: Rib, id: string, asn: number, n: number, extra: Partial<PeerInfo> = {}): void {
  rib.addPeer(id, {
    asn,
    routerId: `1.1.1.${n}`,
    address: `192.168.0.${n}`,
    ibgp: asn === LOCAL_ASN,
    localAddress: ROUTER_ID,
    importPolicy: ACCEPT_ALL,
    exportPolicy: new ExportPolicy(),
    families: ['ipv4-unicast', 'ipv6-unicast'],
    ...extra,
  });
}

export const seq = (...asns: number[]): AsPathSegment => ({ type: 'sequence', asns });

export function attrs(asns: number[], extra: Partial<PathAttributes> = {}): PathAttributes {
  return { origin: 0, asPath: asns.length > 0 ? [seq(...asns)] : [], ...extra };
}

export function route(prefix: string, attributes: PathAttributes, nextHop = '192.168.0.2'): Route {
  const family: Family = prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
  return { family, prefix, nextHop, attributes };
}

/** Announces `prefixes` from `peer` with one shared attributes object, like one UPDATE. */
export function announce(rib: Rib, peer: string, prefixes: string[], attributes: PathAttributes, nextHop?: string): ReturnType<Rib['applyUpdate']> {
  return rib.applyUpdate(peer, { announced: prefixes.map((p) => route(p, attributes, nextHop)), withdrawn: [] });
}

export function withdraw(rib: Rib, peer: string, prefixes: string[]): ReturnType<Rib['applyUpdate']> {
  const family = (p: string): Family => (p.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast');
  return rib.applyUpdate(peer, { announced: [], withdrawn: prefixes.map((prefix) => ({ family: family(prefix), prefix })) });
}

/** A PendingUpdate in plain, comparable form: announced prefixes with their next hops and AS path, withdrawals. */
export function summary(p: PendingUpdate): { announce: Record<string, string>; withdraw: string[] } {
  const announced: Record<string, string> = {};
  for (const g of p.announce.values()) {
    for (const prefix of g.prefixes) announced[prefix] = `${g.nextHops.join(',')} ${g.attributes.asPath.map((s) => s.asns.join(' ')).join(' ')}`.trim();
  }
  return { announce: announced, withdraw: [...p.withdraw.values()].flat() };
}

/** The prefixes as the speaker's numeric list (all of `family`; a prefix of the other family throws). */
export function prefixList(family: Family, prefixes: readonly string[]): PrefixList {
  const out = new PrefixList(family);
  const words = new Uint32Array(4);
  for (const p of prefixes) {
    const read = readPrefixWords(p, words);
    if (((read & IPV6_FLAG) !== 0) !== (family === 'ipv6-unicast')) throw new Error(p);
    out.push(words, 0, read & 0xff);
  }
  return out;
}
