#!/usr/bin/env node
/**
 * Benchmark runner: `npm run bench -- <name> [options]`. Each benchmark prints one JSON line per
 * figure on stdout and its progress on stderr. Benchmarks compare against a reference measured in
 * the same run (the machine is shared and noisy), so ratios are the figures to watch.
 */
const benches: Record<string, () => Promise<{ run(args: string[]): Promise<void> }>> = {
  netlink: () => import('./netlink.js'),
  vxlan: () => import('./vxlan.js'),
  throughput: () => import('./throughput.js'),
  cni: () => import('./cni.js'),
  bgp: () => import('./bgp.js'),
  ipip: () => import('./ipip.js'),
  'bgp-backend': () => import('./bgp-backend.js'),
};

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const load = name ? benches[name] : undefined;
  if (!load) {
    process.stderr.write(`usage: npm run bench -- <${Object.keys(benches).join('|')}>\n`);
    process.exit(2);
  }
  await (await load()).run(args);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
