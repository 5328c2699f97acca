import { existsSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { randomHex } from '../core/random-hex.js';
import { isIpv4Text, parseCidr, parseIp, type IpAddress } from '../core/ip.js';
import { blockSize, formatIpv4Prefix, intToIpv4, ipv4ToInt, parseIpv4Prefix } from './ipv4.js';
import { bigIntToIpv6, blockSize6, bytesToBigInt, formatIpv6Prefix, parseIpv6Prefix } from './ipv6.js';
import { PodIpamError } from './pod-ipam-errors.js';
import {
  checkOwner, isCanonicalIpv6, LAST_RESERVED_FILE, LAST_RESERVED_FILE_IPV6, parseOwnerText, PodIpamStore,
  type AttachmentListing, type AttachmentRecord, type Owner, type StrayHandler,
} from './pod-ipam-store.js';

export type { AttachmentRecord, Owner, StrayHandler } from './pod-ipam-store.js';
export { PodIpamError, type PodIpamErrorCode } from './pod-ipam-errors.js';

/**
 * The CNI plugin's address allocator: gives each pod interface an address of each of the host's
 * leased subnets (IPv4, IPv6, or both), host-local style (one O_EXCL file per address,
 * round-robin after the last address handed out), safe across processes without a lock. See
 * pod-ipam-store.ts for the files. An IPv6 lease (a /64) is far too large to walk: addresses
 * come from a window at its start (`ipv6Window` candidates after the network address), as
 * host-local's rangeStart/rangeEnd bound a range.
 */

/** IPv6 candidates by default: network+1 .. network+65535 (fc00:0:0:3::1 .. fc00:0:0:3::ffff). */
export const DEFAULT_IPV6_WINDOW = 65_535;

export interface PodIpamOptions {
  /** Parent of the per-network directories, e.g. /run/twill/ipam. */
  readonly dataDir: string;
  /** The CNI network name: the directory under dataDir. */
  readonly network: string;
  /**
   * The host's leased subnet as a network prefix, e.g. "10.244.3.0/24" (IPv4, length <= 30).
   * Only allocate() needs it: DEL, GC and reconciliation must work when the lease is unknown
   * (agent gone, node draining, after a reboot).
   */
  readonly subnet?: string;
  /** Default: the network address + 1. Never allocated. */
  readonly gateway?: string;
  /**
   * The host's leased IPv6 subnet as a network prefix, e.g. "fc00:0:0:3::/64" (length <= 126);
   * like `subnet`, only allocate() needs it.
   */
  readonly ipv6Subnet?: string;
  /** Default: the IPv6 network address + 1 ("fc00:0:0:3::1"). Never allocated. */
  readonly ipv6Gateway?: string;
  /**
   * How many IPv6 addresses after the network address are candidates (the gateway among them,
   * skipped): DEFAULT_IPV6_WINDOW; fewer when the subnet is smaller. A requested address may lie
   * anywhere in the subnet.
   */
  readonly ipv6Window?: number;
  /** Told about each stray entry of the data directory that was skipped (pod-ipam-store.ts). */
  readonly onStray?: StrayHandler;
}

export interface AllocateRequest {
  readonly containerId: string;
  readonly ifname: string;
  /** CNI_NETNS, recorded so reconcile() can tell a dead pod's attachment. */
  readonly netns?: string;
  /**
   * Specific addresses, at most one per family: "10.244.3.5", "10.244.3.5/24", "fc00:0:0:3::9",
   * "fc00:0:0:3::9/64" (CNI "ips" capability / args). A family not asked for is allocated.
   */
  readonly requested?: string | readonly string[];
}

/** One address of an allocation. */
export interface AddressAllocation {
  readonly family: 4 | 6;
  readonly address: string;
  /** The address with the subnet's prefix length, "10.244.3.5/24", "fc00:0:0:3::2/64". */
  readonly cidr: string;
  readonly gateway: string;
}

/**
 * What allocate() claimed: one address per family the allocator has a subnet of. `address`,
 * `cidr` and `gateway` are the first one's (the IPv4 address, or the IPv6 one when there is no
 * IPv4 subnet); `more` holds the rest (the IPv6 address of a dual-stack allocation) and is
 * absent when there is none. allocationIps() lists all, IPv4 first.
 */
export interface Allocation {
  readonly address: string;
  /** The address with the subnet's prefix length, "10.244.3.5/24". */
  readonly cidr: string;
  readonly gateway: string;
  /** This allocation's attempt token (AttachmentRecord.attempt): what its undo passes to release(). */
  readonly attempt: string;
  readonly more?: readonly AddressAllocation[];
}

/** Every address of an allocation, IPv4 first. */
export function allocationIps(a: Allocation): AddressAllocation[] {
  const first: AddressAllocation = { family: a.address.includes(':') ? 6 : 4, address: a.address, cidr: a.cidr, gateway: a.gateway };
  return [first, ...(a.more ?? [])];
}

/** What gc() and reconcile() released, and the per-entry failures they went past. */
export interface CleanupResult {
  /** One per owner; `ips` are the CIDRs this call actually freed. */
  readonly released: AttachmentRecord[];
  readonly errors: Error[];
}

export interface ReconcileOptions {
  /** How old an address file nobody's attachment lists must be to go. Default 60 s. */
  readonly orphanGraceMs?: number;
  /** Default: fs.existsSync. */
  readonly netnsExists?: (path: string) => boolean;
}

/**
 * An ADD holds its address for an instant before its attachment lists it; anything unlisted this
 * old is a leftover of a crash (or of host-local), not an ADD in progress.
 */
export const DEFAULT_ORPHAN_GRACE_MS = 60_000;

/** The candidate range of a subnet, as integers (bigint: IPv6 needs 128 bits). */
interface PodRange {
  readonly family: 4 | 6;
  /** Normalised text ("10.244.3.0/24", "fc00:0:0:3::/64"). */
  readonly subnet: string;
  readonly prefixLength: number;
  readonly network: bigint;
  /** The subnet's last address: IPv4's broadcast address; for IPv6 an ordinary one. */
  readonly end: bigint;
  readonly gateway: bigint;
  // Candidates are first..last minus the gateway: IPv4 network+1 .. broadcast-1, like
  // host-local's default RangeStart/RangeEnd (plugins/ipam/host-local/backend/allocator/range.go);
  // IPv6 network+1 .. network+window (or the subnet's end when that comes first).
  readonly first: bigint;
  readonly last: bigint;
  /** The round-robin hint's file. */
  readonly hintFile: string;
}

export class PodIpam {
  /** The subnet as normalised text ("10.244.3.0/24"); undefined when none was given. */
  readonly subnet: string | undefined;
  /** The gateway; undefined when no subnet was given. */
  readonly gateway: string | undefined;
  /** The IPv6 subnet as normalised text ("fc00:0:0:3::/64"); undefined when none was given. */
  readonly ipv6Subnet: string | undefined;
  /** The IPv6 gateway ("fc00:0:0:3::1"); undefined when no IPv6 subnet was given. */
  readonly ipv6Gateway: string | undefined;
  private readonly store: PodIpamStore;
  private readonly range: PodRange | undefined;
  private readonly range6: PodRange | undefined;

  constructor(opts: PodIpamOptions) {
    if (typeof opts.dataDir !== 'string' || opts.dataDir === '') {
      throw new InvalidArgumentError('IPAM data directory', opts.dataDir, 'must be a non-empty path');
    }
    if (opts.subnet === undefined && opts.gateway !== undefined) {
      throw new InvalidArgumentError('gateway', opts.gateway, 'needs a subnet');
    }
    if (opts.ipv6Subnet === undefined && opts.ipv6Gateway !== undefined) {
      throw new InvalidArgumentError('IPv6 gateway', opts.ipv6Gateway, 'needs an IPv6 subnet');
    }
    this.range = opts.subnet === undefined ? undefined : podRange(opts.subnet, opts.gateway);
    this.range6 = opts.ipv6Subnet === undefined ? undefined : podRange6(opts.ipv6Subnet, opts.ipv6Gateway, opts.ipv6Window);
    this.subnet = this.range?.subnet;
    this.gateway = this.range === undefined ? undefined : textOf(this.range, this.range.gateway);
    this.ipv6Subnet = this.range6?.subnet;
    this.ipv6Gateway = this.range6 === undefined ? undefined : textOf(this.range6, this.range6.gateway);
    this.store = new PodIpamStore(opts.dataDir, opts.network, opts.onStray);
  }

  /**
   * Claims an address of each family for (containerId, ifname): first the attachment (O_EXCL, so
   * a repeated ADD fails atomically), then an address file per family, then the attachment is
   * rewritten to list them. Any failure after the first claim undoes what was claimed.
   */
  allocate(req: AllocateRequest): Allocation {
    const owner = checkOwner(req.containerId, req.ifname);
    const ranges = [this.range, this.range6].filter((r): r is PodRange => r !== undefined);
    if (ranges.length === 0) throw new InvalidArgumentError('pod subnet', undefined, 'is needed to allocate an address');
    if (req.netns !== undefined && typeof req.netns !== 'string') {
      throw new InvalidArgumentError('network namespace path', req.netns, 'must be a string');
    }
    // Validate everything before the first claim, so a bad request changes nothing.
    const requested = this.parseRequestedList(req.requested);
    const placeholder: AttachmentRecord = {
      containerId: owner.containerId,
      ifname: owner.ifname,
      ...(req.netns === undefined ? {} : { netns: req.netns }),
      ips: [],
      created: new Date().toISOString(),
      attempt: randomHex(6),
    };
    if (!this.store.claimAttachment(placeholder)) throw this.duplicateError(owner);

    const claimed: string[] = [];
    try {
      const ips: AddressAllocation[] = [];
      for (const range of ranges) {
        const wanted = requested.get(range.family);
        const address = wanted === undefined ? this.claimNext(range, owner) : this.claimRequested(range, wanted, owner);
        claimed.push(address);
        ips.push({ family: range.family, address, cidr: `${address}/${range.prefixLength}`, gateway: textOf(range, range.gateway) });
      }
      this.store.writeAttachment({ ...placeholder, ips: ips.map((ip) => ip.cidr) });
      const [first, ...more] = ips;
      return { address: first!.address, cidr: first!.cidr, gateway: first!.gateway, attempt: placeholder.attempt!, ...(more.length > 0 && { more }) };
    } catch (err) {
      this.undoClaims(owner, claimed);
      throw err;
    }
  }

  /**
   * Releases what (containerId, ifname) holds and returns the CIDRs freed; [] when it holds
   * nothing (a repeated DEL is not an error, CNI spec "DEL"). Address files are removed only when
   * they name this owner. Without a usable attachment (a crash between the steps of an ADD or a
   * DEL) the address files are scanned for the owner, as host-local's ReleaseByID always does.
   *
   * With `attempt` (an ADD undoing itself) only that attempt's allocation is released: when the
   * attachment is gone or belongs to a later attempt, nothing is.
   */
  release(containerId: string, ifname: string, attempt?: string): string[] {
    const owner = checkOwner(containerId, ifname);
    let record: AttachmentRecord | undefined;
    try {
      record = this.store.readAttachment(owner);
    } catch (err) {
      if (!(err instanceof PodIpamError)) throw err;
      if (err.code === 'STRAY') this.store.stray(err);
      record = undefined; // malformed: the scan below still finds the addresses
    }
    if (attempt !== undefined && record?.attempt !== attempt) return [];
    const released: string[] = [];
    if (record !== undefined && record.ips.length > 0) {
      for (const cidr of record.ips) {
        const ip = addressOf(cidr);
        if (ip !== undefined && this.store.releaseAddress(ip, owner)) released.push(cidr);
      }
    } else {
      for (const ip of this.store.listAddresses()) {
        if (this.store.releaseAddress(ip, owner)) released.push(this.cidrOf(ip));
      }
    }
    // Addresses first, attachment last: a crash in between leaves an attachment that a repeated
    // DEL finishes, never an address that nothing points to.
    this.store.removeAttachment(owner);
    return released;
  }

  /** The attachment of (containerId, ifname), or undefined. Throws PodIpamError IO if malformed. */
  get(containerId: string, ifname: string): AttachmentRecord | undefined {
    return this.store.readAttachment(checkOwner(containerId, ifname));
  }

  /** True when the address file of `address` (with or without "/len") names (containerId, ifname). */
  holds(containerId: string, ifname: string, address: string): boolean {
    const owner = checkOwner(containerId, ifname);
    const ip = parseAddress(address, 'address', false);
    return this.store.holdsAddress(ip.text, owner);
  }

  /**
   * Every attachment, sorted by container ID and interface name. Files that cannot be read or
   * parsed are passed to `onError` (when given) and left out, never thrown: one bad file must
   * not hide the others from GC or status.
   */
  list(onError?: (err: Error) => void): AttachmentRecord[] {
    const listing = this.store.listAttachments();
    for (const err of listing.errors) onError?.(err);
    const records: AttachmentRecord[] = [];
    for (const entry of listing.entries) {
      if (entry.record) records.push(entry.record);
      else if (entry.error) onError?.(entry.error);
    }
    return records;
  }

  /**
   * CNI GC (spec 1.1, "cni.dev/valid-attachments"): releases every attachment and every address
   * file whose owner is not in `valid`. Keeps `last_reserved_ip.*` and anything that is neither
   * an address nor an attachment (host-local's `lock`, for one). Goes past per-entry failures and
   * returns them.
   */
  gc(valid: readonly Owner[]): CleanupResult {
    const keep = new Set(valid.map(ownerKey));
    const keptIds = new Set(valid.map((v) => v.containerId));
    const released: AttachmentRecord[] = [];
    const errors: Error[] = [];
    const listing = this.listForCleanup(errors);
    for (const entry of listing.entries) {
      if (keep.has(ownerKey(entry.owner))) {
        if (entry.error) errors.push(entry.error);
        continue;
      }
      this.releaseEntry(entry.owner, entry.record, released, errors);
    }
    this.removeStaleTemps(listing, DEFAULT_ORPHAN_GRACE_MS, errors);
    // Address files of owners that are not valid: a DEL that never came, a crash, or host-local.
    // A file without an interface name (old host-local) is kept if its container is valid.
    this.sweepAddresses((_ip, owner) => !(owner.ifname === '' ? keptIds.has(owner.containerId) : keep.has(ownerKey(owner))), released, errors);
    return { released, errors };
  }

  /**
   * At agent start (or after a reboot, when /run is empty anyway): releases attachments whose
   * recorded netns path is gone, and address files that no attachment lists once they are older
   * than `orphanGraceMs`, which spares an ADD in progress. Addresses of owners whose attachment
   * cannot be read are kept: their owner cannot be judged.
   */
  reconcile(opts: ReconcileOptions = {}): CleanupResult {
    const graceMs = opts.orphanGraceMs ?? DEFAULT_ORPHAN_GRACE_MS;
    if (!Number.isFinite(graceMs) || graceMs < 0) {
      throw new InvalidArgumentError('orphan grace period (ms)', graceMs, 'must be a finite number >= 0');
    }
    const netnsExists = opts.netnsExists ?? existsSync;
    const released: AttachmentRecord[] = [];
    const errors: Error[] = [];
    const now = Date.now();
    const listing = this.listForCleanup(errors);
    const listedBy = new Map<string, string>(); // address -> owner key of the attachment listing it
    const unjudged = new Set<string>();
    for (const { owner, record, error } of listing.entries) {
      if (!record) {
        if (error) errors.push(error);
        unjudged.add(ownerKey(owner));
        continue;
      }
      let gone: boolean;
      try {
        gone = record.netns !== undefined && !netnsExists(record.netns);
      } catch (err) {
        errors.push(asError(err));
        unjudged.add(ownerKey(owner));
        continue;
      }
      if (gone) {
        this.releaseEntry(owner, record, released, errors);
        continue;
      }
      for (const cidr of record.ips) {
        const ip = addressOf(cidr);
        if (ip !== undefined) listedBy.set(ip, ownerKey(owner));
      }
    }
    this.removeStaleTemps(listing, graceMs, errors);
    this.sweepAddresses((ip, owner) => {
      const key = ownerKey(owner);
      if (listedBy.get(ip) === key || unjudged.has(key)) return false;
      const mtime = this.store.addressMtimeMs(ip);
      return mtime !== undefined && now - mtime >= graceMs;
    }, released, errors);
    return { released, errors };
  }

  // ---- allocation ----

  /** Round-robin from the address after the last one handed out, wrapping, like host-local. */
  private claimNext(range: PodRange, owner: Owner): string {
    const { first, last } = range;
    let candidate = startAfter(range, this.store.readLastReserved(range.hintFile));
    let tried = 0;
    for (let i = 0n; i <= last - first; i++, candidate = candidate === last ? first : candidate + 1n) {
      if (candidate === range.gateway) continue;
      tried++;
      const ip = textOf(range, candidate);
      // EEXIST (false) means someone holds it, in this process or another: try the next one.
      if (this.store.claimAddress(ip, owner)) {
        this.store.writeLastReserved(ip, range.hintFile);
        return ip;
      }
    }
    const where = range.family === 4 || last === range.end ? range.subnet
      : `${range.subnet} (its first ${String(last - first + 1n)} addresses)`;
    throw new PodIpamError('EXHAUSTED', `no free address in ${where} (${tried} in use)`);
  }

  /** The requested addresses by family: at most one each, of a family this allocator has. */
  private parseRequestedList(requested: string | readonly string[] | undefined): Map<4 | 6, string> {
    const out = new Map<4 | 6, string>();
    if (requested === undefined) return out;
    for (const text of typeof requested === 'string' ? [requested] : requested) {
      const family = familyOfRequested(text);
      const range = family === 6 ? this.range6 : this.range;
      if (range === undefined) {
        const have = family === 6 ? 'an IPv4 subnet' : 'an IPv6 subnet';
        throw new InvalidArgumentError('requested address', text, `is an IPv${family} address, but this host has only ${have}`);
      }
      if (out.has(family)) throw new InvalidArgumentError('requested address', text, `is a second IPv${family} address: an interface gets one of each family`);
      out.set(family, parseRequested(range, text));
    }
    return out;
  }

  private claimRequested(range: PodRange, ip: string, owner: Owner): string {
    if (!this.store.claimAddress(ip, owner)) {
      let holder: string | undefined;
      try {
        holder = this.store.readAddress(ip);
      } catch {
        holder = undefined; // only names the holder in the message
      }
      const by = holder === undefined ? '' : ` by ${describeOwner(parseOwnerText(holder))}`;
      throw new PodIpamError('UNAVAILABLE', `requested address ${ip} in ${range.subnet} is taken${by}`);
    }
    // host-local records a requested address as the last reserved one too (disk.Store.Reserve).
    // An IPv6 one outside the window would only send the next scan back to its start.
    const value = valueOf(range, ip);
    if (value >= range.first && value <= range.last) this.store.writeLastReserved(ip, range.hintFile);
    return ip;
  }

  /** Best-effort undo of a failed ADD; the error that made it fail is the one worth reporting. */
  private undoClaims(owner: Owner, addresses: readonly string[]): void {
    for (const address of addresses) {
      try {
        this.store.releaseAddress(address, owner);
      } catch {
        // reconcile() removes the orphan address once it is old
      }
    }
    try {
      this.store.removeAttachment(owner);
    } catch {
      // a later DEL or GC removes it
    }
  }

  private duplicateError(owner: Owner): PodIpamError {
    let held = 'an attachment';
    try {
      const ips = this.store.readAttachment(owner)?.ips ?? [];
      if (ips.length > 0) held = ips.join(', ');
    } catch {
      // malformed: name no address
    }
    return new PodIpamError('DUPLICATE', `${describeOwner(owner)} already has ${held} (a repeated ADD needs a DEL first)`);
  }

  // ---- cleanup helpers ----

  /** A released address as a CIDR: its family's subnet length, or /32 (/128) when no subnet was given. */
  private cidrOf(ip: string): string {
    return isIpv4Text(ip) ? `${ip}/${this.range?.prefixLength ?? 32}` : `${ip}/${this.range6?.prefixLength ?? 128}`;
  }

  private listForCleanup(errors: Error[]): AttachmentListing {
    try {
      const listing = this.store.listAttachments();
      errors.push(...listing.errors);
      return listing;
    } catch (err) {
      errors.push(asError(err));
      return { entries: [], temps: [], errors: [] };
    }
  }

  private releaseEntry(owner: Owner, record: AttachmentRecord | undefined, released: AttachmentRecord[], errors: Error[]): void {
    try {
      const ips = this.release(owner.containerId, owner.ifname);
      released.push({ ...(record ?? { containerId: owner.containerId, ifname: owner.ifname, created: '' }), ips });
    } catch (err) {
      errors.push(asError(err));
    }
  }

  private removeStaleTemps(listing: AttachmentListing, graceMs: number, errors: Error[]): void {
    const now = Date.now();
    for (const temp of listing.temps) {
      try {
        this.store.removeStaleTemp(temp, graceMs, now);
      } catch (err) {
        errors.push(asError(err));
      }
    }
  }

  /**
   * Removes every address file for which `doomed` says so, reporting them grouped by owner (the
   * file's modification time stands in for `created`). A file whose content changed since it was
   * judged (released and claimed again meanwhile) is left alone.
   */
  private sweepAddresses(doomed: (ip: string, owner: Owner) => boolean, released: AttachmentRecord[], errors: Error[]): void {
    let ips: string[];
    try {
      ips = this.store.listAddresses();
    } catch (err) {
      errors.push(asError(err));
      return;
    }
    const byOwner = new Map<string, { owner: Owner; created: string; ips: string[] }>();
    for (const ip of ips) {
      try {
        const text = this.store.readAddressOrSkip(ip);
        if (text === undefined) continue;
        const owner = parseOwnerText(text);
        if (!doomed(ip, owner)) continue;
        const mtime = this.store.addressMtimeMs(ip) ?? Date.now();
        if (!this.store.removeAddressIf(ip, (now) => now === text)) continue;
        const key = ownerKey(owner);
        const group = byOwner.get(key) ?? { owner, created: new Date(mtime).toISOString(), ips: [] };
        group.ips.push(this.cidrOf(ip));
        byOwner.set(key, group);
      } catch (err) {
        errors.push(asError(err));
      }
    }
    for (const { owner, created, ips: freed } of byOwner.values()) {
      released.push({ containerId: owner.containerId, ifname: owner.ifname, ips: freed, created });
    }
  }
}

function podRange(subnet: string, gateway: string | undefined): PodRange {
  const prefix = parseIpv4Prefix(subnet, 'pod subnet');
  if (prefix.length > 30) {
    throw new InvalidArgumentError('pod subnet', subnet, 'prefix length must be at most 30: a /31 or /32 leaves no address for a pod');
  }
  const network = prefix.base;
  const broadcast = network + blockSize(prefix.length) - 1;
  const text = formatIpv4Prefix(prefix);
  let gw = network + 1;
  if (gateway !== undefined) {
    gw = ipv4ToInt(parseAddress(gateway, 'gateway', false, 4).bytes);
    if (gw <= network || gw >= broadcast) throw new InvalidArgumentError('gateway', gateway, `must be a host address of ${text}`);
  }
  return {
    family: 4, subnet: text, prefixLength: prefix.length, network: BigInt(network), end: BigInt(broadcast), gateway: BigInt(gw),
    first: BigInt(network + 1), last: BigInt(broadcast - 1), hintFile: LAST_RESERVED_FILE,
  };
}

function podRange6(subnet: string, gateway: string | undefined, window = DEFAULT_IPV6_WINDOW): PodRange {
  const prefix = parseIpv6Prefix(subnet, 'pod IPv6 subnet');
  if (prefix.length > 126) {
    throw new InvalidArgumentError('pod IPv6 subnet', subnet, 'prefix length must be at most 126: a /127 or /128 leaves no address for a pod');
  }
  if (!Number.isSafeInteger(window) || window < 2) {
    throw new InvalidArgumentError('IPv6 window', window, 'must be an integer >= 2 (the gateway and at least one pod)');
  }
  const network = prefix.base;
  const end = network + blockSize6(prefix.length) - 1n;
  const text = formatIpv6Prefix(prefix);
  let gw = network + 1n;
  if (gateway !== undefined) {
    gw = bytesToBigInt(parseAddress(gateway, 'IPv6 gateway', false, 6).bytes);
    if (gw <= network || gw > end) throw new InvalidArgumentError('IPv6 gateway', gateway, `must be a host address of ${text}`);
  }
  const windowEnd = network + BigInt(window);
  return {
    family: 6, subnet: text, prefixLength: prefix.length, network, end, gateway: gw,
    first: network + 1n, last: windowEnd < end ? windowEnd : end, hintFile: LAST_RESERVED_FILE_IPV6,
  };
}

function textOf(range: PodRange, value: bigint): string {
  return range.family === 4 ? intToIpv4(Number(value)) : bigIntToIpv6(value);
}

function valueOf(range: PodRange, text: string): bigint {
  const bytes = parseIp(text).bytes;
  return range.family === 4 ? BigInt(ipv4ToInt(bytes)) : bytesToBigInt(bytes);
}

/** The first candidate to try: the one after the hint when the hint is ours, else the start. */
function startAfter(range: PodRange, hint: string | undefined): bigint {
  if (hint === undefined) return range.first;
  if (range.family === 4 ? !isIpv4Text(hint) : !isCanonicalIpv6(hint)) return range.first;
  const last = valueOf(range, hint);
  if (last < range.first || last >= range.last) return range.first;
  return last + 1n;
}

/** The family a requested address claims to be of; InvalidArgumentError when it is no address. */
function familyOfRequested(text: string): 4 | 6 {
  if (typeof text !== 'string') throw new InvalidArgumentError('requested address', text, 'not a string');
  const slash = text.indexOf('/');
  try {
    return parseIp(slash < 0 ? text : text.slice(0, slash)).family;
  } catch {
    // parseAddress gives the precise message
    return parseAddress(text, 'requested address', false).family;
  }
}

/** A requested address: inside the subnet, not its network, broadcast or gateway address. */
function parseRequested(range: PodRange, text: string): string {
  const addr = parseAddress(text, 'requested address', true, range.family, range.prefixLength);
  const ip = range.family === 4 ? BigInt(ipv4ToInt(addr.bytes)) : bytesToBigInt(addr.bytes);
  const why = ip < range.network || ip > range.end ? `is outside the subnet ${range.subnet}`
    : ip === range.network ? `is the network address of ${range.subnet}`
      : range.family === 4 && ip === range.end ? `is the broadcast address of ${range.subnet}`
        : ip === range.gateway ? `is the gateway of ${range.subnet}`
          : undefined;
  if (why !== undefined) throw new InvalidArgumentError('requested address', text, why);
  return addr.text;
}

function ownerKey(owner: Owner): string {
  return `${owner.containerId}\n${owner.ifname}`;
}

function describeOwner(owner: Owner): string {
  return owner.ifname === '' ? `container ${owner.containerId}` : `container ${owner.containerId} interface ${owner.ifname}`;
}

/** "10.244.3.5/24" -> "10.244.3.5", "fc00:0:0:3::2/64" -> "fc00:0:0:3::2"; undefined when it is no address file's name. */
function addressOf(cidr: string): string | undefined {
  const slash = cidr.indexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  return isIpv4Text(ip) || isCanonicalIpv6(ip) ? ip : undefined;
}

/**
 * Parses "addr" or "addr/len" as an address of `family` (either when not given). With
 * `strictLength`, a given length must equal `length` (the subnet's): "10.244.3.5/16" asked of a
 * /24 is a mistake, not a wish.
 */
function parseAddress(text: string, what: string, strictLength: boolean, family?: 4 | 6, length?: number): IpAddress {
  if (typeof text !== 'string') throw new InvalidArgumentError(what, text, 'not a string');
  let addr: IpAddress;
  if (text.includes('/')) {
    const cidr = parseCidr(text, what);
    if (strictLength && cidr.prefixLength !== length) {
      throw new InvalidArgumentError(what, text, `prefix length must be /${String(length)}, the subnet's`);
    }
    addr = cidr.address;
  } else {
    addr = parseIp(text, what);
  }
  if (family !== undefined && addr.family !== family) throw new InvalidArgumentError(what, text, `must be an IPv${family} address`);
  return addr;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
