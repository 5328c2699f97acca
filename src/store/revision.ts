/**
 * etcd revisions as etcd3 hands them over: decimal strings of int64 values. Compared without
 * BigInt (hot in lease screening): without leading zeros, a longer string is a larger number.
 */
export function compareRevisions(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}
