import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { InvalidArgumentError } from '../core/errors.js';
import { parseCidr, parseIp, type IpAddress } from '../core/ip.js';
import { blockSize, formatIpv4Prefix, intToIpv4, ipv4ToInt, parseIpv4Prefix } from './ipv4.js';
import { PodIpamError } from './pod-ipam-errors.js';
import { checkOwner, parseOwnerText, PodIpamStore, type AttachmentListing, type AttachmentRecord, type Owner, type StrayHandler } from './pod-ipam-store.js';

export type { AttachmentRecord, Owner, StrayHandler } from './pod-ipam-store.js';
export { PodIpamError, type PodIpamErrorCode } from './pod-ipam-errors.js';

/**
 * The CNI plugin's address allocator: gives each pod interface an IPv4 address of the host's
 * leased subnet, host-local style (one O_EXCL file per address, round-robin after the last
 * address handed out), safe across processes without a lock. See pod-ipam-store.ts for the files.
 */

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
  /** Told about each stray entry of the data directory that was skipped (pod-ipam-store.ts). */
  readonly onStray?: StrayHandler;
}

export interface AllocateRequest {
  readonly containerId: string;
  readonly ifname: string;
  /** CNI_NETNS, recorded so reconcile() can tell a dead pod's attachment. */
  readonly netns?: string;
  /** A specific address, "10.244.3.5" or "10.244.3.5/24" (CNI "ips" capability / args). */
  readonly requested?: string;
}

export interface Allocation {
  readonly address: string;
  /** The address with the subnet's prefix length, "10.244.3.5/24". */
  readonly cidr: string;
  readonly gateway: string;
  /** This allocation's attempt token (AttachmentRecord.attempt): what its undo passes to release(). */
  readonly attempt: string;
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

/** The candidate range of a subnet, as 32-bit integers. */
interface PodRange {
  /** Normalised text ("10.244.3.0/24"). */
  readonly subnet: string;
  readonly prefixLength: number;
  readonly network: number;
  readonly broadcast: number;
  readonly gateway: number;
  // Candidates are first..last minus the gateway: network+1 .. broadcast-1, like host-local's
  // default RangeStart/RangeEnd (plugins/ipam/host-local/backend/allocator/range.go).
  readonly first: number;
  readonly last: number;
}

export class PodIpam {
  /** The subnet as normalised text ("10.244.3.0/24"); undefined when none was given. */
  readonly subnet: string | undefined;
  /** The gateway; undefined when no subnet was given. */
  readonly gateway: string | undefined;
  private readonly store: PodIpamStore;
  private readonly range: PodRange | undefined;

  constructor(opts: PodIpamOptions) {
    if (typeof opts.dataDir !== 'string' || opts.dataDir === '') {
      throw new InvalidArgumentError('IPAM data directory', opts.dataDir, 'must be a non-empty path');
    }
    if (opts.subnet === undefined && opts.gateway !== undefined) {
      throw new InvalidArgumentError('gateway', opts.gateway, 'needs a subnet');
    }
    this.range = opts.subnet === undefined ? undefined : podRange(opts.subnet, opts.gateway);
    this.subnet = this.range?.subnet;
    this.gateway = this.range === undefined ? undefined : intToIpv4(this.range.gateway);
    this.store = new PodIpamStore(opts.dataDir, opts.network, opts.onStray);
  }

  /**
   * Claims an address for (containerId, ifname): first the attachment (O_EXCL, so a repeated ADD
   * fails atomically), then an address file, then the attachment is rewritten to list it. Any
   * failure after the first claim undoes what was claimed.
   */
  allocate(req: AllocateRequest): Allocation {
    const owner = checkOwner(req.containerId, req.ifname);
    const range = this.range;
    if (range === undefined) throw new InvalidArgumentError('pod subnet', undefined, 'is needed to allocate an address');
    if (req.netns !== undefined && typeof req.netns !== 'string') {
      throw new InvalidArgumentError('network namespace path', req.netns, 'must be a string');
    }
    // Validate everything before the first claim, so a bad request changes nothing.
    const requested = req.requested === undefined ? undefined : parseRequested(range, req.requested);
    const placeholder: AttachmentRecord = {
      containerId: owner.containerId,
      ifname: owner.ifname,
      ...(req.netns === undefined ? {} : { netns: req.netns }),
      ips: [],
      created: new Date().toISOString(),
      attempt: randomBytes(6).toString('hex'),
    };
    if (!this.store.claimAttachment(placeholder)) throw this.duplicateError(owner);

    let claimed: string | undefined;
    try {
      claimed = requested === undefined ? this.claimNext(range, owner) : this.claimRequested(range, requested, owner);
      const cidr = `${claimed}/${range.prefixLength}`;
      this.store.writeAttachment({ ...placeholder, ips: [cidr] });
      return { address: claimed, cidr, gateway: intToIpv4(range.gateway), attempt: placeholder.attempt! };
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
    const ip = parseIpv4(address, 'address', false);
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
    let candidate = startAfter(range, this.store.readLastReserved());
    let tried = 0;
    for (let i = 0; i <= last - first; i++, candidate = candidate === last ? first : candidate + 1) {
      if (candidate === range.gateway) continue;
      tried++;
      const ip = intToIpv4(candidate);
      // EEXIST (false) means someone holds it, in this process or another: try the next one.
      if (this.store.claimAddress(ip, owner)) {
        this.store.writeLastReserved(ip);
        return ip;
      }
    }
    throw new PodIpamError('EXHAUSTED', `no free address in ${range.subnet} (${tried} in use)`);
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
    this.store.writeLastReserved(ip);
    return ip;
  }

  /** Best-effort undo of a failed ADD; the error that made it fail is the one worth reporting. */
  private undoClaims(owner: Owner, address: string | undefined): void {
    try {
      if (address !== undefined) this.store.releaseAddress(address, owner);
    } catch {
      // reconcile() removes the orphan address once it is old
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

  /** A released address as a CIDR: the subnet's length, or /32 when no subnet was given. */
  private cidrOf(ip: string): string {
    return `${ip}/${this.range?.prefixLength ?? 32}`;
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
    gw = ipv4ToInt(parseIpv4(gateway, 'gateway', false).bytes);
    if (gw <= network || gw >= broadcast) throw new InvalidArgumentError('gateway', gateway, `must be a host address of ${text}`);
  }
  return { subnet: text, prefixLength: prefix.length, network, broadcast, gateway: gw, first: network + 1, last: broadcast - 1 };
}

/** The first candidate to try: the one after the hint when the hint is ours, else the start. */
function startAfter(range: PodRange, hint: string | undefined): number {
  if (hint === undefined || !isIPv4(hint)) return range.first;
  const last = ipv4ToInt(parseIp(hint).bytes);
  if (last < range.first || last >= range.last) return range.first;
  return last + 1;
}

/** A requested address: inside the subnet, not its network, broadcast or gateway address. */
function parseRequested(range: PodRange, text: string): string {
  const addr = parseIpv4(text, 'requested address', true, range.prefixLength);
  const ip = ipv4ToInt(addr.bytes);
  const why = ip < range.network || ip > range.broadcast ? `is outside the subnet ${range.subnet}`
    : ip === range.network ? `is the network address of ${range.subnet}`
      : ip === range.broadcast ? `is the broadcast address of ${range.subnet}`
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

/** "10.244.3.5/24" -> "10.244.3.5"; undefined when it is not an IPv4 address. */
function addressOf(cidr: string): string | undefined {
  const slash = cidr.indexOf('/');
  const ip = slash < 0 ? cidr : cidr.slice(0, slash);
  return isIPv4(ip) ? ip : undefined;
}

/**
 * Parses "a.b.c.d" or "a.b.c.d/len" as an IPv4 address. With `strictLength`, a given length
 * must equal `length` (the subnet's): "10.244.3.5/16" asked of a /24 is a mistake, not a wish.
 */
function parseIpv4(text: string, what: string, strictLength: boolean, length?: number): IpAddress {
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
  if (addr.family !== 4) throw new InvalidArgumentError(what, text, 'must be an IPv4 address');
  return addr;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
