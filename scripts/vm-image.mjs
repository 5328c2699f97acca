// The test VM's kernel and initramfs, made once and cached between runs (scripts/test-kernel.mjs,
// test/vm/README.md). The cache, under TWILL_VM_CACHE (default /var/cache/twill-vm), holds for
// each kernel version:
//   <version>/vmlinuz          the kernel of Debian's package
//   <version>/modules/         the package's /lib/modules/<version>, with the depmod files
//   <version>/initrd-<key>.gz  busybox, test/vm/init.sh and the boot modules; the key hashes them,
//                              so changing the init script or the module list makes a new one
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const CACHE_ROOT = process.env.TWILL_VM_CACHE || '/var/cache/twill-vm';
const BUSYBOX = '/bin/busybox'; // Debian's busybox-static: the initramfs has no libc to link against

function say(text) {
  console.error(`test:kernel: ${text}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${String(r.stderr).trim()}`);
  return r.stdout;
}

/**
 * The exact kernel package Debian's linux-image-amd64 depends on now (on Debian 12, the 6.1 LTS
 * kernel, e.g. linux-image-6.1.0-57-amd64). Never a pattern: `apt-get download` would fetch
 * every version that matches.
 */
export function kernelPackage() {
  const out = run('apt-cache', ['depends', 'linux-image-amd64']);
  const m = /Depends: (linux-image-(\S+-amd64))$/m.exec(out);
  if (!m) throw new Error(`apt-cache depends linux-image-amd64 names no kernel package (run apt-get update?):\n${out}`);
  return { name: m[1], version: m[2] };
}

/** Downloads and unpacks the package unless cached; returns { version, dir, vmlinuz, modules }. */
export function ensureKernel(pkg) {
  const dir = path.join(CACHE_ROOT, pkg.version);
  const kernel = { version: pkg.version, dir, vmlinuz: path.join(dir, 'vmlinuz'), modules: path.join(dir, 'modules') };
  if (existsSync(kernel.vmlinuz)) return kernel;
  say(`downloading ${pkg.name} and unpacking it into ${dir} (once)`);
  mkdirSync(CACHE_ROOT, { recursive: true });
  const work = mkdtempSync(path.join(CACHE_ROOT, `.${pkg.version}-`));
  try {
    // APT's download sandbox user cannot write into a root-only folder; this is one we just made.
    run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', pkg.name], { cwd: work });
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg.name} left no .deb`);
    run('dpkg', ['-x', deb, 'x'], { cwd: work });
    // The package's postinst makes modules.dep and the alias files, which modprobe needs.
    run('depmod', ['-b', 'x', pkg.version], { cwd: work });
    mkdirSync(path.join(work, 'k'));
    renameSync(path.join(work, 'x/boot', `vmlinuz-${pkg.version}`), path.join(work, 'k/vmlinuz'));
    renameSync(path.join(work, 'x/lib/modules', pkg.version), path.join(work, 'k/modules'));
    // One rename, so a half-made folder is never taken for a cached one.
    renameSync(path.join(work, 'k'), dir);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return kernel;
}

/** The module names of a list file: one a line, # comments. */
function readList(file) {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

/** The paths (relative to the modules folder) of the named modules, from modules.dep. */
function modulePaths(modulesDir, names) {
  const byName = new Map();
  for (const line of readFileSync(path.join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const file = line.split(':', 1)[0];
    if (file) byName.set(path.basename(file, '.ko').replaceAll('-', '_'), file);
  }
  return names.map((n) => {
    const file = byName.get(n.replaceAll('-', '_'));
    if (!file) throw new Error(`module ${n} is not in ${modulesDir}`);
    return file;
  });
}

/**
 * Builds the initramfs unless one with the same init script, module list and busybox is cached;
 * returns its path. Older ones of this kernel are removed.
 */
export function ensureInitramfs(kernel, { initScript, moduleList }) {
  const init = readFileSync(initScript);
  const list = readFileSync(moduleList);
  const busybox = readFileSync(BUSYBOX);
  const key = createHash('sha256').update(init).update(list).update(busybox).digest('hex').slice(0, 16);
  const out = path.join(kernel.dir, `initrd-${key}.gz`);
  if (existsSync(out)) return out;
  const names = readList(moduleList);
  say(`building the initramfs ${out} (busybox, ${path.basename(initScript)}, ${names.length} modules)`);
  const files = modulePaths(kernel.modules, names);
  const staging = mkdtempSync(path.join(kernel.dir, '.initrd-'));
  try {
    mkdirSync(path.join(staging, 'bin'));
    mkdirSync(path.join(staging, 'boot-modules'));
    copyFileSync(BUSYBOX, path.join(staging, 'bin/busybox'));
    copyFileSync(initScript, path.join(staging, 'init'));
    chmodSync(path.join(staging, 'bin/busybox'), 0o755);
    chmodSync(path.join(staging, 'init'), 0o755);
    names.forEach((n, i) => copyFileSync(path.join(kernel.modules, files[i]), path.join(staging, 'boot-modules', `${n}.ko`)));
    writeFileSync(path.join(staging, 'boot-modules/order'), `${names.join('\n')}\n`);
    // Parents before children, as the kernel unpacks the archive in order.
    const entries = ['bin', 'bin/busybox', 'init', 'boot-modules', 'boot-modules/order', ...names.map((n) => `boot-modules/${n}.ko`)];
    const archive = spawnSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: staging, input: `${entries.join('\n')}\n`, maxBuffer: 256 << 20 });
    if (archive.error || archive.status !== 0) throw new Error(`cpio failed: ${archive.error?.message ?? String(archive.stderr)}`);
    writeFileSync(path.join(staging, 'initrd.gz'), gzipSync(archive.stdout));
    renameSync(path.join(staging, 'initrd.gz'), out);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  for (const f of readdirSync(kernel.dir)) {
    if (/^initrd-.*\.gz$/.test(f) && path.join(kernel.dir, f) !== out) rmSync(path.join(kernel.dir, f), { force: true });
  }
  return out;
}
