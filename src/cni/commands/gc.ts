import { readdirSync } from 'node:fs';
import type { CniRequest, PluginContext } from '../context.js';
import { CniCode, CniError } from '../spec/errors.js';
import { requireVersionFor } from '../spec/versions.js';

/**
 * GC (SPEC.md 1.1 "GC"): releases every address whose (container, ifname) is not in
 * `cni.dev/valid-attachments`, then drops masquerade elements no allocation holds any more.
 * Continues past a bad entry and reports the failures together at the end.
 */
export async function gc(ctx: PluginContext, req: CniRequest): Promise<void> {
  const { conf } = req;
  requireVersionFor('GC', conf.cniVersion, '1.1.0');
  if (!conf.validAttachments) throw new CniError(CniCode.INVALID_CONFIG, 'GC needs "cni.dev/valid-attachments"');
  const ipam = ctx.ipam(conf, undefined);
  const { errors } = ipam.gc(conf.validAttachments);
  // The masquerade set serves every network on this host: keep the addresses any of them holds.
  const held = new Set<string>();
  for (const network of networksIn(conf.dataDir)) {
    const others = network === conf.name ? ipam : ctx.ipam({ ...conf, name: network }, undefined);
    for (const a of others.list()) for (const c of a.ips) held.add(c.split('/')[0]!);
  }
  const masqueraded = await ctx.masquerade.list();
  const stale = masqueraded.filter((ip) => !held.has(ip));
  await ctx.masquerade.remove(stale);
  if (errors.length > 0) {
    throw new CniError(CniCode.IO_FAILURE, `GC released what it could; ${errors.length} entries failed: ${errors.map((e) => e.message).join('; ')}`);
  }
}

/** The network directories under a dataDir (one per CNI network name). */
function networksIn(dataDir: string): string[] {
  try {
    return readdirSync(dataDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}
