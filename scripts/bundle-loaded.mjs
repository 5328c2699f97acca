// The last step of scripts/bundle-agent.mjs and scripts/bundle-plugin.mjs, for a bundle that a
// loader compiles with V8's code cache (src/agent/twilld-entry.mjs, src/cni/shim/twill-plugin.cjs).
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/** The placeholder each loader's source holds for the bundle's id. */
const ID_PLACEHOLDER = "'__TWILL_BUNDLE_ID__'";

/**
 * Wraps `output` (esbuild's CommonJS bundle of an entry with a hashbang line) as one function of
 * CommonJS's module arguments, which the loader compiles as read: wrapping at each start would copy
 * the text twice. The hashbang line becomes a comment (a syntax error inside the wrapper), so line
 * numbers, and the source map, stay. Then writes `loader` from `loaderSource` with the bundle's id
 * filled in (V8 checks a cache against the source's length only) and removes the last bundle's
 * code cache. Calls `fail` (which exits) on a bundle or loader source it cannot use; returns the
 * id and the bundle's size.
 */
export function finishLoadedBundle({ output, loaderSource, loader, codeCache, fail }) {
  const text = readFileSync(output, 'utf8');
  if (!text.startsWith('#!')) fail(`${output} does not start with the entry's hashbang line`);
  writeFileSync(output, `(function (exports, require, module, __filename, __dirname) {//${text.slice(2)}\n})`);
  const bundle = readFileSync(output);
  const id = createHash('sha256').update(bundle).digest('hex').slice(0, 16);
  const source = readFileSync(loaderSource, 'utf8');
  if (!source.includes(ID_PLACEHOLDER)) fail(`${loaderSource} lacks the BUNDLE_ID placeholder`);
  writeFileSync(loader, source.replace(ID_PLACEHOLDER, `'${id}'`));
  rmSync(codeCache, { force: true });
  return { id, bytes: bundle.length };
}
