/**
 * A backend's kernel writes, one at a time (sync, start, resync, repair): two interleaved diffs
 * of the same table could undo each other's writes. A failed step does not block the next.
 */
export class WriteQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `step` after every step queued before it; resolves or rejects with its outcome. */
  run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(step, step);
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every step queued so far has finished (so a netlink handle may be closed). */
  async drained(): Promise<void> {
    await this.#tail;
  }
}
