/**
 * The subnet store: flannel's etcd schema (reference flannel.md §2) behind the SubnetStore
 * interface. Everything here is one operation = one or a few etcd RPCs under one absolute
 * deadline, so an outage surfaces as StoreError ESTORE_UNAVAILABLE within callTimeoutMs instead
 * of a hang. Races are answered with `undefined`, never thrown: losing a subnet to another node
 * is normal, and the caller picks another.
 */
import { castGrpcError, EtcdLeaseInvalidError, GRPCUnavailableError, type Etcd3, type ILeaseKeepAliveResponse } from 'etcd3';
import { InvalidArgumentError } from '../core/errors.js';
import { createEtcdClient } from './etcd-client.js';
import { openEtcdWatch } from './etcd-watch.js';
import { StoreError, toStoreError } from './errors.js';
import { createConditions } from './create-conditions.js';
import { canonicalSubnet, describeSubnets, keyLayout, subnetFromKey, subnetKey, subnetToKeyName, type KeyLayout, type LeaseSubnets } from './keys.js';
import { decodeKv } from './kv.js';
import { decodeLease, encodeLease } from './lease-codec.js';
import { LeaseWatcher } from './lease-watcher.js';
import type { LeaseListing, LeaseRecord, MalformedLease, StoreOptions, SubnetLease } from './types.js';

export interface SubnetStore {
  /** One cheap read: resolves when etcd answers, rejects with a clear StoreError otherwise (down, TLS, auth). */
  ping(): Promise<void>;
  /** `<prefix>/config` as raw text, undefined when absent. */
  getNetworkConfig(): Promise<string | undefined>;
  putNetworkConfig(text: string): Promise<void>;
  /**
   * Every lease under subnets/. `expiry` (default true) also asks etcd each lease's remaining TTL,
   * one RPC per lease: needed to show expiry, not to pick a subnet.
   */
  listLeases(opts?: { readonly expiry?: boolean }): Promise<LeaseListing>;
  /**
   * Takes a free subnet (and, with `opts.ipv6Subnet`, an IPv6 one under the same key, as flannel
   * does) bound to a new etcd lease of `ttlSeconds`, in one transaction; undefined if another key
   * holds the IPv4 subnet, or (with an IPv6 subnet) if any key appeared since `opts.freeAsOf`
   * (create-conditions.ts). An IPv6-only lease passes NO_IPV4_SUBNET as `subnet`.
   */
  createLease(subnet: string, record: LeaseRecord, ttlSeconds: number, opts?: CreateLeaseOptions): Promise<SubnetLease | undefined>;
  /**
   * Rewrites `existing` (compare-and-swap on its modRevision) with `record`, bound to a new etcd
   * lease; a reservation (no etcd lease) stays one. Undefined if the key changed meanwhile.
   */
  refreshLease(existing: SubnetLease, record: LeaseRecord, ttlSeconds: number): Promise<SubnetLease | undefined>;
  /**
   * Writes `record` back over `observed` (compare-and-swap on its modRevision), bound to
   * `etcdLeaseId`: how a host restores its own lease record after another writer overwrote it
   * while the key stayed bound to the host's etcd lease. Undefined if the key changed meanwhile.
   */
  restoreLease(observed: SubnetLease, record: LeaseRecord, etcdLeaseId: string): Promise<SubnetLease | undefined>;
  /** One keep-alive of the lease's etcd lease; ESTORE_LEASE_LOST if etcd no longer has it. Reservations: unchanged. */
  renewLease(lease: SubnetLease): Promise<SubnetLease>;
  /** Deletes the key of these subnets (flannel's deleteSubnet). */
  deleteLease(subnet: string, ipv6Subnet?: string): Promise<void>;
  /**
   * A watcher keeping the full lease set (see LeaseWatcher). `seed`: a listing the caller just
   * read (the lease acquisition's), taken as the first snapshot instead of reading every lease a
   * second time; the watch starts right after its revision, so nothing written since is missed.
   */
  watchLeases(seed?: LeaseListing): LeaseWatcher;
  /** Closes watchers and the connection; later calls fail with ESTORE_CLOSED. */
  close(): Promise<void>;
}

export interface CreateLeaseOptions {
  /** The lease's IPv6 subnet, e.g. "fc00:0:0:3::/64". */
  readonly ipv6Subnet?: string | undefined;
  /** Required with `ipv6Subnet`: the revision of the listing (LeaseListing.revision) the subnets were picked from. */
  readonly freeAsOf?: string | undefined;
}

/** Per-RPC gRPC options carrying the operation's single absolute deadline. */
interface CallOpts {
  readonly deadline: Date;
}

/** TimeToLive lookups in flight at once: enough to hide latency, not a burst of thousands. */
const TTL_LOOKUP_CONCURRENCY = 32;

function checkTtl(ttlSeconds: number): void {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new InvalidArgumentError('lease TTL', ttlSeconds, 'must be a whole number of seconds >= 1');
}

export class EtcdSubnetStore implements SubnetStore {
  private closed = false;
  private readonly watchers = new Set<LeaseWatcher>();

  private constructor(
    readonly layout: KeyLayout,
    private readonly client: Etcd3,
    private readonly endpoints: readonly string[],
    private readonly callTimeoutMs: number,
  ) {}

  /** Creates the client (reading TLS files now); no connection is made until the first call. */
  static connect(opts: StoreOptions): EtcdSubnetStore {
    const layout = keyLayout(opts.prefix); // validated before anything is opened
    const { client, endpoints, callTimeoutMs } = createEtcdClient(opts);
    return new EtcdSubnetStore(layout, client, endpoints, callTimeoutMs);
  }

  async ping(): Promise<void> {
    await this.call('ping', (o) => this.client.get(this.layout.configKey).options(o).exec());
  }

  async getNetworkConfig(): Promise<string | undefined> {
    const text = await this.call('getNetworkConfig', (o) => this.client.get(this.layout.configKey).options(o).string());
    return text ?? undefined;
  }

  async putNetworkConfig(text: string): Promise<void> {
    if (typeof text !== 'string') throw new InvalidArgumentError('network config', text, 'must be a string');
    await this.call('putNetworkConfig', (o) => this.client.put(this.layout.configKey).value(text).options(o).exec());
  }

  listLeases(opts: { readonly expiry?: boolean } = {}): Promise<LeaseListing> {
    return this.list('listLeases', opts.expiry ?? true);
  }

  async createLease(subnet: string, record: LeaseRecord, ttlSeconds: number, opts: CreateLeaseOptions = {}): Promise<SubnetLease | undefined> {
    const canonical = canonicalSubnet(subnet);
    const keyName = subnetToKeyName(canonical, opts.ipv6Subnet);
    const key = this.layout.subnetsPrefix + keyName;
    const name = subnetFromKey(this.layout, key);
    if (!name.ok) throw new InvalidArgumentError('lease key', key, name.reason);
    if (opts.ipv6Subnet !== undefined && opts.freeAsOf === undefined) {
      throw new InvalidArgumentError('createLease freeAsOf', opts.freeAsOf, 'is required with an IPv6 subnet: the revision of the listing the subnets were picked from');
    }
    const value = encodeLease(record);
    checkTtl(ttlSeconds);
    // flannel registry.go createSubnet: If(Version(key) == 0) Then(Put WithLease), plus the
    // conditions that keep both subnets unique across keys (create-conditions.ts).
    const compare = createConditions({
      key, ipv4Key: this.layout.subnetsPrefix + keyName.split('&')[0]!, subnet: canonical, subnetsPrefix: this.layout.subnetsPrefix,
      freeAsOf: opts.ipv6Subnet === undefined ? undefined : opts.freeAsOf,
    });
    return this.call(`createLease ${describeSubnets(name)}`, async (o) => {
      const granted = await this.grant(ttlSeconds, o);
      const put = await this.client.put(key).value(value).lease(granted.id).op();
      const won = await this.commitOrRevoke(granted.id, () => this.client.kv.txn({ compare, success: [put] }, o), o);
      if (won === undefined) return undefined;
      return this.leaseOf(name, key, value, granted.id, granted.expiresAt, won, won);
    });
  }

  async refreshLease(existing: SubnetLease, record: LeaseRecord, ttlSeconds: number): Promise<SubnetLease | undefined> {
    const key = existing.key;
    const name = subnetFromKey(this.layout, key);
    if (!name.ok) throw new InvalidArgumentError('lease key', key, name.reason);
    const value = encodeLease(record);
    checkTtl(ttlSeconds);
    return this.call(`refreshLease ${describeSubnets(name)}`, async (o) => {
      const cas = this.client.if(key, 'Mod', '==', existing.modRevision);
      if (existing.etcdLeaseId === undefined) {
        // A reservation is permanent by definition: rewriting it must not give it an expiry.
        const txn = await cas.then(this.client.put(key).value(value)).options(o).commit();
        return txn.succeeded ? this.leaseOf(name, key, value, undefined, undefined, txn.header.revision, existing.createRevision) : undefined;
      }
      // A new etcd lease rather than a keep-alive of existing.etcdLeaseId: after a restart the
      // agent no longer holds that lease (it may even have expired), and flannel renews this way
      // too (Grant + Put). The old lease is left alone; it owns no key any more and expires.
      const granted = await this.grant(ttlSeconds, o);
      const won = await this.commitOrRevoke(granted.id, () => cas.then(this.client.put(key).value(value).lease(granted.id)).options(o).commit(), o);
      if (won === undefined) return undefined;
      return this.leaseOf(name, key, value, granted.id, granted.expiresAt, won, existing.createRevision);
    });
  }

  async restoreLease(observed: SubnetLease, record: LeaseRecord, etcdLeaseId: string): Promise<SubnetLease | undefined> {
    const key = observed.key;
    const name = subnetFromKey(this.layout, key);
    if (!name.ok) throw new InvalidArgumentError('lease key', key, name.reason);
    const value = encodeLease(record);
    return this.call(`restoreLease ${describeSubnets(name)}`, async (o) => {
      // Only over exactly what was observed: a later write (another restore, a delete) wins.
      const txn = await this.client.if(key, 'Mod', '==', observed.modRevision)
        .then(this.client.put(key).value(value).lease(etcdLeaseId))
        .options(o)
        .commit();
      if (!txn.succeeded) return undefined;
      return this.leaseOf(name, key, value, etcdLeaseId, observed.expiresAt, txn.header.revision, observed.createRevision);
    });
  }

  async renewLease(lease: SubnetLease): Promise<SubnetLease> {
    const id = lease.etcdLeaseId;
    if (id === undefined) return lease;
    return this.call(`renewLease ${lease.subnet}`, async (o) => {
      const started = Date.now();
      const res = await this.keepAliveOnce(id, o);
      const ttl = Number(res.TTL);
      // etcd answers a keep-alive of an unknown (expired, revoked) lease with TTL 0.
      if (!(ttl > 0)) throw new StoreError('ESTORE_LEASE_LOST', `renewLease ${lease.subnet}: etcd lease ${id} no longer exists (expired or revoked); the subnet must be acquired again`, { op: `renewLease ${lease.subnet}` });
      return { ...lease, expiresAt: started + ttl * 1000 };
    });
  }

  async deleteLease(subnet: string, ipv6Subnet?: string): Promise<void> {
    const canonical = canonicalSubnet(subnet);
    const key = subnetKey(this.layout, canonical, ipv6Subnet);
    await this.call(`deleteLease ${describeSubnets({ subnet: canonical, ipv6Subnet })}`, (o) => this.client.delete().key(key).options(o).exec());
  }

  watchLeases(seed?: LeaseListing): LeaseWatcher {
    if (this.closed) throw this.closedError('watchLeases');
    let first = seed;
    const watcher: LeaseWatcher = new LeaseWatcher({
      layout: this.layout,
      list: () => {
        const listing = first;
        first = undefined; // a resync (the watch failed, etcd compacted) reads afresh
        return listing !== undefined ? Promise.resolve(listing) : this.list('watchLeases', false);
      },
      watch: (fromRevision, handlers) => openEtcdWatch({
        client: this.client,
        prefix: this.layout.subnetsPrefix,
        fromRevision,
        endpoints: this.endpoints,
        cancelTimeoutMs: this.callTimeoutMs,
      }, handlers),
    }, { onClose: () => this.watchers.delete(watcher) });
    this.watchers.add(watcher);
    return watcher;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Watchers first: etcd3 keeps reconnecting a watch stream while a watcher is attached.
    await Promise.all([...this.watchers].map((w) => w.close()));
    this.client.close();
  }

  // ---- internals ------------------------------------------------------------------------------

  private closedError(op: string): StoreError {
    return new StoreError('ESTORE_CLOSED', `${op}: the store is closed`, { op });
  }

  /** Runs one operation under one absolute deadline, mapping every failure to a StoreError. */
  private async call<T>(op: string, fn: (o: CallOpts) => Promise<T>): Promise<T> {
    if (this.closed) throw this.closedError(op);
    const o: CallOpts = { deadline: new Date(Date.now() + this.callTimeoutMs) };
    try {
      return await fn(o);
    } catch (err) {
      throw toStoreError(err, { op, endpoints: this.endpoints });
    }
  }

  private async grant(ttlSeconds: number, o: CallOpts): Promise<{ id: string; expiresAt: number }> {
    // Measured before the call: the lease cannot outlive "sent + TTL", so the estimate is safe.
    const started = Date.now();
    const res = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, o);
    // etcd may raise a TTL below its minimum; trust what it granted.
    return { id: res.ID, expiresAt: started + Number(res.TTL) * 1000 };
  }

  /**
   * Commits a transaction that puts a key bound to lease `id`; returns the new revision, or
   * undefined when the comparison failed. On a lost race, or an error, the lease is revoked so it
   * does not linger (flannel registry.go does the same). After an error the outcome is unknown;
   * revoking then also removes the key if the put did land, which keeps etcd consistent with the
   * error we report.
   */
  private async commitOrRevoke(id: string, commit: () => Promise<{ succeeded: boolean; header: { revision: string } }>, o: CallOpts): Promise<string | undefined> {
    let txn: { succeeded: boolean; header: { revision: string } };
    try {
      txn = await commit();
    } catch (err) {
      // Its own deadline: ours may be what just expired. Not awaited: the caller gets the error now.
      void this.revokeQuietly(id, { deadline: new Date(Date.now() + this.callTimeoutMs) });
      throw err;
    }
    if (txn.succeeded) return txn.header.revision;
    await this.revokeQuietly(id, o);
    return undefined;
  }

  /** Best effort: an unrevoked lease without keys only costs etcd memory until its TTL. */
  private async revokeQuietly(id: string, o: CallOpts): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id }, o);
    } catch {
      // Nothing to do: see above.
    }
  }

  private leaseOf(subnets: LeaseSubnets, key: string, value: string, etcdLeaseId: string | undefined, expiresAt: number | undefined,
    modRevision: string, createRevision: string): SubnetLease {
    // The record as any reader will decode it (e.g. PublicIPv6 undefined -> null), so it compares
    // equal to what a watcher reports for the same key.
    const decoded = decodeLease(value);
    if (!decoded.ok) throw new Error(`encodeLease produced an undecodable value: ${decoded.reason}`);
    const { subnet, ipv6Subnet } = subnets;
    return { subnet, ...(ipv6Subnet !== undefined && { ipv6Subnet }), key, record: decoded.record, etcdLeaseId, expiresAt, modRevision, createRevision };
  }

  private async list(op: string, withExpiry: boolean): Promise<LeaseListing> {
    return this.call(op, async (o) => {
      const res = await this.client.getAll().prefix(this.layout.subnetsPrefix).options(o).exec();
      const ids = withExpiry ? [...new Set(res.kvs.map((kv) => kv.lease).filter((l) => l && l !== '0'))] : [];
      const expiries = await this.expiries(ids, o);
      const leases: SubnetLease[] = [];
      const malformed: MalformedLease[] = [];
      for (const kv of res.kvs) {
        const r = decodeKv(this.layout, { key: kv.key.toString(), value: kv.value, lease: kv.lease, modRevision: kv.mod_revision, createRevision: kv.create_revision }, expiries.get(kv.lease));
        if (r.ok) leases.push(r.lease);
        else malformed.push(r.malformed);
      }
      return { leases, malformed, revision: res.header.revision };
    });
  }

  /** Expiry (ms since the epoch) of each lease, via TimeToLive RPCs run concurrently. */
  private async expiries(ids: readonly string[], o: CallOpts): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const asked = Date.now();
        try {
          const res = await this.client.leaseClient.leaseTimeToLive({ ID: id }, o);
          // TTL is -1 for a lease that expired between the range read and this call.
          out.set(id, asked + Math.max(0, Number(res.TTL)) * 1000);
        } catch (err) {
          // Gone meanwhile: its keys are about to be deleted; report it as expiring now.
          if (err instanceof EtcdLeaseInvalidError) out.set(id, asked);
          else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(TTL_LOOKUP_CONCURRENCY, ids.length) }, worker));
    return out;
  }

  /** One LeaseKeepAlive round trip on a raw stream (etcd3's Lease class cannot adopt an existing ID). */
  private async keepAliveOnce(id: string, o: CallOpts): Promise<ILeaseKeepAliveResponse> {
    const stream = await this.client.leaseClient.leaseKeepAlive(o);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        fn();
        try {
          // Half-close: etcd then ends the call with OK.
          stream.end();
        } catch {
          // Already finished (the error path).
        }
      };
      stream.on('data', (res) => settle(() => resolve(res)));
      stream.on('error', (err) => settle(() => reject(castGrpcError(err))));
      stream.on('end', () => settle(() => reject(new GRPCUnavailableError('the keep-alive stream ended without an answer'))));
      stream.write({ ID: id });
    });
  }
}
