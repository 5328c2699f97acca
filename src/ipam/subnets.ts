import { formatIp, parsePrefix, type IpFamily } from '../core/ip.js';
import { bigIntToBytes, bytesToBigInt } from './ipv6.js';
import { hasIpv4, type NetworkConfig, type SubnetRange } from './network-config.js';

/** How many free subnets the pick chooses among, like flannel (pkg/subnet/etcd/local_manager.go). */
export const PICK_WINDOW = 100;

/** The network config's range of one family, or undefined when that family is not enabled. */
export function familyRange(config: NetworkConfig, family: IpFamily): SubnetRange | undefined {
  if (family === 6) return config.ipv6;
  return hasIpv4(config) ? config : undefined;
}

/** A prefix as family, 32- or 128-bit integer and length; one code path carves both families. */
interface Prefix {
  readonly family: IpFamily;
  readonly base: bigint;
  readonly length: number;
}

const bitsOf = (family: IpFamily): bigint => (family === 4 ? 32n : 128n);

function prefixOf(text: string): Prefix | undefined {
  try {
    const cidr = parsePrefix(text, 'subnet');
    return { family: cidr.address.family, base: bytesToBigInt(cidr.address.bytes), length: cidr.prefixLength };
  } catch {
    return undefined;
  }
}

function formatPrefix(family: IpFamily, base: bigint, length: number): string {
  return `${formatIp(bigIntToBytes(base, family === 4 ? 4 : 16))}/${length}`;
}

/** `range` with its prefixes parsed (the config parser validated them). */
function carve(range: SubnetRange): { readonly network: Prefix; readonly subnetLen: number; readonly min: bigint; readonly max: bigint } {
  return { network: prefixOf(range.network)!, subnetLen: range.subnetLen, min: prefixOf(range.subnetMin)!.base, max: prefixOf(range.subnetMax)!.base };
}

/**
 * True when `subnet` (IPv4, or IPv6 checked against the config's IPv6 part) is a subnet this
 * configuration could lease: that family enabled, the right length, inside the network, between
 * SubnetMin and SubnetMax. A lease that no longer fits (the config changed) is given up rather
 * than reused.
 */
export function subnetFits(config: NetworkConfig, subnet: string): boolean {
  const p = prefixOf(subnet);
  const range = p && familyRange(config, p.family);
  if (p === undefined || range === undefined) return false;
  const { network, subnetLen, min, max } = carve(range);
  const hostBits = bitsOf(p.family) - BigInt(network.length);
  return p.length === subnetLen && p.base >> hostBits === network.base >> hostBits && p.base >= min && p.base <= max;
}

/**
 * Picks a free subnet of `range`: walk upward from SubnetMin, collect the first PICK_WINDOW free
 * ones and choose one at random, so agents starting together rarely race for the same key (and a
 * lost race is retried anyway). Returns undefined when the range is exhausted.
 */
function pickIn(range: SubnetRange, taken: ReadonlySet<string>, random: () => number): string | undefined {
  const { network, subnetLen, min, max } = carve(range);
  const step = 1n << (bitsOf(network.family) - BigInt(subnetLen));
  const free: string[] = [];
  for (let base = min; base <= max && free.length < PICK_WINDOW; base += step) {
    const subnet = formatPrefix(network.family, base, subnetLen);
    if (!taken.has(subnet)) free.push(subnet);
  }
  if (free.length === 0) return undefined;
  return free[Math.floor(random() * free.length)];
}

/** A free IPv4 subnet (see pickIn); undefined when none is left, or the config has no IPv4. */
export function pickFreeSubnet(config: NetworkConfig, taken: ReadonlySet<string>, random: () => number = Math.random): string | undefined {
  const range = familyRange(config, 4);
  return range && pickIn(range, taken, random);
}

/** A free IPv6 subnet, picked as flannel picks it: apart from the IPv4 one, among the first 100 free. */
export function pickFreeIpv6Subnet(config: NetworkConfig, taken: ReadonlySet<string>, random: () => number = Math.random): string | undefined {
  const range = familyRange(config, 6);
  return range && pickIn(range, taken, random);
}
