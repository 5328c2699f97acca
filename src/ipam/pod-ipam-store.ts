import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import { isIpv6Text, parseIp, parseIpv4Value } from '../core/ip.js';
import { validateIfname } from '../core/ifname.js';
import { NotRegularFileError, readRegularFile } from '../core/regular-file.js';
import { bytesToBigInt } from './ipv6.js';
import { errnoOf, ioError, PodIpamError } from './pod-ipam-errors.js';

/**
 * The pod allocator's files, one directory per CNI network, laid out like the reference
 * host-local plugin (plugins/ipam/host-local/backend/disk/backend.go) plus an attachments tree:
 *
 *   <dataDir>/<network>/<ip>                                "<containerId>\r\n<ifname>", O_EXCL
 *                                                           (IPv4 dotted quad or RFC 5952 IPv6)
 *   <dataDir>/<network>/last_reserved_ip.0                  round-robin hint, IPv4
 *   <dataDir>/<network>/last_reserved_ip.1                  round-robin hint, IPv6
 *   <dataDir>/<network>/attachments/<containerId>/<ifname>  JSON AttachmentRecord
 *
 * There is no lock: whoever creates a file with O_EXCL owns it, which holds across processes
 * (the CNI binary and the agent) as much as within one. Everything here is synchronous: the
 * files are tiny and a CNI ADD must take milliseconds, so thread-pool round trips would cost
 * more than the I/O itself. Files are read with O_NONBLOCK and only when they are regular files
 * (core/regular-file.ts): a FIFO dropped into the directory must not wedge the thread.
 *
 * Anything else found here (a directory named like an address, a file where a container's
 * directory belongs, a name no allocator writes) is a stray: it is reported to `onStray` and
 * skipped, so it can never make a DEL or a GC fail.
 */

/** The one owner of an address: a container's interface (the CNI "attachment" key). */
export interface Owner {
  readonly containerId: string;
  readonly ifname: string;
}

/** What `attachments/<containerId>/<ifname>` holds. */
export interface AttachmentRecord {
  readonly containerId: string;
  readonly ifname: string;
  /** The network namespace path the runtime gave (CNI_NETNS), when it gave one. */
  readonly netns?: string;
  /** CIDRs, e.g. "10.244.3.5/24"; empty while an ADD is between its two claims. */
  readonly ips: readonly string[];
  /** ISO 8601 time of the ADD. */
  readonly created: string;
  /**
   * Names the ADD that made the record. A rolled-back ADD undoes only its own attempt, so an ADD
   * that was given up on (a deadline) and wakes up later never frees what a retry allocated.
   */
  readonly attempt?: string;
}

/** One attachment file found by a listing: its record, or why it could not be read. */
export interface AttachmentEntry {
  readonly owner: Owner;
  readonly record?: AttachmentRecord;
  readonly error?: Error;
}

export interface AttachmentListing {
  readonly entries: AttachmentEntry[];
  /** Temporary files of attachment rewrites (left behind only by a crash). */
  readonly temps: string[];
  /** Directories that could not be read. */
  readonly errors: Error[];
}

export const LAST_RESERVED_FILE = 'last_reserved_ip.0';
/** The IPv6 round-robin hint (host-local numbers its hints by range set; flannel's IPv6 set is the second). */
export const LAST_RESERVED_FILE_IPV6 = 'last_reserved_ip.1';
const ATTACHMENTS_DIR = 'attachments';
// host-local's separator; it compares contents after trimming whitespace, and so do we.
const LINE_BREAK = '\r\n';
const FILE_MODE = 0o600;
// host-local creates its directories 0755 (os.MkdirAll(dir, 0755)).
const DIR_MODE = 0o755;
/** Longest file name Linux allows (NAME_MAX). */
const NAME_MAX = 255;

const NETWORK_NAME = /^[A-Za-z0-9_.-]{1,128}$/;
// CNI spec, CNI_CONTAINERID: "must start with an alphanumeric character, optionally followed by
// any combination of one or more alphanumeric characters, underscore, dot or hyphen". That makes
// it one path component that is never "." or "..".
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function checkNetworkName(name: string): string {
  if (typeof name !== 'string' || !NETWORK_NAME.test(name) || name === '.' || name === '..') {
    throw new InvalidArgumentError('CNI network name', name, 'must be 1 to 128 characters of A-Z, a-z, 0-9, "_", "." and "-", and not "." or ".."');
  }
  return name;
}

/**
 * The caller validates both names already; these checks repeat the part that keeps every path
 * inside the network's directory (no "/", no "." or "..", no empty name), as defence in depth.
 */
export function checkOwner(containerId: string, ifname: string): Owner {
  if (typeof containerId !== 'string' || !CONTAINER_ID.test(containerId) || containerId.length > NAME_MAX) {
    throw new InvalidArgumentError('container ID', containerId, `must be 1 to ${NAME_MAX} characters of A-Z, a-z, 0-9, "_", "." and "-", starting with a letter or digit`);
  }
  validateIfname(ifname);
  if (ifname.includes('\0')) throw new InvalidArgumentError('interface name', ifname, 'must not contain NUL');
  return { containerId, ifname };
}

/** The content of an address file: exactly what host-local writes. */
export function ownerText(owner: Owner): string {
  return `${owner.containerId}${LINE_BREAK}${owner.ifname}`;
}

/**
 * Reads an address file's content back. A file with no line break is what host-local wrote
 * before it recorded interface names: ifname is then "".
 */
export function parseOwnerText(text: string): Owner {
  const t = text.trim();
  const nl = t.indexOf('\n');
  if (nl < 0) return { containerId: t, ifname: '' };
  return { containerId: t.slice(0, nl).trimEnd(), ifname: t.slice(nl + 1).trim() };
}

/** Told about every stray entry skipped (see the file comment). */
export type StrayHandler = (err: PodIpamError) => void;

export function strayError(path: string, why: string): PodIpamError {
  return new PodIpamError('STRAY', `skipped ${path}: ${why}`);
}

export class PodIpamStore {
  /** `<dataDir>/<network>`. */
  readonly dir: string;
  private readonly attachmentsDir: string;

  constructor(dataDir: string, network: string, private readonly onStray: StrayHandler = () => undefined) {
    this.dir = join(dataDir, checkNetworkName(network));
    this.attachmentsDir = join(this.dir, ATTACHMENTS_DIR);
  }

  /** Reports a stray entry. */
  stray(err: PodIpamError): void {
    this.onStray(err);
  }

  // ---- address files ----

  addressPath(ip: string): string {
    return join(this.dir, ip);
  }

  /** Creates the address file for `owner`; false when it exists (someone else holds it). */
  claimAddress(ip: string, owner: Owner): boolean {
    return this.createExclusive(this.addressPath(ip), this.dir, ownerText(owner));
  }

  /**
   * The raw content of an address file, or undefined when there is none. An entry of that name
   * that is not a regular file throws PodIpamError STRAY.
   */
  readAddress(ip: string): string | undefined {
    return readFile(this.addressPath(ip));
  }

  /** Like readAddress, but a stray is reported and counts as no file. */
  readAddressOrSkip(ip: string): string | undefined {
    try {
      return this.readAddress(ip);
    } catch (err) {
      if (!(err instanceof PodIpamError) || err.code !== 'STRAY') throw err;
      this.stray(err);
      return undefined;
    }
  }

  holdsAddress(ip: string, owner: Owner): boolean {
    return this.readAddressOrSkip(ip)?.trim() === ownerText(owner);
  }

  /**
   * Removes the address file if it names `owner`, so a stale record never frees an address that
   * has since gone to someone else. (Between the read and the unlink the file could change hands
   * only if its owner released it and another ADD claimed it in that instant; host-local closes
   * that window with a lock, which we do without on purpose.)
   */
  releaseAddress(ip: string, owner: Owner): boolean {
    return this.removeAddressIf(ip, (text) => text.trim() === ownerText(owner));
  }

  /** Removes the address file if its content passes `test`; a stray of that name is skipped. */
  removeAddressIf(ip: string, test: (content: string) => boolean): boolean {
    const text = this.readAddressOrSkip(ip);
    return text !== undefined && test(text) && this.unlink(this.addressPath(ip));
  }

  /** Modification time of an address file (ms since the epoch), or undefined when it is gone. */
  addressMtimeMs(ip: string): number | undefined {
    const path = this.addressPath(ip);
    try {
      return statSync(path, { throwIfNoEntry: false })?.mtimeMs;
    } catch (err) {
      throw ioError('stat', path, err);
    }
  }

  /**
   * Names of every address file: canonical dotted quads and canonical (RFC 5952) IPv6 addresses,
   * nothing else (not `lock`, not hints). IPv4 first, each family in numeric order, so what a
   * scan releases is reported the same way every time.
   */
  listAddresses(): string[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return [];
      throw ioError('list', this.dir, err);
    }
    // Canonical dotted quads only ("010.1.1.1" is not one: its value is -1).
    const v4 = names
      .map((name) => ({ name, key: parseIpv4Value(name) }))
      .filter((a) => a.key >= 0)
      .sort((a, b) => a.key - b.key)
      .map((a) => a.name);
    const v6 = names
      .filter((name) => isCanonicalIpv6(name))
      .map((name) => ({ name, key: bytesToBigInt(parseIp(name).bytes) }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((a) => a.name);
    return [...v4, ...v6];
  }

  // ---- round-robin hint ----

  /** The last address handed out, as text; undefined when unknown. Never throws: it is a hint. */
  readLastReserved(file = LAST_RESERVED_FILE): string | undefined {
    try {
      return readRegularFile(join(this.dir, file)).trim();
    } catch {
      return undefined;
    }
  }

  /**
   * Records the address just handed out, like host-local (no newline). Overwritten in place and
   * then cut to length rather than opened with O_TRUNC: on ext4, truncating a file to zero and
   * rewriting it forces a block allocation (auto_da_alloc) that made this one write cost a
   * millisecond. A reader racing the write may see a mix of old and new text; it then starts at
   * the beginning of the range, which costs a few EEXIST retries and nothing else. A failed write
   * is ignored for the same reason: the address is claimed already.
   */
  writeLastReserved(ip: string, file = LAST_RESERVED_FILE): void {
    const path = join(this.dir, file);
    let fd: number | undefined;
    try {
      fd = openSync(path, 'r+');
    } catch {
      fd = undefined;
    }
    try {
      if (fd === undefined) {
        writeFileSync(path, ip, { mode: FILE_MODE });
      } else {
        writeSync(fd, ip, 0);
        ftruncateSync(fd, Buffer.byteLength(ip));
      }
    } catch {
      // only a hint
    } finally {
      if (fd !== undefined) closeQuietly(fd);
    }
  }

  // ---- attachments ----

  private containerDir(containerId: string): string {
    return join(this.attachmentsDir, containerId);
  }

  private attachmentPath(owner: Owner): string {
    return join(this.attachmentsDir, owner.containerId, owner.ifname);
  }

  /**
   * Claims the attachment with O_EXCL, writing `record` (ips still empty) into it. False when
   * (containerId, ifname) has an attachment already: this claim is what makes a repeated ADD fail
   * atomically, whichever process made the first one.
   */
  claimAttachment(record: AttachmentRecord): boolean {
    return this.createExclusive(this.attachmentPath(record), this.containerDir(record.containerId), JSON.stringify(record));
  }

  /** Replaces the attachment whole: a temporary file in the same directory, then rename(2). */
  writeAttachment(record: AttachmentRecord): void {
    const path = this.attachmentPath(record);
    // ":" never occurs in an interface name, so a listing can tell temporaries from attachments.
    const temp = `${path}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`;
    try {
      writeFileSync(temp, JSON.stringify(record), { mode: FILE_MODE, flag: 'wx' });
      renameSync(temp, path);
    } catch (err) {
      this.unlinkQuietly(temp);
      throw ioError('write', path, err);
    }
  }

  /**
   * The attachment of `owner`, undefined when there is none; throws PodIpamError IO if malformed,
   * STRAY if the entry is not a regular file.
   */
  readAttachment(owner: Owner): AttachmentRecord | undefined {
    const path = this.attachmentPath(owner);
    const text = readFile(path);
    if (text === undefined) return undefined;
    if (text === '') {
      // Claimed by O_EXCL an instant ago and not written yet: an ADD in progress, holding nothing.
      const mtime = statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
      return { containerId: owner.containerId, ifname: owner.ifname, ips: [], created: new Date(mtime).toISOString() };
    }
    return parseAttachment(text, owner, path);
  }

  /** Removes the attachment and, when it was the container's last, the container's directory. */
  removeAttachment(owner: Owner): boolean {
    const path = this.attachmentPath(owner);
    let removed: boolean;
    try {
      removed = this.unlink(path);
    } catch (err) {
      // A directory in the attachment's place (unlink(2) says EISDIR): a stray, not ours to remove.
      if (!(err instanceof PodIpamError) || errnoOf(err.cause) !== 'EISDIR') throw err;
      this.stray(strayError(path, 'a directory where an attachment file belongs'));
      return false;
    }
    const dir = this.containerDir(owner.containerId);
    try {
      rmdirSync(dir);
    } catch (err) {
      // ENOTEMPTY/EEXIST: another interface of the container, or an ADD that just created the
      // directory and is about to claim in it (it retries if we win). ENOENT: removed already.
      const code = errnoOf(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw ioError('remove', dir, err);
    }
    return removed;
  }

  /** Every attachment file, sorted by container ID then interface name. */
  listAttachments(): AttachmentListing {
    const entries: AttachmentEntry[] = [];
    const temps: string[] = [];
    const errors: Error[] = [];
    let ids: string[];
    try {
      ids = readdirSync(this.attachmentsDir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return { entries, temps, errors };
      throw ioError('list', this.attachmentsDir, err);
    }
    for (const containerId of ids.sort()) {
      const dir = this.containerDir(containerId);
      if (!CONTAINER_ID.test(containerId) || containerId.length > NAME_MAX) {
        this.stray(strayError(dir, 'not a container ID'));
        continue; // not ours: leave it alone
      }
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'ENOTDIR') this.stray(strayError(dir, 'a file where a container\'s directory belongs'));
        else if (code !== 'ENOENT') errors.push(ioError('list', dir, err));
        continue;
      }
      for (const ifname of names.sort()) {
        if (ifname.includes(':')) {
          temps.push(join(dir, ifname));
          continue;
        }
        let owner: Owner;
        try {
          owner = checkOwner(containerId, ifname);
        } catch {
          this.stray(strayError(join(dir, ifname), 'not an interface name'));
          continue; // not an attachment of ours
        }
        try {
          const record = this.readAttachment(owner);
          if (record) entries.push({ owner, record });
        } catch (err) {
          if (err instanceof PodIpamError && err.code === 'STRAY') this.stray(err);
          else entries.push({ owner, error: err instanceof Error ? err : ioError('read', join(dir, ifname), err) });
        }
      }
    }
    return { entries, temps, errors };
  }

  /** Removes a temporary file if it is older than `graceMs` (a rewrite may be using a new one). */
  removeStaleTemp(path: string, graceMs: number, now: number): boolean {
    try {
      const st = statSync(path, { throwIfNoEntry: false });
      return st !== undefined && now - st.mtimeMs >= graceMs && this.unlink(path);
    } catch (err) {
      throw ioError('remove', path, err);
    }
  }

  // ---- helpers ----

  /**
   * open(2) with O_CREAT|O_EXCL, then the content. False on EEXIST. A missing directory is
   * created and the open retried: on first use, or when a release removed a container's empty
   * attachment directory between our mkdir and our open.
   */
  private createExclusive(path: string, dir: string, content: string): boolean {
    for (let attempt = 0; ; attempt++) {
      let fd: number;
      try {
        fd = openSync(path, 'wx', FILE_MODE);
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'EEXIST') return false;
        if (code === 'ENOENT' && attempt < 3) {
          this.mkdir(dir);
          continue;
        }
        throw ioError('create', path, err);
      }
      try {
        writeFileSync(fd, content);
        closeSync(fd);
      } catch (err) {
        closeQuietly(fd);
        // The file is ours, half-written: remove it so it does not hold the name.
        this.unlinkQuietly(path);
        throw ioError('write', path, err);
      }
      return true;
    }
  }

  private mkdir(dir: string): void {
    try {
      mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    } catch (err) {
      throw ioError('create directory', dir, err);
    }
  }

  /** unlink(2): true when this call removed the file, false when it was gone already. */
  private unlink(path: string): boolean {
    try {
      unlinkSync(path);
      return true;
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return false;
      throw ioError('remove', path, err);
    }
  }

  private unlinkQuietly(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // best effort: undoing a step that failed already
    }
  }
}

/** An IPv6 address in the one text form the allocator names its files with. */
export function isCanonicalIpv6(name: string): boolean {
  return isIpv6Text(name) && parseIp(name).text === name;
}

/** A file's content; undefined when it does not exist. Never blocks (core/regular-file.ts). */
function readFile(path: string): string | undefined {
  try {
    return readRegularFile(path);
  } catch (err) {
    if (err instanceof NotRegularFileError) throw strayError(path, `a ${err.kind}, not a file`);
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw ioError('read', path, err);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // closed already, or the close itself failed: nothing more to do
  }
}

function parseAttachment(text: string, owner: Owner, path: string): AttachmentRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PodIpamError('IO', `malformed attachment ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const bad = (reason: string): PodIpamError => new PodIpamError('IO', `malformed attachment ${path}: ${reason}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not a JSON object');
  const v = value as Record<string, unknown>;
  if (v.containerId !== owner.containerId || v.ifname !== owner.ifname) throw bad('containerId and ifname do not match its path');
  const { ips, created, netns, attempt } = v;
  if (!Array.isArray(ips) || !ips.every((ip): ip is string => typeof ip === 'string')) throw bad('"ips" is not a list of strings');
  if (typeof created !== 'string') throw bad('"created" is not a string');
  if (netns !== undefined && typeof netns !== 'string') throw bad('"netns" is not a string');
  if (attempt !== undefined && typeof attempt !== 'string') throw bad('"attempt" is not a string');
  return {
    containerId: owner.containerId, ifname: owner.ifname, ...(netns === undefined ? {} : { netns }), ips: [...ips], created,
    ...(attempt === undefined ? {} : { attempt }),
  };
}
