import { parseIp } from '../core/ip.js';
import { fail, integerField, type FieldGetter, type SubnetRange } from './config-fields.js';
import { bigIntToIpv6, blockSize6, bytesToBigInt, contains6, formatIpv6Prefix, parseIpv6Prefix, specialIpv6RangeOf, type Ipv6Prefix } from './ipv6.js';

/**
 * The IPv6 part of a dual-stack or IPv6-only network config, with flannel's rules and defaults
 * (pkg/subnet/config.go CheckNetworkConfig):
 *
 *   {"EnableIPv6": true, "IPv6Network": "fc00::/48", "IPv6SubnetLen": 64,
 *    "IPv6SubnetMin": "fc00:0:0:1::", "IPv6SubnetMax": "fc00:0:0:ffff::"}
 *
 * - IPv6SubnetLen defaults to /64 when IPv6Network is a /62 or shorter, otherwise to its length
 *   + 2; given, it must be at least 2 longer than IPv6Network ("the first subnet isn't used") and
 *   at most /126 (room for a gateway and pods). IPv6Network must therefore be a /124 or larger.
 * - IPv6SubnetMin defaults to the second subnet (the first is skipped, as for IPv4), IPv6SubnetMax
 *   to the last; both must lie on subnet boundaries inside IPv6Network.
 * Unlike flannel, IPv6Network must not be the default route, nor cover a special range or more
 * than a /8 (the same rules as Network, network-config.ts).
 */

/** flannel: "Minimum useful network prefix is /124"; subnets at most /126. */
const MAX_NETWORK_LEN = 124;
const MAX_SUBNET_LEN = 126;

function refuseDangerousNetwork(network: Ipv6Prefix, text: string): void {
  if (network.length === 0) fail('IPv6Network', text, 'is the default route ::/0: pod routes inside it would replace the hosts\' own routes');
  const special = specialIpv6RangeOf(network);
  if (special !== undefined) fail('IPv6Network', text, `overlaps ${special}, which cannot hold pod addresses`);
  if (network.length < 8) fail('IPv6Network', text, 'is shorter than /8: that much of the address space cannot be a pod network without covering the hosts\' own networks');
}

function subnetBound(value: unknown, field: string, network: Ipv6Prefix, subnetLen: number): bigint {
  if (typeof value !== 'string') fail(field, value, 'must be an IPv6 address string such as "fc00:0:0:1::"');
  let ip: bigint;
  try {
    const parsed = parseIp(value);
    if (parsed.family !== 6) throw new Error('not IPv6');
    ip = bytesToBigInt(parsed.bytes);
  } catch {
    fail(field, value, 'is not an IPv6 address');
  }
  if (ip % blockSize6(subnetLen) !== 0n) fail(field, value, `is not on a /${subnetLen} subnet boundary`);
  if (!contains6(network, { base: ip, length: subnetLen })) fail(field, value, `is outside IPv6Network ${formatIpv6Prefix(network)}`);
  return ip;
}

/** Parses and validates the IPv6 fields of a config whose EnableIPv6 is true. */
export function parseIpv6Part(get: FieldGetter): SubnetRange {
  const text = get('IPv6Network');
  if (text === undefined) fail('IPv6Network', undefined, 'is required when EnableIPv6 is true, e.g. "fc00::/48"');
  if (typeof text !== 'string') fail('IPv6Network', text, 'must be a string such as "fc00::/48"');
  const network = parseIpv6Prefix(text, 'network config IPv6Network');
  if (network.length > MAX_NETWORK_LEN) fail('IPv6Network', text, `must be a /${MAX_NETWORK_LEN} or larger`);
  refuseDangerousNetwork(network, text);

  const defaultLen = network.length <= 62 ? 64 : network.length + 2;
  const lenValue = get('IPv6SubnetLen');
  const subnetLen = lenValue === undefined ? defaultLen : integerField(lenValue, 'IPv6SubnetLen', network.length + 2, MAX_SUBNET_LEN);
  const size = blockSize6(subnetLen);
  const lastSubnet = network.base + blockSize6(network.length) - size;

  const minValue = get('IPv6SubnetMin');
  const maxValue = get('IPv6SubnetMax');
  const subnetMin = minValue === undefined ? network.base + size : subnetBound(minValue, 'IPv6SubnetMin', network, subnetLen);
  const subnetMax = maxValue === undefined ? lastSubnet : subnetBound(maxValue, 'IPv6SubnetMax', network, subnetLen);
  if (subnetMin > subnetMax) fail('IPv6SubnetMin', bigIntToIpv6(subnetMin), `is above IPv6SubnetMax ${bigIntToIpv6(subnetMax)}`);

  return Object.freeze({
    network: formatIpv6Prefix(network),
    subnetLen,
    subnetMin: formatIpv6Prefix({ base: subnetMin, length: subnetLen }),
    subnetMax: formatIpv6Prefix({ base: subnetMax, length: subnetLen }),
  });
}
