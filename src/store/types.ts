/**
 * The subnet store's vocabulary. `src/store` is the only place that knows etcd; everything else
 * sees leases as these plain values and the store as the SubnetStore interface.
 */

/**
 * A lease record as flannel writes it under <prefix>/subnets/<a.b.c.d>-<len> (flannel
 * pkg/lease/lease.go LeaseAttrs): {"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"vxlan",
 * "BackendData":{"VNI":1,"VtepMAC":"..."}}, and in a dual-stack lease "PublicIPv6":"fd00::1" and
 * "BackendV6Data":{...} too. Field names here are camelCase; the codec maps them.
 */
export interface LeaseRecord {
  /** The host's IPv4 underlay address; "0.0.0.0" (flannel's empty ip.IP4) in an IPv6-only lease. */
  readonly publicIp: string;
  readonly publicIpv6?: string | null | undefined;
  readonly backendType: string;
  /** Opaque to everyone but the backend named by backendType. */
  readonly backendData?: unknown;
  /** The backend's data for IPv6 (flannel's vxlan: the VTEP MAC of its second device); opaque too. */
  readonly backendV6Data?: unknown;
}

export interface SubnetLease {
  /** "10.244.3.0/24"; "0.0.0.0/0" (NO_IPV4_SUBNET) in an IPv6-only lease. */
  readonly subnet: string;
  /** "fc00:0:0:3::/64" in a dual-stack or IPv6-only lease, named by the same key. */
  readonly ipv6Subnet?: string | undefined;
  /** The etcd key, e.g. "/coreos.com/network/subnets/10.244.3.0-24" or ".../10.244.3.0-24&fc00:0:0:3::-64". */
  readonly key: string;
  readonly record: LeaseRecord;
  /**
   * The etcd lease (hex or decimal string as etcd3 reports it) the key is bound to; undefined for
   * a key without a lease, which is a reservation: permanent, honoured, never expired by Twill.
   */
  readonly etcdLeaseId: string | undefined;
  /** When the key expires (ms since the epoch), if bound to a lease and known. */
  readonly expiresAt: number | undefined;
  /** The key's mod revision, for compare-and-swap updates. */
  readonly modRevision: string;
  /**
   * The revision that created the key (etcd create_revision). It orders leases the same way on
   * every host: of two leases that overlap, the older (lower create revision) is the one routed.
   */
  readonly createRevision: string;
}

/** A key under subnets/ whose name or JSON could not be understood; skipped, never fatal. */
export interface MalformedLease {
  readonly key: string;
  /**
   * The subnets the key names, when its name is valid (or flannel reads one from it) and only the
   * value or Twill's stricter reading is not: still taken.
   */
  readonly subnet?: string | undefined;
  readonly ipv6Subnet?: string | undefined;
  readonly reason: string;
}

export interface LeaseListing {
  readonly leases: SubnetLease[];
  readonly malformed: MalformedLease[];
  /** The etcd revision the listing was taken at; a watch continues from revision + 1. */
  readonly revision: string;
}

export interface StoreTls {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

export interface StoreOptions {
  /** "http://127.0.0.1:2379" or "https://..." (several for a cluster). */
  readonly endpoints: readonly string[];
  /** Key prefix; flannel's default "/coreos.com/network". */
  readonly prefix: string;
  readonly tls?: StoreTls | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** Per-call deadline in ms (default 5000), so an outage surfaces as an error, not a hang. */
  readonly callTimeoutMs?: number | undefined;
}

/** The full desired picture after a change, plus what changed. */
export interface LeaseSetChange {
  /**
   * Every valid lease currently in the store, by etcd key. The watcher's live map: later changes
   * show through it; copy it to keep a snapshot.
   */
  readonly leases: ReadonlyMap<string, SubnetLease>;
  readonly added: readonly SubnetLease[];
  /** Removed leases carry their last known record (an etcd delete has no value). */
  readonly removed: readonly SubnetLease[];
  /** Changed record (e.g. a new VTEP MAC): the new value. */
  readonly updated: readonly SubnetLease[];
  /** Why this change came: the first snapshot, a watch event, or a re-list after compaction/reconnect. */
  readonly cause: 'snapshot' | 'event' | 'resync';
}
