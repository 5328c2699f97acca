import { podMasqueradeOwner } from '../../nftables/index.js';
import type { CniRequest, PluginContext } from '../context.js';
import { CniCode, CniError } from '../spec/errors.js';
import { requireVersionFor } from '../spec/versions.js';

/**
 * GC (SPEC.md 1.1 "GC"): releases every address of this network's store (dataDir + name) whose
 * (container, ifname) is not in `cni.dev/valid-attachments`, then drops the masquerade elements of
 * this store that no allocation holds any more. Elements of other stores (another network, another
 * dataDir) are theirs to collect: a GC tells its own apart by their owner tag (podMasqueradeOwner). Stray
 * entries of the data directory are skipped with a warning; other failures are reported together
 * at the end, after everything else was done.
 */
export async function gc(ctx: PluginContext, req: CniRequest): Promise<void> {
  const { conf } = req;
  requireVersionFor('GC', conf.cniVersion, '1.1.0');
  if (!conf.validAttachments) throw new CniError(CniCode.INVALID_CONFIG, 'GC needs "cni.dev/valid-attachments"');
  const ipam = ctx.ipam(conf, undefined, (err) => req.warn(err.message));
  const { errors } = ipam.gc(conf.validAttachments);
  const held = new Set<string>();
  for (const a of ipam.list()) for (const c of a.ips) held.add(c.split('/')[0]!);
  const owner = podMasqueradeOwner(conf.dataDir, conf.name);
  const stale = (await ctx.masquerade.list()).filter((m) => m.owner === owner && !held.has(m.address));
  await ctx.masquerade.remove(stale.map((m) => m.address));
  if (errors.length > 0) {
    throw new CniError(CniCode.IO_FAILURE, `GC released what it could; ${errors.length} entries failed: ${errors.map((e) => e.message).join('; ')}`);
  }
}
