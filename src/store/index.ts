/**
 * The store's public face: the SubnetStore interface and its etcd implementation, the watcher,
 * errors, and the key/value codecs (twillctl shows raw keys; tests build values).
 */
export type * from './types.js';
export { EtcdSubnetStore, type CreateLeaseOptions, type SubnetStore } from './subnet-store.js';
// LeaseWatchSource & co. let a fake store (test/fakes) reuse the real watcher rules.
export {
  LeaseWatcher, type LeaseWatcherEvents, type LeaseWatcherOptions, type ListFailure,
  type LeaseWatchSource, type WatchEvent, type WatchStream, type WatchStreamHandlers,
} from './lease-watcher.js';
export { StoreError, isStoreError, type StoreErrorCode } from './errors.js';
export {
  DEFAULT_PREFIX, describeSubnets, FLANNEL_SUBNET_REGEX, keyLayout, NO_IPV4_SUBNET, parseSubnetKeyName, subnetToKeyName, type KeyLayout, type LeaseSubnets,
} from './keys.js';
export { decodeLease, encodeLease, sameRecord, type LeaseDecodeResult } from './lease-codec.js';
export { compareRevisions } from './revision.js';
