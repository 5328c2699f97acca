/**
 * A fault-injecting TCP proxy for store tests (after etcd3's test/util.ts Proxy): the store under
 * test connects through it, and the test cuts its connections while etcd itself stays up, so it
 * can change and compact etcd "behind the store's back" before letting it reconnect.
 *
 *   const proxy = await startFaultProxy(etcd.clientPort);
 *   const store = EtcdSubnetStore.connect({ endpoints: [proxy.url], prefix });
 *   proxy.cut();      // drops open connections; new ones are accepted and reset at once
 *   proxy.restore();  // forwards again
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { cleanup, type CleanupRegistry } from '../helpers/cleanup.js';

export interface FaultProxy {
  readonly port: number;
  /** "http://127.0.0.1:<port>" */
  readonly url: string;
  /** Connections currently forwarded. */
  readonly open: number;
  /** Destroys every forwarded connection and resets new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, opts: { host?: string; registry?: CleanupRegistry } = {}): Promise<FaultProxy> {
  const host = opts.host ?? '127.0.0.1';
  const pairs = new Set<[Socket, Socket]>();
  let cut = false;

  const server: Server = createServer((client) => {
    if (cut) {
      // resetAndDestroy() sends RST: the client sees a failed connection at once, as with a
      // dead peer, rather than a clean close it might read as a graceful end of stream.
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  let closed: Promise<void> | undefined;
  const proxy: FaultProxy = {
    port,
    url: `http://${host}:${port}`,
    get open() { return pairs.size; },
    cut() {
      cut = true;
      for (const [c, u] of [...pairs]) {
        c.resetAndDestroy();
        u.destroy();
      }
      pairs.clear();
    },
    restore() { cut = false; },
    close() {
      closed ??= new Promise<void>((resolve) => {
        entry.cancel();
        proxy.cut();
        server.close(() => resolve());
      });
      return closed;
    },
  };
  const entry = (opts.registry ?? cleanup).defer(`fault proxy :${port} -> :${targetPort}`, () => proxy.close());
  return proxy;
}
