import { DEVICE_NAME as IPIP_DEVICE } from '../../backends/ipip/config.js';
import { vniOfDeviceName } from '../../backends/vxlan/config.js';
import { removeAdoptedVteps } from '../../backends/vxlan/vtep-state.js';
import { isNetlinkError, listNexthopsIfSupported, RTPROT_TWILL, type Netlink } from '../../netlink/index.js';
import { hasTable, POD_MASQ_TABLE, TABLE_FAMILY, TABLE_FAMILY_V6, TABLE_NAME, type NftRunner } from '../../nftables/index.js';

/**
 * What `twillctl uninstall` removes from the network namespace it runs in: exactly what Twill
 * owns and nothing else (docs/design/nexthops-and-protocol-84.md), so that flanneld can start again:
 *   - routes of protocol 84 (RTPROT_TWILL) in the main table, the only table Twill writes;
 *   - nexthop objects of protocol 84;
 *   - the VXLAN devices twill.<VNI> (with them go their addresses, neighbours and FDB entries,
 *     and the kernel's one-device-per-VNI-and-port slot that flannel.<VNI> needs), and the IPIP
 *     device twill.ipip (never tunl0 or flannel.ipip);
 *   - the nftables tables `ip twill` and `ip6 twill` (twilld --ip-masq), and `ip twill-cni` and
 *     `ip6 twill-cni` (the CNI plugin's ipMasq);
 *   - the record of a VTEP MAC adopted from flanneld (backends/vxlan/vtep-state.ts).
 * Routes go first, so that each one is reported (deleting a device or a nexthop would take its
 * routes silently). Everything already gone counts as done, so running it twice is harmless.
 */
export interface Removal {
  /** One line per object removed, e.g. "route 10.244.2.0/24 (protocol 84)". */
  readonly removed: string[];
  /** One line per object that could not be removed, with the kernel's or nft's reason. */
  readonly failed: string[];
}

export interface RemoveDeps {
  readonly nl: Netlink;
  readonly nft: NftRunner;
  /** Where twilld keeps its state: the directory of its subnet file. */
  readonly stateDir: string;
}

const gone = (err: unknown): boolean => isNetlinkError(err, 'ENOENT') || isNetlinkError(err, 'ESRCH') || isNetlinkError(err, 'ENODEV');

export async function removeTwillState(deps: RemoveDeps): Promise<Removal> {
  const out: Removal = { removed: [], failed: [] };
  await removeRoutes(deps.nl, out);
  await removeNexthops(deps.nl, out);
  await removeDevices(deps.nl, out);
  await removeTables(deps.nft, out);
  for (const file of removeAdoptedVteps(deps.stateDir)) out.removed.push(`file ${file} (VTEP MAC adopted from flanneld)`);
  return out;
}

/** Runs one deletion and files it under removed or failed ("already gone" counts as neither). */
async function attempt(out: Removal, what: string, op: () => Promise<void>): Promise<void> {
  try {
    await op();
    out.removed.push(what);
  } catch (err) {
    if (!gone(err)) out.failed.push(`${what}: ${(err as Error).message}`);
  }
}

async function removeRoutes(nl: Netlink, out: Removal): Promise<void> {
  for (const r of await nl.listRoutes({ protocol: RTPROT_TWILL })) {
    // Destination, table and metric name the route; the request keeps protocol 84 (the default),
    // so the kernel deletes only Twill's route to that destination, whatever its nexthop.
    await attempt(out, `route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ''} (protocol ${RTPROT_TWILL})`,
      () => nl.deleteRoute({ dst: r.dst, table: r.table, ...(r.metric !== undefined && { metric: r.metric }) }));
  }
}

async function removeNexthops(nl: Netlink, out: Removal): Promise<void> {
  const nexthops = await listNexthopsIfSupported(nl);
  if (nexthops === undefined) return;
  // Groups first: a group names its members.
  const mine = nexthops.filter((n) => n.protocol === RTPROT_TWILL).sort((a, b) => Number(b.group) - Number(a.group));
  for (const n of mine) {
    await attempt(out, `nexthop ${n.id}${n.gateway ? ` via ${n.gateway}` : ''} (protocol ${RTPROT_TWILL})`, () => nl.deleteNexthop(n.id));
  }
}

async function removeDevices(nl: Netlink, out: Removal): Promise<void> {
  for (const link of await nl.listLinks()) {
    if (link.kind === 'ipip' && link.name === IPIP_DEVICE) {
      await attempt(out, `device ${link.name} (ipip, local ${link.ipip?.localIp ?? 'any'})`, () => nl.deleteLink(link.index));
    } else if (link.kind === 'vxlan' && vniOfDeviceName(link.name) !== undefined) {
      await attempt(out, `device ${link.name} (vxlan, VNI ${link.vxlan?.vni ?? '?'}, port ${link.vxlan?.port ?? '?'})`, () => nl.deleteLink(link.index));
    }
  }
}

async function removeTables(nft: NftRunner, out: Removal): Promise<void> {
  // Twill's tables of both families: twilld's IPv6 masquerading is `ip6 twill`.
  const tables = [TABLE_NAME, POD_MASQ_TABLE].flatMap((name) => [TABLE_FAMILY, TABLE_FAMILY_V6].map((family) => `${family} ${name}`));
  let listed;
  try {
    listed = await nft(['-j', 'list', 'tables']);
  } catch (err) {
    // Without nft on the host Twill could not have made a table (it writes them with nft).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    out.failed.push(`nftables tables ${tables.join(', ')}: cannot run nft: ${(err as Error).message}`);
    return;
  }
  if (listed.code !== 0) {
    out.failed.push(`nftables tables: nft -j list tables exited with code ${listed.code}: ${listed.stderr.trim()}`);
    return;
  }
  let present: string[];
  try {
    present = tables.filter((t) => {
      const [family, name] = t.split(' ') as [string, string];
      return hasTable(listed.stdout, family, name);
    });
  } catch (err) {
    out.failed.push(`nftables tables: unexpected output of nft -j list tables: ${(err as Error).message}`);
    return;
  }
  if (present.length === 0) return;
  // One transaction: every table goes, or none.
  const result = await nft(['-f', '-'], present.map((t) => `delete table ${t}\n`).join(''));
  const what = present.map((t) => `nftables table ${t}`);
  if (result.code === 0) out.removed.push(...what);
  else out.failed.push(`${what.join(', ')}: nft exited with code ${result.code}: ${result.stderr.trim()}`);
}
