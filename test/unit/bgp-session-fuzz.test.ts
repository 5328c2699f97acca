/**
 * Property test of the speaker's sessions: seeded random sequences of what peers (and strangers)
 * can do to it: connections from either side, OPENs with and without graceful restart and with
 * the wrong AS or identifier, KEEPALIVEs, UPDATEs (with usable and unusable next hops),
 * End-of-RIB, ROUTE-REFRESH, NOTIFICATIONs, garbage, FIN and reset, peers removed and added, and
 * time passing: hold, keepalive, ConnectRetry and restart timers, on fake time over an in-memory
 * transport (bgp-session-fuzz-world.ts). After every step:
 *  - nothing threw, from a step, a timer or a stream event, and no promise was left rejected;
 *  - the 'best' events, applied in order, equal the Loc-RIB, and every best route is in the
 *    Adj-RIB-In of a configured peer;
 *  - no peer keeps routes (or stale marks) beyond its restart time once its session is gone
 *    (RFC 4724 §4.2), a removed peer keeps none, and no route has our own or a loopback next hop;
 *  - a bare connection, or an OPEN that does not prove a restart, leaves an Established session
 *    alone (RFC 4271 §6.8), and no peer holds more connections than the pending cap allows.
 * BGP_SESSION_FUZZ_CASES (default 500), BGP_SESSION_FUZZ_STEPS (steps per case, default 80) and
 * BGP_SESSION_FUZZ_SEED replay or widen the search; a failure names its seed, case and steps.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { prng } from './bgp-prng.js';
import { World } from './bgp-session-fuzz-world.js';
import { settle } from '../helpers/bgp-memory-transport.js';

const CASES = Number(process.env.BGP_SESSION_FUZZ_CASES ?? 500);
const STEPS = Number(process.env.BGP_SESSION_FUZZ_STEPS ?? 80);
const SEED = Number(process.env.BGP_SESSION_FUZZ_SEED ?? 0x5e55);

const escaped: unknown[] = [];
const onEscape = (err: unknown): void => {
  escaped.push(err);
};

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});

afterEach(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** An error with the top of its stack: where it was thrown matters more than its message. */
function described(err: unknown): string {
  return err instanceof Error ? (err.stack ?? String(err)).split('\n').slice(0, 6).join('\n      ') : String(err);
}

/** Runs one case; returns its first failure (with the steps that led there), or undefined. */
async function runCase(seed: number, seen: Map<string, number>): Promise<string | undefined> {
  escaped.length = 0;
  // The reconnect backoff's jitter comes from Math.random: seeded too, so a case replays exactly.
  vi.spyOn(Math, 'random').mockImplementation(prng(seed ^ 0x9e3779b9).next);
  const world = await World.create(prng(seed));
  const fail = (why: string): string => `seed ${seed}: ${why}\n  steps:\n    ${world.trace.slice(-25).join('\n    ')}`;
  try {
    for (let i = 0; i < STEPS; i++) {
      let text: string;
      try {
        text = await world.step();
        await settle();
      } catch (err) {
        return fail(`step ${i} threw ${described(err)}`);
      }
      world.trace.push(`${i}: ${text}`);
      if (escaped.length > 0) return fail(`after step ${i}: ${described(escaped[0])}`);
      const broken = world.violations();
      if (broken.length > 0) return fail(`after step ${i}: ${broken.join('; ')}`);
      const up = world.mustStayUp;
      if (up !== undefined && world.state(up) !== 'established') return fail(`after step ${i}: the Established session with ${up} went down`);
    }
  } finally {
    await world.speaker.close();
    for (const [what, n] of world.seen) seen.set(what, (seen.get(what) ?? 0) + n);
  }
  // Whatever timers a case left behind run to the end without a throw (one jump: nothing is
  // connected any more that would need the streams to run between them).
  try {
    vi.advanceTimersByTime(300_000);
    await settle();
  } catch (err) {
    return fail(`after close, a timer threw ${described(err)}`);
  }
  if (escaped.length > 0) return fail(`after close: ${described(escaped[0])}`);
  return undefined;
}

describe(`BGP session property test (${CASES} cases of ${STEPS} steps, seed ${SEED})`, () => {
  it('no step throws, and the RIB and session invariants hold after each', { timeout: 300_000 }, async () => {
    const failures: string[] = [];
    const seen = new Map<string, number>();
    for (let c = 0; c < CASES && failures.length < 3; c++) {
      const failure = await runCase(SEED + c, seen);
      if (failure !== undefined) failures.push(`case ${c}, ${failure}`);
    }
    expect(failures).toEqual([]);
    if (process.env.BGP_FUZZ_VERBOSE) console.log(Object.fromEntries([...seen].sort()));
    // The generator still reaches what the invariants are about.
    for (const what of ['established', 'routes learned', 'down, routes kept as stale', 'restarted peer took over', 'Cease/1 sent', 'rejected: own-next-hop', 'rejected: loopback-next-hop', 'collision']) {
      expect(seen.get(what) ?? 0, what).toBeGreaterThan(0);
    }
  });
});
