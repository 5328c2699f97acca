import { TwillError } from '../core/errors.js';
import type { NetworkConfig } from '../ipam/network-config.js';
import { pickFreeSubnet, subnetFits } from '../ipam/subnets.js';
import { compareRevisions } from '../store/index.js';
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

export type AcquireOutcome = {
  readonly lease: SubnetLease;
  readonly how: 'previous' | 'reused' | 'new';
  /**
   * Set when the agent took a key it had no record of holding (not the subnet file's subnet, or
   * a reservation): said loudly, since a key can carry this host's PublicIP because anyone wrote it.
   */
  readonly notice?: string | undefined;
};

/**
 * Acquires this host's subnet, in flannel's order (pkg/subnet/etcd/local_manager.go):
 *   1. the subnet from the subnet file, when its key is free or carries this host's PublicIP
 *      (flannel's own subnet file comes first when its lease is free or ours);
 *   2. a lease that carries this host's PublicIP (a restart after the subnet file was lost, a
 *      reservation made for this host, a flannel host moving to Twill): taken over with a notice,
 *      refreshed under a new etcd lease (a reservation stays a reservation);
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
    const fitting = mine.filter((l) => subnetFits(req.config, l.subnet)).sort((a, b) => compareRevisions(a.createRevision, b.createRevision));

    const previous = req.previousSubnet;
    if (previous !== undefined && subnetFits(req.config, previous)) {
      const holders = listing.leases.filter((l) => l.subnet === previous);
      const garbled = listing.malformed.some((m) => m.subnet === previous);
      const ours = holders.find((l) => l.record.publicIp === req.record.publicIp);
      // Other keys that carry this host's PublicIP are not taken, but said: the subnet file wins.
      const others = fitting.filter((l) => l.subnet !== previous).map((l) => l.key);
      const notice = others.length === 0 ? undefined
        : `the subnet file names ${previous}; ${others.join(', ')} also carr${others.length === 1 ? 'ies' : 'y'} this host's PublicIP and ${others.length === 1 ? 'is' : 'are'} left alone`;
      if (ours) {
        const lease = await req.store.refreshLease(ours, req.record, req.ttlSeconds);
        if (lease) return { lease, how: 'previous', notice };
        continue; // changed meanwhile: look again
      }
      if (holders.length === 0 && !garbled) {
        const lease = await req.store.createLease(previous, req.record, req.ttlSeconds);
        if (lease) return { lease, how: 'previous', notice };
        continue;
      }
    }

    const own = fitting[0];
    if (own) {
      const lease = await req.store.refreshLease(own, req.record, req.ttlSeconds);
      if (!lease) continue;
      const what = own.etcdLeaseId === undefined ? 'a reservation (a key without an etcd lease)' : 'a lease';
      const file = previous === undefined ? 'no subnet file names a subnet' : `the subnet file names ${previous}, which is ${subnetFits(req.config, previous) ? 'held by another host' : 'outside the network config'}`;
      return { lease, how: 'reused', notice: `took over ${own.key}: ${what} that carries this host's PublicIP ${req.record.publicIp}; ${file}` };
    }

    const taken = new Set([...listing.leases.map((l) => l.subnet), ...listing.malformed.flatMap((m) => (m.subnet ? [m.subnet] : []))]);
    const subnet = pickFreeSubnet(req.config, taken, req.random);
    if (subnet === undefined) throw new SubnetExhaustedError(req.config, taken.size);
    const lease = await req.store.createLease(subnet, req.record, req.ttlSeconds);
    if (lease) return { lease, how: 'new' };
  }
}
