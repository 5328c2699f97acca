/**
 * `twillctl bgp serve` (Twill's own speaker) as a process inside a test namespace, with its JSON
 * lines parsed as they come: session states, learned and withdrawn routes, End-of-RIB.
 *
 *   const twill = await startTwillSpeaker(host, ['--asn', '65001', '--router-id', '198.18.0.1', '--peer', '198.18.0.2,asn=65002']);
 *   await twill.waitEstablished('198.18.0.2');
 *   await twill.waitRoute('10.244.2.0/24');
 */
import { resolve } from 'node:path';
import type { Daemon } from './daemon.js';
import type { TestNetns } from './netns.js';
import { repoRoot } from './twilld.js';

export const CTL_MAIN = resolve(repoRoot(), 'dist/src/ctl/main.js');

export interface SpeakerLine {
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface TwillRoute {
  readonly peer: string;
  readonly family: string;
  readonly prefix: string;
  readonly nextHop: string;
  readonly asPath: readonly (number | number[])[];
  readonly communities?: readonly string[];
  readonly largeCommunities?: readonly string[];
  readonly med?: number;
  readonly localPref?: number;
}

export interface TwillSpeaker {
  readonly daemon: Daemon;
  /** Every line so far, in order. */
  readonly lines: readonly SpeakerLine[];
  /** Learned routes now held, by "peer prefix". */
  readonly routes: ReadonlyMap<string, TwillRoute>;
  state(peer: string): string | undefined;
  waitFor(pred: (line: SpeakerLine) => boolean, what: string, timeoutMs?: number): Promise<SpeakerLine>;
  waitEstablished(peer: string, timeoutMs?: number): Promise<SpeakerLine>;
  /** Resolves when a route for `prefix` is held (from `peer`, if given). */
  waitRoute(prefix: string, peer?: string, timeoutMs?: number): Promise<TwillRoute>;
  waitNoRoute(prefix: string, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** `nodeArgs` go to Node itself, before the script (e.g. `--cpu-prof` for a benchmark's profile). */
export async function startTwillSpeaker(ns: TestNetns, args: readonly string[], label = 'twill-bgp', nodeArgs: readonly string[] = []): Promise<TwillSpeaker> {
  const daemon = await ns.spawn(process.execPath, [...nodeArgs, CTL_MAIN, 'bgp', 'serve', ...args], { label });
  const lines: SpeakerLine[] = [];
  const routes = new Map<string, TwillRoute>();
  const states = new Map<string, string>();
  const waiters = new Set<() => void>();
  let partial = '';
  daemon.child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      let line: SpeakerLine;
      try {
        line = JSON.parse(text) as SpeakerLine;
      } catch {
        continue;
      }
      lines.push(line);
      const peer = String(line.peer ?? '');
      if (line.event === 'session') states.set(peer, String(line.state));
      if (line.event === 'learned') routes.set(`${peer} ${String(line.prefix)}`, line as unknown as TwillRoute);
      if (line.event === 'withdrawn') routes.delete(`${peer} ${String(line.prefix)}`);
      for (const w of waiters) w();
    }
  });
  const waitUntil = <T>(probe: () => T | undefined, what: string, timeoutMs: number): Promise<T> => new Promise((resolvePromise, reject) => {
    const check = (): void => {
      const v = probe();
      if (v !== undefined) {
        done();
        resolvePromise(v);
      } else if (!daemon.running) {
        done();
        reject(new Error(`twillctl bgp serve exited (${JSON.stringify(daemon.exitInfo)}) while waiting for ${what}; output:\n${daemon.output().slice(-4000)}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last lines:\n${lines.slice(-15).map((l) => JSON.stringify(l)).join('\n')}\n${daemon.output().slice(-2000)}`));
    }, timeoutMs);
    function done(): void {
      clearTimeout(timer);
      waiters.delete(check);
    }
    waiters.add(check);
    void daemon.exited.then(check);
    check();
  });
  const speaker: TwillSpeaker = {
    daemon,
    lines,
    routes,
    state: (peer) => states.get(peer),
    waitFor: (pred, what, timeoutMs = 20_000) => {
      let seen = 0;
      return waitUntil(() => {
        for (; seen < lines.length; seen++) if (pred(lines[seen]!)) return lines[seen];
        return undefined;
      }, what, timeoutMs);
    },
    waitEstablished: (peer, timeoutMs = 30_000) => waitUntil(
      () => (states.get(peer) === 'established' ? lines.findLast((l) => l.event === 'session' && l.peer === peer) : undefined),
      `session with ${peer} Established`, timeoutMs,
    ),
    waitRoute: (prefix, peer, timeoutMs = 20_000) => waitUntil(
      () => [...routes.values()].find((r) => r.prefix === prefix && (peer === undefined || r.peer === peer)),
      `route ${prefix}${peer ? ` from ${peer}` : ''}`, timeoutMs,
    ),
    waitNoRoute: (prefix, timeoutMs = 20_000) => waitUntil(
      () => ([...routes.values()].some((r) => r.prefix === prefix) ? undefined : true),
      `route ${prefix} withdrawn`, timeoutMs,
    ).then(() => undefined),
    stop: async () => { await daemon.stop(); },
  };
  await speaker.waitFor((l) => l.event === 'ready', 'ready line', 15_000);
  return speaker;
}
