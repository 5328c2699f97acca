import { TwillError } from '../core/errors.js';
import type { NetworkConfig } from '../ipam/network-config.js';
import { pickFreeSubnet, subnetFits } from '../ipam/subnets.js';
import type { LeaseRecord, SubnetLease } from '../store/types.js';
import type { SubnetStore } from '../store/subnet-store.js';

/** Every leasable subnet is taken (by leases or reservations). The agent retries with backoff. */
export class SubnetExhaustedError extends TwillError {
  constructor(config: NetworkConfig, taken: number) {
    super('ESUBNET_EXHAUSTED',
      `no free subnet: all ${taken} subnets ${config.subnetMin}..${config.subnetMax} of ${config.network} are leased or reserved`);
  }
}

export interface AcquireRequest {
  readonly store: SubnetStore;
  readonly config: NetworkConfig;
  readonly record: LeaseRecord;
  readonly ttlSeconds: number;
  /** The subnet this host had before (from the subnet file), tried after its own lease. */
  readonly previousSubnet?: string | undefined;
  readonly random?: () => number;
  /** Told about leases given up because they no longer fit the config. */
  readonly onDropped?: (lease: SubnetLease, reason: string) => void;
}

export type AcquireOutcome = { readonly lease: SubnetLease; readonly how: 'reused' | 'previous' | 'new' };

/**
 * Acquires this host's subnet, in flannel's order (pkg/subnet/etcd/local_manager.go):
 *   1. the lease that carries this host's PublicIP (a restart takes its subnet back, refreshed
 *      under a new etcd lease; a reservation stays a reservation);
 *   2. the subnet from the subnet file, if it is still free and fits;
 *   3. a free subnet.
 * Creation is a transaction that succeeds only if the key is absent. A lost race re-reads the
 * store and tries again: every loss means another host won a subnet, so this ends with a lease
 * or with SubnetExhaustedError (flannel exits on a lost race instead).
 */
export async function acquireLease(req: AcquireRequest): Promise<AcquireOutcome> {
  for (;;) {
    // No per-lease TTL lookups: with thousands of hosts they would dominate start-up.
    const listing = await req.store.listLeases({ expiry: false });
    const mine = listing.leases.filter((l) => l.record.publicIp === req.record.publicIp);
    for (const lease of mine) {
      if (subnetFits(req.config, lease.subnet)) continue;
      // The config changed under this lease: give it up, as flannel does.
      await req.store.deleteLease(lease.subnet);
      req.onDropped?.(lease, `does not fit the network config (${req.config.subnetMin}..${req.config.subnetMax})`);
    }
    const own = mine.find((l) => subnetFits(req.config, l.subnet));
    if (own) {
      const lease = await req.store.refreshLease(own, req.record, req.ttlSeconds);
      if (lease) return { lease, how: 'reused' };
      continue; // changed meanwhile: look again
    }

    const taken = new Set([...listing.leases.map((l) => l.subnet), ...listing.malformed.flatMap((m) => (m.subnet ? [m.subnet] : []))]);
    const previous = req.previousSubnet;
    if (previous !== undefined && !taken.has(previous) && subnetFits(req.config, previous)) {
      const lease = await req.store.createLease(previous, req.record, req.ttlSeconds);
      if (lease) return { lease, how: 'previous' };
      continue;
    }

    const subnet = pickFreeSubnet(req.config, taken, req.random);
    if (subnet === undefined) throw new SubnetExhaustedError(req.config, taken.size);
    const lease = await req.store.createLease(subnet, req.record, req.ttlSeconds);
    if (lease) return { lease, how: 'new' };
  }
}
