/**
 * Runs `work` for the newest desired state, one run at a time. Updates that arrive during a run
 * are coalesced: only the latest is applied next, since the backend's sync is declarative.
 */
export class SyncLoop<T> {
  private pending: { value: T } | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly work: (value: T) => Promise<void>) {}

  /** Schedules `value` and resolves once a run that includes it has finished. */
  update(value: T): Promise<void> {
    this.pending = { value };
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves when nothing is running or queued. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const { value } = this.pending;
      this.pending = undefined;
      await this.work(value);
    }
  }
}
