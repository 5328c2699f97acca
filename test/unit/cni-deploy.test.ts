import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';

// deploy/kubernetes/twill.yaml against the rule of issue 13, item 11: the CNI plugin's dataDir
// (in the conflist the init container installs) must be the same directory for twilld as for
// the shim's in-process fallback on the host, or the two allocate from different stores and
// hand out one address twice. Read as text: the file is plain block YAML, and the checks below
// only follow indentation.

const YAML = readFileSync(new URL('../../deploy/kubernetes/twill.yaml', import.meta.url), 'utf8');
const LINES = YAML.split('\n');

const indent = (line: string): number => line.length - line.trimStart().length;

/** The lines nested under the first line matching `head` (more indented than it, blank ones kept). */
function block(head: RegExp, from = 0): string[] {
  const start = LINES.findIndex((l, i) => i >= from && head.test(l));
  expect(start, String(head)).toBeGreaterThanOrEqual(0);
  const out: string[] = [];
  for (const line of LINES.slice(start + 1)) {
    if (line.trim() !== '' && indent(line) <= indent(LINES[start]!)) break;
    out.push(line);
  }
  return out;
}

/** `- name: X` items of a list, each with the `key: value` pairs nested in it (flattened). */
function items(lines: readonly string[]): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const line of lines) {
    const item = /^\s*- name:\s*(\S+)/.exec(line);
    if (item) out.push({ name: item[1]! });
    const pair = /^\s+(\w+):\s*(\S.*)$/.exec(line);
    if (pair && !item && out.length > 0) out[out.length - 1]![pair[1]!] = pair[2]!.replace(/^"|"$/g, '');
  }
  return out;
}

describe('deploy/kubernetes/twill.yaml', () => {
  const conflist = JSON.parse(block(/^\s+cni-conf\.json: \|/).join('\n')) as { plugins: { type: string; dataDir?: string }[] };
  const dataDir = conflist.plugins.find((p) => p.type === 'twill')!.dataDir ?? '/run/twill/ipam';
  const twilld = block(/^\s+- name: twilld$/);
  const mounts = items(block(/^\s+volumeMounts:$/, LINES.findIndex((l) => /^\s+- name: twilld$/.test(l))));
  const volumes = items(block(/^\s{6}volumes:$/));

  it('mounts the conflist\'s dataDir into twilld at the same path, from the same host path', () => {
    const mount = mounts.find((m) => m.mountPath !== undefined && (dataDir === m.mountPath || dataDir.startsWith(`${m.mountPath}/`)));
    expect(mount, `a twilld volumeMount covering ${dataDir}`).toBeDefined();
    const volume = volumes.find((v) => v.name === mount!.name);
    expect(volume?.path, `hostPath of volume ${mount!.name}`).toBe(mount!.mountPath);
    expect(posix.isAbsolute(dataDir)).toBe(true);
  });

  it('gives twilld the same dataDir, and the host PID namespace it checks callers\' views through', () => {
    expect(twilld.some((l) => l.trim() === `- --cni-data-dir=${dataDir}`) || dataDir === '/run/twill/ipam').toBe(true);
    expect(LINES.some((l) => /^\s+hostPID: true$/.test(l))).toBe(true);
  });

  it('installs the plugin with the image\'s installer, which ships the node the fallback needs', () => {
    expect(YAML).toMatch(/command: \["\/opt\/twill\/bin\/install-cni"\]/);
    expect(readFileSync(new URL('../../Dockerfile', import.meta.url), 'utf8')).toMatch(/scripts\/install-cni\.sh \.\/bin\/install-cni/);
  });
});
