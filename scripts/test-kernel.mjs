#!/usr/bin/env node
// npm run test:kernel -- [--vm-timeout S] [--vm-suites FILE] <vitest files and options...>
// node scripts/test-kernel.mjs [--vm-timeout S] --vm-bench <benchmark> [options...]
//
// Runs vitest files inside a VM that boots Debian's 6.1 LTS kernel under qemu (software emulation),
// for what the build machine's own kernel lacks or does differently (ipip, for one). The VM shares
// the host's root file system read-only and this checkout read-write at the same path, so it runs
// the host's node, iproute2, nft and etcd on dist/ and node_modules as they are. Its output
// streams to stdout; the exit status is vitest's inside the VM, 124 when the VM ran past its time
// limit, and 1 when it could not start or stopped without saying how vitest ended. With
// --vm-bench the VM runs `node dist/bench/run.js <benchmark> [options]` instead of vitest (what
// `npm run bench -- ipip` does on a kernel without IPIP); its JSON lines come out on stdout.
// How it works, the cache and the variables: test/vm/README.md.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { ensureInitramfs, ensureKernel, kernelPackage } from './vm-image.mjs';

const CHECKOUT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const VM_DIR = path.join(CHECKOUT, 'test/vm');
const DEFAULT_TIMEOUT_S = 1800;
// Emulated CPUs run the tests several times slower than the host: the VM's tests scale their
// time limits by this much (vitest.config.ts, test/helpers/wait.ts) unless the caller says.
const DEFAULT_TIME_SCALE = '4';

function fail(text, code = 1) {
  console.error(`test:kernel: ${text}`);
  process.exit(code);
}

/** Splits the runner's own options from those it passes to vitest. */
function parseArgs(argv) {
  let timeoutS = process.env.TWILL_VM_TIMEOUT_S || String(DEFAULT_TIMEOUT_S);
  const vitestArgs = [];
  let bench = false;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? fail(`${flag} needs a value`);
    if (flag === '--vm-timeout') timeoutS = value();
    else if (flag === '--vm-suites') vitestArgs.push(...listFile(value()));
    else if (flag === '--vm-bench' && !bench) bench = true;
    else vitestArgs.push(argv[i]);
  }
  if (bench) {
    if (!vitestArgs[0] || vitestArgs[0].startsWith('-')) fail('--vm-bench needs the name of a benchmark (bench/run.ts)');
    // inside.sh tells the two modes apart by this first word.
    vitestArgs.unshift('--vm-bench');
  } else if (!vitestArgs.some((a) => !a.startsWith('-'))) {
    // vitest with no file runs every tier, for hours under emulation: name what to run.
    fail('name the test files to run (or --vm-suites test/vm/suites.txt)');
  }
  const timeout = Number(timeoutS);
  // Node's timers hold at most 2^31-1 ms (24 days).
  if (!(timeout > 0 && timeout <= 2_000_000)) fail(`the time limit must be a number of seconds up to 2000000, not "${timeoutS}"`);
  return { timeoutS: timeout, vitestArgs };
}

/** The lines of a list file (test/vm/suites.txt), without # comments and blank lines. */
function listFile(file) {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

/** A word the shell reads back as exactly `s`. */
function shellQuote(s) {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

/** The run's share: what init.sh reads (run.sh, env.sh) and where it leaves exit-code. */
function writeRunDir(kernel, vitestArgs) {
  const dir = mkdtempSync(path.join(tmpdir(), 'twill-vm-'));
  const tty = process.stdout.isTTY === true;
  const vars = {
    CHECKOUT, KERNEL_VERSION: kernel.version, MODULES_DIR: kernel.modules, HOST_HOME: process.env.HOME ?? '',
    COLUMNS: tty ? String(process.stdout.columns) : '', LINES: tty ? String(process.stdout.rows) : '',
  };
  const runSh = Object.entries(vars).map(([k, v]) => `${k}=${shellQuote(v)}`);
  runSh.push(`set -- ${vitestArgs.map(shellQuote).join(' ')}`);
  writeFileSync(path.join(dir, 'run.sh'), `${runSh.join('\n')}\n`);
  // The host run's environment, so vitest inside sees what it would see here.
  const env = { TWILL_TEST_TIME_SCALE: DEFAULT_TIME_SCALE, ...process.env, TWILL_VM_TTY: tty ? '1' : '0' };
  const envSh = Object.entries(env).filter(([k]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
    .map(([k, v]) => `export ${k}=${shellQuote(v ?? '')}`);
  writeFileSync(path.join(dir, 'env.sh'), `${envSh.join('\n')}\n`);
  return dir;
}

function qemuArgs(kernel, initrd, runDir) {
  const share = (dir, tag, extra = '') => ['-virtfs', `local,path=${dir},mount_tag=${tag},security_model=passthrough${extra}`];
  return [
    // -enable-kvm hangs on the build machines: TCG only, one thread per virtual CPU.
    '-accel', 'tcg,thread=multi', '-smp', '2', '-cpu', 'max', '-m', '2048',
    // No network card: tests talk only over loopback and inside their own namespaces.
    '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-nic', 'none', '-no-reboot',
    '-kernel', kernel.vmlinuz, '-initrd', initrd,
    '-append', 'console=ttyS0 quiet panic=-1',
    // The host's root holds other file systems (/proc, /dev, ...): remap their inode numbers.
    ...share('/', 'hostroot', ',readonly=on,multidevs=remap'),
    ...share(CHECKOUT, 'checkout'),
    ...share(runDir, 'vmrun'),
  ];
}

const { timeoutS, vitestArgs } = parseArgs(process.argv.slice(2));
let kernel;
let initrd;
try {
  kernel = ensureKernel(kernelPackage());
  initrd = ensureInitramfs(kernel, { initScript: path.join(VM_DIR, 'init.sh'), moduleList: path.join(VM_DIR, 'boot-modules.txt') });
} catch (err) {
  fail(`cannot prepare the VM: ${err instanceof Error ? err.message : String(err)}`);
}

const runDir = writeRunDir(kernel, vitestArgs);
// stdin stays ours: qemu would put a terminal in raw mode and swallow Ctrl-C.
const qemu = spawn('qemu-system-x86_64', qemuArgs(kernel, initrd, runDir), { stdio: ['ignore', 'inherit', 'inherit'] });
let outcome; // why the runner stopped the VM, if it did: { message, code }

function stop(message, code) {
  outcome ??= { message, code };
  qemu.kill('SIGKILL');
}

const timer = setTimeout(() => stop(`the VM ran past its time limit of ${timeoutS} s (--vm-timeout or TWILL_VM_TIMEOUT_S); qemu killed`, 124), timeoutS * 1000);
process.on('SIGINT', () => stop('interrupted (SIGINT); qemu killed', 130));
process.on('SIGTERM', () => stop('terminated (SIGTERM); qemu killed', 143));

qemu.on('error', (err) => {
  clearTimeout(timer);
  rmSync(runDir, { recursive: true, force: true });
  fail(`cannot start qemu-system-x86_64 (${err.message}); install qemu-system-x86 (.ci/setup-system.sh)`);
});
qemu.on('exit', () => {
  clearTimeout(timer);
  let status;
  try {
    status = readFileSync(path.join(runDir, 'exit-code'), 'utf8').trim();
  } catch {
    status = undefined;
  }
  rmSync(runDir, { recursive: true, force: true });
  if (outcome) fail(outcome.message, outcome.code);
  if (status === undefined || !/^\d+$/.test(status)) fail('the VM stopped without reporting how its run ended (see its output above)');
  process.exit(Number(status));
});
