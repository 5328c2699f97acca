/**
 * The agent with a dual-stack network config (issue 17 item 1), without root: twilld's Agent with
 * the in-memory store and kernel. No backend routes IPv6 yet, so the agent refuses EnableIPv6 with
 * a reason naming the backend; a backend that declares `supportsIpv6` (here a test double of
 * alloc, which programs nothing) gets a dual-stack lease: one key for both subnets, PublicIPv6 from
 * the interface's global address or --public-ipv6, BackendV6Data, and the IPv6 variables in the
 * subnet file, and the same subnets again after a restart.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.js';
import { AgentMetrics } from '../../src/agent/metrics.js';
import { allocBackend } from '../../src/backends/alloc/alloc.js';
import type { Backend, LocalLease, RemoteLease } from '../../src/backends/backend.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { BackendRegistry } from '../../src/backends/registry.js';
import { MemoryStore } from '../fakes/memory-store.js';
import { FakeNetlink } from '../fakes/netlink.js';
import { CleanupRegistry, tempDir } from '../helpers/cleanup.js';
import { waitFor } from '../helpers/wait.js';

const DUAL = { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: { Type: 'alloc' } };
const V6_ONLY = { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: { Type: 'alloc' } };

/** alloc6 that records what the agent hands it: each start(lease) and each sync's desired set. */
function recording(started: LocalLease[], synced: RemoteLease[][] = []): Backend {
  return {
    ...alloc6,
    register: async (ctx, options) => {
      const network = await alloc6.register(ctx, options);
      return {
        leaseData: network.leaseData, leaseDataV6: network.leaseDataV6, mtu: network.mtu, run: (signal) => network.run(signal),
        start: (lease) => { started.push(lease); return network.start(lease); },
        sync: (desired) => { synced.push([...desired]); return Promise.resolve({ changes: 0, skipped: [] }); },
      };
    },
  };
}

/** alloc, declaring that it carries IPv6 (it programs nothing, so it does) and publishing BackendV6Data. */
const alloc6: Backend = {
  ...allocBackend,
  supportsIpv6: true,
  register: async (ctx, options) => ({ ...(await allocBackend.register(ctx, options as never)), leaseDataV6: { VtepMAC: '02:00:00:00:00:66' } }),
};

const dirs = new CleanupRegistry('agent state dirs');
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  await dirs.runAll();
});

interface Host {
  readonly store: MemoryStore;
  readonly subnetFile: string;
  readonly start: (opts?: { publicIpv6?: string; registry?: BackendRegistry }) => { agent: Agent; stop: () => Promise<void> };
}

/** A host with eth0 198.18.0.1/24 (unless ipv4 false), fe80::1/64 and `ipv6` (null: none), and a store holding `config`. */
async function host(config: unknown, ipv6: string | null = 'fd00::1/64', opts: { ipv4?: boolean } = {}): Promise<Host> {
  const nl = new FakeNetlink();
  const eth0 = nl.kernel.addUplink('eth0', '198.18.0.1/24');
  if (opts.ipv4 === false) nl.kernel.links.deleteAddress(eth0.index, '198.18.0.1/24', 'address.delete');
  nl.kernel.links.addAddress(eth0.index, 'fe80::1/64', 'address.add', false);
  if (ipv6 !== null) nl.kernel.links.addAddress(eth0.index, ipv6, 'address.add', false);
  const store = new MemoryStore();
  await store.putNetworkConfig(JSON.stringify(config));
  const subnetFile = join(tempDir('agent', dirs), 'subnet.env');
  const start: Host['start'] = (opts = {}) => {
    const agent = new Agent({
      settings: { iface: ['eth0'], publicIp: undefined, publicIpv6: opts.publicIpv6, subnetFile, leaseTtlSeconds: 60, ipMasq: false, resyncIntervalMs: 3_600_000 },
      masquerade: { apply: () => Promise.resolve(), remove: () => Promise.resolve() },
      store, netlink: nl, registry: opts.registry ?? new BackendRegistry().register(alloc6), log: pino({ level: 'silent' }), metrics: new AgentMetrics(),
    });
    const ac = new AbortController();
    const done = agent.run(ac.signal);
    const stop = async (): Promise<void> => { ac.abort(); await done; };
    stops.push(stop);
    return { agent, stop };
  };
  return { store, subnetFile, start };
}

const refusal = (agent: Agent): string | undefined => agent.health().problems.find((p) => p.reason === 'config_refused')?.detail;
const rawLeases = async (store: MemoryStore): Promise<string[]> => (await store.listLeases()).leases.map((l) => l.key.slice(store.layout.subnetsPrefix.length));

describe('agent with a dual-stack network config', () => {
  it('refuses EnableIPv6 while its backend does not route IPv6, leases nothing, and takes the config once fixed', async () => {
    const h = await host(DUAL);
    const { agent } = h.start({ registry: registerBuiltins() });
    await waitFor(() => refusal(agent) !== undefined, { what: 'the config refused' });
    expect(refusal(agent)).toBe('EnableIPv6: the alloc backend does not route IPv6 yet');
    expect(agent.health()).toMatchObject({ healthy: false, ready: false });
    expect(await rawLeases(h.store)).toEqual([]);

    await h.store.putNetworkConfig(JSON.stringify({ ...DUAL, EnableIPv6: false }));
    await waitFor(() => agent.health().ready, { what: 'the agent ready on an IPv4 lease', timeoutMs: 5000 });
    const [name] = await rawLeases(h.store);
    expect(name).toMatch(/^10\.244\.\d+\.0-24$/);
    // The IPv4-only record is byte for byte flannel's, whatever IPv6 the interface has.
    expect(h.store.raw(name!)!.value).toBe('{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"alloc","BackendData":null}');
    expect(readFileSync(h.subnetFile, 'utf8')).not.toContain('IPV6');
  });

  it('gets one dual-stack key, PublicIPv6 and BackendV6Data from a backend that routes IPv6, and keeps its subnets across a restart', async () => {
    const h = await host(DUAL);
    const first = h.start();
    await waitFor(() => first.agent.health().ready, { what: 'the agent ready', timeoutMs: 5000 });
    const [name] = await rawLeases(h.store);
    expect(name).toMatch(/^10\.244\.\d+\.0-24&fc00:0:0:[0-9a-f]+::-64$/);
    // The interface's global address, not its link-local one.
    expect(JSON.parse(h.store.raw(name!)!.value)).toEqual({
      PublicIP: '198.18.0.1', PublicIPv6: 'fd00::1', BackendType: 'alloc', BackendData: null, BackendV6Data: { VtepMAC: '02:00:00:00:00:66' },
    });
    const [v4, v6] = name!.split('&').map((p) => p.replace(/-(\d+)$/, '/$1'));
    const env = readFileSync(h.subnetFile, 'utf8');
    expect(env).toBe(`FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${v4!.replace('.0/24', '.1/24')}\n`
      + `FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=${v6!.replace('::/64', '::1/64')}\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n`);

    // Restarted with another PublicIPv6 (so not found by address): the subnet file brings both subnets back.
    await first.stop();
    const second = h.start({ publicIpv6: '2001:db8::9' });
    await waitFor(() => second.agent.health().ready, { what: 'the agent ready again', timeoutMs: 5000 });
    expect(await rawLeases(h.store)).toEqual([name]);
    expect(JSON.parse(h.store.raw(name!)!.value)).toMatchObject({ PublicIP: '198.18.0.1', PublicIPv6: '2001:db8::9' });
    expect(readFileSync(h.subnetFile, 'utf8')).toBe(env);
  });

  it('refuses IPv6 without a global IPv6 address to publish, and IPv4 on an interface without an IPv4 address', async () => {
    const noV6 = await host(DUAL, null);
    const a = noV6.start().agent;
    await waitFor(() => refusal(a) !== undefined, { what: 'the config refused' });
    expect(refusal(a)).toBe('EnableIPv6: the external interface eth0 has no global IPv6 address to publish as PublicIPv6; add one, or give --public-ipv6');

    const inside = await host(DUAL, 'fc00::1/64');
    const b = inside.start().agent;
    await waitFor(() => refusal(b) !== undefined, { what: 'the config refused' });
    expect(refusal(b)).toMatch(/the cluster network fc00::\/48 contains fc00::1\/64, an address of the external interface eth0: change the network config's IPv6Network/);

    const noV4 = await host(DUAL, 'fd00::1/64', { ipv4: false });
    const c = noV4.start().agent;
    await waitFor(() => refusal(c) !== undefined, { what: 'the config refused' });
    expect(refusal(c)).toBe('the external interface eth0 has no IPv4 address, and the network config enables IPv4 (EnableIPv4: false makes an IPv6-only network)');
    expect([...await rawLeases(noV6.store), ...await rawLeases(inside.store), ...await rawLeases(noV4.store)]).toEqual([]);
  });

  it('runs an IPv6-only network on a host without IPv4: flannel\'s IPv6-only key and record, the IPv6 variables alone in subnet.env', async () => {
    const h = await host(V6_ONLY, 'fd00::1/64', { ipv4: false });
    const started: LocalLease[] = [];
    const { agent } = h.start({ registry: new BackendRegistry().register(recording(started)) });
    await waitFor(() => agent.health().ready, { what: 'the agent ready', timeoutMs: 5000 });
    const [name] = await rawLeases(h.store);
    expect(name).toMatch(/^0\.0\.0\.0-0&fc00:0:0:[0-9a-f]+::-64$/);
    expect(JSON.parse(h.store.raw(name!)!.value)).toEqual({
      PublicIP: '0.0.0.0', PublicIPv6: 'fd00::1', BackendType: 'alloc', BackendData: null, BackendV6Data: { VtepMAC: '02:00:00:00:00:66' },
    });
    const v6 = name!.split('&')[1]!.replace(/-64$/, '/64');
    expect(started).toEqual([{ subnet: undefined, publicIp: undefined, ipv6Subnet: v6, publicIpv6: 'fd00::1' }]);
    expect(readFileSync(h.subnetFile, 'utf8')).toBe(`FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=${v6.replace('::/64', '::1/64')}\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n`);
  });

  it('hands the backend one entry per family of each remote dual-stack lease, and screens each family on its own', async () => {
    const h = await host(DUAL);
    const synced: RemoteLease[][] = [];
    const { agent } = h.start({ registry: new BackendRegistry().register(recording([], synced)) });
    await waitFor(() => agent.health().ready, { what: 'the agent ready', timeoutMs: 5000 });
    const record = (v6: string | null, data6: unknown): string => JSON.stringify({ PublicIP: '198.18.0.2', PublicIPv6: v6, BackendType: 'alloc', BackendData: { v: 4 }, BackendV6Data: data6 });
    h.store.put('10.244.200.0-24&fc00:0:0:c8::-64', record('fd00::2', { v: 6 }));
    // Its IPv6 part is outside IPv6Network: routed over IPv4 only.
    h.store.put('10.244.201.0-24&fc00:1:0:c9::-64', record('fd00::3', { v: 6 }));
    await waitFor(() => (synced.at(-1)?.length ?? 0) >= 3, { what: 'the remote leases synced' });
    expect(synced.at(-1)!.map((l) => `${l.subnet} ${l.publicIp} ${JSON.stringify(l.backendData)}`).sort()).toEqual([
      '10.244.200.0/24 198.18.0.2 {"v":4}', '10.244.201.0/24 198.18.0.2 {"v":4}', 'fc00:0:0:c8::/64 fd00::2 {"v":6}',
    ]);
  });
});
