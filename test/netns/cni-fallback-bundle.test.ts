import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { bedCall as call, bedConf as conf, CNI_SHIM, createCniBed } from '../helpers/cni.js';
import { createTestNetns } from '../helpers/netns.js';
import { repoRoot } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * Issue 18, "CNI fallback": with no agent, the shim runs the bundled plugin
 * (dist/cni/twill-plugin.cjs, made by scripts/bundle-plugin.mjs), the path build-shim.mjs compiles
 * in, and that call loads only what it needs: no module of dist/src one by one, netlink's raw
 * socket without the package's codecs, koffi's and netlink's binaries without their loaders,
 * none of the agent's packages nor the logger when nothing is logged, and none of the Node
 * builtins these calls do not use (node:net, node:crypto, node:child_process: the plugin runs nft
 * only when it masquerades itself, and this host's agent does). Each node the shim starts here is
 * run through a wrapper ($TWILL_NODE) that preloads a probe: at exit it records the script node
 * ran, every CommonJS module loaded (the bundle is CommonJS, and so are the packages it loads)
 * and the builtins loaded after the probe.
 */

const LOADER = join(repoRoot(), 'dist/cni/twill-plugin.cjs');
const CODE_CACHE = join(repoRoot(), 'dist/cni/twill-plugin.bundle.v8cache');

interface Probe {
  readonly command: string;
  readonly script: string;
  readonly modules: string[];
  readonly builtins: string[];
}

/** $TWILL_NODE for the shim: node with the probe preloaded, writing one JSON line per process to `log`. */
function probedNode(log: string): string {
  const dir = tempDir('cni-probe');
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, `const before = new Set(process.moduleLoadList);
process.on('exit', () => require('node:fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify({
  command: process.env.CNI_COMMAND, script: process.argv[1], modules: Object.keys(require.cache),
  builtins: process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13)) }) + '\\n'));\n`);
  const wrapper = join(dir, 'node');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} -r ${JSON.stringify(probe)} "$@"\n`);
  chmodSync(wrapper, 0o755);
  return wrapper;
}

describe.skipIf(!isRoot || !existsSync(CNI_SHIM))('the shim\'s fallback runs the bundled plugin', () => {
  useCleanup();

  it('ADD, CHECK and DEL with no agent run dist/cni/twill-plugin.cjs, which loads only what they need', async () => {
    const bed = await createCniBed('in-process', '10.244.13.1');
    const pod = await createTestNetns('pod');
    const log = join(tempDir('cni-probe-log'), 'probe.jsonl');
    const env = { TWILL_NODE: probedNode(log) };
    const opts = { containerId: 'bundled', netns: pod.netnsPath, env };
    const add = await call(bed, { ...opts, command: 'ADD', conf: conf(bed) });
    expect(add.code, add.stdout + add.stderr).toBe(0);
    // As a runtime does: CHECK and DEL carry the ADD's result.
    for (const command of ['CHECK', 'DEL']) {
      const r = await call(bed, { ...opts, command, conf: conf(bed, { prevResult: add.json }) });
      expect(r.code, `${command}: ${r.stdout}${r.stderr}`).toBe(0);
    }

    const probes = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Probe);
    expect(probes.map((p) => p.command)).toEqual(['ADD', 'CHECK', 'DEL']);
    for (const p of probes) {
      expect(p.script, p.command).toBe(LOADER);
      const loaded = p.modules.join('\n');
      // The binaries their loaders chose at build time, and neither loader (scripts/prebuilt-natives.mjs).
      expect(loaded, p.command).toMatch(/node_modules\/@koromix\/koffi-[^/]+\/[^/]+\/koffi\.node$/m);
      expect(loaded, p.command).toMatch(/node_modules\/netlink\/prebuilds\/[^/]+\/[^/]+\.node$/m);
      expect(loaded, p.command).not.toMatch(/node_modules\/(koffi|node-gyp-build)\//);
      // raw.js is in the bundle; the package's index (its codecs) is never loaded.
      expect(loaded, p.command).not.toMatch(/node_modules\/netlink\/dist\//);
      expect(p.builtins, p.command).toContain('vm'); // the loader's: the probe sees what loads after it
      expect(p.builtins, p.command).not.toEqual(expect.arrayContaining([expect.stringMatching(/^(net|crypto|child_process|dgram|stream)$/)]));
      // Of Twill's unbundled modules only the code cache helper it shares with twilld's entry point.
      expect(p.modules.filter((m) => m.includes('/dist/src/')), p.command).toEqual([expect.stringMatching(/\/dist\/src\/core\/code-cache-file\.cjs$/)]);
      expect(loaded, p.command).not.toMatch(/node_modules\/(pino|etcd3|@grpc|prom-client)\//);
    }
    // The calls keep V8's code cache of the bundle beside it (src/cni/shim/twill-plugin.cjs).
    expect(existsSync(CODE_CACHE)).toBe(true);
  });
});
