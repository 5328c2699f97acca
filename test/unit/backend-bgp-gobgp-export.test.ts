import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { MethodDefinition } from '@grpc/grpc-js';
import type { BgpDriver, DriverPeer } from '../../src/backends/bgp/driver.js';
import { type DefinedSet, type Global, type Path, type Peer, type Policy, type PolicyAssignment, type PolicyPrefix } from '../../src/backends/bgp/gobgp/api.js';
import { gobgpDefinition, type GobgpClient } from '../../src/backends/bgp/gobgp/client.js';
import { startGobgpDriverOn, type GobgpDriverOptions } from '../../src/backends/bgp/gobgp/driver.js';
import { EXPORT_NAME, exportAssignment, exportPolicy, exportPrefixes, exportSet, planSet, policyKey, prefixKey } from '../../src/backends/bgp/gobgp/export.js';
import { ownPath } from '../../src/backends/bgp/gobgp/paths.js';
import { peerMessage } from '../../src/backends/bgp/gobgp/peers.js';

const OWN = '10.244.1.0/24';
const NEW = '10.244.9.0/24';
const HOP = '198.18.0.1';
const CLUSTER = '10.244.0.0/16';
const exact = (prefix: string, len = 24): PolicyPrefix => ({ ip_prefix: prefix, mask_length_min: len, mask_length_max: len });

/** Encodes with the method's request serializer and decodes what gobgpd would get. */
function roundTrip(method: string, message: object): Record<string, unknown> {
  const m = gobgpDefinition()['apipb.GobgpApi'] as unknown as Record<string, MethodDefinition<object, object>>;
  const def = m[method]!;
  return def.requestDeserialize(def.requestSerialize(message)) as Record<string, unknown>;
}

describe('gobgp driver: export policy messages', () => {
  it('the set holds each own prefix exactly, canonical and once; a reflector\'s holds the cluster network up to /32', () => {
    expect(exportPrefixes({ reflector: false, clusterNetwork: CLUSTER }, [OWN, NEW, OWN])).toEqual([exact(OWN), exact(NEW)]);
    expect(exportPrefixes({ reflector: false, clusterNetwork: CLUSTER }, [])).toEqual([]);
    expect(exportPrefixes({ reflector: true, clusterNetwork: CLUSTER }, [OWN, NEW]))
      .toEqual([{ ip_prefix: CLUSTER, mask_length_min: 16, mask_length_max: 32 }]);
    expect(() => exportPrefixes({ reflector: false, clusterNetwork: CLUSTER }, ['10.244.1.1/24'])).toThrow(/host bits/);
    expect(() => exportPrefixes({ reflector: false, clusterNetwork: CLUSTER }, ['fd00:1::/64'])).toThrow(/IPv4 unicast only/);
    expect(() => exportPrefixes({ reflector: true, clusterNetwork: 'fd00::/48' }, [])).toThrow(/IPv4 unicast only/);
  });

  it('one statement: the set -> ACCEPT, and only this host\'s own paths unless it reflects; assigned to global export with default REJECT', () => {
    expect(exportPolicy({ reflector: false })).toEqual({
      name: 'twill-export',
      statements: [{
        name: 'twill-export',
        conditions: { prefix_set: { type: 'ANY', name: 'twill-export' }, route_type: 'ROUTE_TYPE_LOCAL' },
        actions: { route_action: 'ACCEPT' },
      }],
    });
    expect(exportPolicy({ reflector: true }).statements?.[0]?.conditions).toEqual({ prefix_set: { type: 'ANY', name: 'twill-export' } });
    expect(exportAssignment()).toEqual({ name: 'global', direction: 'EXPORT', policies: [{ name: 'twill-export' }], default_action: 'REJECT' });
    expect(exportSet([exact(OWN)])).toEqual({ defined_type: 'PREFIX', name: 'twill-export', prefixes: [exact(OWN)] });
  });

  it('the messages survive the wire with their enums', () => {
    expect(roundTrip('AddDefinedSet', { defined_set: exportSet([exact(OWN)]) })).toMatchObject({
      defined_set: { defined_type: 'PREFIX', name: 'twill-export', prefixes: [exact(OWN)] },
    });
    expect(roundTrip('DeleteDefinedSet', { defined_set: exportSet([exact(OWN)]), all: false })).toMatchObject({ all: false });
    expect(roundTrip('ListDefinedSet', { defined_type: 'PREFIX', name: EXPORT_NAME })).toEqual({ defined_type: 'PREFIX', name: EXPORT_NAME });
    const policy = roundTrip('AddPolicy', { policy: exportPolicy({ reflector: false }), refer_existing_statements: false }) as { policy: Policy };
    expect(policy.policy).toMatchObject(exportPolicy({ reflector: false }));
    expect(policyKey(policy.policy)).toBe(policyKey(exportPolicy({ reflector: false })));
    expect(roundTrip('DeletePolicy', { policy: { name: EXPORT_NAME }, all: true, preserve_statements: false }))
      .toEqual({ policy: { name: EXPORT_NAME, statements: [] }, all: true, preserve_statements: false });
    expect(roundTrip('SetPolicyAssignment', { assignment: exportAssignment() })).toEqual({
      assignment: { name: 'global', direction: 'EXPORT', policies: [{ name: 'twill-export', statements: [] }], default_action: 'REJECT' },
    });
  });

  it('policies compare by what Twill sets, defaults filled in or not; the two kinds of host differ', () => {
    // ListPolicy's answer for a reflector's policy: every default spelled out.
    const listed: Policy = {
      name: 'twill-export',
      statements: [{
        name: 'twill-export',
        conditions: { prefix_set: { type: 'ANY', name: 'twill-export' }, route_type: 'ROUTE_TYPE_NONE' },
        actions: { route_action: 'ACCEPT' },
      }],
    };
    expect(policyKey(listed)).toBe(policyKey(exportPolicy({ reflector: true })));
    expect(policyKey(listed)).not.toBe(policyKey(exportPolicy({ reflector: false })));
    expect(policyKey({ name: 'twill-export', statements: [] })).not.toBe(policyKey(listed));
  });

  it('plans set changes: adds what is missing, removes the rest, duplicates once', () => {
    const cluster = { ip_prefix: CLUSTER, mask_length_min: 16, mask_length_max: 32 };
    expect(planSet([exact(OWN), exact(OWN), cluster], [exact(OWN), exact(NEW)])).toEqual({ add: [exact(NEW)], remove: [cluster] });
    expect(planSet([], [])).toEqual({ add: [], remove: [] });
    expect(prefixKey(cluster)).toBe('10.244.0.0/16 16..32');
  });
});

// ---- the driver's calls, against a fake gobgpd ----------------------------------------------

const describeSet = (s: readonly PolicyPrefix[] | undefined): string => (s ?? []).map(prefixKey).join(', ');
const prefixOfPath = (p: Path): string => {
  const nlri = p.nlri as { prefix: string; prefix_len: number };
  return `${nlri.prefix}/${nlri.prefix_len}`;
};

/**
 * gobgpd as far as the driver's export configuration goes, with the semantics of 3.10 seen on the
 * live one: AddDefinedSet appends (duplicates too), DeleteDefinedSet(all: false) removes entries,
 * AddPolicy refuses a statement name it has, DeletePolicy refuses an assigned policy. `writes`
 * lists every change in order; reads are not listed.
 */
class FakeGobgpd {
  readonly writes: string[] = [];
  readonly failing = new Set<string>();
  global: Global = {};
  peers: Peer[] = [];
  readonly paths = new Map<string, Path>();
  set: PolicyPrefix[] | undefined;
  policy: Policy | undefined;
  assignment: PolicyAssignment | undefined;
  closed = false;

  client(): GobgpClient {
    const write = (what: string): void => {
      const method = what.split(' ')[0]!;
      if (this.failing.has(method)) throw new Error(`gobgpd ${method} (fake): refused`);
      this.writes.push(what);
    };
    const client = {
      target: 'fake',
      getBgp: () => Promise.resolve(this.global),
      startBgp: (global: Global) => {
        write('StartBgp');
        this.global = global;
        return Promise.resolve();
      },
      listPeers: () => Promise.resolve(this.peers),
      listPaths: () => Promise.resolve([...this.paths.values()].map((p) => ({ ...p, neighbor_ip: '<nil>' }))),
      addPeer: (peer: Peer) => {
        write(`AddPeer ${peer.conf?.neighbor_address ?? ''}`);
        this.peers.push(peer);
        return Promise.resolve();
      },
      deletePeer: (address: string) => {
        write(`DeletePeer ${address}`);
        this.peers = this.peers.filter((p) => p.conf?.neighbor_address !== address);
        return Promise.resolve();
      },
      addPath: async (path: Path) => {
        write(`AddPath ${prefixOfPath(path)}`);
        this.paths.set(prefixOfPath(path), path);
        await Promise.resolve();
      },
      deletePath: async (path: Path) => {
        write(`DeletePath ${prefixOfPath(path)}`);
        this.paths.delete(prefixOfPath(path));
        await Promise.resolve();
      },
      prefixSet: (name: string) => Promise.resolve(name === EXPORT_NAME && this.set ? exportSet(this.set) : undefined),
      addDefinedSet: async (s: DefinedSet) => {
        write(`AddDefinedSet ${s.name} ${describeSet(s.prefixes)}`);
        this.set = [...this.set ?? [], ...s.prefixes ?? []];
        await Promise.resolve();
      },
      deleteFromDefinedSet: async (s: DefinedSet) => {
        write(`DeleteDefinedSet ${s.name} ${describeSet(s.prefixes)}`);
        const gone = new Set((s.prefixes ?? []).map(prefixKey));
        this.set = (this.set ?? []).filter((p) => !gone.has(prefixKey(p)));
        await Promise.resolve();
      },
      policy: (name: string) => Promise.resolve(name === this.policy?.name ? this.policy : undefined),
      addPolicy: async (p: Policy) => {
        write(`AddPolicy ${p.name}`);
        if (this.policy) throw new Error(`statement ${EXPORT_NAME} already defined`);
        this.policy = p;
        await Promise.resolve();
      },
      deletePolicy: async (name: string) => {
        write(`DeletePolicy ${name}`);
        if (this.assignment?.policies.some((p) => p.name === name)) throw new Error(`can't delete. policy ${name} is in use`);
        this.policy = undefined;
        await Promise.resolve();
      },
      setPolicyAssignment: async (a: PolicyAssignment) => {
        write(`SetPolicyAssignment ${a.name} ${a.direction} [${a.policies.map((p) => p.name).join(', ')}] ${a.default_action}`);
        this.assignment = a;
        await Promise.resolve();
      },
      enablePeer: () => Promise.resolve(),
      adjOutSize: () => Promise.resolve(0),
      watch: () => Object.assign(new EventEmitter(), { cancel: () => undefined }),
      close: () => {
        this.closed = true;
      },
    };
    return client as unknown as GobgpClient;
  }

  /** What an earlier driver left: running as this host, a session, a route, and its export policy. */
  configured(reflector: boolean, prefix = OWN): this {
    this.global = { asn: 64512, router_id: HOP };
    this.peers = [peerMessage(options(), host)];
    this.paths.set(prefix, ownPath({ prefix, nextHop: HOP }));
    this.set = exportPrefixes({ reflector, clusterNetwork: CLUSTER }, [prefix]);
    this.policy = exportPolicy({ reflector });
    this.assignment = exportAssignment();
    return this;
  }
}

const host: DriverPeer = { address: '198.18.0.2', asn: 64512, role: 'mesh', password: undefined, port: 179, multihop: undefined };

function options(over: Partial<GobgpDriverOptions> = {}): GobgpDriverOptions {
  return {
    api: 'fake', asn: 64512, routerId: HOP, listen: { address: HOP, port: 179 }, localAddress: HOP, holdTimeS: 9, restartTimeS: 0,
    clusterNetwork: CLUSTER, ownSubnet: OWN, reflector: false, maxPrefixes: 100, restarted: false, ...over,
  };
}

const drivers: BgpDriver[] = [];
async function start(gobgpd: FakeGobgpd, over: Partial<GobgpDriverOptions> = {}): Promise<BgpDriver> {
  const d = await startGobgpDriverOn(gobgpd.client(), options(over));
  drivers.push(d);
  return d;
}

afterEach(async () => {
  for (const d of drivers.splice(0)) await d.close({ graceful: true });
});

describe('gobgp driver: export policy in gobgpd', () => {
  it('a fresh gobgpd gets set, policy and assignment before any session; the set follows the announcement, in before the path, out after it', async () => {
    const gobgpd = new FakeGobgpd();
    const d = await start(gobgpd);
    expect(gobgpd.writes.splice(0)).toEqual([
      'StartBgp',
      'AddDefinedSet twill-export 10.244.1.0/24 24..24',
      'AddPolicy twill-export',
      'SetPolicyAssignment global EXPORT [twill-export] REJECT',
    ]);
    expect(gobgpd.policy).toEqual(exportPolicy({ reflector: false }));

    await d.setPeers([host]);
    await d.announce([{ prefix: OWN, nextHop: HOP }]);
    expect(gobgpd.writes.splice(0)).toEqual(['AddPeer 198.18.0.2', 'AddPath 10.244.1.0/24']);

    await d.announce([{ prefix: NEW, nextHop: HOP }]);
    expect(gobgpd.writes.splice(0)).toEqual([
      'AddDefinedSet twill-export 10.244.9.0/24 24..24',
      'DeletePath 10.244.1.0/24',
      'AddPath 10.244.9.0/24',
      'DeleteDefinedSet twill-export 10.244.1.0/24 24..24',
    ]);
    expect(gobgpd.set).toEqual([exact(NEW)]);

    // A new next hop changes the path, not the set; nothing announced empties it.
    await d.announce([{ prefix: NEW, nextHop: '198.18.0.9' }]);
    expect(gobgpd.writes.splice(0)).toEqual(['AddPath 10.244.9.0/24']);
    await d.announce([]);
    expect(gobgpd.writes.splice(0)).toEqual(['DeletePath 10.244.9.0/24', 'DeleteDefinedSet twill-export 10.244.9.0/24 24..24']);
    expect(gobgpd.set).toEqual([]);
  });

  it('a gobgpd an earlier driver configured keeps its set and policy; only the assignment is said again', async () => {
    const gobgpd = new FakeGobgpd().configured(false);
    const d = await start(gobgpd);
    await d.setPeers([host]);
    await d.announce([{ prefix: OWN, nextHop: HOP }]);
    expect(gobgpd.writes).toEqual(['SetPolicyAssignment global EXPORT [twill-export] REJECT']);
  });

  it('adopted with another subnet: the old route\'s prefix stays in the set until the route is withdrawn', async () => {
    const gobgpd = new FakeGobgpd().configured(false, NEW);
    const d = await start(gobgpd); // ownSubnet OWN; gobgpd still announces NEW
    expect(gobgpd.writes.splice(0)).toEqual([
      'AddDefinedSet twill-export 10.244.1.0/24 24..24',
      'SetPolicyAssignment global EXPORT [twill-export] REJECT',
    ]);
    await d.announce([{ prefix: OWN, nextHop: HOP }]);
    expect(gobgpd.writes.splice(0)).toEqual(['DeletePath 10.244.9.0/24', 'AddPath 10.244.1.0/24', 'DeleteDefinedSet twill-export 10.244.9.0/24 24..24']);
  });

  it('a host that became a reflector: the set becomes the cluster network, the policy is replaced (unassigned first: gobgpd keeps an assigned one)', async () => {
    const gobgpd = new FakeGobgpd().configured(false);
    const d = await start(gobgpd, { reflector: true });
    expect(gobgpd.writes.splice(0)).toEqual([
      'AddDefinedSet twill-export 10.244.0.0/16 16..32',
      'DeleteDefinedSet twill-export 10.244.1.0/24 24..24',
      'SetPolicyAssignment global EXPORT [] REJECT',
      'DeletePolicy twill-export',
      'AddPolicy twill-export',
      'SetPolicyAssignment global EXPORT [twill-export] REJECT',
    ]);
    expect(gobgpd.policy).toEqual(exportPolicy({ reflector: true }));
    // The set no longer follows the announcement.
    await d.announce([{ prefix: NEW, nextHop: HOP }]);
    expect(gobgpd.writes.splice(0)).toEqual(['DeletePath 10.244.1.0/24', 'AddPath 10.244.9.0/24']);

    // And back: the next driver of a host that is no longer one.
    await d.close({ graceful: true });
    await start(gobgpd, { reflector: false, ownSubnet: NEW });
    expect(gobgpd.writes.splice(0)).toEqual([
      'AddDefinedSet twill-export 10.244.9.0/24 24..24',
      'DeleteDefinedSet twill-export 10.244.0.0/16 16..32',
      'SetPolicyAssignment global EXPORT [] REJECT',
      'DeletePolicy twill-export',
      'AddPolicy twill-export',
      'SetPolicyAssignment global EXPORT [twill-export] REJECT',
    ]);
    expect(gobgpd.policy).toEqual(exportPolicy({ reflector: false }));
  });

  it('no path goes in without its set entry: a refused set change fails the announcement before AddPath, the next one reads the set again', async () => {
    const gobgpd = new FakeGobgpd();
    const d = await start(gobgpd);
    gobgpd.writes.length = 0;
    gobgpd.failing.add('AddDefinedSet');
    await expect(d.announce([{ prefix: NEW, nextHop: HOP }])).rejects.toThrow(/AddDefinedSet \(fake\): refused/);
    expect(gobgpd.writes).toEqual([]);
    expect(gobgpd.paths.size).toBe(0);

    gobgpd.failing.clear();
    await d.announce([{ prefix: NEW, nextHop: HOP }]);
    expect(gobgpd.writes).toEqual([
      'AddDefinedSet twill-export 10.244.9.0/24 24..24',
      // OWN had no path: out at once.
      'DeleteDefinedSet twill-export 10.244.1.0/24 24..24',
      'AddPath 10.244.9.0/24',
    ]);
  });

  it('a driver that cannot configure the export policy does not start (and closes its client)', async () => {
    const gobgpd = new FakeGobgpd();
    gobgpd.failing.add('SetPolicyAssignment');
    await expect(startGobgpDriverOn(gobgpd.client(), options())).rejects.toThrow(/SetPolicyAssignment \(fake\): refused/);
    expect(gobgpd.closed).toBe(true);
    expect(gobgpd.writes).not.toContainEqual(expect.stringMatching(/^AddPeer/));
  });
});
