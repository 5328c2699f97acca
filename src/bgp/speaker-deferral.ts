import type { Negotiated } from './session/open.js';
import type { Family } from './types.js';

/** RFC 4724 §4.1 leaves the Selection_Deferral_Timer to configuration; BIRD's "graceful restart wait" default. */
export const DEFAULT_SELECTION_DEFERRAL_TIME = 240;

/**
 * A restarting speaker's wait before its first UPDATEs (RFC 4724 §4.1): route selection is
 * deferred until every peer that helps with the restart (it advertised graceful restart, without
 * the Restart State bit) has sent End-of-RIB for each family of its session, or until the
 * Selection_Deferral_Timer expires. Until then a peer would get a partial table followed by our
 * End-of-RIB, and drop as stale whatever we had not learned yet.
 *
 * Only established sessions count: a peer whose session is not up is no reason to wait. `onOver`
 * runs once, when the wait ends (possibly inside established() or endOfRib()).
 */
export class SelectionDeferral {
  /** Per established helper peer, the families whose End-of-RIB is still to come. */
  private readonly owed = new Map<string, Set<Family>>();
  private timer: NodeJS.Timeout | undefined;

  constructor(seconds: number, private readonly onOver: () => void) {
    this.timer = setTimeout(() => this.finish(), seconds * 1000);
  }

  /** True until the wait is over (or cancelled). */
  get active(): boolean {
    return this.timer !== undefined;
  }

  /** A session came up; a peer that can help owes an End-of-RIB per family. */
  established(peer: string, negotiated: Negotiated): void {
    if (!this.active) return;
    if (negotiated.peerRestartTime !== undefined && !negotiated.peerRestarting) this.owed.set(peer, new Set(negotiated.families));
    this.check();
  }

  endOfRib(peer: string, family: Family): void {
    if (this.owed.get(peer)?.delete(family)) this.check();
  }

  /** The peer's session went down, or the peer was removed: it owes nothing any more. */
  gone(peer: string): void {
    if (this.owed.delete(peer)) this.check();
  }

  /** Ends the wait without calling `onOver` (the speaker is closing). */
  cancel(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.owed.clear();
  }

  private check(): void {
    for (const families of this.owed.values()) if (families.size > 0) return;
    this.finish();
  }

  private finish(): void {
    if (!this.active) return;
    this.cancel();
    this.onOver();
  }
}
