import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/core/errors.js';
import { PodIpamError } from '../../src/ipam/pod-ipam-errors.js';
import { PodIpam, type PodIpamOptions } from '../../src/ipam/pod-ipam.js';
import { expectIpamError } from '../helpers/ipam.js';

const NET = 'twill-test';

describe('PodIpam', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'twill-pod-ipam-'));
  });
  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const make = (opts: Partial<PodIpamOptions> = {}) => new PodIpam({ dataDir: root, network: NET, subnet: '10.244.3.0/24', ...opts });
  const netDir = () => join(root, NET);
  const lastOctet = (ip: string) => Number(ip.split('.')[3]);
  /** Address files, in numeric order. */
  const addressFiles = () => (existsSync(netDir()) ? readdirSync(netDir()).filter((n) => isIPv4(n)).sort((a, b) => lastOctet(a) - lastOctet(b)) : []);
  const attachmentPath = (id: string, ifname: string) => join(netDir(), 'attachments', id, ifname);
  /** Every file under the network directory with its content: a snapshot to compare. */
  const snapshot = (dir = netDir()): Record<string, string> => {
    const out: Record<string, string> = {};
    if (!existsSync(dir)) return out;
    for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (e.isFile()) out[join(e.parentPath, e.name).slice(dir.length)] = readFileSync(join(e.parentPath, e.name), 'utf8');
    }
    return out;
  };

  describe('allocation', () => {
    it('hands out addresses in order, round-robin after the last one, wrapping around', () => {
      const ipam = make({ subnet: '10.244.3.0/29' });
      const got = (id: string) => ipam.allocate({ containerId: id, ifname: 'eth0' }).address;
      expect([got('a'), got('b'), got('c')]).toEqual(['10.244.3.2', '10.244.3.3', '10.244.3.4']);
      expect(ipam.release('b', 'eth0')).toEqual(['10.244.3.3/29']);
      // .3 is free again, but round-robin carries on after .4 first (host-local does the same).
      expect(got('d')).toBe('10.244.3.5');
      expect(readFileSync(join(netDir(), 'last_reserved_ip.0'), 'utf8')).toBe('10.244.3.5');
      expect(got('e')).toBe('10.244.3.6');
      expect(got('f')).toBe('10.244.3.3'); // wrapped, skipping the gateway .1 and the taken .2
      expect(addressFiles()).toEqual(['10.244.3.2', '10.244.3.3', '10.244.3.4', '10.244.3.5', '10.244.3.6']);
    });

    it('never hands out the network, gateway or broadcast address', () => {
      const ipam = make({ subnet: '10.244.3.0/29' });
      const all = [1, 2, 3, 4, 5].map((i) => ipam.allocate({ containerId: `c${i}`, ifname: 'eth0' }));
      expect(all.map((a) => a.address)).toEqual(['10.244.3.2', '10.244.3.3', '10.244.3.4', '10.244.3.5', '10.244.3.6']);
      expect(all[0]).toEqual({ address: '10.244.3.2', cidr: '10.244.3.2/29', gateway: '10.244.3.1', attempt: expect.stringMatching(/^[0-9a-f]{12}$/) });
      expectIpamError(() => ipam.allocate({ containerId: 'c6', ifname: 'eth0' }), 'EXHAUSTED', /^no free address in 10\.244\.3\.0\/29 \(5 in use\)$/);
      // The failed ADD left nothing behind: no attachment, no extra address.
      expect(ipam.get('c6', 'eth0')).toBeUndefined();
      expect(existsSync(join(netDir(), 'attachments', 'c6'))).toBe(false);
      expect(addressFiles()).toHaveLength(5);
    });

    it('offers only .2 in a /30, like host-local, and skips a gateway given elsewhere in the range', () => {
      const small = make({ subnet: '10.9.0.0/30', network: 'small' });
      expect(small.allocate({ containerId: 'a', ifname: 'eth0' }).address).toBe('10.9.0.2');
      expectIpamError(() => small.allocate({ containerId: 'b', ifname: 'eth0' }), 'EXHAUSTED', /10\.9\.0\.0\/30 \(1 in use\)/);

      const gw6 = make({ subnet: '10.9.1.0/29', gateway: '10.9.1.6', network: 'gw6' });
      expect(gw6.gateway).toBe('10.9.1.6');
      const got = [1, 2, 3, 4, 5].map((i) => gw6.allocate({ containerId: `c${i}`, ifname: 'eth0' }));
      expect(got.map((a) => a.address)).toEqual(['10.9.1.1', '10.9.1.2', '10.9.1.3', '10.9.1.4', '10.9.1.5']);
      expect(got[0]!.gateway).toBe('10.9.1.6');
      expectIpamError(() => gw6.allocate({ containerId: 'c6', ifname: 'eth0' }), 'EXHAUSTED');
    });

    it('writes host-local\'s address file format (0600) and a JSON attachment', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'abc123', ifname: 'eth0', netns: '/var/run/netns/pod1' });
      const file = join(netDir(), '10.244.3.2');
      expect(readFileSync(file, 'utf8')).toBe('abc123\r\neth0');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const raw: unknown = JSON.parse(readFileSync(attachmentPath('abc123', 'eth0'), 'utf8'));
      expect(raw).toEqual({ containerId: 'abc123', ifname: 'eth0', netns: '/var/run/netns/pod1', ips: ['10.244.3.2/24'], created: expect.any(String), attempt: expect.any(String) });
      expect(Number.isNaN(Date.parse((raw as { created: string }).created))).toBe(false);
      expect(statSync(attachmentPath('abc123', 'eth0')).mode & 0o777).toBe(0o600);
      // No temporary file is left next to the attachment.
      expect(readdirSync(join(netDir(), 'attachments', 'abc123'))).toEqual(['eth0']);
    });

    it('refuses a repeated ADD for the same container and interface, changing nothing', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'abc', ifname: 'eth0' });
      const before = snapshot();
      expectIpamError(() => ipam.allocate({ containerId: 'abc', ifname: 'eth0' }), 'DUPLICATE',
        /^container abc interface eth0 already has 10\.244\.3\.2\/24 \(a repeated ADD needs a DEL first\)$/);
      expectIpamError(() => ipam.allocate({ containerId: 'abc', ifname: 'eth0', requested: '10.244.3.50' }), 'DUPLICATE');
      expect(snapshot()).toEqual(before);
    });

    it('gives a second interface of the same container its own address', () => {
      const ipam = make();
      const a = ipam.allocate({ containerId: 'abc', ifname: 'eth0' });
      const b = ipam.allocate({ containerId: 'abc', ifname: 'net1' });
      expect(a.address).not.toBe(b.address);
      expect(ipam.get('abc', 'eth0')?.ips).toEqual([a.cidr]);
      expect(ipam.get('abc', 'net1')?.ips).toEqual([b.cidr]);
      expect(ipam.release('abc', 'eth0')).toEqual([a.cidr]);
      // The container's directory stays while net1 lives in it, and goes with the last interface.
      expect(ipam.get('abc', 'net1')?.ips).toEqual([b.cidr]);
      expect(ipam.release('abc', 'net1')).toEqual([b.cidr]);
      expect(existsSync(join(netDir(), 'attachments', 'abc'))).toBe(false);
    });

    it('tolerates a missing, garbage or foreign last_reserved_ip.0', () => {
      const ipam = make();
      mkdirSync(netDir(), { recursive: true });
      const hint = join(netDir(), 'last_reserved_ip.0');
      const cases: [string, string][] = [
        ['garbage\n', '10.244.3.2'],
        ['', '10.244.3.3'],
        ['10.9.9.9', '10.244.3.4'], // not in this subnet: start at the beginning
        ['10.244.3.254', '10.244.3.5'], // the last candidate: wrap to the beginning
        ['10.244.3.100\n', '10.244.3.101'],
        ['10.244.3.0', '10.244.3.6'],
      ];
      cases.forEach(([text, expected], i) => {
        writeFileSync(hint, text);
        expect(ipam.allocate({ containerId: `c${i}`, ifname: 'eth0' }).address).toBe(expected);
      });
      unlinkSync(hint);
      expect(ipam.allocate({ containerId: 'last', ifname: 'eth0' }).address).toBe('10.244.3.7');
    });
  });

  describe('requested addresses', () => {
    it('gives the address asked for, with or without the prefix length', () => {
      const ipam = make();
      expect(ipam.allocate({ containerId: 'a', ifname: 'eth0', requested: '10.244.3.77' }).cidr).toBe('10.244.3.77/24');
      expect(ipam.allocate({ containerId: 'b', ifname: 'eth0', requested: '10.244.3.78/24' }).cidr).toBe('10.244.3.78/24');
      expect(ipam.allocate({ containerId: 'c', ifname: 'eth0', requested: '10.244.3.2' }).cidr).toBe('10.244.3.2/24');
    });

    it('refuses one that is taken (UNAVAILABLE, naming the holder) and leaves no attachment', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'a', ifname: 'eth0', requested: '10.244.3.77' });
      const before = snapshot();
      expectIpamError(() => ipam.allocate({ containerId: 'b', ifname: 'eth0', requested: '10.244.3.77' }), 'UNAVAILABLE',
        /requested address 10\.244\.3\.77 in 10\.244\.3\.0\/24 is taken by container a interface eth0/);
      expect(ipam.get('b', 'eth0')).toBeUndefined();
      expect(snapshot()).toEqual(before);
    });

    it('rejects addresses outside the subnet, its network, broadcast and gateway addresses, creating nothing', () => {
      const ipam = make();
      const cases: [string, RegExp][] = [
        ['10.244.4.5', /outside the subnet 10\.244\.3\.0\/24/],
        ['10.244.3.0', /network address/],
        ['10.244.3.255', /broadcast address/],
        ['10.244.3.1', /gateway/],
        ['10.244.3.5/16', /prefix length must be \/24/],
        ['fd00::5', /IPv4/],
        ['10.244.3.300', /not an IPv4 or IPv6 address/],
      ];
      for (const [requested, reason] of cases) {
        expect(() => ipam.allocate({ containerId: 'a', ifname: 'eth0', requested }), requested).toThrow(InvalidArgumentError);
        expect(() => ipam.allocate({ containerId: 'a', ifname: 'eth0', requested }), requested).toThrow(reason);
      }
      expect(existsSync(netDir())).toBe(false);
    });
  });

  describe('release', () => {
    it('returns the released CIDRs, then [] when repeated or when nothing was ever there', () => {
      const ipam = make();
      expect(ipam.release('never', 'eth0')).toEqual([]); // the directory does not even exist
      const { cidr } = ipam.allocate({ containerId: 'abc', ifname: 'eth0' });
      expect(ipam.release('abc', 'eth0')).toEqual([cidr]);
      expect(ipam.release('abc', 'eth0')).toEqual([]);
      expect(addressFiles()).toEqual([]);
      expect(readdirSync(join(netDir(), 'attachments'))).toEqual([]);
      expect(ipam.get('abc', 'eth0')).toBeUndefined();
    });

    it('removes only address files that name this owner', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'abc', ifname: 'eth0' });
      // The address changed hands behind the attachment's back (it must never be freed by abc).
      writeFileSync(join(netDir(), '10.244.3.2'), 'other\r\neth0');
      expect(ipam.release('abc', 'eth0')).toEqual([]);
      expect(readFileSync(join(netDir(), '10.244.3.2'), 'utf8')).toBe('other\r\neth0');
      expect(ipam.get('abc', 'eth0')).toBeUndefined();
    });

    it('finds the addresses by scanning when the attachment is missing, lists none or is malformed', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'abc', ifname: 'eth0' });
      ipam.allocate({ containerId: 'other', ifname: 'eth0' });
      unlinkSync(attachmentPath('abc', 'eth0'));
      expect(ipam.release('abc', 'eth0')).toEqual(['10.244.3.2/24']);
      expect(addressFiles()).toEqual(['10.244.3.3']);

      // A crash between the attachment claim and its rewrite: the placeholder lists no address.
      const c = ipam.allocate({ containerId: 'crashed', ifname: 'eth0' });
      writeFileSync(attachmentPath('crashed', 'eth0'), JSON.stringify({ containerId: 'crashed', ifname: 'eth0', ips: [], created: new Date().toISOString() }));
      expect(ipam.release('crashed', 'eth0')).toEqual([c.cidr]);

      // Killed right after the O_EXCL open: an empty attachment file.
      const d = ipam.allocate({ containerId: 'empty', ifname: 'eth0' });
      writeFileSync(attachmentPath('empty', 'eth0'), '');
      expect(ipam.get('empty', 'eth0')).toMatchObject({ containerId: 'empty', ifname: 'eth0', ips: [] });
      expect(ipam.release('empty', 'eth0')).toEqual([d.cidr]);

      const e = ipam.allocate({ containerId: 'garbled', ifname: 'eth0' });
      writeFileSync(attachmentPath('garbled', 'eth0'), '{"containerId":');
      expect(ipam.release('garbled', 'eth0')).toEqual([e.cidr]);
      expect(existsSync(join(netDir(), 'attachments', 'garbled'))).toBe(false);
      expect(addressFiles()).toEqual(['10.244.3.3']);
    });

    it('works without a subnet (the lease may be gone), as do get, holds, list and gc', () => {
      const { cidr } = make().allocate({ containerId: 'abc', ifname: 'eth0' });
      make().allocate({ containerId: 'orphan', ifname: 'eth0' });
      unlinkSync(attachmentPath('orphan', 'eth0'));
      const bare = new PodIpam({ dataDir: root, network: NET });
      expect(bare.subnet).toBeUndefined();
      expect(bare.holds('abc', 'eth0', '10.244.3.2')).toBe(true);
      expect(bare.list().map((a) => a.containerId)).toEqual(['abc']);
      expect(() => bare.allocate({ containerId: 'x', ifname: 'eth0' })).toThrow(/pod subnet undefined: is needed to allocate/);
      expect(bare.release('abc', 'eth0')).toEqual([cidr]);
      // With no subnet to give the length, an address found by scanning is reported as a /32.
      expect(bare.gc([]).released).toMatchObject([{ containerId: 'orphan', ifname: 'eth0', ips: ['10.244.3.3/32'] }]);
    });
  });

  describe('attempts', () => {
    it('an ADD undoing itself releases only its own attempt, never what a later one allocated', () => {
      const ipam = make();
      const first = ipam.allocate({ containerId: 'ctr', ifname: 'eth0' });
      expect(ipam.release('ctr', 'eth0')).toEqual([first.cidr]); // the runtime's DEL
      const second = ipam.allocate({ containerId: 'ctr', ifname: 'eth0' });
      expect(second.attempt).not.toBe(first.attempt);
      expect(ipam.release('ctr', 'eth0', first.attempt)).toEqual([]); // the first ADD's late undo
      expect(ipam.get('ctr', 'eth0')?.ips).toEqual([second.cidr]);
      expect(ipam.holds('ctr', 'eth0', second.address)).toBe(true);
      expect(ipam.release('ctr', 'eth0', second.attempt)).toEqual([second.cidr]);
      expect(ipam.get('ctr', 'eth0')).toBeUndefined();
    });
  });

  describe('stray entries', () => {
    it('skips directories, FIFOs and foreign names with a report, never blocking or failing a release, GC or reconcile', async () => {
      const strays: string[] = [];
      const ipam = make({ onStray: (err) => strays.push(err.message) });
      const kept = ipam.allocate({ containerId: 'keep', ifname: 'eth0' });
      const dirLikeAddress = join(netDir(), '10.244.3.9');
      const fifoLikeAddress = join(netDir(), '10.244.3.10');
      mkdirSync(dirLikeAddress);
      execFileSync('mkfifo', [fifoLikeAddress]);
      rmSync(join(netDir(), 'last_reserved_ip.0'));
      execFileSync('mkfifo', [join(netDir(), 'last_reserved_ip.0')]);
      mkdirSync(join(netDir(), 'attachments', 'bad name!'));
      writeFileSync(join(netDir(), 'attachments', 'a-file'), '');
      mkdirSync(attachmentPath('ctr', 'eth0'), { recursive: true });
      // Reading a FIFO without O_NONBLOCK waits for a writer: this one opens them now and then,
      // so code that does would be slow and wrong rather than hang the test run.
      const unblock = spawn(process.execPath, ['-e', `const fs = require('fs'); setInterval(() => { for (const f of ${JSON.stringify([fifoLikeAddress, join(netDir(), 'last_reserved_ip.0')])}) { try { fs.closeSync(fs.openSync(f, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)); } catch {} } }, 100);`], { stdio: 'ignore' });
      try {
        expect(ipam.allocate({ containerId: 'new', ifname: 'eth0' }).address).toBe('10.244.3.3'); // the hint is a FIFO: from the start
        expect(ipam.release('gone', 'eth0')).toEqual([]); // no attachment: every address file is scanned
        expect(ipam.release('ctr', 'eth0')).toEqual([]); // its attachment is a directory
        expect(ipam.gc([{ containerId: 'keep', ifname: 'eth0' }, { containerId: 'new', ifname: 'eth0' }]).errors).toEqual([]);
        expect(ipam.reconcile({ orphanGraceMs: 0 }).errors).toEqual([]);
      } finally {
        unblock.kill();
      }
      expect(ipam.holds('keep', 'eth0', kept.address)).toBe(true);
      // Strays are not ours to remove.
      for (const path of [dirLikeAddress, fifoLikeAddress, attachmentPath('ctr', 'eth0'), join(netDir(), 'attachments', 'bad name!')]) expect(existsSync(path), path).toBe(true);
      expect(strays).toEqual(expect.arrayContaining([
        expect.stringMatching(/10\.244\.3\.9: a directory, not a file$/),
        expect.stringMatching(/10\.244\.3\.10: a FIFO, not a file$/),
        expect.stringMatching(/bad name!: not a container ID$/),
        expect.stringMatching(/a-file: a file where a container's directory belongs$/),
        expect.stringMatching(/ctr\/eth0: a directory, not a file$/),
      ]));
    });
  });

  describe('get, holds, list', () => {
    it('reads attachments back and checks address ownership', () => {
      const ipam = make();
      const a = ipam.allocate({ containerId: 'b-pod', ifname: 'eth0', netns: '/proc/1/ns/net' });
      const b = ipam.allocate({ containerId: 'a-pod', ifname: 'eth0' });
      expect(ipam.get('b-pod', 'eth0')).toEqual({ containerId: 'b-pod', ifname: 'eth0', netns: '/proc/1/ns/net', ips: [a.cidr], created: expect.any(String), attempt: a.attempt });
      expect(ipam.get('b-pod', 'eth1')).toBeUndefined();
      expect(ipam.get('nobody', 'eth0')).toBeUndefined();

      expect(ipam.holds('b-pod', 'eth0', a.address)).toBe(true);
      expect(ipam.holds('b-pod', 'eth0', a.cidr)).toBe(true);
      expect(ipam.holds('b-pod', 'eth0', b.address)).toBe(false);
      expect(ipam.holds('b-pod', 'eth1', a.address)).toBe(false);
      expect(ipam.holds('b-pod', 'eth0', '10.244.3.99')).toBe(false);
      expect(() => ipam.holds('b-pod', 'eth0', 'nonsense')).toThrow(InvalidArgumentError);

      expect(ipam.list().map((r) => [r.containerId, r.ips])).toEqual([['a-pod', [b.cidr]], ['b-pod', [a.cidr]]]);
    });

    it('reports malformed attachment files instead of throwing, and skips foreign names', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'good', ifname: 'eth0' });
      mkdirSync(join(netDir(), 'attachments', 'bad'));
      writeFileSync(attachmentPath('bad', 'eth0'), 'not json');
      writeFileSync(attachmentPath('bad', 'eth1'), JSON.stringify({ containerId: 'someone-else', ifname: 'eth1', ips: [], created: '' }));
      mkdirSync(join(netDir(), 'attachments', '.hidden'));
      writeFileSync(join(netDir(), 'attachments', 'README'), 'not a directory');
      const errors: Error[] = [];
      expect(ipam.list((err) => errors.push(err)).map((r) => r.containerId)).toEqual(['good']);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/malformed attachment .*bad\/eth0: /),
        expect.stringMatching(/malformed attachment .*bad\/eth1: containerId and ifname do not match its path/),
      ]);
      expect(ipam.list().map((r) => r.containerId)).toEqual(['good']);
      expect(() => ipam.get('bad', 'eth0')).toThrow(PodIpamError);
    });
  });

  describe('gc', () => {
    it('keeps valid attachments, hints and foreign files; releases everything else', () => {
      const ipam = make();
      const keep = ipam.allocate({ containerId: 'keep', ifname: 'eth0' });
      const keep2 = ipam.allocate({ containerId: 'keep', ifname: 'net1' });
      const gone = ipam.allocate({ containerId: 'gone', ifname: 'eth0' });
      const goneIf = ipam.allocate({ containerId: 'keep', ifname: 'net2' }); // the container stays, this interface does not
      // An address file without any attachment (a crash, or host-local).
      writeFileSync(join(netDir(), '10.244.3.200'), 'leaked\r\neth0');
      writeFileSync(join(netDir(), 'lock'), '');
      writeFileSync(join(netDir(), 'last_reserved_ip.1'), '10.244.3.9');

      const { released, errors } = ipam.gc([{ containerId: 'keep', ifname: 'eth0' }, { containerId: 'keep', ifname: 'net1' }]);
      expect(errors).toEqual([]);
      expect(released).toEqual([
        { containerId: 'gone', ifname: 'eth0', ips: [gone.cidr], created: expect.any(String), attempt: gone.attempt },
        { containerId: 'keep', ifname: 'net2', ips: [goneIf.cidr], created: expect.any(String), attempt: goneIf.attempt },
        { containerId: 'leaked', ifname: 'eth0', ips: ['10.244.3.200/24'], created: expect.any(String) },
      ]);
      expect(ipam.list().map((r) => `${r.containerId}/${r.ifname}`)).toEqual(['keep/eth0', 'keep/net1']);
      expect(readdirSync(netDir()).sort()).toEqual(['10.244.3.2', '10.244.3.3', 'attachments', 'last_reserved_ip.0', 'last_reserved_ip.1', 'lock']);
      expect(ipam.holds('keep', 'eth0', keep.address) && ipam.holds('keep', 'net1', keep2.address)).toBe(true);
      expect(readdirSync(join(netDir(), 'attachments'))).toEqual(['keep']);
    });

    it('releases a malformed attachment that is not valid and reports one that is', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'bad', ifname: 'eth0' });
      ipam.allocate({ containerId: 'badkeep', ifname: 'eth0' });
      writeFileSync(attachmentPath('bad', 'eth0'), '{');
      writeFileSync(attachmentPath('badkeep', 'eth0'), '{');
      const { released, errors } = ipam.gc([{ containerId: 'badkeep', ifname: 'eth0' }]);
      expect(released).toMatchObject([{ containerId: 'bad', ifname: 'eth0', ips: ['10.244.3.2/24'] }]);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toMatch(/badkeep/);
      expect(addressFiles()).toEqual(['10.244.3.3']);
    });

    it('does nothing, without error, when the network directory does not exist', () => {
      expect(make().gc([])).toEqual({ released: [], errors: [] });
    });
  });

  describe('reconcile', () => {
    it('releases attachments whose netns is gone, keeps live ones and those without a netns', () => {
      const ipam = make();
      const live = join(root, 'netns-live');
      const dead = join(root, 'netns-dead');
      writeFileSync(live, '');
      writeFileSync(dead, '');
      ipam.allocate({ containerId: 'live', ifname: 'eth0', netns: live });
      const d = ipam.allocate({ containerId: 'dead', ifname: 'eth0', netns: dead });
      ipam.allocate({ containerId: 'nons', ifname: 'eth0' });
      unlinkSync(dead);
      const { released, errors } = ipam.reconcile();
      expect(errors).toEqual([]);
      expect(released).toEqual([{ containerId: 'dead', ifname: 'eth0', netns: dead, ips: [d.cidr], created: expect.any(String), attempt: d.attempt }]);
      expect(ipam.list().map((r) => r.containerId)).toEqual(['live', 'nons']);
      expect(addressFiles()).toEqual(['10.244.3.2', '10.244.3.4']);
    });

    it('releases old address files no attachment lists, but not young ones (an ADD in progress)', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'pod', ifname: 'eth0' });
      const old = join(netDir(), '10.244.3.100');
      writeFileSync(old, 'crashed\r\neth0');
      const past = new Date(Math.floor(Date.now() / 1000) * 1000 - 120_000); // whole seconds: utimes may round finer parts
      utimesSync(old, past, past);
      writeFileSync(join(netDir(), '10.244.3.101'), 'adding\r\neth0');
      // Listed by an attachment, but not its owner's: an orphan too.
      const stolen = join(netDir(), '10.244.3.2');
      writeFileSync(stolen, 'thief\r\neth0');
      utimesSync(stolen, past, past);

      const { released, errors } = ipam.reconcile({ netnsExists: () => true });
      expect(errors).toEqual([]);
      expect(released).toEqual([
        { containerId: 'thief', ifname: 'eth0', ips: ['10.244.3.2/24'], created: past.toISOString() },
        { containerId: 'crashed', ifname: 'eth0', ips: ['10.244.3.100/24'], created: past.toISOString() },
      ]);
      expect(addressFiles()).toEqual(['10.244.3.101']);
      // With no grace at all, the young one goes too.
      expect(ipam.reconcile({ orphanGraceMs: 0 }).released.map((r) => r.containerId)).toEqual(['adding']);
      expect(() => ipam.reconcile({ orphanGraceMs: -1 })).toThrow(InvalidArgumentError);
    });

    it('keeps the addresses of an owner whose attachment cannot be read, and reports it', () => {
      const ipam = make();
      ipam.allocate({ containerId: 'pod', ifname: 'eth0' });
      writeFileSync(attachmentPath('pod', 'eth0'), '[]');
      const { released, errors } = ipam.reconcile({ orphanGraceMs: 0 });
      expect(released).toEqual([]);
      expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/malformed attachment .*not a JSON object/)]);
      expect(addressFiles()).toEqual(['10.244.3.2']);
    });
  });

  describe('argument checks', () => {
    it('rejects names that could leave the data directory, creating nothing', () => {
      const ipam = make();
      const ids = ['../x', 'a/b', '', '.', '..', '-leading-dash', 'a\nb', 'x'.repeat(256)];
      const ifnames = ['../x', 'a/b', '', '.', '..', 'eth 0', 'a:b', 'x'.repeat(16)];
      for (const id of ids) {
        expect(() => ipam.allocate({ containerId: id, ifname: 'eth0' }), JSON.stringify(id)).toThrow(InvalidArgumentError);
        expect(() => ipam.release(id, 'eth0'), JSON.stringify(id)).toThrow(InvalidArgumentError);
        expect(() => ipam.get(id, 'eth0'), JSON.stringify(id)).toThrow(InvalidArgumentError);
      }
      for (const ifname of ifnames) {
        expect(() => ipam.allocate({ containerId: 'abc', ifname }), JSON.stringify(ifname)).toThrow(InvalidArgumentError);
        expect(() => ipam.release('abc', ifname), JSON.stringify(ifname)).toThrow(InvalidArgumentError);
        expect(() => ipam.holds('abc', ifname, '10.244.3.2'), JSON.stringify(ifname)).toThrow(InvalidArgumentError);
      }
      for (const network of ['../x', 'a/b', '', '.', '..', 'x'.repeat(129), 'net work']) {
        expect(() => make({ network }), JSON.stringify(network)).toThrow(InvalidArgumentError);
      }
      expect(readdirSync(root)).toEqual([]);
    });

    it('validates the subnet and gateway', () => {
      const bad: [Partial<PodIpamOptions>, RegExp][] = [
        [{ subnet: '10.244.3.1/24' }, /host bits are set/],
        [{ subnet: '10.244.3.0/31' }, /at most 30/],
        [{ subnet: 'fd00::/64' }, /IPv4/],
        [{ subnet: '10.244.3.0' }, /missing "\/prefix-length"/],
        [{ gateway: '10.244.4.1' }, /must be a host address of 10\.244\.3\.0\/24/],
        [{ gateway: '10.244.3.255' }, /must be a host address/],
        [{ gateway: '10.244.3.0' }, /must be a host address/],
        [{ subnet: undefined, gateway: '10.244.3.1' }, /needs a subnet/],
        [{ dataDir: '' }, /data directory/],
      ];
      for (const [opts, reason] of bad) expect(() => make(opts), JSON.stringify(opts)).toThrow(reason);
      expect(make({ subnet: '10.244.3.0/24' })).toMatchObject({ subnet: '10.244.3.0/24', gateway: '10.244.3.1' });
    });
  });
});
