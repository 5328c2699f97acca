/**
 * A Connection given a read-gather time pauses reading after a small read of UPDATEs, so that
 * what a trickling peer sends meanwhile is read, decoded and reported together
 * (BgpTransport.readGatherMs). Checked on a stand-in socket for when it pauses, and over a real
 * loopback TCP connection for what the peer's next UPDATEs become.
 */
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Connection } from '../../src/bgp/session/connection.js';
import { standInSocket } from '../helpers/bgp-stand-in-socket.js';
import { MessageType, type PathAttributes } from '../../src/bgp/types.js';
import { encodeKeepalive, encodeUpdate, toUpdateMessage, type ReceivedMessage } from '../../src/bgp/wire/index.js';

const OPTS = { fourOctetAsn: true };
const A: PathAttributes = { origin: 0, asPath: [{ type: 'sequence', asns: [65000] }], nextHop: '198.18.64.1' };
const update = (nlri: string[]): Buffer => encodeUpdate({ withdrawn: [], nlri, attributes: A }, OPTS);
const nlriOf = (m: ReceivedMessage): readonly string[] => (m.type === MessageType.UPDATE ? toUpdateMessage(m.update).nlri : []);

afterEach(() => {
  vi.useRealTimers();
});

describe('Connection: reads gathered after a small read of UPDATEs', () => {
  it('pauses for the gather time after a small read with an UPDATE, not after a KEEPALIVE, a large read or with no gather time', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const socket = standInSocket();
    const conn = new Connection(socket.socket, false, 5);
    conn.setCodecOptions(OPTS);
    const seen: ReceivedMessage[] = [];
    conn.on('message', (m) => seen.push(m));

    socket.emit('data', encodeKeepalive());
    expect(socket.paused).toBe(0);

    socket.emit('data', update(['10.1.0.0/24']));
    expect(seen.map(nlriOf)).toEqual([[], ['10.1.0.0/24']]);
    expect(socket.paused).toBe(1);
    vi.advanceTimersByTime(4);
    expect(socket.resumed).toBe(0);
    vi.advanceTimersByTime(1);
    expect(socket.resumed).toBe(1);

    // A backlog (16 KiB or more in one read) is read on without a pause.
    const many = Array.from({ length: 400 }, (_, i) => update([`10.${2 + (i >> 8)}.${i & 255}.0/24`]));
    const big = Buffer.concat(many);
    expect(big.length).toBeGreaterThanOrEqual(16 * 1024);
    socket.emit('data', big);
    expect(seen.at(-1) && nlriOf(seen.at(-1)!)).toHaveLength(400);
    expect(socket.paused).toBe(1);

    const plain = standInSocket();
    const off = new Connection(plain.socket, false);
    off.setCodecOptions(OPTS);
    plain.emit('data', update(['10.1.0.0/24']));
    expect(plain.paused).toBe(0);
  });

  it('a closed connection does not resume its socket', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const socket = standInSocket();
    const conn = new Connection(socket.socket, false, 5);
    conn.setCodecOptions(OPTS);
    socket.emit('data', update(['10.1.0.0/24']));
    expect(socket.paused).toBe(1);
    conn.destroy();
    vi.advanceTimersByTime(10);
    expect(socket.resumed).toBe(0);
  });

  it('over TCP: the UPDATEs a peer sends during the pause come as one joined UPDATE after it', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect(port, '127.0.0.1');
    client.setNoDelay(true);
    const [accepted] = (await once(server, 'connection')) as [net.Socket];
    const gatherMs = 200;
    const conn = new Connection(accepted, false, gatherMs);
    conn.setCodecOptions(OPTS);
    const reports: { at: number; nlri: readonly string[] }[] = [];
    const next = (): Promise<void> => new Promise((resolve) => conn.once('message', () => resolve()));
    conn.on('message', (m) => reports.push({ at: performance.now(), nlri: nlriOf(m) }));
    try {
      let arrived = next();
      client.write(update(['10.1.0.0/24']));
      await arrived;
      expect(accepted.isPaused()).toBe(true);
      arrived = next();
      // Five writes, five segments (no Nagle): each would be a read of its own without the pause.
      for (let i = 2; i <= 6; i++) client.write(update([`10.${i}.0.0/24`]));
      await arrived;
      expect(reports.map((r) => r.nlri)).toEqual([['10.1.0.0/24'], ['10.2.0.0/24', '10.3.0.0/24', '10.4.0.0/24', '10.5.0.0/24', '10.6.0.0/24']]);
      // Timers may fire a millisecond early by performance.now().
      expect(reports[1]!.at - reports[0]!.at).toBeGreaterThanOrEqual(gatherMs - 2);
    } finally {
      conn.destroy();
      client.destroy();
      server.close();
    }
  });
});
