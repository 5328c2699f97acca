/**
 * BGP transport socket options (src/netlink/tcp-*.ts) at socket level: TCP MD5 (RFC 2385), TTL,
 * GTSM min TTL, timeouts, cancellation, fd hygiene.
 *
 * Two throwaway namespaces joined by a veth: "srv" (198.18.0.1/30, fd00:198:18::1/64) and "cli"
 * (198.18.0.2/30, fd00:198:18::2/64). Every socket is created inside its namespace by the module
 * itself through the `netnsPath` option (setns(2) around socket(2) on this thread, switched back at
 * once), so both ends live in this one test process and the root namespace is never touched.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  TcpConnectError, connectTcp, listenTcp, readTcpTtl, setTcpTtl, type ConnectTcpOptions, type TcpListener,
} from '../../src/netlink/index.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { sleep, waitFor } from '../helpers/wait.js';

const SRV4 = '198.18.0.1';
const CLI4 = '198.18.0.2';
const SRV6 = 'fd00:198:18::1';
const CLI6 = 'fd00:198:18::2';
const KEY = 'twill-bgp-secret';
/** Short enough to keep the file fast, long enough for a veth handshake on a busy 2-core machine. */
const FAIL_TIMEOUT_MS = 1200;
const OK_TIMEOUT_MS = 5000;

function openFds(): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try { out.push(readlinkSync(`/proc/self/fd/${fd}`)); } catch { /* the fd of readdir itself */ }
  }
  return out;
}

/** Sockets and eventfds this process holds: what a leak in the module would add. */
function socketLikeFds(): string[] {
  return openFds().filter((t) => t.startsWith('socket:') || t.includes('eventfd')).sort();
}

/** Resolves with the first chunk the socket receives. */
function firstData(sock: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    sock.once('data', (d: Buffer) => resolve(d.toString()));
    sock.once('error', reject);
  });
}

describe.skipIf(!isRoot)('BGP transport socket options (TCP MD5, TTL, GTSM)', () => {
  useCleanup();
  let srv: TestNetns;
  let cli: TestNetns;
  const closers: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    srv = await createTestNetns('tcpsrv');
    cli = await createTestNetns('tcpcli');
    for (const ns of [srv, cli]) {
      // No duplicate address detection: IPv6 addresses are usable at once (bind would fail while tentative).
      ns.writeSysctl('net.ipv6.conf.all.accept_dad', 0);
      ns.writeSysctl('net.ipv6.conf.default.accept_dad', 0);
    }
    await connectNetns(srv, cli, { a: { ifname: 'p0', cidr: `${SRV4}/30` }, b: { ifname: 'p0', cidr: `${CLI4}/30` } });
    await srv.netlink((nl) => nl.addAddress('p0', `${SRV6}/64`));
    await cli.netlink((nl) => nl.addAddress('p0', `${CLI6}/64`));
    await waitFor(() => cli.ping(SRV6), { timeoutMs: 10_000, what: 'IPv6 reachability over the veth' });
    expect(await cli.ping(SRV4)).toBe(true);
  });

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A listener in srv that echoes what it receives; closed after the test. */
  async function echoListener(opts: Partial<Parameters<typeof listenTcp>[0]> = {}): Promise<TcpListener & { accepted: Socket[] }> {
    const l = await listenTcp({ host: SRV4, port: 0, netnsPath: srv.netnsPath, ...opts });
    const accepted: Socket[] = [];
    l.server.on('connection', (s: Socket) => {
      accepted.push(s);
      s.on('error', () => { /* peer reset at teardown */ });
      s.pipe(s);
    });
    closers.push(async () => {
      for (const s of accepted) s.destroy();
      await l.close();
    });
    return Object.assign(l, { accepted });
  }

  /** connectTcp from cli; a socket it returns is destroyed after the test. */
  async function dial(opts: Omit<ConnectTcpOptions, 'netnsPath'>): Promise<Socket> {
    const sock = await connectTcp({ netnsPath: cli.netnsPath, ...opts });
    closers.push(() => { sock.destroy(); });
    sock.on('error', () => { /* reset at teardown */ });
    return sock;
  }

  async function echoes(sock: Socket, text = 'OPEN'): Promise<void> {
    const got = firstData(sock);
    sock.write(text);
    expect(await got).toBe(text);
  }

  /** Expects the connect to fail with `code`, and leaves no socket or eventfd behind. */
  async function expectConnectFails(opts: Omit<ConnectTcpOptions, 'netnsPath'>, code: string, message?: RegExp): Promise<TcpConnectError> {
    const before = socketLikeFds();
    const countBefore = readdirSync('/proc/self/fd').length;
    const err = await dial(opts).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(TcpConnectError);
    const e = err as TcpConnectError;
    expect(e.code).toBe(code);
    if (message) expect(e.message).toMatch(message);
    // The shared poller closes its eventfd once idle, right after the failed wait returns.
    const leftOver = (): string[] => socketLikeFds().filter((t) => !before.includes(t));
    await waitFor(() => leftOver().length === 0, { timeoutMs: 2000, what: 'no socket/eventfd left over' })
      .catch((err: Error) => { throw new Error(`${err.message}: ${leftOver().join(' ')}`); });
    await waitFor(() => readdirSync('/proc/self/fd').length <= countBefore, { timeoutMs: 2000, what: '/proc/self/fd count back to before' });
    return e;
  }

  it('MD5 on both sides with the same key: connects in the right namespaces and data flows', async () => {
    const l = await echoListener({ md5: new Map([[CLI4, KEY]]) });
    const sock = await dial({ host: SRV4, port: l.port, md5: new Map([[SRV4, KEY]]), timeoutMs: OK_TIMEOUT_MS });
    expect(sock.remoteAddress).toBe(SRV4);
    expect(sock.remotePort).toBe(l.port);
    expect(sock.localAddress).toBe(CLI4);
    await echoes(sock);
    // The connection exists in the namespaces, with MD5 on it (ss shows "md5" for keyed sockets).
    const ssCli = await cli.exec('ss', ['-tnie', 'state', 'established']);
    expect(ssCli).toContain(`${SRV4}:${l.port}`);
    expect(ssCli).toMatch(/md5/);
    expect(await srv.exec('ss', ['-tln'])).toContain(`${SRV4}:${l.port}`);
    expect(l.accepted[0]?.remoteAddress).toBe(CLI4);
  });

  it('listener with a key, client without: connect times out with a clear error and leaks no fd', async () => {
    const l = await echoListener({ md5: new Map([[CLI4, KEY]]) });
    // Warm up the shared poller (and koffi's async machinery) so the fd comparison sees only this connect.
    // Echo once, so the listener's accepted socket exists before the fd snapshot.
    await echoes(await dial({ host: SRV4, port: l.port, md5: new Map([[SRV4, KEY]]), timeoutMs: OK_TIMEOUT_MS }));
    const started = Date.now();
    const e = await expectConnectFails({ host: SRV4, port: l.port, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT', /TCP MD5 key differs/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(FAIL_TIMEOUT_MS - 50);
    expect(e.message).toContain(`tcp.connect ${SRV4}:${l.port} failed: ETIMEDOUT`);
    expect(e).toMatchObject({ host: SRV4, port: l.port, errno: 110, op: 'tcp.connect' });
    expect(l.accepted).toHaveLength(1); // only the warm-up
  });

  it('a wrong key times out the same way', async () => {
    const l = await echoListener({ md5: new Map([[CLI4, KEY]]) });
    await expectConnectFails({ host: SRV4, port: l.port, md5: new Map([[SRV4, 'not-the-key']]), timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    // A key for another peer address does not sign this connection either.
    await expectConnectFails({ host: SRV4, port: l.port, md5: new Map([['198.18.9.9', KEY]]), timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    expect(l.accepted).toHaveLength(0);
  });

  it('a key added at run time on the listener lets the peer in; removing it shuts the peer out again', async () => {
    const l = await echoListener();
    const md5 = new Map([[SRV4, KEY]]);
    // The listener expects no signature, so it drops the signed SYN.
    await expectConnectFails({ host: SRV4, port: l.port, md5, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    l.setMd5Key(CLI4, KEY);
    const sock = await dial({ host: SRV4, port: l.port, md5, timeoutMs: OK_TIMEOUT_MS });
    await echoes(sock);
    // The accepted session kept its copy of the key: it lives on after the listener drops it.
    l.setMd5Key(CLI4, undefined);
    l.setMd5Key(CLI4, undefined); // removing a missing key is fine
    await echoes(sock, 'KEEPALIVE');
    await expectConnectFails({ host: SRV4, port: l.port, md5, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    // A prefix key (TCP_MD5SIG_EXT) covers the peer too.
    l.setMd5Key('198.18.0.0/30', KEY);
    await echoes(await dial({ host: SRV4, port: l.port, md5, timeoutMs: OK_TIMEOUT_MS }));
  });

  it('IPv6: MD5 both sides, bound to a local address; a wrong key times out', async () => {
    const l = await echoListener({ host: SRV6, md5: new Map([[CLI6, KEY]]) });
    const sock = await dial({ host: SRV6, port: l.port, localAddress: CLI6, md5: new Map([[SRV6, KEY]]), timeoutMs: OK_TIMEOUT_MS });
    expect(sock.remoteAddress).toBe(SRV6);
    expect(sock.localAddress).toBe(CLI6);
    await echoes(sock);
    expect(await cli.exec('ss', ['-tnie', 'state', 'established'])).toMatch(/md5/);
    await expectConnectFails({ host: SRV6, port: l.port, md5: new Map([[SRV6, 'wrong']]), timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
  });

  it('IPv6 link-local peers with a %zone (BGP unnumbered style), keyed by address', async () => {
    const linkLocal = async (ns: TestNetns): Promise<string> => {
      const [p0] = await ns.links('p0');
      const ll = p0?.addr_info?.find((a) => a.family === 'inet6' && a.scope === 'link')?.local;
      if (ll === undefined) throw new Error(`no link-local address on p0 in ${ns.name}`);
      return ll;
    };
    const srvLl = await linkLocal(srv);
    const cliLl = await linkLocal(cli);
    const l = await echoListener({ host: '::', md5: new Map([[cliLl, KEY]]) });
    const sock = await dial({ host: `${srvLl}%p0`, port: l.port, localAddress: `${cliLl}%p0`, md5: new Map([[srvLl, KEY]]), timeoutMs: OK_TIMEOUT_MS });
    await echoes(sock);
    // Node appends "%<name>" naming the scope id in the *main thread's* namespace, so only the address part is meaningful.
    expect(l.accepted[0]?.remoteAddress?.split('%')[0]).toBe(cliLl);
    await expectConnectFails({ host: `${srvLl}%p0`, port: l.port, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    // The zone names an interface of the socket's namespace (resolved there); an unknown one fails before any socket.
    await expect(dial({ host: `${srvLl}%nosuch0`, port: l.port, timeoutMs: FAIL_TIMEOUT_MS })).rejects.toMatchObject({ code: 'ENODEV', op: 'if_nametoindex' });
  });

  it('a dual-stack listener keys IPv4 peers (v4-mapped) and takes TTLs for both families', async () => {
    const l = await echoListener({ host: '::', md5: new Map([[CLI4, KEY], [CLI6, KEY]]), ttl: 9 });
    const v4 = await dial({ host: SRV4, port: l.port, md5: new Map([[SRV4, KEY]]), timeoutMs: OK_TIMEOUT_MS });
    await echoes(v4);
    const v6 = await dial({ host: SRV6, port: l.port, md5: new Map([[SRV6, KEY]]), timeoutMs: OK_TIMEOUT_MS });
    await echoes(v6);
    const [a4, a6] = l.accepted;
    expect(a4?.remoteAddress).toBe(`::ffff:${CLI4}`);
    expect(readTcpTtl(a4!).ttl).toBe(9); // IP_TTL, set on the AF_INET6 listener for its v4-mapped peers
    expect(readTcpTtl(a6!).ttl).toBe(9); // IPV6_UNICAST_HOPS
    setTcpTtl(a4!, 7, 3);
    expect(readTcpTtl(a4!)).toEqual({ ttl: 7, minTtl: 3 });
    await expectConnectFails({ host: SRV4, port: l.port, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
  });

  it('TTL 1 (eBGP single hop) is set before connect and reads back, on both ends and both families', async () => {
    const l = await echoListener({ ttl: 1 });
    const sock = await dial({ host: SRV4, port: l.port, ttl: 1, timeoutMs: OK_TIMEOUT_MS });
    await echoes(sock); // one hop over the veth: TTL 1 is enough
    expect(readTcpTtl(sock).ttl).toBe(1);
    expect(readTcpTtl(l.accepted[0]!).ttl).toBe(1); // inherited from the listener
    const plain = await dial({ host: SRV4, port: l.port, timeoutMs: OK_TIMEOUT_MS });
    expect(readTcpTtl(plain).ttl).toBe(64); // the namespace default, untouched

    const l6 = await echoListener({ host: SRV6, ttl: 1 });
    const sock6 = await dial({ host: SRV6, port: l6.port, ttl: 1, timeoutMs: OK_TIMEOUT_MS });
    await echoes(sock6);
    expect(readTcpTtl(sock6).ttl).toBe(1);
    expect(readTcpTtl(l6.accepted[0]!).ttl).toBe(1);
    setTcpTtl(sock6, 2, undefined);
    expect(readTcpTtl(sock6).ttl).toBe(2);
  });

  it('min TTL (GTSM) reads back and drops SYNs that arrive with less', async () => {
    // GTSM on both ends: send with 255, accept only 255 (the SYN-ACK comes back with the listener's TTL).
    const l = await echoListener({ ttl: 255, minTtl: 255 });
    // A SYN sent with the default TTL 64 arrives with 64 < 255: dropped, as GTSM means.
    await expectConnectFails({ host: SRV4, port: l.port, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    const sock = await dial({ host: SRV4, port: l.port, ttl: 255, minTtl: 255, timeoutMs: OK_TIMEOUT_MS });
    await echoes(sock);
    expect(readTcpTtl(sock)).toEqual({ ttl: 255, minTtl: 255 });
    expect(readTcpTtl(l.accepted[0]!).minTtl).toBe(255);
    setTcpTtl(l.accepted[0]!, undefined, 0);
    expect(readTcpTtl(l.accepted[0]!).minTtl).toBe(0);

    const l6 = await echoListener({ host: SRV6, ttl: 255, minTtl: 255 });
    await expectConnectFails({ host: SRV6, port: l6.port, timeoutMs: FAIL_TIMEOUT_MS }, 'ETIMEDOUT');
    const sock6 = await dial({ host: SRV6, port: l6.port, ttl: 255, minTtl: 254, timeoutMs: OK_TIMEOUT_MS });
    await echoes(sock6);
    expect(readTcpTtl(sock6)).toEqual({ ttl: 255, minTtl: 254 });
  });

  it('an AbortSignal cancels a pending connect at once, without leaking', async () => {
    const l = await echoListener({ md5: new Map([[CLI4, KEY]]) });
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort(new Error('peer deconfigured')), 200);
    const e = await expectConnectFails({ host: SRV4, port: l.port, timeoutMs: 20_000, signal: ac.signal }, 'ECANCELED');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(e.cause).toEqual(new Error('peer deconfigured'));
    // Already aborted: no socket is even made.
    await expectConnectFails({ host: SRV4, port: l.port, timeoutMs: 20_000, signal: AbortSignal.abort() }, 'ECANCELED');
  });

  it('many pending connects share one poller: a good one completes while others wait, and the loop stays free', async () => {
    const l = await echoListener({ md5: new Map([[CLI4, KEY]]) });
    let ticks = 0;
    const ticker = setInterval(() => { ticks++; }, 10);
    try {
      const doomed = Array.from({ length: 6 }, () => dial({ host: SRV4, port: l.port, timeoutMs: 1500 }).then(() => 'connected', (e: TcpConnectError) => e.code));
      await sleep(50);
      const started = Date.now();
      const good = await dial({ host: SRV4, port: l.port, md5: new Map([[SRV4, KEY]]), timeoutMs: OK_TIMEOUT_MS });
      expect(Date.now() - started).toBeLessThan(1000); // not held up by the pending ones
      await echoes(good);
      expect(await Promise.all(doomed)).toEqual(Array(6).fill('ETIMEDOUT'));
    } finally {
      clearInterval(ticker);
    }
    expect(ticks).toBeGreaterThan(50); // ~150 expected over 1.5 s; a blocking connect would give ~0
  });

  it('reports refusal, and a closed listener frees its port and refuses key changes', async () => {
    const l = await echoListener();
    await l.close();
    await expectConnectFails({ host: SRV4, port: l.port, timeoutMs: OK_TIMEOUT_MS }, 'ECONNREFUSED', /connection refused/);
    expect(() => l.setMd5Key(CLI4, KEY)).toThrow(expect.objectContaining({ code: 'EBADF' }) as Error);
    // The port can be taken again at once.
    const again = await echoListener({ port: l.port });
    expect(again.port).toBe(l.port);
  });

  it('rejects bad options before making a socket', async () => {
    const before = socketLikeFds();
    const bad: Omit<ConnectTcpOptions, 'netnsPath'>[] = [
      { host: 'bgp.example', port: 179, timeoutMs: 1000 },
      { host: SRV4, port: 0, timeoutMs: 1000 },
      { host: SRV4, port: 179, timeoutMs: 0 },
      { host: SRV4, port: 179, timeoutMs: 1000, ttl: 0 },
      { host: SRV4, port: 179, timeoutMs: 1000, minTtl: 256 },
      { host: SRV4, port: 179, timeoutMs: 1000, localAddress: CLI6 },
      { host: SRV4, port: 179, timeoutMs: 1000, md5: new Map([[SRV4, 'k'.repeat(81)]]) },
      { host: SRV4, port: 179, timeoutMs: 1000, md5: new Map([[SRV4, '']]) },
    ];
    for (const opts of bad) {
      await expect(connectTcp({ ...opts, netnsPath: cli.netnsPath })).rejects.toMatchObject({ code: 'EINVAL_ARG' });
    }
    // The secret never shows in an error.
    await expect(connectTcp({ host: SRV4, port: 179, timeoutMs: 1000, md5: new Map([[SRV4, `${'s'.repeat(80)}x`]]) }))
      .rejects.not.toThrow(/sss/);
    // An IPv6 peer key cannot apply to an IPv4 listener.
    await expect(listenTcp({ host: SRV4, port: 0, netnsPath: srv.netnsPath, md5: new Map([[CLI6, KEY]]) })).rejects.toMatchObject({ code: 'EINVAL_ARG' });
    // A local address the namespace does not have fails as EADDRNOTAVAIL, and the socket is closed.
    await expectConnectFails({ host: SRV4, port: 179, timeoutMs: 1000, localAddress: '198.18.7.7' }, 'EADDRNOTAVAIL');
    expect(socketLikeFds()).toEqual(before);
  });

  it('listens inside the given namespace only', async () => {
    const l = await echoListener({ host: '0.0.0.0' });
    expect(await srv.exec('ss', ['-tln'])).toContain(`0.0.0.0:${l.port}`);
    expect(await cli.exec('ss', ['-tln'])).not.toContain(`:${l.port} `);
    const server: Server = l.server;
    expect(server.listening).toBe(true);
  });
});
