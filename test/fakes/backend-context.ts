/**
 * A host for backend unit tests: an in-memory kernel with eth0 (198.18.0.1/24 unless told
 * otherwise, up, MTU 1500) and the BackendContext the agent would build on it, the fake netlink
 * handle in place of a kernel socket (test/helpers/backend-context.ts is the netns tier's twin).
 *
 *   const { nl, ctx } = fakeHost();
 *   const network = await hostGwBackend.register(ctx, {});
 */
import { pino } from 'pino';
import type { BackendContext } from '../../src/backends/backend.js';
import type { Link } from '../../src/netlink/index.js';
import { FakeNetlink } from './netlink.js';

export interface FakeHostOptions {
  /** eth0's address with prefix; default 198.18.0.1/24. */
  readonly address?: string;
  readonly mtu?: number;
  /** Default eth0's address. */
  readonly publicIp?: string;
  /** Default 10.244.0.0/16. */
  readonly clusterNetwork?: string;
  /** Default one hour: a test that wants periodic repair says so. */
  readonly resyncIntervalMs?: number;
  /** Default a path that does not exist: nothing is kept across restarts. */
  readonly stateDir?: string;
  /** False: a kernel without nexthop objects. */
  readonly nexthops?: boolean;
}

export interface FakeHost {
  readonly nl: FakeNetlink;
  readonly eth0: Link;
  readonly ctx: BackendContext;
}

export function fakeHost(opts: FakeHostOptions = {}): FakeHost {
  const nl = new FakeNetlink({ nexthops: opts.nexthops ?? true });
  const cidr = opts.address ?? '198.18.0.1/24';
  const eth0 = nl.kernel.addUplink('eth0', cidr, { mtu: opts.mtu ?? 1500 });
  const address = cidr.slice(0, cidr.indexOf('/'));
  const ctx: BackendContext = {
    log: pino({ level: process.env['TWILL_TEST_LOG'] ?? 'silent' }),
    netlink: nl,
    extIface: { name: eth0.name, index: eth0.index, mtu: eth0.mtu, address, publicIp: opts.publicIp ?? address },
    clusterNetwork: opts.clusterNetwork ?? '10.244.0.0/16',
    stateDir: opts.stateDir ?? '/nonexistent/twill-state',
    resyncIntervalMs: opts.resyncIntervalMs ?? 3_600_000,
  };
  return { nl, eth0, ctx };
}
