import { Speaker, warmUpSpeaker, type PeerRoutesEvent, type Route, type SessionEvent } from '../../bgp/index.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { throttle } from '../../core/throttle.js';
import { parseServeFlags, type ServeConfig } from './serve-flags.js';
import { kernelTransport } from '../../backends/bgp/transport.js';

// `twillctl bgp serve`: JSON lines on stdout, one per event, so tests and scripts can follow a
// session with `jq`. Errors before start go to stderr with exit code 2 (usage) or 1.

type Print = (event: Record<string, unknown>) => void;

function routeLine(r: Route): Record<string, unknown> {
  const a = r.attributes;
  return {
    family: r.family,
    prefix: r.prefix,
    nextHop: r.nextHop,
    asPath: a.asPath.flatMap((s): (number | readonly number[])[] => (s.type === 'set' ? [s.asns] : [...s.asns])),
    origin: a.origin,
    ...(a.med !== undefined && { med: a.med }),
    ...(a.localPref !== undefined && { localPref: a.localPref }),
    ...(a.communities && { communities: a.communities.map((c) => `${c >>> 16}:${c & 0xffff}`) }),
    ...(a.largeCommunities && { largeCommunities: a.largeCommunities.map((c) => c.join(':')) }),
  };
}

function sessionLine(ev: SessionEvent): Record<string, unknown> {
  const n = ev.negotiated;
  return {
    event: 'session',
    peer: ev.peer,
    from: ev.from,
    state: ev.state,
    ...(ev.reason !== undefined && { reason: ev.reason }),
    ...(n && { negotiated: { peerAsn: n.peerAsn, routerId: n.peerRouterId, holdTime: n.holdTime, fourOctetAsn: n.fourOctetAsn, families: n.families } }),
    ...(ev.down?.notification && { notification: ev.down.notification }),
    ...(ev.down?.gracefulRestartTime !== undefined && { gracefulRestartTime: ev.down.gracefulRestartTime }),
  };
}

/**
 * How far apart progress lines are: the bgp benchmark reads the time a table was in from the line
 * that shows it, so the interval is how late that can be. It polls BIRD's count every 5 ms.
 */
const PROGRESS_MS = 5;

/**
 * Route events: one line per route, or per-peer totals (a progress line for big tables) at the
 * first change and then at most every PROGRESS_MS while routes change (core/throttle.ts), and at
 * End-of-RIB.
 */
function routePrinter(speaker: Speaker, config: ServeConfig, print: Print): void {
  if (config.printRoutes) {
    speaker.on('routes', (ev: PeerRoutesEvent) => {
      for (const r of ev.announced) print({ event: 'learned', peer: ev.peer, ...routeLine(r) });
      for (const w of ev.withdrawn) print({ event: 'withdrawn', peer: ev.peer, family: w.family, prefix: w.prefix });
      for (const j of ev.rejected) print({ event: 'rejected', peer: ev.peer, prefix: j.route.prefix, reason: j.reason });
    });
    return;
  }
  const counts = (): Record<string, unknown>[] => speaker.stats().peers.map((p) => ({ peer: p.peerId, received: p.received, rejected: p.rejected, advertised: p.advertised }));
  const progress = throttle(() => print({ event: 'routes', peers: counts() }), PROGRESS_MS);
  speaker.on('routes', progress);
  speaker.on('end-of-rib', () => print({ event: 'routes', peers: counts() }));
}

export async function serve(config: ServeConfig, print: Print, signal: AbortSignal): Promise<void> {
  if (config.warmUpPrefixes > 0) {
    // Only a head start: the speaker starts either way.
    await warmUpSpeaker({ prefixes: config.warmUpPrefixes }).then(
      (warm) => print({ event: 'warm-up', prefixes: warm.prefixes, received: warm.received, ms: Math.round(warm.ms) }),
      (err: Error) => print({ event: 'warning', message: `warm-up failed, starting without it: ${err.message}` }),
    );
  }
  const speaker = await Speaker.start({
    local: { asn: config.asn, routerId: config.routerId },
    listen: config.listen,
    transport: kernelTransport(config.netns),
    import: { accept: config.accept },
  });
  speaker.on('session', (ev) => print(sessionLine(ev)));
  speaker.on('end-of-rib', (ev) => print({ event: 'end-of-rib', peer: ev.peer, family: ev.family }));
  speaker.on('warning', (err) => print({ event: 'warning', message: err.message }));
  speaker.on('collision', (ev) => print({ event: 'collision', peer: ev.peer, closed: ev.closed, notification: { code: 6, subcode: 7 }, reason: ev.reason }));
  routePrinter(speaker, config, print);
  speaker.set(config.announce);
  for (const peer of config.peers) speaker.addPeer(peer);
  print({ event: 'ready', asn: config.asn, routerId: config.routerId, listen: speaker.listenAddresses, peers: config.peers.map((p) => p.address) });
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await speaker.close('twillctl bgp serve stopped');
  print({ event: 'stopped' });
}

/** Entry point for `twillctl bgp serve ...`; returns the exit code. */
export async function runServe(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseServeFlags(argv, process.env);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    process.stderr.write(`twillctl bgp serve: ${err.message}\n`);
    return 2;
  }
  if (parsed.kind !== 'run') {
    process.stdout.write(parsed.text);
    return 0;
  }
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  const print: Print = (event) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
  try {
    await serve(parsed.config, print, stop.signal);
    return 0;
  } catch (err) {
    process.stderr.write(`twillctl bgp serve: ${(err as Error).message}\n`);
    return err instanceof InvalidArgumentError ? 2 : 1;
  }
}
