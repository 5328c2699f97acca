import { InvalidArgumentError } from '../core/errors.js';
import { formatCidr, networkOf, parseCidr, prefixContains, type Cidr, type IpFamily } from '../core/ip.js';

/**
 * The nft scripts behind Twill's masquerading: flannel's iptables and ip6tables rules
 * (FLANNEL-POSTRTG in nat, FLANNEL-FWD in filter; flannel.md §4), expressed as one nftables
 * table per address family that Twill owns whole: `ip twill` for IPv4, `ip6 twill` for IPv6
 * (flannel's nftables mode likewise has one table per family, flannel-ipv4 and flannel-ipv6).
 * Pure: rendering here, running in masquerade.ts.
 */

/** The IPv4 table's family: `ip twill`. */
export const TABLE_FAMILY = 'ip';
/** The IPv6 table's family: `ip6 twill`. */
export const TABLE_FAMILY_V6 = 'ip6';
/** The name of Twill's masquerading table, the same in both families. */
export const TABLE_NAME = 'twill';
/** The families Twill's masquerading has a table in, IPv4 first. */
export const TABLE_FAMILIES = [TABLE_FAMILY, TABLE_FAMILY_V6] as const;
/** `ip` (IPv4) or `ip6` (IPv6): which of the two tables. */
export type MasqueradeFamily = (typeof TABLE_FAMILIES)[number];

/** kube-proxy marks packets it wants masqueraded with this bit, and masquerades them itself. */
export const KUBE_PROXY_MASQ_MARK = 0x4000;

/**
 * The networks to masquerade for. Each family is given as a pair (its cluster network and this
 * host's pod subnet in it), or not at all: a family left out has no table (apply removes it).
 * At least one family must be given. The IPv4-only `{ clusterNetwork, podSubnet }` of earlier
 * versions is still a valid spec.
 */
export interface MasqueradeSpec {
  /** The IPv4 cluster network, e.g. "10.244.0.0/16" (table `ip twill`). */
  readonly clusterNetwork?: string | undefined;
  /** This host's IPv4 pod subnet (its lease), e.g. "10.244.3.0/24"; host bits ("10.244.3.1/24") are ignored. */
  readonly podSubnet?: string | undefined;
  /** The IPv6 cluster network, e.g. "fd00:10:244::/56" (table `ip6 twill`). */
  readonly clusterNetworkV6?: string | undefined;
  /** This host's IPv6 pod subnet, e.g. "fd00:10:244:3::/64"; host bits are ignored. */
  readonly podSubnetV6?: string | undefined;
}

/** How each family's rules differ: the table's family, the payload keyword, what multicast is. */
interface FamilyRules {
  readonly ipFamily: IpFamily;
  readonly family: MasqueradeFamily;
  /** The protocol of `saddr`/`daddr` matches: `ip` or `ip6`. */
  readonly proto: 'ip' | 'ip6';
  /** Never masqueraded: not routed anywhere a reply could return from (flannel: 224.0.0.0/4, ff00::/8). */
  readonly multicast: string;
  readonly name: string;
  readonly networkField: 'clusterNetwork' | 'clusterNetworkV6';
  readonly podsField: 'podSubnet' | 'podSubnetV6';
}

const IPV4: FamilyRules = {
  ipFamily: 4, family: TABLE_FAMILY, proto: 'ip', multicast: '224.0.0.0/4', name: 'IPv4', networkField: 'clusterNetwork', podsField: 'podSubnet',
};
const IPV6: FamilyRules = {
  ipFamily: 6, family: TABLE_FAMILY_V6, proto: 'ip6', multicast: 'ff00::/8', name: 'IPv6', networkField: 'clusterNetworkV6', podsField: 'podSubnetV6',
};
const FAMILY_RULES = [IPV4, IPV6] as const;

/**
 * What any masquerading table of one address family is made of, for tables other than `twill`
 * (the CNI plugin's `twill-cni`): the table's family, the payload keyword, multicast, the name.
 */
export type MasqueradeFamilyRules = Pick<FamilyRules, 'ipFamily' | 'family' | 'proto' | 'multicast' | 'name'>;

/** The rules of IPv4 (`ip`, 224.0.0.0/4) or IPv6 (`ip6`, ff00::/8). */
export function masqueradeFamilyRules(ipFamily: IpFamily): MasqueradeFamilyRules {
  return ipFamily === 4 ? IPV4 : IPV6;
}

/** One family's validated prefixes, in canonical network form. */
interface FamilyPrefixes {
  readonly network: string;
  readonly pods: string;
}

/**
 * Replaces both tables atomically: nft runs a whole input as one transaction. For each family
 * the script first makes sure the table exists (`table ... {}` is a no-op when it does) and
 * deletes it; a family of the spec is then defined again. The kernel swaps old rules for new in
 * one commit, with no moment without rules, the first apply needs no special case, and a family
 * the spec leaves out ends up with no table (a cluster that drops IPv6 loses `ip6 twill`).
 */
export function renderMasqueradeScript(spec: MasqueradeSpec): string {
  const prefixes = checkSpec(spec);
  const lines = ['# Twill masquerading (flannel\'s FLANNEL-POSTRTG and FLANNEL-FWD). Generated: replaced as a whole.'];
  FAMILY_RULES.forEach((rules, i) => {
    const p = prefixes[i];
    if (p === undefined) lines.push(`# ${rules.name}: not configured, no table.`, ...removeTable(rules.family));
    else lines.push(...renderTable(rules, p));
  });
  lines.push('');
  return lines.join('\n');
}

/** Deletes both tables if they exist, in one transaction: no error when either is absent. */
export function renderRemoveScript(): string {
  return [...TABLE_FAMILIES.flatMap(removeTable), ''].join('\n');
}

function removeTable(family: MasqueradeFamily): string[] {
  return [`table ${family} ${TABLE_NAME} {}`, `delete table ${family} ${TABLE_NAME}`];
}

function renderTable(rules: FamilyRules, { network, pods }: FamilyPrefixes): string[] {
  const { proto } = rules;
  const t = `${rules.family} ${TABLE_NAME}`;
  const mark = `0x${KUBE_PROXY_MASQ_MARK.toString(16).padStart(8, '0')}`;
  return [
    ...removeTable(rules.family),
    `table ${t} {`,
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    `\t\tmeta mark & ${mark} == ${mark} return comment "kube-proxy masquerades what it marked"`,
    `\t\t${proto} saddr ${pods} ${proto} daddr ${network} return comment "pod to cluster: keep the pod address"`,
    `\t\t${proto} saddr ${network} ${proto} daddr ${pods} return comment "cluster to this host's pods: keep the source"`,
    `\t\t${proto} saddr != ${network} ${proto} daddr ${pods} return comment "outside to this host's pods: keep the source"`,
    `\t\t${proto} saddr ${network} ${proto} daddr != ${rules.multicast} masquerade fully-random comment "pods to outside"`,
    `\t\t${proto} saddr != ${network} ${proto} daddr ${network} masquerade fully-random comment "outside to other hosts' pods"`,
    '\t}',
    // Accepts only end this base chain: a drop in another table's forward chain (Docker's iptables
    // FORWARD policy, under iptables-nft) still drops. flannel's nftables mode shares this limit.
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\t${proto} saddr ${network} accept comment "from the cluster network"`,
    `\t\t${proto} daddr ${network} accept comment "to the cluster network"`,
    '\t}',
    '}',
  ];
}

/**
 * Validates the spec: each family complete or absent, at least one present, every prefix of its
 * field's family and the pod subnet inside the cluster network. Returns each family's prefixes
 * in canonical network form (IPv4, IPv6), undefined for an absent family. Only text that parsed
 * as a prefix ever reaches the script.
 */
function checkSpec(spec: MasqueradeSpec): [FamilyPrefixes | undefined, FamilyPrefixes | undefined] {
  const [v4, v6] = FAMILY_RULES.map((rules) => checkFamily(spec, rules));
  if (v4 === undefined && v6 === undefined) {
    throw new InvalidArgumentError('masquerade spec', spec,
      'names no network: give clusterNetwork and podSubnet (IPv4), clusterNetworkV6 and podSubnetV6 (IPv6), or both pairs');
  }
  return [v4, v6];
}

function checkFamily(spec: MasqueradeSpec, rules: FamilyRules): FamilyPrefixes | undefined {
  const networkText = spec[rules.networkField];
  const podsText = spec[rules.podsField];
  if (networkText === undefined && podsText === undefined) return undefined;
  if (networkText === undefined) {
    throw new InvalidArgumentError(`masquerade ${rules.networkField}`, networkText, `missing: ${rules.podsField} is given, and ${rules.name} masquerading needs both`);
  }
  if (podsText === undefined) {
    throw new InvalidArgumentError(`masquerade ${rules.podsField}`, podsText, `missing: ${rules.networkField} is given, and ${rules.name} masquerading needs both`);
  }
  const network = familyNetwork(networkText, rules.networkField, rules);
  const pods = familyNetwork(podsText, rules.podsField, rules);
  if (!prefixContains(network, pods)) {
    throw new InvalidArgumentError(`masquerade ${rules.podsField}`, podsText, `is not inside the cluster network ${formatCidr(network)}`);
  }
  return { network: formatCidr(network), pods: formatCidr(pods) };
}

function familyNetwork(text: string, field: string, rules: FamilyRules): Cidr {
  const what = `masquerade ${field}`;
  const cidr = parseCidr(text, what);
  if (cidr.address.family !== rules.ipFamily) {
    const other = rules === IPV4 ? IPV6 : IPV4;
    const otherField = field === rules.networkField ? other.networkField : other.podsField;
    throw new InvalidArgumentError(what, text,
      `must be ${rules.name} (the table is of family ${rules.family}); an ${other.name} prefix goes in ${otherField}`);
  }
  return { address: networkOf(cidr), prefixLength: cidr.prefixLength };
}
