/**
 * Shared bits of the store integration tests (store-etcd.test.ts, store-watch.test.ts): lease
 * records and flannel's JSON for them, per-test key prefixes, and a recorder of watcher events.
 */
import { randomBytes } from 'node:crypto';
import type { LeaseWatcher } from '../../src/store/lease-watcher.js';
import { EtcdSubnetStore } from '../../src/store/subnet-store.js';
import type { LeaseRecord, LeaseSetChange, MalformedLease, StoreOptions, SubnetLease } from '../../src/store/types.js';
import { cleanup } from '../helpers/cleanup.js';

export const rec = (ip: string, mac = '02:00:00:00:00:01'): LeaseRecord => ({ publicIp: ip, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } });

/** What flannel (and Twill) writes for rec(ip, mac). */
export const flannelJson = (ip: string, mac = '02:00:00:00:00:01'): string =>
  `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`;

/** etcdctl takes lease IDs in hex; etcd3 gives them in decimal. */
export const hex = (id: string | undefined): string => BigInt(id ?? 0).toString(16);

const run = randomBytes(3).toString('hex');
let prefixes = 0;
/** A fresh key prefix per test, so tests sharing one etcd do not see each other's keys. */
export const freshPrefix = (): string => `/twt-store-${run}-${++prefixes}/network`;

export interface WatcherLog {
  readonly changes: LeaseSetChange[];
  readonly malformed: MalformedLease[];
  /** Every event in order: "change:<cause>", "malformed", "disconnected", "reconnected", "restart:<reason>", "listFailed:<code>". */
  readonly log: string[];
}

export function recordWatcher(w: LeaseWatcher): WatcherLog {
  const out: WatcherLog = { changes: [], malformed: [], log: [] };
  w.on('change', (c) => { out.changes.push(c); out.log.push(`change:${c.cause}`); });
  w.on('malformed', (m) => { out.malformed.push(m); out.log.push('malformed'); });
  w.on('disconnected', () => out.log.push('disconnected'));
  w.on('reconnected', () => out.log.push('reconnected'));
  w.on('restart', (reason) => out.log.push(`restart:${reason}`));
  w.on('listFailed', (f) => out.log.push(`listFailed:${f.error.code}`));
  return out;
}

export const sortedSubnets = (m: ReadonlyMap<string, SubnetLease>): string[] => [...m.values()].map((l) => l.subnet).sort();
/** The lease of `subnet` in a watcher's set (which is keyed by etcd key). */
export const bySubnet = (m: ReadonlyMap<string, SubnetLease>, subnet: string): SubnetLease | undefined =>
  [...m.values()].find((l) => l.subnet === subnet);

/** The subnet -> PublicIP picture, to compare a watcher's set with etcd's. */
export const picture = (leases: Iterable<SubnetLease>): Record<string, string> =>
  Object.fromEntries([...leases].map((l) => [l.subnet, l.record.publicIp] as const).sort(([a], [b]) => a.localeCompare(b)));

/** A store on the test's etcd, closed when the current test (or file) unwinds. */
export function openStore(clientUrl: string, prefix: string, extra: Partial<StoreOptions> = {}): EtcdSubnetStore {
  const store = EtcdSubnetStore.connect({ endpoints: [clientUrl], prefix, ...extra });
  cleanup.defer('close store', () => store.close());
  return store;
}
