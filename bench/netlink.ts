import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Netlink, RTPROT_TWILL, createNetns, deleteNetns, type NetlinkBatch } from '../src/netlink/index.js';
import { median, numberOption, peakRssMiB, remoteHosts, report, round, type RemoteHost } from './report.js';

const exec = promisify(execFile);

/**
 * `npm run bench -- netlink [--entries N] [--rounds R]`
 *
 * In a throwaway namespace with a VXLAN device, program N routes + N neighbours + N FDB entries
 * (what the vxlan backend writes for N remote hosts), then remove them; do the same with
 * `ip -batch` and `bridge -batch` in a second namespace. Rounds alternate between the two and the
 * medians are compared. The reference pays its process start-up, as a user of iproute2 would.
 *
 * Both sides write in phases: every neighbour, then every FDB entry, then every route (removal in
 * reverse). That keeps flannel's per-host order (neighbour and FDB before the route) and is what
 * the kernel handles fastest: interleaving the three kinds per host costs both sides 20-100% more.
 */
type Entry = RemoteHost;

async function setUpHost(nl: Netlink): Promise<number> {
  await nl.setUp('lo');
  await nl.createVeth({ name: 'eth0', peerName: 'eth0p' });
  await nl.setUp('eth0');
  await nl.setUp('eth0p');
  await nl.addAddress('eth0', '198.18.0.1/24');
  await nl.createVxlan({ name: 'twill.1', vni: 1, port: 8472, localIp: '198.18.0.1', mtu: 1450 });
  await nl.setUp('twill.1');
  return (await nl.requireLink('twill.1')).index;
}

async function twillRound(nl: Netlink, vx: number, list: Entry[]): Promise<{ add: number; del: number }> {
  // One batch, as the backends write (NetlinkBatch): sent in call order, so the phases reach the
  // kernel in order without waiting for each other.
  const commit = async (fill: (b: NetlinkBatch<string>) => void): Promise<void> => {
    const batch = nl.batch<string>();
    fill(batch);
    const failures = await batch.commit();
    if (failures.length > 0) throw failures[0]!.error;
  };
  let t = performance.now();
  await commit((b) => {
    for (const e of list) b.replaceNeighbour({ index: vx, ip: e.gw, mac: e.mac }, e.subnet);
    for (const e of list) b.appendFdb({ index: vx, mac: e.mac, dst: e.ip }, e.subnet);
    for (const e of list) b.replaceRoute({ dst: e.subnet, gateway: e.gw, oif: vx, onlink: true }, e.subnet);
  });
  const add = performance.now() - t;
  await verify(nl, vx, list.length);
  t = performance.now();
  await commit((b) => {
    for (const e of list) b.deleteRoute({ dst: e.subnet, gateway: e.gw, oif: vx }, e.subnet);
    for (const e of list) b.deleteFdb({ index: vx, mac: e.mac, dst: e.ip }, e.subnet);
    for (const e of list) b.deleteNeighbour({ index: vx, ip: e.gw }, e.subnet);
  });
  const del = performance.now() - t;
  await verify(nl, vx, 0);
  return { add, del };
}

async function iproute2Round(ns: string, nl: Netlink, vx: number, list: Entry[], dir: string): Promise<{ add: number; del: number }> {
  const ipAdd = join(dir, 'ip-add');
  const brAdd = join(dir, 'bridge-add');
  const ipDel = join(dir, 'ip-del');
  const brDel = join(dir, 'bridge-del');
  const lines = (f: (e: Entry) => string): string => list.map((e) => `${f(e)}\n`).join('');
  const neighAdd = join(dir, 'neigh-add');
  const routeDel = join(dir, 'route-del');
  writeFileSync(neighAdd, lines((e) => `neigh replace ${e.gw} lladdr ${e.mac} dev twill.1 nud permanent`));
  writeFileSync(brAdd, lines((e) => `fdb append ${e.mac} dev twill.1 dst ${e.ip}`));
  writeFileSync(ipAdd, lines((e) => `route replace ${e.subnet} via ${e.gw} dev twill.1 onlink proto ${RTPROT_TWILL}`));
  writeFileSync(routeDel, lines((e) => `route del ${e.subnet} via ${e.gw} dev twill.1 proto ${RTPROT_TWILL}`));
  writeFileSync(brDel, lines((e) => `fdb del ${e.mac} dev twill.1 dst ${e.ip}`));
  writeFileSync(ipDel, lines((e) => `neigh del ${e.gw} dev twill.1`));
  let t = performance.now();
  await exec('ip', ['-n', ns, '-batch', neighAdd]);
  await exec('bridge', ['-n', ns, '-batch', brAdd]);
  await exec('ip', ['-n', ns, '-batch', ipAdd]);
  const add = performance.now() - t;
  await verify(nl, vx, list.length);
  t = performance.now();
  await exec('ip', ['-n', ns, '-batch', routeDel]);
  await exec('bridge', ['-n', ns, '-batch', brDel]);
  await exec('ip', ['-n', ns, '-batch', ipDel]);
  const del = performance.now() - t;
  await verify(nl, vx, 0);
  return { add, del };
}

/** Both sides must really have done the work: count what the kernel holds. */
async function verify(nl: Netlink, vx: number, n: number): Promise<void> {
  const [routes, neigh, fdb] = await Promise.all([
    nl.listRoutes({ protocol: RTPROT_TWILL, family: 4 }),
    nl.listNeighbours(vx),
    nl.listFdb(vx),
  ]);
  const permanent = neigh.filter((x) => x.permanent).length;
  const remote = fdb.filter((x) => x.dst !== undefined).length;
  if (routes.length !== n || permanent !== n || remote !== n) {
    throw new Error(`kernel holds ${routes.length} routes, ${permanent} neighbours, ${remote} FDB entries; expected ${n} each`);
  }
}


export async function run(args: string[]): Promise<void> {
  const n = numberOption(args, '--entries', 5000);
  const rounds = numberOption(args, '--rounds', 5);
  const list = remoteHosts(n);
  const tag = `${process.pid}`;
  const twillNs = `twb-twill-${tag}`;
  const refNs = `twb-iproute2-${tag}`;
  const dir = mkdtempSync(join(tmpdir(), 'twill-bench-'));
  const handles: Netlink[] = [];
  try {
    const twill = Netlink.open(createNetns(twillNs));
    const ref = Netlink.open(createNetns(refNs));
    handles.push(twill, ref);
    const [twillVx, refVx] = [await setUpHost(twill), await setUpHost(ref)];
    await twillRound(twill, twillVx, list.slice(0, 200)); // warm-up: JIT, socket buffers
    const t: { add: number; del: number }[] = [];
    const r: { add: number; del: number }[] = [];
    for (let i = 0; i < rounds; i++) {
      t.push(await twillRound(twill, twillVx, list));
      r.push(await iproute2Round(refNs, ref, refVx, list, dir));
      process.stderr.write(`round ${i + 1}/${rounds}: twill ${Math.round(t[i]!.add)}+${Math.round(t[i]!.del)} ms, iproute2 ${Math.round(r[i]!.add)}+${Math.round(r[i]!.del)} ms\n`);
    }
    const twillTotal = median(t.map((x) => x.add + x.del));
    const refTotal = median(r.map((x) => x.add + x.del));
    const entriesTotal = 3 * n;
    report({ bench: 'netlink', metric: 'twill_add_ms', value: round(median(t.map((x) => x.add)), 1), unit: 'ms' });
    report({ bench: 'netlink', metric: 'twill_delete_ms', value: round(median(t.map((x) => x.del)), 1), unit: 'ms' });
    report({ bench: 'netlink', metric: 'iproute2_add_ms', value: round(median(r.map((x) => x.add)), 1), unit: 'ms' });
    report({ bench: 'netlink', metric: 'iproute2_delete_ms', value: round(median(r.map((x) => x.del)), 1), unit: 'ms' });
    report({ bench: 'netlink', metric: 'twill_entries_per_s', value: Math.round((2 * entriesTotal) / (twillTotal / 1000)), unit: 'ops/s' });
    report({ bench: 'netlink', metric: 'ratio_vs_iproute2', value: round(twillTotal / refTotal), unit: 'x', target: '<=1.0' });
    report({ bench: 'netlink', metric: 'peak_rss', value: round(peakRssMiB(), 1), unit: 'MiB' });
  } finally {
    for (const h of handles) h.close();
    deleteNetns(twillNs);
    deleteNetns(refNs);
    rmSync(dir, { recursive: true, force: true });
  }
}
