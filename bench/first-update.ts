import { startDaemon } from '../test/helpers/daemon.js';
import type { TestNetns } from '../test/helpers/netns.js';

/**
 * When a BGP speaker's first UPDATE left it on one link, seen by tcpdump in its namespace: the
 * first TCP segment from `from` (port 179; to `to`, when given) on `ifname` whose payload starts with a BGP message
 * of type 2 (UPDATE; the type is octet 18 of the header, RFC 4271 §4.1), so a KEEPALIVE in the
 * window does not count. tcpdump prints the packet's kernel timestamp on the same wall clock as
 * Date.now(). The bgp and bgp-backend benchmarks time each receiver's intake from there, which
 * leaves out how long the sender took to load and export the table: the same work toward every
 * receiver, but 350 to 580 ms of a 500 ms round (BIRD sending 100,000 prefixes) or 250 to 430 ms
 * of a 700 ms one (gobgpd, 10,000), varying from one round to the next by more than a receiver's
 * whole intake.
 */
export interface FirstUpdateWatch {
  /** The first UPDATE's time (ms since the epoch); rejects if none was seen within `timeoutMs`. */
  time(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export async function watchFirstUpdate(ns: TestNetns, ifname: string, from: string, to?: string): Promise<FirstUpdateWatch> {
  const filter = `src host ${from}${to === undefined ? '' : ` and dst host ${to}`} and tcp src port 179 and tcp[((tcp[12] & 0xf0) >> 2) + 18] = 2`;
  // -c 1: tcpdump prints the first match and exits. Left running it would print every UPDATE (a
  // line each: gobgpd sends 10,000 prefixes as 10,000 segments), taking CPU from the receivers and
  // pushing the first line out of the output the daemon helper keeps.
  const capture = await startDaemon({
    cmd: 'tcpdump', args: ['-l', '-n', '-tt', '--immediate-mode', '-c', '1', '-i', ifname, filter],
    netns: ns.name, label: `first-update-${ifname}`, registry: ns.registry, stopSignal: 'SIGINT',
  });
  // 'close' comes once its output has been read too ('exit' may come before).
  const closed = new Promise<void>((resolve) => capture.child.once('close', () => resolve()));
  try {
    // tcpdump says so on stderr once its capture is open: nothing sent after that is missed.
    await capture.waitForOutput(/listening on/, 10_000);
  } catch (err) {
    await capture.stop();
    throw err;
  }
  return {
    time: async (timeoutMs = 10_000) => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); });
      await Promise.race([closed, timedOut]);
      clearTimeout(timer);
      const seen = /^(\d+\.\d+) IP /m.exec(capture.output());
      if (seen === null) throw new Error(`no UPDATE from ${from} seen on ${ifname} within ${timeoutMs} ms; tcpdump said:\n${capture.output().slice(-500)}`);
      return Number(seen[1]) * 1000;
    },
    stop: async () => {
      await capture.stop();
    },
  };
}
