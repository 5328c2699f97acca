/**
 * What source address does a server see? A tiny TCP server that answers each connection with the
 * peer's address, and the client that asks it: how the masquerading tests tell NAT from no NAT.
 */
import type { TestNetns } from './netns.js';

const PORT = '7000';

/** A TCP server that answers each connection with the peer address it sees, then closes. */
const PEER_SERVER = `
const net = require('node:net');
net.createServer((s) => s.end(s.remoteAddress + '\\n')).listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
`;
/** Connects, prints what the server said; fails after 3 s without an answer. */
const PEER_CLIENT = `
const net = require('node:net');
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
let out = '';
s.setTimeout(3000, () => { console.error('timeout'); process.exit(2); });
s.on('data', (d) => { out += d; });
s.on('end', () => process.stdout.write(out));
s.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/** Starts the server in `ns` on `listen` ("0.0.0.0" or "::"); it lives as long as the namespace. */
export async function startPeerServer(ns: TestNetns, listen: '0.0.0.0' | '::'): Promise<void> {
  const d = await ns.spawn(process.execPath, ['-e', PEER_SERVER, listen, PORT], { label: `peer-server ${ns.name}` });
  await d.waitForOutput(/listening/, 10_000);
}

/** The source address the server at `ip` sees for a connection from `from`. */
export async function seenBy(from: TestNetns, ip: string): Promise<string> {
  return (await from.exec(process.execPath, ['-e', PEER_CLIENT, ip, PORT], { timeoutMs: 10_000 })).trim();
}
