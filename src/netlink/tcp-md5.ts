import { InvalidArgumentError } from '../core/errors.js';
import { parseCidr, type IpAddress } from '../core/ip.js';
import { NetlinkError } from './errors.js';
import { AF_INET, IPPROTO_TCP, TCP_MD5SIG, TCP_MD5SIG_EXT, setsockoptBuffer } from './libc.js';
import { encodeSockaddr, parseSocketAddress } from './sockaddr.js';

/** linux/tcp.h TCP_MD5SIG_MAXKEYLEN */
export const TCP_MD5SIG_MAXKEYLEN = 80;
const TCP_MD5SIG_FLAG_PREFIX = 0x1;
const ENOENT = 2;

/**
 * struct tcp_md5sig (linux/tcp.h), 216 bytes: struct __kernel_sockaddr_storage tcpm_addr (128),
 * u8 tcpm_flags (128), u8 tcpm_prefixlen (129), u16 tcpm_keylen (130), int tcpm_ifindex (132),
 * u8 tcpm_key[80] (136). Checked with offsetof() against the installed headers.
 */
const STRUCT_SIZE = 216;
const OFF_FLAGS = 128;
const OFF_PREFIXLEN = 129;
const OFF_KEYLEN = 130;
const OFF_KEY = 136;

interface Md5Peer {
  readonly ip: IpAddress;
  /** Set for a "10.0.0.0/24" peer: needs TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX (Linux 4.13+). */
  readonly prefixLength: number | undefined;
}

function parsePeer(peer: string): Md5Peer {
  if (typeof peer === 'string' && peer.includes('/')) {
    const cidr = parseCidr(peer, 'TCP MD5 peer prefix');
    return { ip: cidr.address, prefixLength: cidr.prefixLength };
  }
  const { ip, zone } = parseSocketAddress(peer, 'TCP MD5 peer address');
  if (zone !== undefined) throw new InvalidArgumentError('TCP MD5 peer address', peer, 'give the address without "%zone"');
  return { ip, prefixLength: undefined };
}

function keyBytes(peer: string, key: string): Buffer {
  if (typeof key !== 'string') throw new InvalidArgumentError('TCP MD5 key', `<${typeof key}> for ${peer}`, 'must be a string');
  const bytes = Buffer.from(key, 'utf8');
  if (bytes.length === 0 || bytes.length > TCP_MD5SIG_MAXKEYLEN) {
    // The key itself is a secret: the message names the peer, never the key.
    throw new InvalidArgumentError('TCP MD5 key length for peer', peer, `must be 1..${TCP_MD5SIG_MAXKEYLEN} bytes, got ${bytes.length}`);
  }
  return bytes;
}

/**
 * Validates a key table up front, so a bad entry fails before any socket exists. With
 * `strictFamily`, an IPv6 peer for an AF_INET socket is an error (a listener could never match it);
 * otherwise such entries are left for applyMd5Keys to skip.
 */
export function validateMd5Keys(md5: ReadonlyMap<string, string> | undefined, socketFamily: number, strictFamily: boolean): void {
  if (md5 === undefined) return;
  for (const [peer, key] of md5) {
    const { ip } = parsePeer(peer);
    keyBytes(peer, key);
    if (strictFamily && socketFamily === AF_INET && ip.family === 6) {
      throw new InvalidArgumentError('TCP MD5 peer address', peer, 'an IPv6 peer for an IPv4 socket');
    }
  }
}

/**
 * Installs (key given) or removes (key undefined) the RFC 2385 key for `peer` on a TCP socket of
 * `socketFamily`. `peer` is an address, or a prefix ("198.18.0.0/24") for a listener that accepts
 * a range. Removing a key that is not there is not an error.
 */
export function setMd5Key(fd: number, socketFamily: number, peer: string, key: string | undefined): void {
  const { ip, prefixLength } = parsePeer(peer);
  if (socketFamily === AF_INET && ip.family === 6) {
    throw new InvalidArgumentError('TCP MD5 peer address', peer, 'an IPv6 peer on an IPv4 socket');
  }
  const sig = Buffer.alloc(STRUCT_SIZE);
  encodeSockaddr(socketFamily, ip, 0, 0, sig);
  let option = TCP_MD5SIG;
  if (prefixLength !== undefined) {
    option = TCP_MD5SIG_EXT;
    sig.writeUInt8(TCP_MD5SIG_FLAG_PREFIX, OFF_FLAGS);
    // An IPv4 prefix on an AF_INET6 socket goes v4-mapped with its IPv4 length (tcp_v6_parse_md5_keys).
    sig.writeUInt8(prefixLength, OFF_PREFIXLEN);
  }
  if (key !== undefined) {
    const bytes = keyBytes(peer, key);
    sig.writeUInt16LE(bytes.length, OFF_KEYLEN);
    bytes.copy(sig, OFF_KEY);
  }
  try {
    setsockoptBuffer(fd, IPPROTO_TCP, option, sig, key === undefined ? 'tcp.md5.delete' : 'tcp.md5.set', peer);
  } catch (err) {
    if (key === undefined && err instanceof NetlinkError && err.errno === ENOENT) return;
    throw err;
  }
}

/**
 * Installs every key of `md5` on the socket; an AF_INET socket skips IPv6 peers (validateMd5Keys
 * decides beforehand whether those are an error). The kernel picks the key by the peer's address.
 */
export function applyMd5Keys(fd: number, socketFamily: number, md5: ReadonlyMap<string, string> | undefined): void {
  if (md5 === undefined) return;
  for (const [peer, key] of md5) {
    if (socketFamily === AF_INET && parsePeer(peer).ip.family === 6) continue;
    setMd5Key(fd, socketFamily, peer, key);
  }
}
