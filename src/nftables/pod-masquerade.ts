import { createHash } from 'node:crypto';
import { parseIp, parsePrefix } from '../core/ip.js';
import { NftError } from './errors.js';
import { Nft, type NftOptions } from './nft.js';

/** The CNI plugin's own table, apart from the agent's `ip twill` (either may exist without the other). */
export const POD_MASQ_TABLE = 'twill-cni';
const FAMILY = 'ip';
const PODS_SET = 'masq-pods';
const SUBNETS_SET = 'pod-subnets';
const NETWORKS_SET = 'cluster-networks';

/** How PodMasquerade reaches nft. */
export type PodMasqueradeOptions = NftOptions;

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
  const hash = createHash('sha256').update(`${dataDir}\n${network}`).digest('hex').slice(0, 16);
  return `${network.slice(0, 96)} ${hash}`;
}

/**
 * Per-pod masquerading for the CNI plugin's `ipMasq` (what the reference bridge plugin does with
 * one iptables chain per container): traffic from a listed pod to anywhere outside the pod
 * subnets of this host and the cluster network (and not multicast) leaves with the host's
 * address. Pods on other hosts see a pod's own address: Kubernetes' network model has no NAT
 * between pods, where the bridge plugin (and flannel's, which delegates to it) masquerades all
 * but the local subnet. Pods are elements of
 * one set, so ADD and DEL are one small nft transaction each, and DEL needs only the address,
 * which IPAM returns even when the pod's namespace is gone (the leak of plugins#810). Each element
 * carries its owner (the allocator that holds the address) as its comment, so a GC of one address
 * store only ever removes that store's elements.
 */
export class PodMasquerade {
  private readonly nft: Nft;

  constructor(opts: PodMasqueradeOptions = {}) {
    this.nft = new Nft(opts);
  }

  /**
   * Masquerades `podIp` (of the pod subnet `subnet`, in the cluster network `clusterNetwork`),
   * tagged with `owner`; idempotent, and creates the table as needed.
   */
  async add(podIp: string, subnet: string, clusterNetwork: string, owner?: string): Promise<void> {
    const ip = parseIp(podIp, 'pod IP');
    const net = parsePrefix(subnet, 'pod subnet');
    const cluster = parsePrefix(clusterNetwork, 'cluster network');
    if (ip.family !== 4 || net.address.family !== 4 || cluster.address.family !== 4) throw new NftError({ command: 'nft', exitCode: null, stderr: '', problem: 'IPv4 only' });
    if (owner !== undefined && (owner.length > MAX_OWNER_LENGTH || !/^[\w .@/:=-]*$/.test(owner))) {
      throw new NftError({ command: 'nft', exitCode: null, stderr: '', problem: `owner tag ${JSON.stringify(owner)} must be up to ${MAX_OWNER_LENGTH} plain characters` });
    }
    // One transaction: the skeleton (add = create if missing), the rule rewritten in place (so
    // repeating it never duplicates it), then the elements.
    const script = [
      `add table ${FAMILY} ${POD_MASQ_TABLE}`,
      `add set ${FAMILY} ${POD_MASQ_TABLE} ${PODS_SET} { type ipv4_addr; comment "pods whose CNI config has ipMasq"; }`,
      `add set ${FAMILY} ${POD_MASQ_TABLE} ${SUBNETS_SET} { type ipv4_addr; flags interval; comment "this host's pod subnets"; }`,
      `add set ${FAMILY} ${POD_MASQ_TABLE} ${NETWORKS_SET} { type ipv4_addr; flags interval; comment "cluster networks: pod to pod keeps its source"; }`,
      `add chain ${FAMILY} ${POD_MASQ_TABLE} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
      `flush chain ${FAMILY} ${POD_MASQ_TABLE} postrouting`,
      `add rule ${FAMILY} ${POD_MASQ_TABLE} postrouting ip saddr @${PODS_SET} ip daddr != @${SUBNETS_SET} ip daddr != @${NETWORKS_SET} ip daddr != 224.0.0.0/4 masquerade comment "twill CNI ipMasq"`,
      `add element ${FAMILY} ${POD_MASQ_TABLE} ${SUBNETS_SET} { ${subnet} }`,
      `add element ${FAMILY} ${POD_MASQ_TABLE} ${NETWORKS_SET} { ${clusterNetwork} }`,
      `add element ${FAMILY} ${POD_MASQ_TABLE} ${PODS_SET} { ${ip.text}${owner === undefined ? '' : ` comment "${owner}"`} }`,
      '',
    ].join('\n');
    await this.nft.run(['-f', '-'], script);
  }

  /** Stops masquerading these addresses; absent ones (or an absent table) are fine. */
  async remove(podIps: readonly string[]): Promise<void> {
    if (podIps.length === 0) return;
    const ips = podIps.map((p) => parseIp(p, 'pod IP').text).join(', ');
    // nft 1.0.6 (Debian 12) has no "destroy element": add-then-delete in one transaction deletes
    // whether or not the element was there; the table and set are created if missing, which is
    // harmless (no rule, no effect) and keeps the script valid.
    const script = [
      `add table ${FAMILY} ${POD_MASQ_TABLE}`,
      `add set ${FAMILY} ${POD_MASQ_TABLE} ${PODS_SET} { type ipv4_addr; comment "pods whose CNI config has ipMasq"; }`,
      `add element ${FAMILY} ${POD_MASQ_TABLE} ${PODS_SET} { ${ips} }`,
      `delete element ${FAMILY} ${POD_MASQ_TABLE} ${PODS_SET} { ${ips} }`,
      '',
    ].join('\n');
    await this.nft.run(['-f', '-'], script);
  }

  /** The masqueraded pods; [] when the table does not exist. */
  async list(): Promise<MasqueradedPod[]> {
    const args = ['-j', 'list', 'set', FAMILY, POD_MASQ_TABLE, PODS_SET];
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

/** An element of `nft -j list set`: "10.244.3.5", or { elem: { val, comment } } with a comment. */
function masqueradedPod(e: unknown): MasqueradedPod[] {
  if (typeof e === 'string') return [{ address: e, owner: undefined }];
  const inner = (e as { elem?: { val?: unknown; comment?: unknown } } | null)?.elem;
  if (typeof inner?.val !== 'string') return [];
  return [{ address: inner.val, owner: typeof inner.comment === 'string' ? inner.comment : undefined }];
}
