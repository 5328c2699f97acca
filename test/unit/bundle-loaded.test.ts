import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { asciiOnly, finishLoadedBundle } from '../../scripts/bundle-loaded.mjs';

// The last step of both bundle scripts (scripts/bundle-loaded.mjs): the bundle is wrapped as one
// function of CommonJS's arguments and made ASCII, which the loaders rely on when they read it as
// latin1.

const NON_ASCII_SOURCE = [
  '// RFC 4271 \u00a75.1.2, 10 \u00b5s \u2192 fine',
  'module.exports = { text: "caf\u00e9 \u{1f600}", match: /\u00e9+/u.test("\u00e9\u00e9"), raw: `\u2212` };',
].join('\n');

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('asciiOnly', () => {
  it('leaves no byte above 127 and keeps what the code means', () => {
    const ascii = asciiOnly(NON_ASCII_SOURCE);
    expect(/[\u0080-\uffff]/.test(ascii)).toBe(false);
    expect(ascii).toContain('\\u00a7'); // the comment's section sign
    const run = (source: string): unknown => {
      const module = { exports: {} };
      (runInThisContext(`(function (module) {${source}\n})`) as (m: typeof module) => void)(module);
      return module.exports;
    };
    expect(run(ascii)).toEqual(run(NON_ASCII_SOURCE));
    expect(run(ascii)).toEqual({ text: 'caf\u00e9 \u{1f600}', match: true, raw: '\u2212' });
  });
});

describe('finishLoadedBundle', () => {
  it('wraps the bundle, makes it ASCII, fills in the loader\'s id and drops the old cache', () => {
    dir = mkdtempSync(join(tmpdir(), 'twill-bundle-loaded-'));
    const output = join(dir, 'x.bundle.cjs');
    const loaderSource = join(dir, 'loader-source.cjs');
    const loader = join(dir, 'loader.cjs');
    const codeCache = join(dir, 'x.bundle.v8cache');
    writeFileSync(output, `#!/usr/bin/env node\n${NON_ASCII_SOURCE}\n`);
    writeFileSync(loaderSource, "const BUNDLE_ID = '__TWILL_BUNDLE_ID__';\n");
    writeFileSync(codeCache, 'stale');
    const { id, bytes } = finishLoadedBundle({ output, loaderSource, loader, codeCache, fail: (m) => { throw new Error(m); } });
    const bundle = readFileSync(output);
    expect(bundle.length).toBe(bytes);
    expect(bundle.every((b) => b < 128)).toBe(true);
    const module = { exports: {} as Record<string, unknown> };
    const wrapped = runInThisContext(bundle.toString('latin1')) as (e: unknown, r: unknown, m: typeof module) => void;
    wrapped(module.exports, undefined, module);
    expect(module.exports.text).toBe('caf\u00e9 \u{1f600}');
    expect(readFileSync(loader, 'utf8')).toBe(`const BUNDLE_ID = '${id}';\n`);
    expect(() => readFileSync(codeCache)).toThrow(/ENOENT/);
  });

  it('refuses a bundle without the entry\'s hashbang line, leaving it as it was', () => {
    const d = (dir = mkdtempSync(join(tmpdir(), 'twill-bundle-loaded-')));
    const output = join(d, 'x.bundle.cjs');
    writeFileSync(output, 'module.exports = 1;\n');
    const fail = (m: string): never => { throw new Error(m); };
    expect(() => finishLoadedBundle({ output, loaderSource: join(d, 'none'), loader: join(d, 'l'), codeCache: join(d, 'c'), fail })).toThrow(/hashbang/);
    expect(readFileSync(output, 'utf8')).toBe('module.exports = 1;\n');
  });
});
