// Native binaries the bundles (scripts/bundle-agent.mjs, scripts/bundle-plugin.mjs) load by the
// path their packages' own loaders chose at build time, instead of running those loaders at each
// start. koffi's loader reads node's ELF header to tell glibc from musl, and resolves two packages
// through their package.json exports: about 7 ms of every start (measured, dist/cni's fallback
// call, 2026-12-07), where loading the binary itself takes 3. netlink's raw socket finds its
// binary through node-gyp-build, which lists and parses its prebuilds/ folder: 2 to 3 ms more.
// Every CNI call without the agent is a new process, so both are paid twice per pod.
//
// The path is a package path (`@koromix/koffi-linux-x64/linux_x64/koffi.node`), resolved from
// the bundle's node_modules the way the package loaders resolve theirs; a binary that does not
// load there (another platform, another libc, a release unpacked without it) falls back to the
// package's own loader, so the bundle still runs wherever the unbundled code would.
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

/** The part of `file` after its last node_modules/, as a package path; undefined outside one. */
function packagePath(file) {
  const parts = path.resolve(file).split(path.sep);
  const at = parts.lastIndexOf('node_modules');
  return at < 0 ? undefined : parts.slice(at + 1).join('/');
}

/** `file` as a package path that resolves to that same file from `bundle`; calls fail otherwise. */
function resolvablePackagePath(file, bundle, what, fail) {
  const spec = packagePath(file);
  let resolved;
  try {
    if (spec !== undefined) resolved = createRequire(path.resolve(bundle)).resolve(spec);
  } catch {
    resolved = undefined;
  }
  if (resolved !== path.resolve(file)) fail(`${what}'s binary ${file} does not resolve from ${bundle} as ${spec ?? '(not in node_modules)'}`);
  return spec;
}

/** The binary koffi's own loader loads on this machine, found by loading it. */
function koffiBinary(fail) {
  const koffi = require('koffi');
  const file = Object.keys(require.cache).find((f) => f.endsWith('.node') && require.cache[f]?.exports === koffi.default);
  if (file === undefined) fail('koffi loaded no .node binary this script can find: its loader changed; update prebuilt-natives.mjs');
  return { file, version: koffi.version };
}

/**
 * The source of a module that stands for `koffi` in a bundle: the binary koffi loads here, when it
 * loads and is koffi's version (the package pins its binaries' version exactly), else koffi's own
 * loader. koffi's exports are the binary's own functions (its loader wraps only deprecated ones).
 */
export function koffiModule(bundle, fail) {
  const { file, version } = koffiBinary(fail);
  const spec = resolvablePackagePath(file, bundle, 'koffi', fail);
  return `
let native;
try {
  native = require(${JSON.stringify(spec)});
} catch {
  // another platform or libc than the build's: koffi's loader picks the binary
}
module.exports = native !== undefined && native.version === ${JSON.stringify(version)} ? native : require('koffi');
`;
}

const NETLINK_BINDING = "const binding = require('node-gyp-build')(__dirname + '/..');";

/**
 * netlink's dist/raw.js with its binding loaded from the prebuild node-gyp-build picks here, else
 * through node-gyp-build from the netlink package's folder (found without raw.js's __dirname,
 * which a bundle may have changed). Calls fail when raw.js no longer loads its binding this way.
 */
export function withPrebuiltNetlinkBinding(source, file, bundle, fail) {
  if (!source.includes(NETLINK_BINDING)) fail(`${file} no longer loads its binding as prebuilt-natives.mjs expects: update NETLINK_BINDING`);
  const packageDir = path.dirname(path.dirname(file));
  const binary = require('node-gyp-build').resolve(packageDir);
  const spec = resolvablePackagePath(binary, bundle, 'netlink', fail);
  const load = `const binding = (() => {
  try {
    return require(${JSON.stringify(spec)});
  } catch {
    return require('node-gyp-build')(require('node:path').dirname(require.resolve('netlink/package.json')));
  }
})();`;
  return source.replace(NETLINK_BINDING, load);
}

/**
 * esbuild plugin for a bundle written to `bundle`: `koffi` becomes koffiModule's module, and what
 * the modules here resolve at run time (the binaries, netlink's package.json) stays external.
 * netlink's raw.js is each script's own to load (withPrebuiltNetlinkBinding), as each bundles it
 * with its own other changes.
 */
export function prebuiltNatives(bundle, fail) {
  return {
    name: 'prebuilt-natives',
    setup(b) {
      b.onResolve({ filter: /^koffi$/ }, (args) => (args.namespace === 'prebuilt-koffi' ? { path: 'koffi', external: true } : { path: 'koffi', namespace: 'prebuilt-koffi' }));
      b.onLoad({ filter: /.*/, namespace: 'prebuilt-koffi' }, () => ({ contents: koffiModule(bundle, fail), loader: 'js' }));
      b.onResolve({ filter: /\.node$|^netlink\/package\.json$/ }, (args) => ({ path: args.path, external: true }));
    },
  };
}
