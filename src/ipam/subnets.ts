import { blockSize, contains, formatIpv4Prefix, parseIpv4Prefix } from './ipv4.js';
import type { NetworkConfig } from './network-config.js';

/** How many free subnets the pick chooses among, like flannel (pkg/subnet/etcd/local_manager.go). */
export const PICK_WINDOW = 100;

/**
 * True when `subnet` is a subnet this configuration could lease: the right length, inside the
 * network, between SubnetMin and SubnetMax. A lease that no longer fits (the config changed) is
 * given up rather than reused.
 */
export function subnetFits(config: NetworkConfig, subnet: string): boolean {
  let p;
  try {
    p = parseIpv4Prefix(subnet, 'subnet');
  } catch {
    return false;
  }
  const min = parseIpv4Prefix(config.subnetMin, 'SubnetMin');
  const max = parseIpv4Prefix(config.subnetMax, 'SubnetMax');
  return p.length === config.subnetLen && contains(parseIpv4Prefix(config.network, 'Network'), p) && p.base >= min.base && p.base <= max.base;
}

/**
 * Picks a free subnet: walk upward from SubnetMin, collect the first PICK_WINDOW free ones and
 * choose one at random, so agents starting together rarely race for the same key (and a lost race
 * is retried anyway). Returns undefined when the range is exhausted.
 */
export function pickFreeSubnet(config: NetworkConfig, taken: ReadonlySet<string>, random: () => number = Math.random): string | undefined {
  const min = parseIpv4Prefix(config.subnetMin, 'SubnetMin');
  const max = parseIpv4Prefix(config.subnetMax, 'SubnetMax');
  const step = blockSize(config.subnetLen);
  const free: string[] = [];
  for (let base = min.base; base <= max.base && free.length < PICK_WINDOW; base += step) {
    const subnet = formatIpv4Prefix({ base, length: config.subnetLen });
    if (!taken.has(subnet)) free.push(subnet);
  }
  if (free.length === 0) return undefined;
  return free[Math.floor(random() * free.length)];
}
