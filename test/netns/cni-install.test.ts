import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cleanup.js';
import { addressFiles, bedConf, CNI_SHIM, createCniBed } from '../helpers/cni.js';
import { run } from '../helpers/exec.js';
import { createTestNetns } from '../helpers/netns.js';
import { repoRoot } from '../helpers/twilld.js';
import { isRoot, useCleanup } from '../helpers/vitest.js';

/*
 * Issue 13, item 12: the shim's in-process fallback on a node without Node.js. A release is staged
 * the way the image holds it (/opt/twill: package.json, dist/, the production node_modules/, bin/
 * with a node binary and the shim built for /opt/twill/current), installed by
 * scripts/install-cni.sh into a temporary "host" root, and then ADD and DEL run through the
 * installed shim with twilld down, in a mount namespace of their own where the machine's node
 * (/usr/bin/node, the only one here) is covered by /dev/null and nothing named node is on the PATH.
 */

const ROOT = repoRoot();

/** The image's /opt/twill, for a node whose file system is at `hostRoot`. */
function stageRelease(hostRoot: string): string {
  const stage = join(tempDir('cni-image'), 'opt', 'twill');
  mkdirSync(join(stage, 'bin'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(stage, 'package.json'));
  cpSync(join(ROOT, 'dist'), join(stage, 'dist'), { recursive: true });
  // What `npm prune --omit=dev` leaves in the image.
  const production = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').slice(1);
  for (const dir of production.sort()) {
    const rel = relative(ROOT, dir);
    if (!existsSync(join(stage, rel))) cpSync(dir, join(stage, rel), { recursive: true });
  }
  copyFileSync(process.execPath, join(stage, 'bin', 'node'));
  // As the Dockerfile builds it: for the path the release has on the node.
  execFileSync(process.execPath, ['scripts/build-shim.mjs', '--root', join(hostRoot, 'opt/twill/current'), '--output', join(stage, 'bin', 'twill-cni')], { cwd: ROOT, stdio: 'ignore' });
  return stage;
}

describe.skipIf(!isRoot || !existsSync(CNI_SHIM))('the installed CNI plugin on a node without Node.js', () => {
  useCleanup();

  it('item 12: scripts/install-cni.sh ships what the fallback needs; ADD and DEL work with twilld down and no node on the host', { timeout: 120_000 }, async () => {
    const hostRoot = tempDir('cni-node');
    const stage = stageRelease(hostRoot);
    const confFile = join(tempDir('cni-conf'), 'cni-conf.json');
    writeFileSync(confFile, JSON.stringify({ cniVersion: '1.0.0', name: 'twill', plugins: [{ type: 'twill' }] }));
    const installed = await run('sh', [join(ROOT, 'scripts/install-cni.sh')], { env: { TWILL_SOURCE: stage, HOST_ROOT: hostRoot, CNI_CONF: confFile }, timeoutMs: 60_000 });
    expect(installed.stdout).toMatch(/installed .*\/opt\/cni\/bin\/twill/);
    expect(readlinkSync(join(hostRoot, 'opt/twill/current'))).toMatch(/^releases\/\d{8}T\d{6}Z-\d+$/);
    expect(existsSync(join(hostRoot, 'opt/twill/current/bin/node'))).toBe(true);
    expect(existsSync(join(hostRoot, 'etc/cni/net.d/10-twill.conflist'))).toBe(true);

    const bed = await createCniBed('in-process', '10.244.12.1');
    const pod = await createTestNetns('pod');
    const plugin = join(hostRoot, 'opt/cni/bin/twill');
    const conf = JSON.stringify(bedConf(bed));
    // Only this command's mount namespace loses node; `node -e 0` failing proves there is none.
    const withoutNode = 'mount --bind /dev/null /usr/bin/node && if node -e 0 2>/dev/null; then echo "node is still reachable" >&2; exit 99; fi && exec "$@"';
    const shim = (command: string) => run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', withoutNode, 'sh', plugin], {
      netns: bed.host.name,
      input: conf,
      allowFailure: true,
      timeoutMs: 60_000,
      env: {
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin', TWILL_CNI_SOCKET: join(hostRoot, 'run/twill/cni.sock'),
        CNI_COMMAND: command, CNI_CONTAINERID: 'no-node', CNI_NETNS: pod.netnsPath, CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin',
      },
    });
    const add = await shim('ADD');
    expect(add.code, add.stdout + add.stderr).toBe(0);
    const ip = (JSON.parse(add.stdout) as { ips: { address: string }[] }).ips[0]!.address;
    expect(ip).toMatch(/^10\.244\.12\.\d+\/24$/);
    expect((await pod.link('eth0'))?.addr_info?.map((a) => `${a.local}/${a.prefixlen}`)).toContain(ip);
    const del = await shim('DEL');
    expect(del.code, del.stdout + del.stderr).toBe(0);
    expect(await pod.link('eth0')).toBeUndefined();
    expect(addressFiles(bed.dataDir, 'twill-test')).toEqual([]);
  });
});
