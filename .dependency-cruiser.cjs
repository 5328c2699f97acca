// Import rules for Twill (docs/architecture.md, "Layers and import rules"). Run by
// `npm run cycles`, which `npm run lint` calls after ESLint. Paths are relative to the repository
// root; `$1` in a `to` pattern is the group captured by the rule's `from` pattern.

/** A rule that lets modules under `folder` import, inside src/, only `folder` and `allowed`. */
function onlyImports(name, folder, allowed, comment) {
  const alternatives = [folder, ...allowed].join('|');
  return {
    name,
    comment,
    severity: 'error',
    from: { path: `^src/${folder}/` },
    to: { path: '^src/', pathNot: `^src/(${alternatives})/` },
  };
}

/**
 * A rule that lets only modules under `owner` (and the files `alsoAllowed`, each with a comment
 * saying why) import the npm packages `packages`.
 */
function ownedPackages(name, owner, packages, alsoAllowed = []) {
  return {
    name,
    comment: `Only ${owner}/ may import ${packages.join(' or ')}; everything else goes through ${owner}'s exports.`,
    severity: 'error',
    from: { pathNot: [`^${owner}/`, ...alsoAllowed.map((f) => `^${f.replaceAll('.', '[.]')}$`)] },
    // Matches both an installed package (node_modules/koffi/...) and one that is not installed.
    to: { path: `^(node_modules/)?(${packages.join('|')})(/|$)` },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Import cycles are not allowed (type-only imports count too): invert the dependency instead.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'This import does not resolve to a file or to an installed package.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-non-package-json',
      comment: 'This npm package is not declared in package.json.',
      severity: 'error',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'src-not-to-dev-dep',
      comment: 'Shipped code (src/) must not import devDependencies: `npm prune --omit=dev` removes them from the image.',
      severity: 'error',
      from: { path: '^src/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'src-not-to-test-or-bench',
      comment: 'src/ must not import test/ or bench/.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },

    ownedPackages('netlink-koffi-only-in-src-netlink', 'src/netlink', ['netlink', 'koffi']),
    // The benchmarks' bulk writer puts thousands of leases in one transaction: not a store job.
    ownedPackages('etcd3-only-in-src-store', 'src/store', ['etcd3'], ['test/helpers/etcd-bulk.ts']),

    {
      name: 'core-imports-nothing-internal',
      comment: 'src/core/ holds value types, errors, clock, logger: it imports nothing else from src/.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/', pathNot: '^src/core/' },
    },
    onlyImports('netlink-imports-only-core', 'netlink', ['core'], 'src/netlink/ imports only src/core/.'),
    onlyImports('store-imports-only-core', 'store', ['core'], 'src/store/ imports only src/core/.'),
    onlyImports('ipam-imports-only-core', 'ipam', ['core'], 'src/ipam/ is pure: it imports only src/core/.'),
    onlyImports('nftables-imports-only-core', 'nftables', ['core'], 'src/nftables/ (masquerading through nft) imports only src/core/.'),
    onlyImports('bgp-imports-only-core', 'bgp', ['core'], 'The BGP speaker (src/bgp/) is a library: it imports only src/core/.'),
    onlyImports('cni-imports', 'cni', ['core', 'netlink', 'ipam', 'nftables', 'gen'], 'The CNI plugin imports only core, netlink, ipam, nftables (ipMasq) and gen.'),
    onlyImports('backends-imports', 'backends', ['core', 'netlink', 'store', 'bgp'], 'Backends import only core, netlink, store (types) and, for the bgp backend, src/bgp/index.ts.'),
    {
      name: 'backend-not-to-sibling-backend',
      comment: 'A backend (src/backends/<name>/) never imports another backend; share code through src/backends/backend.ts, core or netlink.',
      severity: 'error',
      from: { path: '^src/backends/([^/]+)/' },
      to: { path: '^src/backends/[^/]+/', pathNot: '^src/backends/$1/' },
    },
    {
      name: 'only-bgp-backend-uses-speaker',
      comment: 'Of the backends, only src/backends/bgp/ uses the BGP speaker.',
      severity: 'error',
      from: { path: '^src/backends/', pathNot: '^src/backends/bgp/' },
      to: { path: '^src/bgp/' },
    },
    {
      name: 'bgp-backend-uses-speaker-index-only',
      comment: 'src/backends/bgp/ reaches the speaker through src/bgp/index.ts only.',
      severity: 'error',
      from: { path: '^src/backends/bgp/' },
      to: { path: '^src/bgp/', pathNot: '^src/bgp/index\\.ts$' },
    },
    {
      name: 'gen-only-from-agent-and-cni',
      comment: 'Generated code (src/gen/) is imported only by src/agent/ and src/cni/.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(agent|cni|gen)/' },
      to: { path: '^src/gen/' },
    },
    {
      name: 'entry-points-imported-by-none',
      comment: 'src/agent/, src/ctl/ and src/cni/ are composition roots and binaries: no other folder of src/ imports them (but see agent-serves-cni).',
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: '^src/agent/' },
      to: { path: '^src/(agent|ctl|cni)/', pathNot: '^src/$1/' },
    },
    {
      name: 'agent-serves-cni',
      comment: 'The agent serves CNI calls (thick plugin) through plugin-pool.ts and agent-socket.ts only; and never imports src/ctl.',
      severity: 'error',
      from: { path: '^src/agent/' },
      to: { path: '^src/(ctl/|cni/(?!(plugin-pool|agent-socket)\\.ts$))' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage)/' },
    // Resolves the `.js` specifiers NodeNext requires ("./errors.js") to the `.ts` sources, and
    // counts `import type` too (an architecture rule holds for types as much as for values).
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
