import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { podMasqueradeOwner } from '../../src/nftables/index.js';
import { tempDir } from '../helpers/cleanup.js';
import { CNI_MODES, CNI_SHIM, cniCall, startCniServer, type CniCallOptions, type CniCallResult } from '../helpers/cni.js';
import { commandAvailable } from '../helpers/exec.js';
import { connectNetns, createTestNetns, type TestNetns } from '../helpers/netns.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * The plugin's ipMasq for IPv6 (table ip6 twill-cni) against the real kernel, in test namespaces
 * only: a "host" namespace where the plugin runs, pods of a dual-stack lease, and an "outside"
 * namespace beyond the host's uplink. The outside knows only its own link (no route to the pod
 * network, no default route), so a pod reaches it only with the host's uplink address as source:
 *
 *   pod eth0 fd00:10:244:7::x ── cni0 fd00:10:244:7::1 host up0 fd00:198:19::1/64 ── eth0 fd00:198:19::2 outside
 */

const NAME = 'twill-masq6';
const GW4 = '10.244.7.1';
const GW6 = 'fd00:10:244:7::1';
const CLUSTER_V6 = 'fd00:10:244::/56';
const HOST_UPLINK = 'fd00:198:19::1';
const OUTSIDE = 'fd00:198:19::2';

interface Bed {
  readonly host: TestNetns;
  readonly socket: string | undefined;
  readonly subnetFile: string;
  readonly dataDir: string;
}

/** subnet.env of a dual-stack lease, FLANNEL_IPMASQ=false: the plugin's ipMasq is on by default. */
function writeSubnetEnv(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'subnet.env');
  writeFileSync(file, [
    'FLANNEL_NETWORK=10.244.0.0/16', `FLANNEL_SUBNET=${GW4}/24`,
    `FLANNEL_IPV6_NETWORK=${CLUSTER_V6}`, `FLANNEL_IPV6_SUBNET=${GW6}/64`, 'FLANNEL_MTU=1450', 'FLANNEL_IPMASQ=false', '',
  ].join('\n'));
  return file;
}

const confOf = (bed: Bed, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ cniVersion: '1.1.0', name: NAME, type: 'twill', subnetFile: bed.subnetFile, dataDir: bed.dataDir, ...extra });
const call = (bed: Bed, opts: Omit<CniCallOptions, 'socket'>): Promise<CniCallResult> => cniCall(bed.host, { ...opts, socket: bed.socket });
const podIps = (r: CniCallResult): string[] => (r.json!.ips as { address: string }[]).map((ip) => ip.address.split('/')[0]!);

/** The elements of `family twill-cni`'s masq-pods set, from `nft -j list table`, with their comments; [] without the table. */
async function masqElements(ns: TestNetns, family: 'ip' | 'ip6'): Promise<{ address: string; owner: string | undefined }[]> {
  const r = await ns.run('nft', ['-j', 'list', 'table', family, 'twill-cni'], { allowFailure: true });
  if (r.code !== 0) return [];
  const doc = JSON.parse(r.stdout) as { nftables: { set?: { name: string; elem?: unknown[] } }[] };
  const elems = doc.nftables.find((o) => o.set?.name === 'masq-pods')?.set?.elem ?? [];
  return elems.map((e) => {
    if (typeof e === 'string') return { address: e, owner: undefined };
    const inner = (e as { elem: { val: string; comment?: string } }).elem;
    return { address: inner.val, owner: inner.comment };
  });
}
const addresses = async (ns: TestNetns, family: 'ip' | 'ip6'): Promise<string[]> => (await masqElements(ns, family)).map((e) => e.address).sort();

for (const mode of CNI_MODES) {
  describe.skipIf(!isRoot || !existsSync(CNI_SHIM) || !commandAvailable('nft'))(`twill CNI plugin ipMasq for IPv6, table ip6 twill-cni (${mode})`, () => {
    useCleanup();
    let bed: Bed;
    let outside: TestNetns;

    beforeAll(async () => {
      const [host, out] = await Promise.all([createTestNetns('cnimasq6'), createTestNetns('out6')]);
      outside = out;
      for (const ns of [host, outside]) {
        // Addresses usable at once (no DAD), before any link exists so every interface inherits it.
        ns.writeSysctl('net/ipv6/conf/all/accept_dad', 0);
        ns.writeSysctl('net/ipv6/conf/default/accept_dad', 0);
      }
      // The plugin leaves IPv6 forwarding to the host (add.ts); this host routes.
      host.writeSysctl('net/ipv6/conf/all/forwarding', 1);
      await connectNetns(host, outside, { a: { ifname: 'up0', cidr: `${HOST_UPLINK}/64` }, b: { ifname: 'eth0', cidr: `${OUTSIDE}/64` } });
      const dir = tempDir('cnimasq6');
      const dataDir = join(dir, 'ipam');
      const socket = mode === 'agent' ? (await startCniServer(host, { dataDir, socket: join(dir, 'cni.sock') })).socket : undefined;
      bed = { host, socket, subnetFile: writeSubnetEnv(dir), dataDir };
    });

    it('a dual-stack pod is in both tables; its ping -6 to the outside works only masqueraded; DEL removes both elements', async () => {
      const [pod, plain] = await Promise.all([createTestNetns('pmasq6'), createTestNetns('pplain6')]);
      const add = await call(bed, { command: 'ADD', containerId: 'masq6', netns: pod.netnsPath, conf: confOf(bed) });
      expect(add.code, add.stdout + add.stderr).toBe(0);
      const [v4, v6] = podIps(add) as [string, string];
      expect(v6).toMatch(/^fd00:10:244:7::[0-9a-f]+$/);
      const owner = podMasqueradeOwner(bed.dataDir, NAME);
      expect(await masqElements(bed.host, 'ip6')).toEqual([{ address: v6, owner }]);
      expect(await masqElements(bed.host, 'ip')).toEqual([{ address: v4, owner }]);
      const table = (await bed.host.run('nft', ['list', 'table', 'ip6', 'twill-cni'])).stdout;
      expect(table).toMatch(/set cluster-networks \{[^}]*elements = \{ fd00:10:244::\/56 \}/s);
      expect(table).toMatch(/set pod-subnets \{[^}]*elements = \{ fd00:10:244:7::\/64 \}/s);
      expect(table).toMatch(/ip6 saddr @masq-pods ip6 daddr != @pod-subnets ip6 daddr != @cluster-networks ip6 daddr != ff00::\/8 masquerade/);
      // A repeated ADD (the same attachment) leaves one rule and one element.
      expect((await call(bed, { command: 'ADD', containerId: 'masq6', netns: pod.netnsPath, conf: confOf(bed) })).code).toBe(0);
      expect((await bed.host.run('nft', ['list', 'table', 'ip6', 'twill-cni'])).stdout.match(/masquerade/g)).toHaveLength(1);
      expect(await addresses(bed.host, 'ip6')).toEqual([v6]);

      // The outside has no route back to fd00:10:244::/56: only the host's uplink address gets replies.
      expect(await pod.ping(OUTSIDE, { timeoutSec: 2 })).toBe(true);
      // The control: a pod of the same lease without ipMasq is not masqueraded, and not answered.
      const noMasq = await call(bed, { command: 'ADD', containerId: 'plain6', netns: plain.netnsPath, conf: confOf(bed, { ipMasq: false }) });
      expect(noMasq.code, noMasq.stdout + noMasq.stderr).toBe(0);
      const plain6 = podIps(noMasq)[1]!;
      expect(await addresses(bed.host, 'ip6')).toEqual([v6]);
      expect(await plain.ping(GW6, { timeoutSec: 2 })).toBe(true);
      expect(await plain.ping(OUTSIDE, { timeoutSec: 1 })).toBe(false);
      // Pod to pod keeps its source: within the cluster network nothing is masqueraded.
      expect(await pod.ping(plain6, { timeoutSec: 2 })).toBe(true);

      const check = await call(bed, { command: 'CHECK', containerId: 'masq6', netns: pod.netnsPath, conf: confOf(bed, { prevResult: add.json }) });
      expect(check.code, check.stdout).toBe(0);
      const path = pod.netnsPath;
      await pod.destroy();
      // DEL without the namespace still removes both families' elements (IPAM knows the addresses).
      expect((await call(bed, { command: 'DEL', containerId: 'masq6', netns: path, conf: confOf(bed) })).code).toBe(0);
      expect(await addresses(bed.host, 'ip6')).toEqual([]);
      expect(await addresses(bed.host, 'ip')).toEqual([]);
      expect((await call(bed, { command: 'DEL', containerId: 'masq6', conf: confOf(bed) })).code).toBe(0);
      expect((await call(bed, { command: 'DEL', containerId: 'plain6', netns: plain.netnsPath, conf: confOf(bed, { ipMasq: false }) })).code).toBe(0);
    });

    it('GC removes this store\'s stray IPv6 element, keeps the live pod\'s and other owners\' ones', async () => {
      const pod = await createTestNetns('pgc6');
      const add = await call(bed, { command: 'ADD', containerId: 'gc6', netns: pod.netnsPath, conf: confOf(bed) });
      expect(add.code, add.stdout + add.stderr).toBe(0);
      const [v4, v6] = podIps(add) as [string, string];
      const owner = podMasqueradeOwner(bed.dataDir, NAME);
      const other = podMasqueradeOwner('/elsewhere/ipam', NAME);
      // Strays: an element of this store whose address no allocation holds (a DEL that never
      // came), and one of another store (not this GC's to collect).
      await bed.host.exec('nft', ['add', 'element', 'ip6', 'twill-cni', 'masq-pods', `{ fd00:10:244:7::99 comment "${owner}", fd00:10:244:7::98 comment "${other}" }`]);
      await bed.host.exec('nft', ['add', 'element', 'ip', 'twill-cni', 'masq-pods', `{ 10.244.7.99 comment "${owner}" }`]);
      expect(await addresses(bed.host, 'ip6')).toEqual([v6, 'fd00:10:244:7::98', 'fd00:10:244:7::99'].sort());

      const gc = await call(bed, { command: 'GC', conf: confOf(bed, { 'cni.dev/valid-attachments': [{ containerID: 'gc6', ifname: 'eth0' }] }) });
      expect(gc.code, gc.stdout + gc.stderr).toBe(0);
      expect(await addresses(bed.host, 'ip6')).toEqual([v6, 'fd00:10:244:7::98'].sort());
      expect(await addresses(bed.host, 'ip')).toEqual([v4]);
      expect(await pod.ping(OUTSIDE, { timeoutSec: 2 })).toBe(true);

      expect((await call(bed, { command: 'DEL', containerId: 'gc6', netns: pod.netnsPath, conf: confOf(bed) })).code).toBe(0);
      expect(await addresses(bed.host, 'ip6')).toEqual(['fd00:10:244:7::98']);
      expect(await addresses(bed.host, 'ip')).toEqual([]);
    });
  });
}
