import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acquireLease, SubnetExhaustedError } from '../../src/agent/lease-acquire.js';
import { registerBuiltins } from '../../src/backends/builtins.js';
import { parseNetworkConfig } from '../../src/ipam/network-config.js';
import { EtcdSubnetStore } from '../../src/store/index.js';
import { etcdAvailable, startEtcd, type Etcd } from '../helpers/etcd.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

const PREFIX = '/coreos.com/network';
const registry = registerBuiltins();
const record = (ip: string) => ({ publicIp: ip, backendType: 'alloc', backendData: null });

describe.skipIf(!isRoot || !etcdAvailable())('subnet acquisition against a real etcd', () => {
  useCleanup();
  let etcd: Etcd;
  const stores: EtcdSubnetStore[] = [];
  const store = (): EtcdSubnetStore => {
    const s = EtcdSubnetStore.connect({ endpoints: [etcd.clientUrl], prefix: PREFIX });
    stores.push(s);
    return s;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await etcd.etcdctl(['del', '--prefix', `${PREFIX}/`]);
  });

  it('100 agents racing for a /20 of /24s: 16 win distinct subnets, the rest report exhaustion', async () => {
    // SubnetMin at the network's first subnet, so all 16 /24s of the /20 are leasable.
    const config = parseNetworkConfig({ Network: '10.244.0.0/20', SubnetMin: '10.244.0.0', Backend: { Type: 'alloc' } }, registry.parseOptions);
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) =>
      acquireLease({ store: store(), config, record: record(`198.18.1.${i + 1}`), ttlSeconds: 60 })));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.lease.subnet] : []));
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(won).toHaveLength(16);
    expect(new Set(won).size).toBe(16);
    expect(lost).toHaveLength(84);
    for (const err of lost) {
      expect(err).toBeInstanceOf(SubnetExhaustedError);
      expect((err as Error).message).toBe('no free subnet: all 16 subnets 10.244.0.0/24..10.244.15.0/24 of 10.244.0.0/20 are leased or reserved');
    }
    const keys = (await etcd.etcdctl(['get', '--prefix', '--keys-only', `${PREFIX}/subnets/`])).split('\n').filter(Boolean);
    expect(keys.sort()).toEqual(won.map((s) => `${PREFIX}/subnets/${s.replace('/', '-')}`).sort());
  });

  it('takes back its own lease, then the previous subnet, and honours reservations', async () => {
    const config = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'alloc' } }, registry.parseOptions);
    const s = store();
    // A reservation: a key without an etcd lease. Nobody else may take it; its owner gets it.
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.7.0-24`, JSON.stringify({ PublicIP: '198.18.0.7', PublicIPv6: null, BackendType: 'alloc', BackendData: null })]);
    const owner = await acquireLease({ store: s, config, record: record('198.18.0.7'), ttlSeconds: 60 });
    expect(owner).toMatchObject({ how: 'reused', lease: { subnet: '10.244.7.0/24', etcdLeaseId: undefined } });
    const other = await acquireLease({ store: s, config, record: record('198.18.0.8'), ttlSeconds: 60, previousSubnet: '10.244.7.0/24', random: () => 0 });
    expect(other.lease.subnet).not.toBe('10.244.7.0/24');
    expect(other.how).toBe('new');
    expect(other.lease.etcdLeaseId).toBeDefined();

    const prev = await acquireLease({ store: s, config, record: record('198.18.0.9'), ttlSeconds: 60, previousSubnet: '10.244.42.0/24' });
    expect(prev).toMatchObject({ how: 'previous', lease: { subnet: '10.244.42.0/24' } });
    // Restarted (new process, same IP) without a subnet file: its own lease comes back, said loudly.
    const again = await acquireLease({ store: store(), config, record: record('198.18.0.9'), ttlSeconds: 60 });
    expect(again).toMatchObject({ how: 'reused', lease: { subnet: '10.244.42.0/24' } });
    expect(again.notice).toMatch(/took over .*10\.244\.42\.0-24: a lease that carries this host's PublicIP 198\.18\.0\.9; no subnet file names a subnet/);
    expect(again.lease.etcdLeaseId).not.toBe(prev.lease.etcdLeaseId);
    // The subnet file comes first when its subnet is free (flannel's order): a key elsewhere that
    // carries this host's PublicIP is not taken over silently, but left alone and named.
    const byFile = await acquireLease({ store: store(), config, record: record('198.18.0.9'), ttlSeconds: 60, previousSubnet: '10.244.43.0/24' });
    expect(byFile).toMatchObject({ how: 'previous', lease: { subnet: '10.244.43.0/24' } });
    expect(byFile.notice).toMatch(/the subnet file names 10\.244\.43\.0\/24; .*10\.244\.42\.0-24 also carries this host's PublicIP and is left alone/);
    // ... and a subnet file naming another host's subnet does not take it.
    const notTheirs = await acquireLease({ store: store(), config, record: record('198.18.0.9'), ttlSeconds: 60, previousSubnet: '10.244.7.0/24' });
    expect(notTheirs.lease.subnet).not.toBe('10.244.7.0/24');
  });

  it('never takes a subnet whose key holds a malformed value', async () => {
    // Two leasable subnets; one key is garbage but present: only one subnet is free.
    const config = parseNetworkConfig({ Network: '10.244.0.0/23', SubnetLen: 24, SubnetMin: '10.244.0.0', Backend: { Type: 'alloc' } }, registry.parseOptions);
    await etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.0.0-24`, '{broken']);
    const s = store();
    const first = await acquireLease({ store: s, config, record: record('198.18.0.1'), ttlSeconds: 60, previousSubnet: '10.244.0.0/24' });
    expect(first.lease.subnet).toBe('10.244.1.0/24');
    await expect(acquireLease({ store: s, config, record: record('198.18.0.2'), ttlSeconds: 60 })).rejects.toThrow(SubnetExhaustedError);
    expect(await etcd.etcdctl(['get', `${PREFIX}/subnets/10.244.0.0-24`, '--print-value-only'])).toBe('{broken\n');
  });

  it('gives up a lease that no longer fits a changed config', async () => {
    const old = parseNetworkConfig({ Network: '10.244.0.0/16', Backend: { Type: 'alloc' } }, registry.parseOptions);
    const s = store();
    const first = await acquireLease({ store: s, config: old, record: record('198.18.0.5'), ttlSeconds: 60 });
    const changed = parseNetworkConfig({ Network: '10.50.0.0/16', Backend: { Type: 'alloc' } }, registry.parseOptions);
    const dropped: string[] = [];
    const second = await acquireLease({ store: s, config: changed, record: record('198.18.0.5'), ttlSeconds: 60, onDropped: (l) => dropped.push(l.subnet) });
    expect(dropped).toEqual([first.lease.subnet]);
    expect(second.lease.subnet).toMatch(/^10\.50\./);
    expect(await etcd.etcdctl(['get', '--prefix', '--keys-only', `${PREFIX}/subnets/10.244.`])).toBe('');
  });
});
