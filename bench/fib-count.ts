import { readFileSync, statSync } from 'node:fs';

/**
 * Counting a namespace's routes without dumping them: a benchmark that waits for thousands of
 * routes polls this every few milliseconds, where a netlink dump and its parsing each time would
 * take CPU from the daemons measured on the same two cores, and a coarse poll would add its
 * interval to the figure.
 */

/**
 * The main FIB's prefix count of the namespace `pid` lives in (the "Main:" block of
 * /proc/<pid>/net/fib_triestat). Every route of the main table counts, connected ones too:
 * callers compare with a baseline taken before.
 */
export function fibPrefixes(pid: number): number {
  const text = readFileSync(`/proc/${pid}/net/fib_triestat`, 'utf8');
  const m = /^Main:\n(?:\t.*\n)*?\tPrefixes:\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`no "Main: ... Prefixes:" in /proc/${pid}/net/fib_triestat:\n${text}`);
  return Number(m[1]);
}

/** Whether process `pid` is in the network namespace bound at `netnsPath` (its namespace inode). */
export function inNetns(pid: number, netnsPath: string): boolean {
  return statSync(`/proc/${pid}/ns/net`).ino === statSync(netnsPath).ino;
}
