import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Backoff, sleep } from '../core/backoff.js';
import type { NetworkConfig } from '../ipam/network-config.js';
import type { LeaseRecord, SubnetLease } from '../store/types.js';
import type { SubnetStore } from '../store/subnet-store.js';
import { acquireLease, SubnetExhaustedError } from './lease-acquire.js';
import type { AgentMetrics } from './metrics.js';

export interface LeaseKeeperOptions {
  readonly store: SubnetStore;
  readonly config: NetworkConfig;
  readonly record: LeaseRecord;
  readonly ttlSeconds: number;
  readonly previousSubnet?: string | undefined;
  readonly log: Logger;
  readonly metrics?: AgentMetrics | undefined;
}

interface LeaseKeeperEvents {
  /** The lease this host holds changed (a new subnet, or the same subnet re-acquired). */
  lease: [lease: SubnetLease];
}

/**
 * Holds this host's lease: acquires it (retrying with backoff through etcd outages and subnet
 * exhaustion), renews it at a third of its TTL, and re-acquires it, preferring the same subnet,
 * when etcd says it is gone (expired during a long outage, or deleted by an operator).
 * flannel exits in that case; Twill keeps the node's pods reachable and carries on.
 */
export class LeaseKeeper extends EventEmitter<LeaseKeeperEvents> {
  private current: SubnetLease | undefined;
  /** The acquisition in progress, shared by the renewal loop and the watch (never two at once). */
  private acquiring: Promise<SubnetLease | undefined> | undefined;

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
        const { lease, how } = await acquireLease({
          store: this.opts.store,
          config: this.opts.config,
          record: this.opts.record,
          ttlSeconds: this.opts.ttlSeconds,
          previousSubnet: this.current?.subnet ?? this.opts.previousSubnet,
          onDropped: (l, reason) => this.opts.log.warn({ subnet: l.subnet, reason }, 'gave up a lease that no longer fits'),
        });
        this.opts.log.info({ subnet: lease.subnet, how, expiresAt: lease.expiresAt, reservation: lease.etcdLeaseId === undefined }, 'lease acquired');
        this.current = lease;
        this.emit('lease', lease);
        return lease;
      } catch (err) {
        const delay = backoff.next();
        if (err instanceof SubnetExhaustedError) {
          this.opts.log.error({ err, retryInMs: Math.round(delay) }, 'cannot acquire a subnet: none is free');
        } else {
          this.opts.metrics?.etcdError('acquire');
          this.opts.log.warn({ err, retryInMs: Math.round(delay) }, 'cannot acquire a subnet, will retry');
        }
        await sleep(delay, signal);
      }
    }
    return undefined;
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
        this.current = await this.opts.store.renewLease(lease);
        this.opts.metrics?.leaseRenewed(true);
        wait = period;
      } catch (err) {
        this.opts.metrics?.leaseRenewed(false);
        if ((err as { code?: string }).code === 'ESTORE_LEASE_LOST') {
          this.opts.log.warn({ subnet: lease.subnet }, 'lease lost (expired or deleted); acquiring again');
          await this.acquire(signal);
          wait = period;
        } else {
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
}
