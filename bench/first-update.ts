import { startDaemon } from '../test/helpers/daemon.js';
import type { TestNetns } from '../test/helpers/netns.js';

/**
 * When a BGP speaker's first UPDATE left it on one link, seen by tcpdump in its namespace: the
 * first TCP segment from `from` (port 179) on `ifname` whose payload starts with a BGP message
 * of type 2 (UPDATE; the type is octet 18 of the header, RFC 4271 §4.1), so a KEEPALIVE in the
 * window does not count. tcpdump prints the packet's kernel timestamp on the same wall clock as
 * Date.now(). The bgp benchmark times each receiver's intake from there, which leaves out how
 * long the sender took to load and export the table: the same work toward every receiver, but
 * 350 to 580 ms of a 500 ms round, varying from one round to the next by more than a receiver's
 * whole intake.
 */
export interface FirstUpdateWatch {
  /** The first UPDATE's time (ms since the epoch); rejects if none was seen within `timeoutMs`. */
  time(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

export async function watchFirstUpdate(ns: TestNetns, ifname: string, from: string): Promise<FirstUpdateWatch> {
  const filter = `src host ${from} and tcp src port 179 and tcp[((tcp[12] & 0xf0) >> 2) + 18] = 2`;
  const capture = await startDaemon({
    cmd: 'tcpdump', args: ['-l', '-n', '-tt', '--immediate-mode', '-i', ifname, filter],
    netns: ns.name, label: `first-update-${ifname}`, registry: ns.registry, stopSignal: 'SIGINT',
  });
  try {
    // tcpdump says so on stderr once its capture is open: nothing sent after that is missed.
    await capture.waitForOutput(/listening on/, 10_000);
  } catch (err) {
    await capture.stop();
    throw err;
  }
  return {
    time: async (timeoutMs = 10_000) => {
      const out = await capture.waitForOutput(/^(\d+\.\d+) IP /m, timeoutMs);
      return Number(/^(\d+\.\d+) IP /m.exec(out)![1]) * 1000;
    },
    stop: async () => {
      await capture.stop();
    },
  };
}
