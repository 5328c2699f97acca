/**
 * Reading a lease key name the way flannel reads it (pkg/subnet/subnet.go ParseSubnetKey), and
 * saying why a name is refused. Key names come from etcd, i.e. from anyone with write access:
 * parsing never throws, it returns a reason instead, so one stray key cannot stop a listing or a
 * watch.
 *
 * flannel matches `subnetRegex` against the key and then parses the parts with Go's net.ParseIP
 * and strconv.ParseUint. What that accepts, and what Twill does with it:
 *
 *   10.244.3.0-24                         IPv4 lease                          a lease
 *   10.244.3.0-24&fc00:0:0:3::-64         dual-stack lease                    a lease with both subnets
 *   0.0.0.0-0&fc00:0:0:3::-64             IPv6-only lease (flannel's empty    a lease, subnet NO_IPV4_SUBNET
 *                                         IP4Net, written by MakeSubnetKey)
 *   10.244.3.0-024, ...&fc00:0:0:3:0:0:0:0-64   non-canonical numbers     a lease (canonical subnets)
 *   10.244.3.5-24, ...&fc00::5-64         host bits set (flannel keeps them)  malformed, subnets taken
 *   x10.244.3.0-24, a/10.244.3.0-24       text before the subnet (the regex   malformed, subnets taken
 *                                         is not anchored at the start)
 *   10.244.3.0-32, ...&fc00::-128         length past ParseUint's 5 / 7 bits  malformed (flannel skips it)
 *   10.244.3.0-24&FC00::-64, ...&::ffff:1.2.3.4-120   upper case, dotted  malformed (the regex fails)
 *   10.244.3.0-24&garbage, 300.1.2.0-24   anything else                       malformed
 *
 * "Taken" means the subnets stay unavailable to Twill's own pick while the key exists: flannel
 * honours the key, so Twill must not hand its subnets to another host; it just does not route it.
 * A refused name that starts with a valid "<a.b.c.d>-<len>" before "&" keeps that IPv4 subnet taken
 * too, even where flannel skips the key: creating a key for that subnet checks every key that starts
 * so (create-conditions.ts), and a pick that did not avoid it would lose that check forever.
 */
import { formatCidr, networkOf, parseCidr, parseIp, parseIpv4Value, plainIpv4IsNetwork, plainIpv4Length, readPlainIpv4Prefix, type IpAddress } from '../core/ip.js';

/** flannel's subnetRegex, verbatim (note the unescaped dots and the missing "^"). */
export const FLANNEL_SUBNET_REGEX = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

/**
 * The IPv4 "subnet" of an IPv6-only lease: flannel's empty IP4Net, which MakeSubnetKey writes as
 * "0.0.0.0-0" before the "&". flannel has no IPv6-only etcd mode of its own (PR #1539: kube subnet
 * manager only), but that is the key its code writes for one (local_manager.go allocateSubnet
 * leaves the IP4Net empty) with PublicIP "0.0.0.0", and it is the only IPv6-only form its
 * subnetRegex reads at all, since the regex requires an IPv4 part. Twill writes and reads that
 * form, never routes its 0.0.0.0/0 (the lease screen refuses the length), and never takes a lease
 * by the shared PublicIP 0.0.0.0 (flannel's findLeaseByIP would).
 */
export const NO_IPV4_SUBNET = '0.0.0.0/0';

/** The subnets a lease key names. */
export interface LeaseSubnets {
  /** "10.244.3.0/24"; NO_IPV4_SUBNET in an IPv6-only lease. */
  readonly subnet: string;
  /** "fc00:0:0:3::/64" in a dual-stack or IPv6-only lease. */
  readonly ipv6Subnet?: string | undefined;
}

/** A refused name carries the subnets flannel reads from it, if any: they stay taken. */
export type KeyNameParse = ({ readonly ok: true } & LeaseSubnets) | ({ readonly ok: false; readonly reason: string } & Partial<LeaseSubnets>);

/** Go's strconv.ParseUint(text, 10, bits) on regex-checked digits: the value, or undefined when it overflows. */
function parseUintBits(text: string, bits: number): number | undefined {
  const value = Number(text);
  return value < 2 ** bits ? value : undefined;
}

function canonicalNetwork(address: string, length: number): string {
  const cidr = parseCidr(`${address}/${length}`);
  return formatCidr({ address: networkOf(cidr), prefixLength: length });
}

/** What flannel's ParseSubnetKey returns for `name`, with host bits cleared; undefined when it returns nil. */
function flannelReading(name: string): LeaseSubnets | undefined {
  const m = FLANNEL_SUBNET_REGEX.exec(name);
  if (!m) return undefined;
  const [, v4, len4Text, v6, len6Text] = m;
  const len4 = parseUintBits(len4Text!, 5);
  // net.ParseIP takes canonical dotted quads only (no leading zeros since Go 1.17), as parseIpv4Value.
  if (parseIpv4Value(v4!) < 0 || len4 === undefined) return undefined;
  const subnet = canonicalNetwork(v4!, len4);
  if (v6 === undefined) return { subnet };
  const len6 = parseUintBits(len6Text!, 7);
  let family: number;
  try {
    family = parseIp(v6).family;
  } catch {
    return undefined;
  }
  if (family !== 6 || len6 === undefined) return undefined;
  return { subnet, ipv6Subnet: canonicalNetwork(v6, len6) };
}

/**
 * Why "<address>-<length>" of one family is not as Twill writes it, or undefined when it is; said
 * of the part ("is not ...", "has ..."), so that it reads after the key name or the IPv6 part.
 */
function partProblem(part: string, family: 4 | 6): string | undefined {
  const dash = part.lastIndexOf('-');
  if (dash <= 0) return 'is not <address>-<length>';
  const address = part.slice(0, dash);
  const lengthText = part.slice(dash + 1);
  let ip: IpAddress;
  try {
    ip = parseIp(address);
  } catch {
    return family === 4 ? `is not a subnet: "${address}" is not an IPv4 address` : 'is not an IPv6 prefix';
  }
  if (ip.family !== family) return family === 4 ? 'is not an IPv4 prefix (a lease key starts with its IPv4 subnet)' : 'is not an IPv6 prefix';
  if (family === 6 && !/^[a-f\d:]+$/.test(address)) return 'is written with upper-case hex or a dotted quad, which flannel\'s subnetRegex does not read';
  const bits = family === 4 ? 5 : 7;
  const length = /^\d+$/.test(lengthText) ? parseUintBits(lengthText, bits) : undefined;
  if (length === undefined) return `has prefix length "${lengthText}": flannel reads only 0..${2 ** bits - 1} (${bits} bits)`;
  const network = networkOf({ address: ip, prefixLength: length });
  if (!network.bytes.equals(ip.bytes)) return `has host bits set (the network is ${formatCidr({ address: network, prefixLength: length })})`;
  return undefined;
}

/** Why Twill refuses `name` as a lease key, or undefined when it takes it. */
function strictProblem(name: string): string | undefined {
  // A nested key ("subnets/a/b") is not a lease: flannel never writes one.
  if (name.includes('/')) return 'contains "/"';
  const parts = name.split('&');
  if (parts.length > 2) return 'has more than one "&"';
  const v4 = partProblem(parts[0]!, 4);
  if (v4 !== undefined || parts.length === 1) return v4;
  const v6 = partProblem(parts[1]!, 6);
  return v6 === undefined ? undefined : `has a bad IPv6 part "${parts[1]!}", which ${v6}`;
}

/** "10.244.3.0/24", "10.244.3.0/24 and fc00:0:0:3::/64" or (IPv6-only) "fc00:0:0:3::/64", for messages. */
export function describeSubnets(s: LeaseSubnets): string {
  if (s.ipv6Subnet === undefined) return s.subnet;
  return s.subnet === NO_IPV4_SUBNET ? s.ipv6Subnet : `${s.subnet} and ${s.ipv6Subnet}`;
}

/**
 * "10.244.3.0-24" -> 10.244.3.0/24; "10.5.52.0-24&fc00::-64" -> 10.5.52.0/24 and fc00::/64.
 * Never throws (see the table above).
 */
export function parseSubnetKeyName(name: string): KeyNameParse {
  const plain = plainIpv4KeySubnet(name);
  return plain === undefined ? parseAnySubnetKeyName(name) : { ok: true, subnet: plain };
}

/** The general reading of any key name (plainIpv4KeySubnet reads the common one faster); exported for the test that compares the two. */
export function parseAnySubnetKeyName(name: string): KeyNameParse {
  const problem = strictProblem(name);
  const read = flannelReading(name);
  // A name Twill accepts is one flannel's regex reads from its first character, to the same subnets.
  if (problem === undefined && read !== undefined) return { ok: true, ...read };
  const reason = `key name "${name}" ${problem ?? 'is not a lease key flannel can read'}`;
  if (read !== undefined) return { ok: false, reason: `${reason}; flannel reads it as ${describeSubnets(read)}, which stay taken`, ...read };
  const keyed = keyedIpv4Subnet(name);
  if (keyed === undefined) return { ok: false, reason };
  return { ok: false, reason: `${reason}; its IPv4 subnet ${keyed} stays taken while the key exists`, subnet: keyed };
}

/**
 * The subnet of the common key, an IPv4 lease named exactly as flannel and Twill write it
 * ("10.244.3.0-24": a canonical dotted quad, a canonical length of 0..31, no host bits), read
 * without the general path's regex, Buffers and message strings: that path took about 35 ms for
 * the 5,000 keys of a start. Undefined for any other name, which the general path then reads;
 * both give the same answer for every name this one takes (key-name tests check that).
 */
function plainIpv4KeySubnet(name: string): string | undefined {
  const plain = readPlainIpv4Prefix(name, '-');
  // flannel reads the length with ParseUint(.., 5): 32 does not parse.
  if (plain < 0 || plainIpv4Length(plain) > 31 || !plainIpv4IsNetwork(plain)) return undefined;
  return `${name.slice(0, name.indexOf('-'))}/${plainIpv4Length(plain)}`;
}

/** The IPv4 subnet a name's text before "&" names as Twill writes it ("10.244.3.0-24&..."), if it does. */
function keyedIpv4Subnet(name: string): string | undefined {
  const amp = name.indexOf('&');
  const part = amp < 0 ? undefined : name.slice(0, amp);
  if (part === undefined || partProblem(part, 4) !== undefined) return undefined;
  const dash = part.lastIndexOf('-');
  return canonicalNetwork(part.slice(0, dash), Number(part.slice(dash + 1)));
}
