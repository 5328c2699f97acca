import { InvalidArgumentError } from '../core/errors.js';
import { formatCidr, networkOf, parseCidr, prefixContains, type Cidr } from '../core/ip.js';

/**
 * The nft scripts behind Twill's masquerading: flannel's iptables rules (FLANNEL-POSTRTG in nat,
 * FLANNEL-FWD in filter; flannel.md §4), expressed as one nftables table that Twill owns whole.
 * Pure: rendering here, running in masquerade.ts.
 */

/** The one table Twill owns. Family `ip`: the rules are IPv4, like the rest of Twill. */
export const TABLE_FAMILY = 'ip';
export const TABLE_NAME = 'twill';

/** kube-proxy marks packets it wants masqueraded with this bit, and masquerades them itself. */
export const KUBE_PROXY_MASQ_MARK = 0x4000;

/** Multicast (224.0.0.0/4) is never masqueraded: it is not routed anywhere a reply could return from. */
const IPV4_MULTICAST = '224.0.0.0/4';

export interface MasqueradeSpec {
  /** The cluster network, e.g. "10.244.0.0/16". */
  readonly clusterNetwork: string;
  /** This host's pod subnet (its lease), e.g. "10.244.3.0/24"; host bits ("10.244.3.1/24") are ignored. */
  readonly podSubnet: string;
}

/**
 * Replaces the table atomically. nft runs a whole input as one transaction, so the script first
 * makes sure the table exists (`table ... {}` is a no-op when it does), deletes it, and defines
 * it again: the kernel swaps old rules for new in one commit, with no moment without rules, and
 * the first apply needs no special case.
 */
export function renderMasqueradeScript(spec: MasqueradeSpec): string {
  const { network, pods } = checkSpec(spec);
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const mark = `0x${KUBE_PROXY_MASQ_MARK.toString(16).padStart(8, '0')}`;
  return [
    '# Twill masquerading (flannel\'s FLANNEL-POSTRTG and FLANNEL-FWD). Generated: replaced as a whole.',
    `table ${t} {}`,
    `delete table ${t}`,
    `table ${t} {`,
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    `\t\tmeta mark & ${mark} == ${mark} return comment "kube-proxy masquerades what it marked"`,
    `\t\tip saddr ${pods} ip daddr ${network} return comment "pod to cluster: keep the pod address"`,
    `\t\tip saddr ${network} ip daddr ${pods} return comment "cluster to this host's pods: keep the source"`,
    `\t\tip saddr != ${network} ip daddr ${pods} return comment "outside to this host's pods: keep the source"`,
    `\t\tip saddr ${network} ip daddr != ${IPV4_MULTICAST} masquerade fully-random comment "pods to outside"`,
    `\t\tip saddr != ${network} ip daddr ${network} masquerade fully-random comment "outside to other hosts' pods"`,
    '\t}',
    // Accepts only end this base chain: a drop in another table's forward chain (Docker's iptables
    // FORWARD policy, under iptables-nft) still drops. flannel's nftables mode shares this limit.
    '\tchain forward {',
    '\t\ttype filter hook forward priority filter; policy accept;',
    `\t\tip saddr ${network} accept comment "from the cluster network"`,
    `\t\tip daddr ${network} accept comment "to the cluster network"`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** Deletes the table if it exists, in one transaction: no error when it is absent. */
export function renderRemoveScript(): string {
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  return `table ${t} {}\ndelete table ${t}\n`;
}

/** Validates the spec and returns both prefixes in canonical network form. */
function checkSpec(spec: MasqueradeSpec): { network: string; pods: string } {
  const network = ipv4Network(spec.clusterNetwork, 'masquerade clusterNetwork');
  const pods = ipv4Network(spec.podSubnet, 'masquerade podSubnet');
  if (!prefixContains(network, pods)) {
    throw new InvalidArgumentError('masquerade podSubnet', spec.podSubnet, `is not inside the cluster network ${formatCidr(network)}`);
  }
  return { network: formatCidr(network), pods: formatCidr(pods) };
}

function ipv4Network(text: string, what: string): Cidr {
  const cidr = parseCidr(text, what);
  if (cidr.address.family !== 4) throw new InvalidArgumentError(what, text, 'must be IPv4 (the table is of family ip)');
  return { address: networkOf(cidr), prefixLength: cidr.prefixLength };
}
