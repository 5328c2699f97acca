import type { NetworkConfig } from '../ipam/network-config.js';
import { compareRevisions, describeSubnets } from '../store/index.js';
import type { LeaseListing, LeaseRecord, SubnetLease } from '../store/types.js';
import type { SubnetStore } from '../store/subnet-store.js';
import { carriedAddress, describeRanges, fits, holds, pickFree, previousSubnets, takenSubnets } from './lease-choice.js';
import { LeaseWriteBlockedError } from './lease-errors.js';

export { LeaseWriteBlockedError, SubnetExhaustedError } from './lease-errors.js';

export interface AcquireRequest {
  readonly store: SubnetStore;
  readonly config: NetworkConfig;
  readonly record: LeaseRecord;
  readonly ttlSeconds: number;
  /** The subnet this host had before (from the subnet file), tried after its own lease. */
  readonly previousSubnet?: string | undefined;
  /** The IPv6 subnet it had before (FLANNEL_IPV6_SUBNET), used when the config has IPv6. */
  readonly previousIpv6Subnet?: string | undefined;
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
  /** The listing the choice was made from: the lease watch starts from it (no second read of every lease). */
  readonly listing: LeaseListing;
};

/**
 * Acquires this host's subnets, in flannel's order (pkg/subnet/etcd/local_manager.go):
 *   1. the subnets from the subnet file, when their key is free or carries this host's PublicIP
 *      (flannel's own subnet file comes first when its lease is free or ours); a file from before
 *      IPv6 was enabled keeps its IPv4 subnet (lease-choice.ts previousSubnets);
 *   2. a lease that carries this host's PublicIP (or PublicIPv6) (a restart after the subnet file
 *      was lost, a reservation made for this host, a flannel host moving to Twill): taken over with
 *      a notice, refreshed under a new etcd lease (a reservation stays a reservation);
 *   3. free subnets: an IPv4 one and, with IPv6 enabled, an IPv6 one, under one key.
 * Creation is one transaction that succeeds only if no other key holds either subnet
 * (create-conditions.ts). A lost race re-reads the store and tries again: every loss means another
 * host won a subnet, so this ends with a lease or with SubnetExhaustedError (flannel exits on a
 * lost race instead). A loss with nothing written meanwhile is no race: LeaseWriteBlockedError.
 */
export async function acquireLease(req: AcquireRequest): Promise<AcquireOutcome> {
  const { config } = req;
  /** The revision of the listing behind the last lost write, and what it tried. */
  let lost: { readonly revision: string; readonly what: string } | undefined;
  for (;;) {
    // No per-lease TTL lookups: with thousands of hosts they would dominate start-up.
    const listing = await req.store.listLeases({ expiry: false });
    if (lost !== undefined && listing.revision === lost.revision) throw new LeaseWriteBlockedError(lost.revision, lost.what);
    const mine = listing.leases.filter((l) => carriedAddress(l, req.record) !== undefined);
    const dropped = mine.filter((l) => !fits(config, l));
    for (const lease of dropped) {
      // The config changed under this lease: give it up, as flannel does.
      await req.store.deleteLease(lease.subnet, lease.ipv6Subnet);
      req.onDropped?.(lease, `does not fit the network config (${describeRanges(config)})`);
    }
    const live = listing.leases.filter((l) => !dropped.includes(l));
    const fitting = mine.filter((l) => !dropped.includes(l)).sort((a, b) => compareRevisions(a.createRevision, b.createRevision));
    const taken = takenSubnets([...live, ...listing.malformed]);

    const previous = previousSubnets(config, { subnet: req.previousSubnet, ipv6Subnet: req.previousIpv6Subnet }, taken, req.random);
    if (previous !== undefined && fits(config, previous)) {
      const holders = live.filter((l) => holds(l, previous));
      const garbled = listing.malformed.some((m) => holds(m, previous));
      const ours = holders.find((l) => fitting.includes(l));
      // Other keys that carry this host's PublicIP are not taken, but said: the subnet file wins.
      const others = fitting.filter((l) => !holders.includes(l)).map((l) => l.key);
      const notice = others.length === 0 ? undefined
        : `the subnet file names ${describeSubnets(previous)}; ${others.join(', ')} also carr${others.length === 1 ? 'ies' : 'y'} this host's PublicIP and ${others.length === 1 ? 'is' : 'are'} left alone`;
      if (ours) {
        const lease = await req.store.refreshLease(ours, req.record, req.ttlSeconds);
        if (lease) return { lease, how: 'previous', notice, listing };
        lost = { revision: listing.revision, what: `refreshing ${ours.key}` };
        continue; // changed meanwhile: look again
      }
      if (holders.length === 0 && !garbled) {
        const lease = await req.store.createLease(previous.subnet, req.record, req.ttlSeconds, { ipv6Subnet: previous.ipv6Subnet, freeAsOf: listing.revision });
        if (lease) return { lease, how: 'previous', notice, listing };
        lost = { revision: listing.revision, what: `creating ${describeSubnets(previous)}` };
        continue;
      }
    }

    const own = fitting[0];
    if (own) {
      const lease = await req.store.refreshLease(own, req.record, req.ttlSeconds);
      if (!lease) {
        lost = { revision: listing.revision, what: `refreshing ${own.key}` };
        continue;
      }
      const what = own.etcdLeaseId === undefined ? 'a reservation (a key without an etcd lease)' : 'a lease';
      const file = previous === undefined ? 'no subnet file names a subnet'
        : `the subnet file names ${describeSubnets(previous)}, which ${fits(config, previous) ? 'another host holds' : 'does not fit the network config'}`;
      return { lease, how: 'reused', listing, notice: `took over ${own.key}: ${what} that carries this host's ${carriedAddress(own, req.record)}; ${file}` };
    }

    const subnets = pickFree(config, taken, req.random);
    const lease = await req.store.createLease(subnets.subnet, req.record, req.ttlSeconds, { ipv6Subnet: subnets.ipv6Subnet, freeAsOf: listing.revision });
    if (lease) return { lease, how: 'new', listing };
    lost = { revision: listing.revision, what: `creating ${describeSubnets(subnets)}` };
  }
}
