import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { koffiModule, withPrebuiltNetlinkBinding } from '../../scripts/prebuilt-natives.mjs';

// The bundles load koffi's and netlink's binaries by the paths their loaders chose at build time
// (scripts/prebuilt-natives.mjs), and must still run where those paths do not load: then the
// packages' own loaders decide. The generated modules run here with a require() that stands for
// the bundle's, so each branch is taken on purpose.

const ROOT = join(import.meta.dirname, '..', '..');
const BUNDLE = join(ROOT, 'dist', 'cni', 'twill-plugin.bundle.cjs');
const realRequire = createRequire(BUNDLE);
const RAW = realRequire.resolve('netlink/dist/raw.js');

function fail(message: string): never {
  throw new Error(message);
}

/** Runs CommonJS `source` with `require` standing for the bundle's; its module.exports. */
function run(source: string, require: (id: string) => unknown): unknown {
  const module = { exports: {} as unknown };
  new Function('require', 'module', 'exports', source)(Object.assign(require, { resolve: realRequire.resolve }), module, module.exports);
  return module.exports;
}

describe('koffi in a bundle', () => {
  const source = koffiModule(BUNDLE, fail);
  const loaded: string[] = [];
  const recording = (id: string): unknown => {
    loaded.push(id);
    return realRequire(id);
  };

  it('is the binary koffi loads here, without koffi\'s loader', () => {
    loaded.length = 0;
    const koffi = run(source, recording) as { load: unknown; version: string };
    expect(loaded).toEqual([expect.stringMatching(/^@koromix\/koffi-[a-z0-9]+-[a-z0-9]+\/.+\/koffi\.node$/)]);
    expect(typeof koffi.load).toBe('function');
    expect(koffi).toBe((realRequire('koffi') as { default: unknown }).default);
  });

  it('falls back to koffi\'s loader when the binary does not load, or is another version', () => {
    const viaLoader = realRequire('koffi');
    for (const binary of [() => { throw new Error('wrong ELF class'); }, () => ({ version: '0.0.1' })]) {
      loaded.length = 0;
      const koffi = run(source, (id) => {
        loaded.push(id);
        return id.endsWith('.node') ? binary() : realRequire(id);
      });
      expect(loaded).toEqual([expect.stringMatching(/koffi\.node$/), 'koffi']);
      expect(koffi).toBe(viaLoader);
    }
  });
});

describe('netlink\'s raw socket in a bundle', () => {
  const original = readFileSync(RAW, 'utf8');
  const source = withPrebuiltNetlinkBinding(original, RAW, BUNDLE, fail);

  it('loads the prebuild node-gyp-build picks here, and not node-gyp-build', () => {
    const loaded: string[] = [];
    const raw = run(source, (id) => {
      loaded.push(id);
      return realRequire(id);
    }) as { RawNetlinkSocket: unknown };
    expect(loaded.filter((id) => !/^(node:)?(events|os|path)$/.test(id))).toEqual([expect.stringMatching(/^netlink\/prebuilds\/.+\.node$/)]);
    expect(typeof raw.RawNetlinkSocket).toBe('function');
  });

  it('falls back to node-gyp-build on the netlink package when the prebuild does not load', () => {
    const asked: string[] = [];
    const raw = run(source, (id) => {
      if (id.endsWith('.node')) throw new Error('not this platform');
      if (id === 'node-gyp-build') {
        return (dir: string) => {
          asked.push(dir);
          return realRequire('node-gyp-build')(dir);
        };
      }
      return realRequire(id);
    }) as { RawNetlinkSocket: unknown };
    expect(asked).toEqual([join(ROOT, 'node_modules', 'netlink')]);
    expect(typeof raw.RawNetlinkSocket).toBe('function');
  });

  it('fails the build when raw.js no longer loads its binding the expected way', () => {
    expect(() => withPrebuiltNetlinkBinding(original.replace("require('node-gyp-build')", "require('other')"), RAW, BUNDLE, fail)).toThrow(/no longer loads its binding/);
  });
});
