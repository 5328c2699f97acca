/**
 * An in-memory SubnetStore with etcd's semantics where Twill relies on them: one revision counter
 * for every write, create and mod revisions per key, keys bound to leases (or not: reservations),
 * compare-and-swap on the mod revision, and a watch through the real LeaseWatcher. Test code can
 * write any raw key and value (`put`), as a hostile or broken writer would, and cut the store off
 * (`down`), as an outage would.
 */
import { LeaseWatcher, StoreError, encodeLease, keyLayout, subnetToKeyName, type KeyLayout, type CreateLeaseOptions, type LeaseListing, type LeaseRecord, type LeaseWatchSource, type SubnetLease, type SubnetStore, type WatchEvent, type WatchStreamHandlers } from '../../src/store/index.js';
import { decodeKv } from '../../src/store/kv.js';
import { InvalidArgumentError } from '../../src/core/errors.js';

interface Entry { value: string; lease: string; createRevision: number; modRevision: number }

export class MemoryStore implements SubnetStore {
  readonly layout: KeyLayout;
  private readonly kv = new Map<string, Entry>();
  private readonly leases = new Map<string, number>(); // etcd lease id -> expiry (ms)
  private readonly streams = new Set<WatchStreamHandlers>();
  private revision = 1;
  private nextLeaseId = 1000;
  private config: string | undefined;
  /** While set, every call fails as etcd does when unreachable. */
  down = false;

  constructor(prefix = '/coreos.com/network', private readonly now: () => number = Date.now) {
    this.layout = keyLayout(prefix);
  }

  // ---- what a test does --------------------------------------------------------------------

  /** Writes a raw value under subnets/<name>, bound to `lease` ('0' = none), as anyone can. */
  put(name: string, value: string | LeaseRecord, lease = '0'): void {
    this.write(this.layout.subnetsPrefix + name, typeof value === 'string' ? value : encodeLease(value), lease);
  }

  /** Deletes subnets/<name>. */
  remove(name: string): void {
    this.erase(this.layout.subnetsPrefix + name);
  }

  /** The raw entry of subnets/<name>. */
  raw(name: string): { value: string; lease: string } | undefined {
    const e = this.kv.get(this.layout.subnetsPrefix + name);
    return e && { value: e.value, lease: e.lease };
  }

  /** Revokes an etcd lease: its keys go, as etcd deletes them. */
  revoke(id: string): void {
    this.leases.delete(id);
    for (const [key, e] of this.kv) if (e.lease === id) this.erase(key);
  }

  // ---- SubnetStore ---------------------------------------------------------------------------

  ping(): Promise<void> { return this.call(() => undefined); }
  getNetworkConfig(): Promise<string | undefined> { return this.call(() => this.config); }
  putNetworkConfig(text: string): Promise<void> { return this.call(() => { this.config = text; }); }

  listLeases(): Promise<LeaseListing> { return this.call(() => this.listing()); }

  /** The store's conditions (src/store/create-conditions.ts), checked in memory. */
  createLease(subnet: string, record: LeaseRecord, ttlSeconds: number, opts: CreateLeaseOptions = {}): Promise<SubnetLease | undefined> {
    return this.call(() => {
      if (opts.ipv6Subnet !== undefined && opts.freeAsOf === undefined) throw new InvalidArgumentError('createLease freeAsOf', undefined, 'is required with an IPv6 subnet');
      const name = subnetToKeyName(subnet, opts.ipv6Subnet);
      const key = this.layout.subnetsPrefix + name;
      const ipv4Key = this.layout.subnetsPrefix + name.split('&')[0]!;
      const ipv6Only = name.startsWith('0.0.0.0-0&');
      const taken = [...this.kv].some(([k, e]) => k === key
        || (!ipv6Only && (k === ipv4Key || k.startsWith(`${ipv4Key}&`)))
        || (opts.ipv6Subnet !== undefined && e.createRevision > Number(opts.freeAsOf)));
      if (taken) return undefined;
      const id = this.grant(ttlSeconds);
      this.write(key, encodeLease(record), id);
      return this.leaseAt(key);
    });
  }

  refreshLease(existing: SubnetLease, record: LeaseRecord, ttlSeconds: number): Promise<SubnetLease | undefined> {
    return this.call(() => {
      const e = this.kv.get(existing.key);
      if (!e || String(e.modRevision) !== existing.modRevision) return undefined;
      this.write(existing.key, encodeLease(record), existing.etcdLeaseId === undefined ? '0' : this.grant(ttlSeconds));
      return this.leaseAt(existing.key);
    });
  }

  restoreLease(observed: SubnetLease, record: LeaseRecord, etcdLeaseId: string): Promise<SubnetLease | undefined> {
    return this.call(() => {
      const e = this.kv.get(observed.key);
      if (!e || String(e.modRevision) !== observed.modRevision) return undefined;
      this.write(observed.key, encodeLease(record), etcdLeaseId);
      return this.leaseAt(observed.key);
    });
  }

  renewLease(lease: SubnetLease): Promise<SubnetLease> {
    return this.call(() => {
      const id = lease.etcdLeaseId;
      if (id === undefined) return lease;
      if (!this.leases.has(id)) throw new StoreError('ESTORE_LEASE_LOST', `renewLease ${lease.subnet}: etcd lease ${id} no longer exists`, { op: 'renewLease' });
      return lease;
    });
  }

  deleteLease(subnet: string, ipv6Subnet?: string): Promise<void> {
    return this.call(() => this.erase(this.layout.subnetsPrefix + subnetToKeyName(subnet, ipv6Subnet)));
  }

  watchLeases(): LeaseWatcher {
    const source: LeaseWatchSource = {
      layout: this.layout,
      list: () => this.listLeases(),
      watch: (_from, handlers) => {
        this.streams.add(handlers);
        return { close: () => { this.streams.delete(handlers); return Promise.resolve(); } };
      },
    };
    return new LeaseWatcher(source, { backoff: { initialMs: 5, maxMs: 20 } });
  }

  close(): Promise<void> { return Promise.resolve(); }

  // ---- internals -----------------------------------------------------------------------------

  private call<T>(fn: () => T): Promise<T> {
    if (this.down) return Promise.reject(new StoreError('ESTORE_UNAVAILABLE', 'etcd is unreachable (MemoryStore.down)', { op: 'fake' }));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private grant(ttlSeconds: number): string {
    const id = String(this.nextLeaseId++);
    this.leases.set(id, this.now() + ttlSeconds * 1000);
    return id;
  }

  private write(key: string, value: string, lease: string): void {
    const rev = ++this.revision;
    const prior = this.kv.get(key);
    this.kv.set(key, { value, lease, createRevision: prior?.createRevision ?? rev, modRevision: rev });
    this.emit([{ type: 'put', kv: this.rawKv(key) }]);
  }

  private erase(key: string): void {
    if (!this.kv.delete(key)) return;
    const rev = ++this.revision;
    this.emit([{ type: 'delete', key, modRevision: String(rev) }]);
  }

  private emit(events: WatchEvent[]): void {
    // Asynchronous, as etcd's watch responses are.
    for (const h of this.streams) queueMicrotask(() => h.onEvents(events));
  }

  private rawKv(key: string): { key: string; value: string; lease: string; modRevision: string; createRevision: string } {
    const e = this.kv.get(key)!;
    return { key, value: e.value, lease: e.lease, modRevision: String(e.modRevision), createRevision: String(e.createRevision) };
  }

  private leaseAt(key: string): SubnetLease {
    const r = decodeKv(this.layout, this.rawKv(key), this.leases.get(this.kv.get(key)!.lease));
    if (!r.ok) throw new Error(`MemoryStore: ${key} does not decode: ${r.malformed.reason}`);
    return r.lease;
  }

  private listing(): LeaseListing {
    const out: LeaseListing = { leases: [], malformed: [], revision: String(this.revision) };
    for (const key of [...this.kv.keys()].sort()) {
      const r = decodeKv(this.layout, this.rawKv(key), this.leases.get(this.kv.get(key)!.lease));
      if (r.ok) out.leases.push(r.lease);
      else out.malformed.push(r.malformed);
    }
    return out;
  }
}
