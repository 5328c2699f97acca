/**
 * The gobgp driver (src/backends/bgp/gobgp/) against a live gobgpd 3.10 that it configures over
 * gRPC alone (started with --api-hosts only, no config file), with BIRD as the peer:
 *
 *   twill ns: gobgpd (AS 65001) 198.18.60.1 ──eBGP, TCP MD5, graceful restart── 198.18.60.2 bird ns: BIRD (AS 65002)
 *                                           └─iBGP (the export policy tests)──── 198.18.60.3 mesh ns: BIRD (AS 65001)
 *
 * The mesh namespace has its own link but an address of the same /24 (the twill namespace routes
 * 198.18.60.3/32 to it), so its BIRD takes gobgpd's address as on-link (an iBGP session `direct`)
 * and the ToR's too, the next hop of a ToR route gobgpd would pass on. (Two BIRDs in one namespace
 * would refuse each other's routes: a next hop that is one of its own addresses is invalid to BIRD.)
 *
 * The API is a unix socket in a temp dir, so the test process reaches it without entering the
 * namespace. First, without root: proto/gobgp/api/ against the file descriptors compiled into the
 * gobgpd binary (names, numbers, types of every message, enum and method Twill declares).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadFileDescriptorSetFromBuffer, type MessageTypeDefinition, type PackageDefinition } from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/grpc-js';
import type { BgpDriver, DriverPeer, LearnedPath, PathsEvent, PeerStatus } from '../../src/backends/bgp/driver.js';
import { IPV4_UNICAST } from '../../src/backends/bgp/gobgp/api.js';
import { GobgpClient, gobgpDefinition } from '../../src/backends/bgp/gobgp/client.js';
import { startGobgpDriver, type GobgpDriverOptions } from '../../src/backends/bgp/gobgp/driver.js';
import { EXPORT_NAME, exportAssignment, exportPolicy, policyKey } from '../../src/backends/bgp/gobgp/export.js';
import { neighborOf, ownRouteOf } from '../../src/backends/bgp/gobgp/paths.js';
import { peerKey, peerMessage } from '../../src/backends/bgp/gobgp/peers.js';
import { bgpDaemonsAvailable, startPeerDaemon, type PeerDaemon } from '../helpers/bgp-peers.js';
import { tempDir } from '../helpers/cleanup.js';
import type { Daemon } from '../helpers/daemon.js';
import { exec } from '../helpers/exec.js';
import { groupId } from '../helpers/names.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';
import { waitFor } from '../helpers/wait.js';

const avail = bgpDaemonsAvailable();

// ---- the proto subset against the binary --------------------------------------------------

/** The serialized FileDescriptorProto of `name` as protoc-gen-go embeds it in a Go binary. */
function embeddedDescriptor(binary: Buffer, name: string, pkg: string): Buffer {
  const head = Buffer.concat([Buffer.from([0x0a, name.length]), Buffer.from(name), Buffer.from([0x12, pkg.length]), Buffer.from(pkg)]);
  const start = binary.indexOf(head);
  if (start < 0) throw new Error(`${name} (package ${pkg}) is not embedded in the binary`);
  // Top-level fields of FileDescriptorProto (numbers 1-14, varint or length-delimited) until
  // something else follows: that is where the descriptor ends.
  let i = start;
  for (;;) {
    const [tag, afterTag] = varint(binary, i);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field < 1 || field > 14 || (wire !== 0 && wire !== 2)) break;
    const [value, afterValue] = varint(binary, afterTag);
    i = wire === 0 ? afterValue : afterValue + value;
  }
  return binary.subarray(start, i);
}

function varint(b: Buffer, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = at; i < b.length; i++) {
    const c = b[i]!;
    value += (c & 0x7f) * scale;
    scale *= 128;
    if (c < 0x80) return [value, i + 1];
  }
  return [-1, b.length];
}

function lengthDelimited(field: number, bytes: Buffer): Buffer {
  const len: number[] = [];
  for (let n = bytes.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n % 128) | 128);
  }
  return Buffer.concat([Buffer.from([field * 8 + 2, ...len]), bytes]);
}

/** gobgpd's own definitions: a FileDescriptorSet of the descriptors in its binary. */
async function binaryDefinitions(): Promise<PackageDefinition> {
  const binary = readFileSync((await exec('sh', ['-c', 'command -v gobgpd'])).trim());
  const files = [
    ['google/protobuf/any.proto', 'google.protobuf'], ['google/protobuf/empty.proto', 'google.protobuf'],
    ['google/protobuf/timestamp.proto', 'google.protobuf'], ['gobgp.proto', 'apipb'], ['attribute.proto', 'apipb'],
  ] as const;
  const set = Buffer.concat(files.map(([name, pkg]) => lengthDelimited(1, embeddedDescriptor(binary, name, pkg))));
  return loadFileDescriptorSetFromBuffer(set, { keepCase: true });
}

interface FieldDescriptor { name: string; number: number; label: string; type: string; typeName: string }
interface EnumDescriptor { name: string; value: { name: string; number: number }[] }
interface MessageDescriptor { field: FieldDescriptor[]; nestedType: (MessageDescriptor & { name: string })[]; enumType: EnumDescriptor[] }

/** The enums declared inside a message and its nested messages, by their names below it ("Conditions.RouteType"). */
function nestedEnums(m: MessageDescriptor, prefix: string): Map<string, EnumDescriptor> {
  const out = new Map<string, EnumDescriptor>();
  for (const e of m.enumType) out.set(`${prefix}.${e.name}`, e);
  for (const n of m.nestedType) for (const [k, v] of nestedEnums(n, `${prefix}.${n.name}`)) out.set(k, v);
  return out;
}

describe.skipIf(!avail.gobgp)('proto/gobgp/api against gobgpd 3.10', () => {
  it('every message, field, enum value and method Twill declares is gobgpd\'s, with the same number and type', async () => {
    const theirs = await binaryDefinitions();
    const ours = gobgpDefinition();
    let fields = 0;
    let nested = 0;
    for (const [name, def] of Object.entries(ours)) {
      if (!name.startsWith('apipb.')) continue;
      const other = theirs[name];
      expect(other, name).toBeDefined();
      if ('format' in def && def.format === 'Protocol Buffer 3 DescriptorProto') {
        const mine = (def as MessageTypeDefinition<object, object>).type as MessageDescriptor;
        const real = (other as MessageTypeDefinition<object, object>).type as MessageDescriptor;
        for (const f of mine.field) {
          const g = real.field.find((x) => x.name === f.name);
          expect(g && { number: g.number, label: g.label, type: g.type, typeName: g.typeName }, `${name}.${f.name}`)
            .toEqual({ number: f.number, label: f.label, type: f.type, typeName: f.typeName });
          fields++;
        }
        // Enums declared inside messages (Conditions.RouteType, PeerState.SessionState, ...).
        const realEnums = nestedEnums(real, name);
        for (const [enumName, e] of nestedEnums(mine, name)) {
          for (const v of e.value) expect(realEnums.get(enumName)?.value, `${enumName}.${v.name}`).toContainEqual(expect.objectContaining(v));
          nested++;
        }
      } else if ('format' in def && def.format === 'Protocol Buffer 3 EnumDescriptorProto') {
        const real = ((other as { type: EnumDescriptor }).type).value;
        for (const v of ((def as { type: EnumDescriptor }).type).value) expect(real, `${name}.${v.name}`).toContainEqual(expect.objectContaining(v));
      } else {
        for (const [method, m] of Object.entries(def as Record<string, MethodDefinition<object, object>>)) {
          const g = (other as Record<string, MethodDefinition<object, object>>)[method];
          expect(g && [g.path, g.requestStream, g.responseStream], `${name}.${method}`).toEqual([m.path, m.requestStream, m.responseStream]);
        }
      }
    }
    expect(fields).toBeGreaterThan(170);
    expect(nested).toBeGreaterThanOrEqual(10);
    // The export policy's part of the subset is among what was compared.
    const service = ours['apipb.GobgpApi'] as unknown as Record<string, unknown>;
    for (const method of ['AddDefinedSet', 'DeleteDefinedSet', 'ListDefinedSet', 'AddPolicy', 'DeletePolicy', 'ListPolicy', 'SetPolicyAssignment']) {
      expect(service[method], method).toBeDefined();
    }
    for (const name of ['DefinedSet', 'DefinedType', 'Prefix', 'Policy', 'Statement', 'Conditions', 'MatchSet', 'Actions', 'RouteAction', 'PolicyAssignment', 'PolicyDirection']) {
      expect(ours[`apipb.${name}`], name).toBeDefined();
    }
  });
});

// ---- the driver against a live gobgpd ------------------------------------------------------

const AS_TWILL = 65001;
const AS_PEER = 65002;
const IP = { twill: '198.18.60.1', peer: '198.18.60.2', mesh: '198.18.60.3' };
const MD5 = 'tw1ll-s3cret';
const OWN = '10.244.1.0/24';
const THEIRS = '10.244.2.0/24';

const session: DriverPeer = { address: IP.peer, asn: AS_PEER, role: 'external', password: MD5, port: 179, multihop: undefined };
/** Another host of the cluster, over iBGP. */
const meshSession: DriverPeer = { address: IP.mesh, asn: AS_TWILL, role: 'mesh', password: undefined, port: 179, multihop: undefined };
/** The mesh peer's subnet; more of the ToR's, inside the cluster network and outside it. */
const MESH_SUBNET = '10.244.7.0/24';
const TOR_EXTRA = '10.244.50.0/24';
const TOR_LATER = '10.244.51.0/24';
const OUTSIDE = '10.96.0.0/16';
/** The host's subnet after its lease changed. */
const NEW_SUBNET = '10.244.9.0/24';

/** Everything a driver emitted, and the peer's paths as the backend would hold them. */
class Recorder {
  readonly paths: PathsEvent[] = [];
  readonly peer: PeerStatus[] = [];
  readonly maxPrefix: { peer: string; limit: number }[] = [];
  readonly endOfRib: string[] = [];
  readonly warnings: Error[] = [];

  constructor(driver: BgpDriver) {
    driver.on('paths', (e) => this.paths.push(e));
    driver.on('peer', (s) => this.peer.push(s));
    driver.on('max-prefix', (e) => this.maxPrefix.push(e));
    driver.on('end-of-rib', (e) => this.endOfRib.push(e.peer));
    driver.on('warning', (e) => this.warnings.push(e));
  }

  learned(peer: string): Map<string, LearnedPath> {
    const table = new Map<string, LearnedPath>();
    for (const e of this.paths) {
      if (e.peer !== peer) continue;
      for (const w of e.withdrawn) table.delete(w);
      for (const p of e.announced) table.set(p.prefix, p);
    }
    return table;
  }

  withdrawn(peer: string, prefix: string): boolean {
    return this.paths.some((e) => e.peer === peer && e.withdrawn.includes(prefix));
  }
}

describe.skipIf(!isRoot || !avail.gobgp || !avail.bird)('gobgp driver against a live gobgpd', () => {
  const registry = useCleanup();
  let group: string;
  let nsTwill: TestNetns;
  let bird: PeerDaemon;
  let gobgpd: Daemon;
  let dir: string;
  let api: string;
  /** Our own look at gobgpd, through the same proto subset. */
  let inspect: GobgpClient;

  const options = (over: Partial<GobgpDriverOptions> = {}): GobgpDriverOptions => ({
    api, asn: AS_TWILL, routerId: IP.twill, listen: { address: IP.twill, port: 179 }, localAddress: IP.twill,
    holdTimeS: 9, restartTimeS: 120, clusterNetwork: '10.244.0.0/16', ownSubnet: OWN, reflector: false, maxPrefixes: 100, restarted: false, ...over,
  });

  /** gobgpd as a host would run it beside twilld: the API only, no BGP configuration. */
  async function startGobgpd(): Promise<void> {
    const sock = join(dir, 'api.sock');
    rmSync(sock, { force: true });
    gobgpd = await nsTwill.spawn('gobgpd', ['--api-hosts', `unix://${sock}`, '--pprof-disable', '--log-plain', '--log-level', 'info'],
      { label: 'gobgpd-under-test', pidFile: join(dir, 'gobgpd.pid') });
    await waitFor(() => inspect.getBgp(), { timeoutMs: 10_000, intervalMs: 100, what: 'gobgpd API' });
  }

  /** A driver closed (gracefully, leaving gobgpd as it is) at the end of the test, whatever happens. */
  async function driver(over: Partial<GobgpDriverOptions> = {}): Promise<{ d: BgpDriver; rec: Recorder }> {
    const d = await startGobgpDriver(options(over));
    const rec = new Recorder(d);
    registry.defer('gobgp driver', () => d.close({ graceful: true }));
    return { d, rec };
  }

  async function birdHas(prefix: string): Promise<boolean> {
    return (await bird.learned()).some((r) => r.prefix === prefix && r.nextHop === IP.twill);
  }

  /**
   * Waits for the driver to see the session to the BIRD peer established; a timeout says what
   * gobgpd and BIRD saw then, since either side may be the one still waiting.
   */
  async function established(d: BgpDriver, timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(() => d.peers().find((p) => p.address === IP.peer)?.state === 'established',
        { timeoutMs, intervalMs: 100, what: 'the driver to see the session established' });
    } catch (err) {
      const seen = await Promise.all([
        inspect.listPeers().then((peers) => JSON.stringify(peers.map((p) => ({ peer: p.state?.neighbor_address, session: p.state?.session_state, admin: p.state?.admin_state }))), (e: Error) => `(${e.message})`),
        bird.neighborStatus(IP.twill).then((n) => JSON.stringify(n), (e: Error) => `(${e.message})`),
      ]);
      throw new Error(`${(err as Error).message}; driver ${JSON.stringify(d.peers())}; gobgpd ${seen[0]}; BIRD ${seen[1]}`, { cause: err });
    }
  }

  beforeAll(async () => {
    group = groupId();
    const nsPeer = await createTestNetns('bird', { group });
    nsTwill = await createTestNetns('twill', { group });
    await connectNetns(nsTwill, nsPeer, { a: { ifname: 'to-bird', cidr: `${IP.twill}/24` }, b: { ifname: 'to-twill', cidr: `${IP.peer}/24` } });
    dir = tempDir('gobgpd-driver', registry);
    api = `unix://${join(dir, 'api.sock')}`;
    inspect = new GobgpClient(api);
    registry.defer('inspector client', () => inspect.close());
    await startGobgpd();
    bird = await startPeerDaemon({
      kind: 'bird', netns: nsPeer, asn: AS_PEER, routerId: IP.peer, listenAddress: IP.peer,
      neighbors: [{ address: IP.twill, asn: AS_TWILL, md5: MD5, gracefulRestart: true }],
      announce: [{ prefix: THEIRS }],
    });
  });

  it('starts gobgpd, configures the session and routes over gRPC, and reports what the peer sends; a graceful close leaves it all to the next driver', async () => {
    expect((await inspect.getBgp()).asn).toBe(0); // not started: nothing but --api-hosts
    const { d, rec } = await driver();
    expect(await inspect.getBgp()).toMatchObject({ asn: AS_TWILL, router_id: IP.twill, listen_port: 179, listen_addresses: [IP.twill] });
    // The export policy, before any session: the host's subnet only.
    expect((await inspect.prefixSet(EXPORT_NAME))?.prefixes).toEqual([{ ip_prefix: OWN, mask_length_min: 24, mask_length_max: 24 }]);
    expect(policyKey((await inspect.policy(EXPORT_NAME))!)).toBe(policyKey(exportPolicy({ reflector: false })));

    await d.setPeers([session]);
    await d.announce([{ prefix: OWN, nextHop: IP.twill }]);
    await bird.waitEstablished(IP.twill);
    await waitFor(() => rec.peer.some((p) => p.address === IP.peer && p.state === 'established'), { timeoutMs: 15_000, what: "a 'peer' event: established" });
    expect(d.peers()).toEqual([expect.objectContaining({ address: IP.peer, asn: AS_PEER, role: 'external', state: 'established', lastError: undefined })]);

    // Our route at the peer, with our next hop; the peer's in a 'paths' event.
    await waitFor(() => birdHas(OWN), { timeoutMs: 15_000, intervalMs: 200, what: `BIRD to learn ${OWN} via ${IP.twill}` });
    expect((await bird.learned()).find((r) => r.prefix === OWN)).toMatchObject({ asPath: [AS_TWILL] });
    await waitFor(() => rec.learned(IP.peer).has(THEIRS), { timeoutMs: 15_000, what: `'paths' with ${THEIRS}` });
    expect(rec.learned(IP.peer).get(THEIRS)).toEqual({ prefix: THEIRS, nextHop: IP.peer, asPathLength: 1, localPref: 100, med: 0, origin: 0, ebgp: true });

    // A later announcement and its withdrawal.
    await bird.announce('10.244.3.0/24', { med: 5 });
    await waitFor(() => rec.learned(IP.peer).get('10.244.3.0/24')?.med === 5, { timeoutMs: 15_000, what: "'paths' with 10.244.3.0/24, MED 5" });
    await bird.withdraw('10.244.3.0/24');
    await waitFor(() => rec.withdrawn(IP.peer, '10.244.3.0/24') && !rec.learned(IP.peer).has('10.244.3.0/24'), { timeoutMs: 15_000, what: "'paths' withdrawing 10.244.3.0/24" });

    // End-of-RIB (BIRD sends it with graceful restart), counters from ListPeer.
    await waitFor(() => rec.endOfRib.includes(IP.peer), { timeoutMs: 15_000, what: "'end-of-rib'" });
    await waitFor(() => {
      const s = d.peers()[0];
      return s?.received === 1 && s.sent === 1 && s.upSince !== undefined;
    }, { timeoutMs: 15_000, what: 'counters 1 received, 1 sent' });

    // What gobgpd holds, read back through the subset: the session as configured (its key is the
    // one the driver compares by), our path in the global RIB, the peer's in its Adj-RIB-In.
    const [listed] = await inspect.listPeers();
    expect(listed?.conf).toMatchObject({ neighbor_address: IP.peer, peer_asn: AS_PEER, auth_password: MD5 });
    expect(peerKey(listed!)).toBe(peerKey(peerMessage(options(), session)));
    const global = await inspect.listPaths('GLOBAL', '', IPV4_UNICAST);
    expect(global.flatMap((p) => ownRouteOf(p) ?? [])).toEqual([{ prefix: OWN, nextHop: IP.twill }]);
    expect((await inspect.listPaths('ADJ_IN', IP.peer, IPV4_UNICAST)).map((p) => neighborOf(p))).toEqual([IP.peer]);
    const uptime = listed?.timers?.state?.uptime?.seconds;
    const birdUp = (await bird.neighborStatus(IP.twill)).upSince;

    // twilld restarts: gobgpd keeps the session and the route.
    await d.close({ graceful: true });
    expect(gobgpd.running).toBe(true);
    expect(await bird.sessionState(IP.twill)).toBe('established');
    expect(await birdHas(OWN)).toBe(true);

    // The next driver adopts it: the peer's paths and End-of-RIB again, and nothing is reset.
    const next = await driver();
    expect(next.d.peers()).toEqual([expect.objectContaining({ address: IP.peer, asn: AS_PEER, role: 'external' })]);
    await established(next.d);
    await waitFor(() => next.rec.learned(IP.peer).has(THEIRS), { timeoutMs: 15_000, what: `'paths' with ${THEIRS} after adoption` });
    await waitFor(() => next.rec.endOfRib.includes(IP.peer), { timeoutMs: 15_000, what: "'end-of-rib' after adoption" });
    await next.d.setPeers([session]);
    await next.d.announce([{ prefix: OWN, nextHop: IP.twill }]);
    const [after] = await inspect.listPeers();
    expect(after?.timers?.state?.uptime?.seconds).toBe(uptime);
    expect((await bird.neighborStatus(IP.twill)).upSince).toBe(birdUp);
    expect(await birdHas(OWN)).toBe(true);
    expect(next.rec.warnings).toEqual([]);
  });

  it('refuses a gobgpd that runs as another speaker', async () => {
    await expect(startGobgpDriver(options({ asn: 65009 }))).rejects.toThrow(/already runs as AS 65001 with router id 198\.18\.60\.1, but this host is AS 65009/);
    await expect(startGobgpDriver(options({ routerId: '198.18.60.9' }))).rejects.toThrow(/router id 198\.18\.60\.9/);
  });

  it('resets and holds down a peer past the prefix limit, reports it, and lets it back later', async () => {
    // A fixed 10 s hold-down (no jitter): the peer below needs a moment to fix its export (three
    // BIRD reconfigurations, slow on a loaded machine), and a retry sooner than that (the default's
    // jitter allows 0.5 s) would find it still over the limit and trip it again.
    const { d, rec } = await driver({ maxPrefixes: 3, prefixLimitRetry: { initialMs: 10_000, maxMs: 10_000, random: () => 1 } });
    await d.setPeers([session]); // a new limit: a new session
    await d.announce([{ prefix: OWN, nextHop: IP.twill }]);
    await established(d);
    await waitFor(() => rec.learned(IP.peer).has(THEIRS), { timeoutMs: 15_000, what: `${THEIRS}` });

    const extra = ['10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24'];
    for (const p of extra) await bird.announce(p);
    await waitFor(() => rec.maxPrefix.length > 0, { timeoutMs: 15_000, what: "'max-prefix'" });
    // The peer fixes its export at once, well inside the hold-down.
    for (const p of extra) await bird.withdraw(p);
    expect(rec.maxPrefix[0]).toEqual({ peer: IP.peer, limit: 3 });
    await waitFor(() => d.peers()[0]?.state !== 'established', { timeoutMs: 10_000, what: 'the session down' });
    expect(d.peers()[0]?.lastError).toMatch(/more than 3 prefixes/);
    // gobgpd dropped what the peer gave without an UPDATE: the driver withdraws it.
    await waitFor(() => rec.withdrawn(IP.peer, THEIRS), { timeoutMs: 15_000, what: 'the peer\'s paths withdrawn' });

    // The driver lets it in again (EnablePeer after its backoff). Then either side connects:
    // gobgpd after its random 5-10 s connect delay, BIRD after its error wait (up to 5 s, grown by
    // the connections gobgpd refused during the hold-down) and connect retry (2 s). On a loaded
    // machine that took more than 30 s after the 10 s hold-down once.
    await established(d, 60_000);
    await waitFor(() => rec.learned(IP.peer).has(THEIRS), { timeoutMs: 30_000, what: `${THEIRS} after the reset` });
    expect(rec.maxPrefix).toHaveLength(1);
  });

  describe('the export policy', () => {
    useCleanup({ sweep: false });
    let mesh: PeerDaemon;

    /** The prefixes a peer learned from us (each BIRD's only neighbor is our gobgpd), sorted. */
    async function prefixesAt(peer: PeerDaemon): Promise<string[]> {
      return [...new Set((await peer.learned()).map((r) => r.prefix))].sort();
    }

    async function waitAt(peer: PeerDaemon, has: readonly string[], lacks: readonly string[] = []): Promise<void> {
      await waitFor(async () => {
        const p = await prefixesAt(peer);
        return has.every((x) => p.includes(x)) && !lacks.some((x) => p.includes(x));
      }, { timeoutMs: 20_000, intervalMs: 200, what: `${peer.label} to have ${has.join(', ')}${lacks.length > 0 ? ` and not ${lacks.join(', ')}` : ''} (has ${(await prefixesAt(peer).catch(() => [])).join(', ')})` });
    }

    /** The ToR announces these for this test only. */
    async function torAnnounces(...prefixes: string[]): Promise<void> {
      registry.defer('the ToR\'s extra routes', async () => {
        for (const p of prefixes) await bird.withdraw(p);
      });
      for (const p of prefixes) await bird.announce(p);
    }

    /**
     * Whatever the test leaves, the mesh session goes after it (after its driver closed): the next
     * test's is a new one, whose first UPDATEs gobgpd filters with the policy of that moment.
     */
    function noMeshSessionAfterwards(): void {
      registry.defer('the mesh session', async () => {
        if ((await inspect.listPeers()).some((p) => p.conf?.neighbor_address === IP.mesh)) await inspect.deletePeer(IP.mesh);
      });
    }

    beforeAll(async () => {
      const nsMesh = await createTestNetns('mesh', { group });
      await connectNetns(nsTwill, nsMesh, { a: { ifname: 'to-mesh' }, b: { ifname: 'to-twill', cidr: `${IP.mesh}/24` } });
      await nsTwill.exec('ip', ['route', 'add', `${IP.mesh}/32`, 'dev', 'to-mesh']);
      mesh = await startPeerDaemon({
        kind: 'bird', label: 'mesh', netns: nsMesh, asn: AS_TWILL, routerId: IP.mesh, listenAddress: IP.mesh,
        neighbors: [{ address: IP.twill, asn: AS_TWILL }],
        announce: [{ prefix: MESH_SUBNET }],
      });
    });

    it('sends each peer the host\'s own subnet and nothing it learned; after a new subnet is announced, that one and no longer the old', async () => {
      // More the ToR's gobgpd could pass on to the mesh peer: a subnet of the cluster, and a stale
      // copy of this host's own (it kept it from before the lease moved here, say).
      await torAnnounces(TOR_EXTRA, OWN);
      noMeshSessionAfterwards();
      const { d, rec } = await driver();
      await d.setPeers([session, meshSession]);
      await d.announce([{ prefix: OWN, nextHop: IP.twill }]);
      await mesh.waitEstablished(IP.twill, 30_000);
      await established(d);
      await waitFor(() => [THEIRS, TOR_EXTRA, OWN].every((p) => rec.learned(IP.peer).has(p)) && rec.learned(IP.mesh).has(MESH_SUBNET),
        { timeoutMs: 20_000, what: 'gobgpd to have the ToR\'s and the mesh peer\'s routes' });
      await waitAt(mesh, [OWN]);
      await waitFor(() => birdHas(OWN), { timeoutMs: 15_000, intervalMs: 200, what: `the ToR to learn ${OWN} from us` });

      // The lease moves. gobgpd sends each peer its UPDATEs in order: once the new subnet is there
      // and the old gone, whatever gobgpd would have passed on of the others is there too. The old
      // subnet goes although the ToR's copy of it is now gobgpd's best path.
      await d.announce([{ prefix: NEW_SUBNET, nextHop: IP.twill }]);
      await waitAt(mesh, [NEW_SUBNET], [OWN]);
      await waitAt(bird, [NEW_SUBNET], [OWN]);
      expect(await prefixesAt(mesh)).toEqual([NEW_SUBNET]);
      expect(await prefixesAt(bird)).toEqual([NEW_SUBNET]);
      expect((await inspect.prefixSet(EXPORT_NAME))?.prefixes).toEqual([{ ip_prefix: NEW_SUBNET, mask_length_min: 24, mask_length_max: 24 }]);

      // Without the policy gobgpd passes the ToR's routes on (so their absence above is its doing).
      await inspect.setPolicyAssignment({ ...exportAssignment(), policies: [], default_action: 'ACCEPT' });
      try {
        await torAnnounces(TOR_LATER);
        await waitAt(mesh, [TOR_LATER]);
      } finally {
        await inspect.setPolicyAssignment(exportAssignment());
      }

      expect(rec.warnings).toEqual([]);
    });

    it('a route reflector passes on what is inside the cluster network, nothing else; the next driver replaces the policy either way', async () => {
      await torAnnounces(OUTSIDE);
      noMeshSessionAfterwards();
      const { d, rec } = await driver({ reflector: true });
      expect(policyKey((await inspect.policy(EXPORT_NAME))!)).toBe(policyKey(exportPolicy({ reflector: true })));
      expect((await inspect.prefixSet(EXPORT_NAME))?.prefixes).toEqual([{ ip_prefix: '10.244.0.0/16', mask_length_min: 16, mask_length_max: 32 }]);
      await d.setPeers([session, meshSession]);
      await d.announce([{ prefix: OWN, nextHop: IP.twill }]);
      await waitFor(() => rec.learned(IP.peer).has(OUTSIDE), { timeoutMs: 15_000, what: `gobgpd to have ${OUTSIDE}` });
      await mesh.waitEstablished(IP.twill, 30_000);

      // The ToR's subnet reaches the mesh peer, the mesh peer's the ToR; a ToR route announced
      // last reaches the mesh peer after all gobgpd had before.
      await waitAt(mesh, [OWN, THEIRS]);
      await waitAt(bird, [OWN, MESH_SUBNET]);
      await torAnnounces(TOR_EXTRA);
      await waitAt(mesh, [TOR_EXTRA]);
      const reflected = await prefixesAt(mesh);
      expect(reflected).toEqual(expect.arrayContaining([OWN, THEIRS, TOR_EXTRA]));
      expect(reflected.filter((p) => !p.startsWith('10.244.'))).toEqual([]); // OUTSIDE above all
      expect(await prefixesAt(bird)).toEqual([OWN, MESH_SUBNET].sort());

      // The host is no reflector any more: the next driver puts the policy back.
      await d.close({ graceful: true });
      const next = await driver();
      expect(policyKey((await inspect.policy(EXPORT_NAME))!)).toBe(policyKey(exportPolicy({ reflector: false })));
      expect((await inspect.prefixSet(EXPORT_NAME))?.prefixes).toEqual([{ ip_prefix: OWN, mask_length_min: 24, mask_length_max: 24 }]);
      await next.d.setPeers([session]);
      await next.d.announce([{ prefix: OWN, nextHop: IP.twill }]);
      expect([...rec.warnings, ...next.rec.warnings]).toEqual([]);
    });
  });

  it('a non-graceful close withdraws our route and removes the session, leaving gobgpd running', async () => {
    const { d } = await driver();
    await d.setPeers([session]);
    await d.announce([{ prefix: OWN, nextHop: IP.twill }]);
    await established(d);
    await waitFor(() => birdHas(OWN), { timeoutMs: 15_000, intervalMs: 200, what: 'BIRD to have our route' });

    await d.close({ graceful: false });
    await waitFor(async () => !(await birdHas(OWN)), { timeoutMs: 10_000, intervalMs: 200, what: 'BIRD to drop our route' });
    await bird.waitNotEstablished(IP.twill, 10_000);
    expect(await inspect.listPeers()).toEqual([]);
    expect((await inspect.listPaths('GLOBAL', '', IPV4_UNICAST)).flatMap((p) => ownRouteOf(p) ?? [])).toEqual([]);
    expect(gobgpd.running).toBe(true);
    expect((await inspect.getBgp()).asn).toBe(AS_TWILL);
  });
  // Last: the gobgpd it starts belongs to this test's cleanup.
  it('re-opens the event stream when gobgpd restarts, and sets it up again', async () => {
    const { d, rec } = await driver();
    await d.setPeers([session]);
    await d.announce([{ prefix: OWN, nextHop: IP.twill }]);
    await established(d);
    const birdUp = (await bird.neighborStatus(IP.twill)).upSince;

    await gobgpd.kill();
    await waitFor(() => rec.warnings.some((w) => /event stream/.test(w.message)), { timeoutMs: 10_000, what: 'a warning: the stream broke' });
    await waitFor(() => d.peers()[0]?.state !== 'established', { timeoutMs: 15_000, what: 'the session to be seen down' });
    await startGobgpd();
    // A fresh gobgpd: the driver starts it and adds the session and the route again.
    await waitFor(async () => (await inspect.getBgp()).asn === AS_TWILL, { timeoutMs: 40_000, intervalMs: 200, what: 'StartBgp again' });
    await established(d);
    await bird.waitEstablished(IP.twill);
    expect((await bird.neighborStatus(IP.twill)).upSince).not.toBe(birdUp);
    await waitFor(async () => (await inspect.listPaths('GLOBAL', '', IPV4_UNICAST)).some((p) => ownRouteOf(p)?.prefix === OWN),
      { timeoutMs: 15_000, intervalMs: 200, what: 'our route in the new gobgpd' });
    await waitFor(() => birdHas(OWN), { timeoutMs: 15_000, intervalMs: 200, what: 'BIRD to have our route' });
    await waitFor(() => rec.learned(IP.peer).has(THEIRS), { timeoutMs: 15_000, what: `${THEIRS} again` });
    expect(rec.warnings.some((w) => /was not running BGP/.test(w.message))).toBe(true);
  });
});
