import { InvalidArgumentError } from '../core/errors.js';
import { lazyCrypto } from '../core/lazy-builtins.js';
import { formatCidr, parseIp, parsePrefix, type IpFamily } from '../core/ip.js';
import { NftError } from './errors.js';
import { Nft, type NftOptions } from './nft.js';
import { masqueradeFamilyRules, type MasqueradeFamilyRules } from './script.js';

/**
 * The CNI plugin's own table, apart from the agent's `twill` (either may exist without the
 * other): `ip twill-cni` for IPv4 pods, `ip6 twill-cni` for IPv6 ones.
 */
export const POD_MASQ_TABLE = 'twill-cni';
const PODS_SET = 'masq-pods';
const SUBNETS_SET = 'pod-subnets';
const NETWORKS_SET = 'cluster-networks';
/** The families with a table, IPv4 first: the order of every script's sections. */
const IP_FAMILIES: readonly IpFamily[] = [4, 6];

/** How PodMasquerade reaches nft. */
export type PodMasqueradeOptions = NftOptions;

/** One address of a pod to masquerade, with its family's pod subnet and cluster network. */
export interface PodMasqueradeAddress {
  /** The pod's address, e.g. "10.244.3.5" or "fd00:10:244:3::5". */
  readonly ip: string;
  /** This host's pod subnet of the address's family, e.g. "10.244.3.0/24". */
  readonly subnet: string;
  /** The cluster network of the address's family, e.g. "10.244.0.0/16". */
  readonly clusterNetwork: string;
}

/** One pod in the masquerade set, with the owner tag its ADD gave it (none from older versions). */
export interface MasqueradedPod {
  readonly address: string;
  readonly owner: string | undefined;
}

/** nft stores element comments of up to 128 bytes. */
const MAX_OWNER_LENGTH = 128;

/**
 * The owner tag of a pod's element: the address store that holds the pod's address (the CNI
 * network's directory under the plugin's dataDir). A GC removes only its own store's elements, so
 * one run with another (or an unknown) dataDir never touches other pods' masquerading. The
 * network's name stays readable; the hash (of both) keeps the tag unique and short.
 */
export function podMasqueradeOwner(dataDir: string, network: string): string {
  const hash = lazyCrypto().createHash('sha256').update(`${dataDir}\n${network}`).digest('hex').slice(0, 16);
  return `${network.slice(0, 96)} ${hash}`;
}

/**
 * Per-pod masquerading for the CNI plugin's `ipMasq` (what the reference bridge plugin does with
 * one iptables chain per container): traffic from a listed pod to anywhere outside the pod
 * subnets of this host and the cluster network (and not multicast) leaves with the host's
 * address. Pods on other hosts see a pod's own address: Kubernetes' network model has no NAT
 * between pods, where the bridge plugin (and flannel's, which delegates to it) masquerades all
 * but the local subnet. Each address family has a table of the same shape, `ip twill-cni` and
 * `ip6 twill-cni` (as twilld's `ip twill` and `ip6 twill`), and a dual-stack pod is an element of
 * both. Pods are elements of one set per family, so ADD and DEL are one small nft transaction
 * each (both families in the same one), and DEL needs only the addresses, which IPAM returns even
 * when the pod's namespace is gone (the leak of plugins#810). Each element carries its owner (the
 * allocator that holds the address) as its comment, so a GC of one address store only ever
 * removes that store's elements.
 */
export class PodMasquerade {
  private readonly nft: Nft;

  constructor(opts: PodMasqueradeOptions = {}) {
    this.nft = new Nft(opts);
  }

  /**
   * Masquerades `podIp` (of the pod subnet `subnet`, in the cluster network `clusterNetwork`, all
   * three of one family), tagged with `owner`; idempotent, and creates the table as needed.
   */
  async add(podIp: string, subnet: string, clusterNetwork: string, owner?: string): Promise<void> {
    await this.addPod([{ ip: podIp, subnet, clusterNetwork }], owner);
  }

  /**
   * Masquerades every address of a pod (a dual-stack pod's IPv4 and IPv6 ones), each in its
   * family's table, tagged with `owner`: one transaction, idempotent, creating the tables as needed.
   */
  async addPod(addresses: readonly PodMasqueradeAddress[], owner?: string): Promise<void> {
    const checked = addresses.map(checkAddress);
    if (owner !== undefined && (owner.length > MAX_OWNER_LENGTH || !/^[\w .@/:=-]*$/.test(owner))) {
      throw new NftError({ command: 'nft', exitCode: null, stderr: '', problem: `owner tag ${JSON.stringify(owner)} must be up to ${MAX_OWNER_LENGTH} plain characters` });
    }
    if (checked.length === 0) return;
    const comment = owner === undefined ? '' : ` comment "${owner}"`;
    const script = IP_FAMILIES.flatMap((ipFamily) => {
      const mine = checked.filter((a) => a.family === ipFamily);
      if (mine.length === 0) return [];
      const rules = masqueradeFamilyRules(ipFamily);
      const t = `${rules.family} ${POD_MASQ_TABLE}`;
      const { proto } = rules;
      // The skeleton (add = create if missing), the rule rewritten in place (so repeating it
      // never duplicates it), then the elements.
      return [
        `add table ${t}`,
        podsSet(rules),
        `add set ${t} ${SUBNETS_SET} { type ${addrType(rules)}; flags interval; comment "this host's pod subnets"; }`,
        `add set ${t} ${NETWORKS_SET} { type ${addrType(rules)}; flags interval; comment "cluster networks: pod to pod keeps its source"; }`,
        `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
        `flush chain ${t} postrouting`,
        `add rule ${t} postrouting ${proto} saddr @${PODS_SET} ${proto} daddr != @${SUBNETS_SET} ${proto} daddr != @${NETWORKS_SET} ${proto} daddr != ${rules.multicast} masquerade comment "twill CNI ipMasq"`,
        `add element ${t} ${SUBNETS_SET} { ${unique(mine.map((a) => a.subnet)).join(', ')} }`,
        `add element ${t} ${NETWORKS_SET} { ${unique(mine.map((a) => a.clusterNetwork)).join(', ')} }`,
        `add element ${t} ${PODS_SET} { ${unique(mine.map((a) => a.ip)).map((ip) => `${ip}${comment}`).join(', ')} }`,
      ];
    });
    await this.nft.run(['-f', '-'], [...script, ''].join('\n'));
  }

  /** Stops masquerading these addresses (of either family); absent ones (or an absent table) are fine. */
  async remove(podIps: readonly string[]): Promise<void> {
    if (podIps.length === 0) return;
    const ips = podIps.map((p) => parseIp(p, 'pod IP'));
    // nft 1.0.6 (Debian 12) has no "destroy element": add-then-delete in one transaction deletes
    // whether or not the element was there; the table and set are created if missing, which is
    // harmless (no rule, no effect) and keeps the script valid.
    const script = IP_FAMILIES.flatMap((ipFamily) => {
      const mine = unique(ips.filter((ip) => ip.family === ipFamily).map((ip) => ip.text)).join(', ');
      if (mine === '') return [];
      const rules = masqueradeFamilyRules(ipFamily);
      const t = `${rules.family} ${POD_MASQ_TABLE}`;
      return [`add table ${t}`, podsSet(rules), `add element ${t} ${PODS_SET} { ${mine} }`, `delete element ${t} ${PODS_SET} { ${mine} }`];
    });
    await this.nft.run(['-f', '-'], [...script, ''].join('\n'));
  }

  /** The masqueraded pods of both families, IPv4 first; none of a family whose table does not exist. */
  async list(): Promise<MasqueradedPod[]> {
    const pods: MasqueradedPod[] = [];
    for (const ipFamily of IP_FAMILIES) pods.push(...await this.listFamily(masqueradeFamilyRules(ipFamily)));
    return pods;
  }

  private async listFamily(rules: MasqueradeFamilyRules): Promise<MasqueradedPod[]> {
    const args = ['-j', 'list', 'set', rules.family, POD_MASQ_TABLE, PODS_SET];
    const result = await this.nft.run(args, undefined, true);
    if (result.code !== 0) {
      if (/No such file or directory|does not exist/i.test(result.stderr)) return [];
      throw this.nft.failure(args, result);
    }
    return this.nft.parse(args, result, (stdout) => {
      const parsed = JSON.parse(stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
      const set = parsed.nftables.find((x) => x.set)?.set;
      return (set?.elem ?? []).flatMap(masqueradedPod);
    }, 'unexpected output: ');
  }
}

/** A validated address: every part parsed, of one family, in canonical text (all that reaches nft). */
interface CheckedAddress {
  readonly family: IpFamily;
  readonly ip: string;
  readonly subnet: string;
  readonly clusterNetwork: string;
}

function checkAddress(a: PodMasqueradeAddress): CheckedAddress {
  const ip = parseIp(a.ip, 'pod IP');
  const net = parsePrefix(a.subnet, 'pod subnet');
  const cluster = parsePrefix(a.clusterNetwork, 'cluster network');
  for (const [what, text, cidr] of [['pod subnet', a.subnet, net], ['cluster network', a.clusterNetwork, cluster]] as const) {
    if (cidr.address.family !== ip.family) {
      throw new InvalidArgumentError(what, text,
        `is IPv${cidr.address.family} but the pod IP ${ip.text} is IPv${ip.family}: an address is masqueraded with its own family's pod subnet and cluster network`);
    }
  }
  return { family: ip.family, ip: ip.text, subnet: formatCidr(net), clusterNetwork: formatCidr(cluster) };
}

function addrType(rules: MasqueradeFamilyRules): string {
  return `ipv${rules.ipFamily}_addr`;
}

function podsSet(rules: MasqueradeFamilyRules): string {
  return `add set ${rules.family} ${POD_MASQ_TABLE} ${PODS_SET} { type ${addrType(rules)}; comment "pods whose CNI config has ipMasq"; }`;
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

/** An element of `nft -j list set`: "10.244.3.5", or { elem: { val, comment } } with a comment. */
function masqueradedPod(e: unknown): MasqueradedPod[] {
  if (typeof e === 'string') return [{ address: canonical(e), owner: undefined }];
  const inner = (e as { elem?: { val?: unknown; comment?: unknown } } | null)?.elem;
  if (typeof inner?.val !== 'string') return [];
  return [{ address: canonical(inner.val), owner: typeof inner.comment === 'string' ? inner.comment : undefined }];
}

/** An address as IPAM writes it (RFC 5952 for IPv6), so a GC compares like with like. */
function canonical(address: string): string {
  try {
    return parseIp(address).text;
  } catch {
    return address;
  }
}
