/**
 * Remembers which problems (a rejected lease, a skipped entry) were present at the last look, so
 * each is logged and counted once when it appears, not again at every sync while it stays. One
 * that goes away and comes back counts again.
 */
export class FirstSeen<T> {
  private seen = new Set<string>();

  constructor(private readonly identify: (item: T) => string) {}

  /** Takes everything present now; returns the items that were not present last time. */
  update(present: Iterable<T>): T[] {
    const next = new Set<string>();
    const fresh: T[] = [];
    for (const item of present) {
      const id = this.identify(item);
      if (next.has(id)) continue;
      next.add(id);
      if (!this.seen.has(id)) fresh.push(item);
    }
    this.seen = next;
    return fresh;
  }
}
