import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Backoff, sleep } from '../core/backoff.js';
import type { NetworkConfig } from '../ipam/network-config.js';
import { compareRevisions, sameRecord } from '../store/index.js';
import type { LeaseListing, LeaseRecord, SubnetLease } from '../store/types.js';
import type { SubnetStore } from '../store/subnet-store.js';
import { acquireLease, LeaseWriteBlockedError, SubnetExhaustedError } from './lease-acquire.js';
import type { AgentMetrics } from './metrics.js';

export interface LeaseKeeperOptions {
  readonly store: SubnetStore;
  readonly config: NetworkConfig;
  readonly record: LeaseRecord;
  readonly ttlSeconds: number;
  readonly previousSubnet?: string | undefined;
  readonly previousIpv6Subnet?: string | undefined;
  readonly log: Logger;
  readonly metrics?: AgentMetrics | undefined;
}

interface LeaseKeeperEvents {
  /** The lease this host holds changed (a new subnet, or the same subnet re-acquired). */
  lease: [lease: SubnetLease];
  /** This host holds no lease any more (another writer took its key over); acquiring again. */
  lost: [subnet: string];
}

/**
 * Holds this host's lease: acquires it (retrying with backoff through etcd outages and subnet
 * exhaustion), renews it at a third of its TTL, and re-acquires it, preferring the same subnet,
 * when etcd says it is gone (expired during a long outage, or deleted by an operator).
 * flannel exits in that case; Twill keeps the node's pods reachable and carries on.
 */
export class LeaseKeeper extends EventEmitter<LeaseKeeperEvents> {
  private current: SubnetLease | undefined;
  /** The listing of the last acquisition, until the lease watch takes it (takeListing). */
  private listing: LeaseListing | undefined;
  /** The acquisition in progress, shared by the renewal loop and the watch (never two at once). */
  private acquiring: Promise<SubnetLease | undefined> | undefined;
  /**
   * When the held lease must have been renewed by (ms since the epoch): a third of the TTL before
   * it expires, i.e. one renewal period overdue. Undefined for a reservation, which never expires.
   */
  private renewBy: number | undefined;
  /** Since when etcd operations of the keeper fail (undefined while they work). */
  private etcdFailingSince: number | undefined;

  constructor(private readonly opts: LeaseKeeperOptions) {
    super();
  }

  get lease(): SubnetLease | undefined {
    return this.current;
  }

  /** Acquires the lease, retrying until it succeeds or `signal` aborts (then undefined). */
  acquire(signal: AbortSignal): Promise<SubnetLease | undefined> {
    this.acquiring ??= this.acquireLoop(signal).finally(() => {
      this.acquiring = undefined;
    });
    return this.acquiring;
  }

  private async acquireLoop(signal: AbortSignal): Promise<SubnetLease | undefined> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
    while (!signal.aborted) {
      try {
        const outcome = await acquireLease({
          store: this.opts.store,
          config: this.opts.config,
          record: this.opts.record,
          ttlSeconds: this.opts.ttlSeconds,
          // The lease held last, else the subnet file's: both families from the same one.
          previousSubnet: this.current ? this.current.subnet : this.opts.previousSubnet,
          previousIpv6Subnet: this.current ? this.current.ipv6Subnet : this.opts.previousIpv6Subnet,
          onDropped: (l, reason) => this.opts.log.warn({ subnet: l.subnet, reason }, 'gave up a lease that no longer fits'),
        });
        const { lease, how } = outcome;
        const { notice } = outcome;
        if (notice !== undefined) this.opts.log.warn({ subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, key: lease.key, how, notice }, `lease acquired: ${notice}`);
        else this.opts.log.info({ subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, how, expiresAt: lease.expiresAt, reservation: lease.etcdLeaseId === undefined }, 'lease acquired');
        this.listing = outcome.listing;
        this.hold(lease);
        this.emit('lease', lease);
        return lease;
      } catch (err) {
        const delay = backoff.next();
        if (err instanceof SubnetExhaustedError) {
          this.opts.log.error({ err, retryInMs: Math.round(delay) }, 'cannot acquire a subnet: none is free');
        } else if (err instanceof LeaseWriteBlockedError) {
          this.opts.log.error({ err, retryInMs: Math.round(delay) }, 'cannot acquire a subnet: a key in etcd blocks it');
        } else {
          this.etcdFailingSince ??= Date.now();
          this.opts.metrics?.etcdError('acquire');
          this.opts.log.warn({ err, retryInMs: Math.round(delay) }, 'cannot acquire a subnet, will retry');
        }
        await sleep(delay, signal);
      }
    }
    return undefined;
  }

  /**
   * The listing the last acquisition read, once: the lease watch's first snapshot, so that a
   * start reads every lease once, not twice. Undefined after the first call.
   */
  takeListing(): LeaseListing | undefined {
    const listing = this.listing;
    this.listing = undefined;
    return listing;
  }

  /** Renews until `signal` aborts. Never revokes: on shutdown the lease stays (and so do routes). */
  async run(signal: AbortSignal): Promise<void> {
    const period = Math.max(1000, (this.opts.ttlSeconds * 1000) / 3);
    // After a failed renewal retry sooner, but well inside the remaining TTL.
    const retry = Math.max(500, Math.min(60_000, period / 4));
    let wait = period;
    while (!signal.aborted) {
      await sleep(wait, signal);
      if (signal.aborted) return;
      const lease = this.current;
      if (!lease) {
        await this.acquire(signal);
        wait = period;
        continue;
      }
      try {
        const renewed = await this.opts.store.renewLease(lease);
        // An overwrite handled meanwhile may have replaced the lease: keep the newer one.
        if (this.current === lease) this.hold(renewed);
        this.opts.metrics?.leaseRenewed(true);
        wait = period;
      } catch (err) {
        this.opts.metrics?.leaseRenewed(false);
        if ((err as { code?: string }).code === 'ESTORE_LEASE_LOST') {
          this.opts.log.warn({ subnet: lease.subnet }, 'lease lost (expired or deleted); acquiring again');
          await this.acquire(signal);
          wait = period;
        } else {
          this.etcdFailingSince ??= Date.now();
          this.opts.metrics?.etcdError('renew');
          this.opts.log.warn({ err, subnet: lease.subnet, retryInMs: retry }, 'lease renewal failed, will retry');
          wait = retry;
        }
      }
    }
  }

  /** Called when the watch shows this host's key gone: re-acquire now rather than at renewal. */
  async onOwnLeaseRemoved(signal: AbortSignal): Promise<void> {
    this.opts.log.warn({ subnet: this.current?.subnet }, 'own lease removed from the store; acquiring again');
    await this.acquire(signal);
  }

  /**
   * Called with this host's key as the watch last saw it. Renewal keeps the etcd lease alive but
   * never reads the value, so another writer's record would stand unnoticed while every other
   * host routes this subnet to it. When the record no longer is this host's: if the key is still
   * bound to this host's etcd lease, the writer only changed the value, and it is written back;
   * otherwise the key was taken over (re-put without or with another etcd lease), so the subnet
   * is given up and another acquired. Either way loudly.
   */
  async onOwnLeaseSeen(observed: SubnetLease, signal: AbortSignal): Promise<void> {
    const held = this.current;
    // Only a write newer than the one this host made or last saw (events can trail our own writes).
    if (!held || observed.key !== held.key || compareRevisions(observed.modRevision, held.modRevision) <= 0) return;
    if (sameRecord(observed.record, this.opts.record)) {
      this.current = { ...held, modRevision: observed.modRevision };
      return;
    }
    const log = this.opts.log;
    const found = { key: observed.key, publicIp: observed.record.publicIp, backendType: observed.record.backendType, etcdLease: observed.etcdLeaseId ?? 'none' };
    if (held.etcdLeaseId !== undefined && observed.etcdLeaseId === held.etcdLeaseId) {
      try {
        const restored = await this.opts.store.restoreLease(observed, this.opts.record, held.etcdLeaseId);
        if (!restored) return; // written again meanwhile: the watch brings that write next
        if (this.current === held) this.current = restored;
        this.opts.metrics?.ownLeaseConflict('restored');
        log.error({ subnet: held.subnet, found }, 'another writer overwrote this host\'s lease record (the key is still bound to this host\'s etcd lease): restored it');
      } catch (err) {
        this.opts.metrics?.etcdError('restore');
        log.error({ err, subnet: held.subnet, found }, 'another writer overwrote this host\'s lease record and restoring it failed; the next change or renewal retries');
      }
      return;
    }
    this.opts.metrics?.ownLeaseConflict('reacquired');
    log.error({ subnet: held.subnet, found, etcdLease: held.etcdLeaseId ?? 'none' },
      'another writer took over this host\'s lease key (it is no longer bound to this host\'s etcd lease): giving up the subnet and acquiring another; pods of the old subnet lose their routes');
    this.current = undefined;
    this.renewBy = undefined;
    this.emit('lost', held.subnet);
    await this.acquire(signal);
  }

  /**
   * Undefined while the lease can be renewed; otherwise why not: etcd has been failing since
   * some time and the renewal deadline (one renewal period overdue) has passed.
   */
  renewalOverdue(now = Date.now()): string | undefined {
    if (this.etcdFailingSince === undefined || this.renewBy === undefined || now <= this.renewBy) return undefined;
    return `etcd unreachable since ${new Date(this.etcdFailingSince).toISOString()}; the lease had to be renewed by ${new Date(this.renewBy).toISOString()}`;
  }

  private hold(lease: SubnetLease): void {
    this.current = lease;
    this.etcdFailingSince = undefined;
    this.renewBy = lease.expiresAt === undefined || lease.etcdLeaseId === undefined ? undefined : lease.expiresAt - (this.opts.ttlSeconds * 1000) / 3;
  }
}
