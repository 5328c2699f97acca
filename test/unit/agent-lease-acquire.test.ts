/**
 * acquireLease's dual-stack choices against the in-memory store (the same choices against etcd,
 * and the races, are in test/integration/store-dual-stack.test.ts and lease-acquire.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { acquireLease, LeaseWriteBlockedError, SubnetExhaustedError } from '../../src/agent/lease-acquire.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { parseNetworkConfig } from '../../src/ipam/network-config.js';
import type { LeaseListing, LeaseRecord, SubnetStore } from '../../src/store/index.js';
import { MemoryStore } from '../fakes/memory-store.js';

const parse = (raw: Record<string, unknown>) => parseNetworkConfig({ Backend: { Type: 'alloc' }, ...raw }, registerBuiltins().parseOptions);
const DUAL = { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48' };
const rec = (publicIp: string, publicIpv6: string | null = null): LeaseRecord => ({ publicIp, publicIpv6, backendType: 'alloc', backendData: null });
const names = async (store: MemoryStore): Promise<string[]> => (await store.listLeases()).leases.map((l) => l.key.slice(store.layout.subnetsPrefix.length)).sort();

describe('acquireLease with IPv6', () => {
  it('keeps the IPv4 subnet when IPv6 is turned on: the IPv4-only lease is given up, the subnet file\'s IPv4 subnet completed', async () => {
    const store = new MemoryStore();
    store.put('10.244.7.0-24', rec('198.18.0.7'), '1');
    const dropped: string[] = [];
    const got = await acquireLease({
      store, config: parse(DUAL), record: rec('198.18.0.7', 'fd00::7'), ttlSeconds: 60, previousSubnet: '10.244.7.0/24', random: () => 0,
      onDropped: (l, reason) => dropped.push(`${l.key.slice(store.layout.subnetsPrefix.length)}: ${reason}`),
    });
    expect(dropped).toEqual(['10.244.7.0-24: does not fit the network config (10.244.1.0/24..10.244.255.0/24 and fc00:0:0:1::/64..fc00:0:0:ffff::/64)']);
    expect(got).toMatchObject({ how: 'previous', lease: { subnet: '10.244.7.0/24', ipv6Subnet: 'fc00:0:0:1::/64' } });
    expect(await names(store)).toEqual(['10.244.7.0-24&fc00:0:0:1::-64']);
  });

  it('takes the subnet file\'s IPv6 subnet too, and keeps clear of IPv6 subnets other keys hold', async () => {
    const store = new MemoryStore();
    store.put('10.244.1.0-24&fc00:0:0:1::-64', rec('198.18.0.1', 'fd00::1'));
    store.put('10.244.2.0-24&fc00:0:0:2::5-64', rec('198.18.0.2', 'fd00::2')); // host bits: refused, fc00:0:0:2::/64 still taken
    const config = parse({ ...DUAL, IPv6SubnetMax: 'fc00:0:0:3::' });
    const byFile = await acquireLease({ store, config, record: rec('198.18.0.9', 'fd00::9'), ttlSeconds: 60, previousSubnet: '10.244.9.0/24', previousIpv6Subnet: 'fc00:0:0:3::/64' });
    expect(byFile).toMatchObject({ how: 'previous', lease: { subnet: '10.244.9.0/24', ipv6Subnet: 'fc00:0:0:3::/64' } });
    // Now every IPv6 subnet fc00:0:0:1::..fc00:0:0:3:: is held, though IPv4 ones are free.
    await expect(acquireLease({ store, config, record: rec('198.18.0.8', 'fd00::8'), ttlSeconds: 60 }))
      .rejects.toThrow(new SubnetExhaustedError(config.ipv6!, 3, 'IPv6 '));
    // A subnet file naming another host's IPv6 subnet does not take it.
    const notTheirs = await acquireLease({ store, config: parse(DUAL), record: rec('198.18.0.8', 'fd00::8'), ttlSeconds: 60, previousSubnet: '10.244.8.0/24', previousIpv6Subnet: 'fc00:0:0:1::/64' });
    expect(notTheirs.how).toBe('new');
    expect(notTheirs.lease.ipv6Subnet).not.toMatch(/^fc00:0:0:[123]::\/64$/);
  });

  it('loses a race for an IPv6 subnet to a key created meanwhile, then picks around it', async () => {
    const store = new MemoryStore();
    const config = parse({ ...DUAL, IPv6SubnetMax: 'fc00:0:0:2::' });
    let injected = false;
    const racing: SubnetStore = Object.assign(Object.create(store) as MemoryStore, {
      listLeases: async (): Promise<LeaseListing> => {
        const listing = await store.listLeases();
        // Another host takes fc00:0:0:1:: (with another IPv4 subnet) right after this host's first look.
        if (!injected) store.put('10.244.99.0-24&fc00:0:0:1::-64', rec('198.18.0.99', 'fd00::99'), '1');
        injected = true;
        return listing;
      },
    });
    const got = await acquireLease({ store: racing, config, record: rec('198.18.0.1', 'fd00::1'), ttlSeconds: 60, random: () => 0 });
    expect(got.lease).toMatchObject({ subnet: '10.244.1.0/24', ipv6Subnet: 'fc00:0:0:2::/64' });
    expect(await names(store)).toEqual(['10.244.1.0-24&fc00:0:0:2::-64', '10.244.99.0-24&fc00:0:0:1::-64']);
  });

  it('says so, instead of looping, when a write keeps failing with nothing changed in etcd', async () => {
    let creates = 0;
    const stuck = {
      listLeases: () => Promise.resolve({ leases: [], malformed: [], revision: '42' }),
      createLease: () => { creates++; return Promise.resolve(undefined); },
    } as unknown as SubnetStore;
    const err = await acquireLease({ store: stuck, config: parse(DUAL), record: rec('198.18.0.1', 'fd00::1'), ttlSeconds: 60 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseWriteBlockedError);
    expect((err as Error).message).toMatch(/^writing this host's lease \(creating 10\.244\.\d+\.0\/24 and fc00:0:0:[0-9a-f]+::\/64\) failed twice with nothing changed in etcd since revision 42/);
    expect(creates).toBe(1);
  });
});
