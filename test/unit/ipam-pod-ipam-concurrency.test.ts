import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { transpiledSrc } from '../helpers/transpiled-src.js';

// The allocator's claim is O_EXCL on a file, which must hold between processes (the CNI binary
// and the agent), not only between calls of one process: so these tests run real processes, each
// loading the allocator's module.

// Each process loads the allocator from src/ as it is now, transpiled (test/helpers/transpiled-src.ts):
// no build needed, never a stale one.
const POD_IPAM = transpiledSrc('ipam/pod-ipam');

/**
 * One worker process: prints {"ready":true}, then for each command line on stdin
 * ({"op":"allocate"|"release","ids":[...],"requested"?}) runs the calls one after another and
 * prints one result per id: {"address"}, {"released"} or {"error": code}.
 */
const WORKER = `
import { createInterface } from 'node:readline';
const { PodIpam } = await import(process.env.POD_IPAM_MODULE);
const ipam = new PodIpam(JSON.parse(process.env.POD_IPAM_OPTIONS));
const say = (msg) => process.stdout.write(JSON.stringify(msg) + '\\n');
say({ ready: true });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  say(cmd.ids.map((containerId) => {
    try {
      if (cmd.op === 'release') return { released: ipam.release(containerId, 'eth0') };
      const req = { containerId, ifname: 'eth0', netns: '/proc/' + process.pid + '/ns/net' };
      if (cmd.requested) req.requested = cmd.requested;
      return { address: ipam.allocate(req).address };
    } catch (err) {
      return { error: err.code ?? String(err) };
    }
  }));
}
`;

interface CallResult {
  readonly address?: string;
  readonly released?: string[];
  readonly error?: string;
}

interface Worker {
  /** The next line the worker printed, parsed. Rejects (with its stderr) if it exited instead. */
  next(): Promise<unknown>;
  send(cmd: { op: 'allocate' | 'release'; ids: string[]; requested?: string }): void;
  /** Closes stdin and resolves with the exit code. */
  end(): Promise<number | null>;
  readonly child: ChildProcessWithoutNullStreams;
}

function startWorker(options: object): Worker {
  const env: NodeJS.ProcessEnv = { ...process.env, POD_IPAM_MODULE: POD_IPAM.href, POD_IPAM_OPTIONS: JSON.stringify(options) };
  delete env.NODE_OPTIONS; // whatever the test runner loads into itself, the worker needs none of it
  const child = spawn(process.execPath, ['--input-type=module', '-e', WORKER], { env, stdio: 'pipe' });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const queue: unknown[] = [];
  let waiter: { resolve: (v: unknown) => void; reject: (e: Error) => void } | undefined;
  let exit: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('close', (code) => {
      exit = new Error(`worker ${child.pid ?? '?'} exited with ${String(code)}: ${stderr}`);
      waiter?.reject(exit);
      resolve(code);
    });
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const msg: unknown = JSON.parse(line);
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w.resolve(msg);
    } else {
      queue.push(msg);
    }
  });
  return {
    child,
    next: () => {
      if (queue.length > 0) return Promise.resolve(queue.shift());
      if (exit) return Promise.reject(exit);
      return new Promise((resolve, reject) => (waiter = { resolve, reject }));
    },
    send: (cmd) => child.stdin.write(`${JSON.stringify(cmd)}\n`),
    end: () => {
      child.stdin.end();
      return exited;
    },
  };
}

const WORKERS = 16;
const PER_WORKER = 16;
const NET = 'concurrency';

describe('PodIpam across processes', () => {
  let root: string;
  let workers: Worker[] = [];
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'twill-pod-ipam-mp-'));
  });
  afterEach(() => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    workers = [];
    rmSync(root, { recursive: true, force: true });
  });

  const netDir = () => join(root, NET);
  const addressFiles = () => readdirSync(netDir()).filter((n) => isIPv4(n));
  const attachmentCount = () => readdirSync(join(netDir(), 'attachments'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;

  /** Starts the workers and waits until each has loaded the module and can take commands at once. */
  async function startAll(n: number): Promise<Worker[]> {
    workers = Array.from({ length: n }, () => startWorker({ dataDir: root, network: NET, subnet: '10.244.2.0/23' }));
    await Promise.all(workers.map((w) => w.next()));
    return workers;
  }

  it(`${WORKERS} processes allocating ${PER_WORKER} addresses each at once never share one; parallel releases leave nothing`, async () => {
    const all = await startAll(WORKERS);
    const ids = all.map((_, w) => Array.from({ length: PER_WORKER }, (__, i) => `w${w}-c${i}`));
    all.forEach((w, i) => w.send({ op: 'allocate', ids: ids[i]! }));
    const results = (await Promise.all(all.map((w) => w.next()))) as CallResult[][];

    const owners = new Map<string, string>();
    results.forEach((calls, w) => calls.forEach((call, i) => {
      expect(call.error, `${ids[w]![i]!}`).toBeUndefined();
      expect(owners.has(call.address!), `${call.address!} handed out twice`).toBe(false);
      owners.set(call.address!, ids[w]![i]!);
    }));
    expect(owners.size).toBe(WORKERS * PER_WORKER);
    // Never the network, gateway or broadcast address of the /23.
    for (const reserved of ['10.244.2.0', '10.244.2.1', '10.244.3.255']) expect(owners.has(reserved)).toBe(false);
    // On disk: exactly one file per allocation, naming its owner, and one attachment each.
    expect(addressFiles()).toHaveLength(owners.size);
    for (const [ip, id] of owners) expect(readFileSync(join(netDir(), ip), 'utf8')).toBe(`${id}\r\neth0`);
    expect(attachmentCount()).toBe(owners.size);

    all.forEach((w, i) => w.send({ op: 'release', ids: ids[i]! }));
    const releases = (await Promise.all(all.map((w) => w.next()))) as CallResult[][];
    releases.forEach((calls, w) => calls.forEach((call, i) => {
      const address = results[w]![i]!.address!;
      expect(call).toEqual({ released: [`${address}/23`] });
    }));
    expect(await Promise.all(all.map((w) => w.end()))).toEqual(all.map(() => 0));
    expect(addressFiles()).toEqual([]);
    expect(readdirSync(join(netDir(), 'attachments'))).toEqual([]);
  }, 60_000);

  it('lets exactly one of many processes claim the same attachment or the same requested address', async () => {
    const all = await startAll(8);
    // The same (containerId, ifname) from every process: one ADD wins, the rest are duplicates.
    all.forEach((w) => w.send({ op: 'allocate', ids: ['shared'] }));
    const dup = ((await Promise.all(all.map((w) => w.next()))) as CallResult[][]).map((r) => r[0]!);
    expect(dup.filter((r) => r.address !== undefined)).toHaveLength(1);
    expect(dup.filter((r) => r.error === 'DUPLICATE')).toHaveLength(all.length - 1);

    // The same requested address for different containers: one wins, the rest are told it is taken.
    all.forEach((w, i) => w.send({ op: 'allocate', ids: [`req${i}`], requested: '10.244.3.77' }));
    const req = ((await Promise.all(all.map((w) => w.next()))) as CallResult[][]).map((r) => r[0]!);
    expect(req.filter((r) => r.address === '10.244.3.77')).toHaveLength(1);
    expect(req.filter((r) => r.error === 'UNAVAILABLE')).toHaveLength(all.length - 1);

    // Losers left nothing behind: two addresses, two attachments.
    expect(addressFiles()).toHaveLength(2);
    expect(attachmentCount()).toBe(2);
    expect(await Promise.all(all.map((w) => w.end()))).toEqual(all.map(() => 0));
  }, 60_000);
});
