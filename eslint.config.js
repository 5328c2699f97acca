// @ts-check
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Import boundaries (docs/architecture.md). The complete set lives in .dependency-cruiser.cjs, which
// resolves paths and so can say "a backend never imports a sibling backend" or "src/bgp imports
// only src/core". ESLint repeats the package rules below so an editor flags them as you type.
// Both run in `npm run lint`.

/** Packages that exactly one folder may import. */
const OWNED_PACKAGES = [
  { owner: 'src/netlink', packages: ['netlink', 'koffi'] },
  { owner: 'src/store', packages: ['etcd3'] },
];

/** `no-restricted-imports` forbidding every owned package except those owned by `owner`. */
function restrictPackagesExceptFor(owner) {
  const patterns = OWNED_PACKAGES.filter((o) => o.owner !== owner).map((o) => ({
    // The package itself and any subpath of it ("koffi", "koffi/indirect").
    regex: `^(${o.packages.join('|')})(/|$)`,
    caseSensitive: true,
    message: `only ${o.owner}/ may import ${o.packages.join(' or ')}; go through its exports instead.`,
  }));
  return { 'no-restricted-imports': ['error', { patterns }] };
}

const TYPED_FILES = ['src/**/*.ts', 'bench/**/*.ts']; // the files tsconfig.json covers

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'coverage/', '.vitest-tmp/', 'src/gen/']),

  js.configs.recommended,
  tseslint.configs.recommended,

  // Type-aware rules, only for the files tsconfig.json includes (test/ is not in it).
  {
    files: TYPED_FILES,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `void promise` marks a deliberately unawaited promise.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true, requireDefaultForNonUnion: false },
      ],
    },
  },

  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
      eqeqeq: ['error', 'always'],
      // `let timer; const done = () => clearTimeout(timer); timer = setTimeout(...)` is a fine
      // pattern: making it const would move the declaration below its first (closure) use.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },

  // The few plain JavaScript files: this one (ESM) and .dependency-cruiser.cjs (CommonJS, whose
  // sourceType brings `module` and `require` with it).
  { files: ['**/*.cjs'], languageOptions: { sourceType: 'commonjs' } },
  // Node scripts run by npm (scripts/*.mjs).
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { console: 'readonly', process: 'readonly' } } },
  // The CNI fallback's loader, which node runs as a CommonJS script (require() is how it imports),
  // and the code cache helper it shares with twilld's entry point.
  {
    files: ['src/cni/shim/*.cjs', 'src/core/*.cjs'],
    languageOptions: { globals: { __dirname: 'readonly', Buffer: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },

  // Package ownership. One config object per owner, because a later `no-restricted-imports`
  // replaces an earlier one rather than merging with it.
  { files: ['**/*.{ts,js,cjs}'], rules: restrictPackagesExceptFor(undefined) },
  ...OWNED_PACKAGES.map((o) => ({ files: [`${o.owner}/**/*.ts`], rules: restrictPackagesExceptFor(o.owner) })),
  // The benchmarks' bulk lease writer (thousands of puts in one transaction) is not a store job.
  { files: ['test/helpers/etcd-bulk.ts'], rules: restrictPackagesExceptFor('src/store') },
);
