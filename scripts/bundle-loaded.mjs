// The last step of scripts/bundle-agent.mjs and scripts/bundle-plugin.mjs, for a bundle that a
// loader compiles with V8's code cache (src/agent/twilld-entry.mjs, src/cni/shim/twill-plugin.cjs).
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

/** The placeholder each loader's source holds for the bundle's id. */
const ID_PLACEHOLDER = "'__TWILL_BUNDLE_ID__'";

/**
 * `text` with every non-ASCII character written as a \uXXXX escape. esbuild escapes them in
 * code (its default charset is ASCII) but copies comments as they are, and a single section sign
 * (U+00A7) in a comment made V8 hold the whole 2 MiB bundle as a two-byte string: twice the
 * memory, and a read (UTF-8 decoding) twice as slow as an ASCII file's. Inside a comment an
 * escape is plain text; inside a string or a regular expression it is the same character. The
 * loaders rely on it: they read the bundle as latin1.
 */
export function asciiOnly(text) {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * `script` (a CommonJS module that starts with a hashbang line) as the loaders compile it: one
 * function of CommonJS's module arguments, so no loader copies the text to wrap it at each start.
 * The hashbang line becomes a comment (a syntax error inside the wrapper), so line numbers, and
 * the source map, stay; the text is made ASCII (asciiOnly). Undefined without a hashbang line.
 */
export function wrapForLoader(script) {
  if (!script.startsWith('#!')) return undefined;
  return asciiOnly(`(function (exports, require, module, __filename, __dirname) {//${script.slice(2)}\n})`);
}

/**
 * Rewrites `output` (esbuild's CommonJS bundle of an entry with a hashbang line) as wrapForLoader
 * makes it, then writes `loader` from `loaderSource` with the bundle's id filled in (V8 checks a
 * cache against the source's length only) and removes the last bundle's code cache. Calls `fail`
 * (which exits) on a bundle or loader source it cannot use; returns the id and the bundle's size.
 */
export function finishLoadedBundle({ output, loaderSource, loader, codeCache, fail }) {
  const wrapped = wrapForLoader(readFileSync(output, 'utf8'));
  if (wrapped === undefined) fail(`${output} does not start with the entry's hashbang line`);
  // ASCII, so one byte per character: the bytes written are these.
  const bundle = Buffer.from(wrapped, 'latin1');
  writeFileSync(output, bundle);
  const id = createHash('sha256').update(bundle).digest('hex').slice(0, 16);
  const source = readFileSync(loaderSource, 'utf8');
  if (!source.includes(ID_PLACEHOLDER)) fail(`${loaderSource} lacks the BUNDLE_ID placeholder`);
  writeFileSync(loader, source.replace(ID_PLACEHOLDER, `'${id}'`));
  rmSync(codeCache, { force: true });
  return { id, bytes: bundle.length };
}
