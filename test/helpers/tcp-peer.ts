import type { Daemon } from './daemon.js';
import type { TestNetns } from './netns.js';

/**
 * A TCP echo of the peer's address, for tests that ask "whose address did the server see?"
 * (NAT, hostPort DNAT, hairpin): the server answers each connection with `remoteAddress`.
 */
const SERVER = `require('node:net').createServer((s) => s.end(s.remoteAddress + '\\n')).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('listening'));`;
/** Connects and prints the answer; exit 1 on error (e.g. refused), 2 after 3 s without one. */
const CLIENT = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
let out = '';
s.setTimeout(3000, () => { console.error('timeout'); process.exit(2); });
s.on('data', (d) => { out += d; });
s.on('end', () => process.stdout.write(out));
s.on('error', (e) => { console.error(e.message); process.exit(1); });`;

/** Starts the server on 0.0.0.0:`port` inside `ns` and waits until it listens. */
export async function startPeerServer(ns: TestNetns, port: number, label = 'peer-server'): Promise<Daemon> {
  const server = await ns.spawn(process.execPath, ['-e', SERVER, String(port)], { label });
  await server.waitForOutput(/listening/, 10_000);
  return server;
}

/** What the server says when `from` connects to ip:port: the peer address it saw, or the failure. */
export async function connectPeer(from: TestNetns, ip: string, port: number): Promise<{ ok: boolean; text: string }> {
  const r = await from.run(process.execPath, ['-e', CLIENT, ip, String(port)], { allowFailure: true, timeoutMs: 10_000 });
  return { ok: r.code === 0, text: (r.code === 0 ? r.stdout : r.stderr).trim() };
}
