import { closeSync, fstatSync, openSync, readFileSync, constants as fsc, type Stats } from 'node:fs';
import { TwillError } from './errors.js';

/**
 * Reading a file whose path comes from outside (a CNI config, a data directory anyone with write
 * access could have put a FIFO in) without ever blocking: readFileSync() on a FIFO waits for a
 * writer forever, which wedges the thread it runs on. The file is opened with O_NONBLOCK (a
 * FIFO's open then returns at once) and read only when fstat(2) says it is a regular file. The
 * same system calls as readFileSync(), so it costs nothing on a hot path.
 */

/** The file at the path is not a regular file (a directory, FIFO, socket or device). */
export class NotRegularFileError extends TwillError {
  constructor(readonly path: string, readonly kind: string) {
    super('ENOTREG', `${path} is a ${kind}, not a regular file`);
  }
}

/** What a file is, in words: "directory", "FIFO"... for messages. */
export function fileKind(st: Stats): string {
  if (st.isFile()) return 'regular file';
  if (st.isDirectory()) return 'directory';
  if (st.isFIFO()) return 'FIFO';
  if (st.isSocket()) return 'socket';
  if (st.isSymbolicLink()) return 'symbolic link';
  if (st.isCharacterDevice()) return 'character device';
  if (st.isBlockDevice()) return 'block device';
  return 'special file';
}

/**
 * The content of the regular file at `path`. Throws the usual ENOENT/EACCES errors, and
 * NotRegularFileError for anything but a regular file (symbolic links are followed).
 */
export function readRegularFile(path: string): string {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK | fsc.O_NOCTTY);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NotRegularFileError(path, fileKind(st));
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}
