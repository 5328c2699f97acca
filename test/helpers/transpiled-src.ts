import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

// Some unit tests run Twill's code outside vitest: in worker threads (the CNI plugin pool) or in
// child processes (the allocator across processes), where nothing transforms TypeScript. Rather
// than load dist/ (absent without a build, stale after an edit), they load this: every file of
// src/ transpiled as it is now (no type check), cached under node_modules/.cache by a hash of the
// sources, so a change in src/ always gives a fresh copy and an unchanged tree costs nothing.

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SRC = join(REPO, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  }).sort();
}

let built: string | undefined;

/** The root of the transpiled tree: `<root>/src/cni/plugin-worker.js` and so on. */
export function transpiledSrcRoot(): string {
  if (built !== undefined) return built;
  const files = sourceFiles(SRC);
  const hash = createHash('sha256');
  for (const f of files) hash.update(relative(SRC, f)).update('\0').update(readFileSync(f)).update('\0');
  const root = join(REPO, 'node_modules', '.cache', 'twill-test-src', hash.digest('hex').slice(0, 16));
  if (!existsSync(join(root, 'done'))) {
    // Built beside its final place and renamed, so concurrent test files never see half a tree.
    const tmp = `${root}.tmp-${process.pid}-${Date.now()}`;
    for (const f of files) {
      const out = join(tmp, 'src', relative(SRC, f)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(out), { recursive: true });
      const { outputText } = ts.transpileModule(readFileSync(f, 'utf8'), {
        fileName: f,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false, sourceMap: false },
      });
      writeFileSync(out, outputText);
    }
    // Outside the package's own folder Node would not know these files are ES modules.
    writeFileSync(join(tmp, 'package.json'), '{"type":"module"}\n');
    writeFileSync(join(tmp, 'done'), '');
    try {
      renameSync(tmp, root);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another test file finished first
    }
  }
  built = root;
  return root;
}

/** A file URL of the transpiled module for `src/<path>.ts`, e.g. transpiledSrc('cni/plugin-worker'). */
export function transpiledSrc(path: string): URL {
  return pathToFileURL(join(transpiledSrcRoot(), 'src', `${path}.js`));
}
