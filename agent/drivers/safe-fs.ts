// Safe file primitives for root acting in folders a less privileged user can reach: resolve beneath a directory descriptor without following symlinks, create with O_EXCL and unpredictable names, change owner and mode on the descriptor, read only small regular files.
//
// KubeVirt's pkg/safepath does the same for virt-handler inside launcher pods. Paths below a directory descriptor
// are resolved by openat2(2) (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, plus RESOLVE_NO_SYMLINKS unless relative links
// that stay beneath are wanted) where the kernel has it (5.6+), else component by component with
// openat(O_PATH | O_NOFOLLOW), reading each symlink's text with readlinkat. A single name needs neither: openat
// with O_NOFOLLOW is enough. Every call is synchronous (small files, the calling thread), and descriptors are raw
// numbers that node's fs functions (fstatSync, readSync, writeSync, fchmodSync, fchownSync, closeSync) accept.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, writeSync, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import koffi from 'koffi';

export const O_RDONLY = constants.O_RDONLY;
export const O_WRONLY = constants.O_WRONLY;
export const O_RDWR = constants.O_RDWR;
export const O_CREAT = constants.O_CREAT;
export const O_EXCL = constants.O_EXCL;
export const O_TRUNC = constants.O_TRUNC;
export const O_APPEND = constants.O_APPEND;
export const O_NONBLOCK = constants.O_NONBLOCK;
const O_NOCTTY = constants.O_NOCTTY;
export const O_DIRECTORY = constants.O_DIRECTORY;
export const O_NOFOLLOW = constants.O_NOFOLLOW;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;
const AT_REMOVEDIR = 0x200;
const SYS_OPENAT2 = 437; // the same number on x86-64, arm64 and s390x
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
/** Symlinks followed in one resolution (the kernel's own limit, MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * How symlinks below the directory are treated:
 * - `no-symlinks`: none is followed, anywhere on the path (ELOOP);
 * - `beneath`: relative symlinks are followed while they stay below the directory (the kubelet's downward-API files
 *   are `name -> ..data/name`); an absolute one, or one climbing above the directory, is refused (EXDEV).
 * Magic links (/proc/PID/fd/N, /proc/PID/root) are never followed.
 */
export type Resolve = 'no-symlinks' | 'beneath';

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, value]) => [value, name]));

/** A refused or failed operation: the errno name and a one-line reason naming the path. */
export class SafeFsError extends Error {
  constructor(
    readonly code: string,
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'SafeFsError';
  }
}

function reasonOf(code: string, resolve: Resolve | 'single'): string {
  switch (code) {
    case 'ELOOP':
      return resolve === 'beneath' ? 'too many symbolic links' : 'is or passes through a symbolic link (not followed)';
    case 'EXDEV':
      return 'leads outside the directory it is read beneath (not followed)';
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'a component is not a directory';
    case 'EEXIST':
      return 'already exists';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      return `failed (${code})`;
  }
}

interface Calls {
  openat(dirfd: number, path: string, flags: number, mode: number): number;
  openat2(dirfd: number, path: string, how: Buffer, size: number): number;
  mkdirat(dirfd: number, path: string, mode: number): number;
  unlinkat(dirfd: number, path: string, flags: number): number;
  renameat(olddirfd: number, oldpath: string, newdirfd: number, newpath: string): number;
  readlinkat(dirfd: number, path: string, buf: Buffer, size: number): number;
}

let calls: Calls | undefined;

/** libc through koffi, loaded on first use. */
function libc(): Calls {
  if (calls !== undefined) return calls;
  const lib = koffi.load('libc.so.6');
  // openat and syscall are variadic in C; declared with fixed arguments, which on Linux x86-64, arm64 and s390x travel
  // in the same registers (glibc's syscall() is assembly that only moves them into place).
  calls = {
    openat: lib.func('openat', 'int', ['int', 'str', 'int', 'uint']) as Calls['openat'],
    openat2: lib.func('syscall', 'long', ['long', 'int', 'str', 'void *', 'size_t']).bind(null, SYS_OPENAT2) as Calls['openat2'],
    mkdirat: lib.func('int mkdirat(int dirfd, str path, uint mode)') as Calls['mkdirat'],
    unlinkat: lib.func('int unlinkat(int dirfd, str path, int flags)') as Calls['unlinkat'],
    renameat: lib.func('int renameat(int olddirfd, str oldpath, int newdirfd, str newpath)') as Calls['renameat'],
    readlinkat: lib.func('long readlinkat(int dirfd, str path, void *buf, size_t size)') as Calls['readlinkat'],
  };
  return calls;
}

function errnoName(): string {
  const errno = koffi.errno();
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

let openat2Usable: boolean | undefined;

/** Forces the component-by-component walk (tests of the fallback), or lets the kernel decide again (undefined). */
export function setOpenat2ForTesting(usable: boolean | undefined): void {
  openat2Usable = usable;
}

/** Whether paths below a descriptor are resolved by openat2 (else by the openat walk). */
export function openat2Available(): boolean {
  if (openat2Usable === undefined) {
    const how = Buffer.alloc(24);
    how.writeBigUInt64LE(BigInt(O_PATH | O_CLOEXEC), 0);
    const fd = Number(libc().openat2(-100, '/', how, how.length));
    if (fd >= 0) closeSync(fd);
    // ENOSYS: an older kernel; EPERM: a seccomp filter that does not know the call.
    openat2Usable = fd >= 0 || !['ENOSYS', 'EPERM'].includes(errnoName());
  }
  return openat2Usable;
}

function checkName(name: string, what: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new SafeFsError('EINVAL', what, `not a single file name: ${JSON.stringify(name)}`);
  }
}

function components(relative: string, shown: string): string[] {
  if (relative.startsWith('/') || relative.includes('\0')) throw new SafeFsError('EINVAL', shown, 'not a relative path');
  const parts = relative.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.length === 0 || parts.includes('..')) throw new SafeFsError('EINVAL', shown, 'not a path below the directory');
  return parts;
}

/** Opens one name in the directory, never following a symlink there. Throws SafeFsError. */
export function openAt(dirfd: number, name: string, flags: number, mode = 0, shown = name): number {
  checkName(name, shown);
  const fd = libc().openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    let code = errnoName();
    // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: name it for what it is.
    if (code === 'ENOTDIR' && statAt(dirfd, name)?.isSymbolicLink() === true) code = 'ELOOP';
    throw new SafeFsError(code, shown, reasonOf(code, 'single'));
  }
  return fd;
}

/** The text of the symlink that the O_PATH descriptor `fd` is. */
function linkText(fd: number): string {
  const buf = Buffer.alloc(4096);
  const length = Number(libc().readlinkat(fd, '', buf, buf.length));
  if (length < 0) {
    const code = errnoName();
    throw new SafeFsError(code, `/proc/self/fd/${fd}`, `cannot read the symbolic link (${code})`);
  }
  return buf.subarray(0, length).toString('utf8');
}

/** openat2 beneath dirfd; EAGAIN (a concurrent rename during a `..` step) is retried. */
function openWithOpenat2(dirfd: number, parts: readonly string[], flags: number, mode: number, resolve: Resolve, shown: string): number {
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
  how.writeBigUInt64LE(BigInt((flags & O_CREAT) !== 0 ? mode : 0), 8);
  how.writeBigUInt64LE(BigInt(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (resolve === 'no-symlinks' ? RESOLVE_NO_SYMLINKS : 0)), 16);
  for (let attempt = 0; ; attempt++) {
    const fd = Number(libc().openat2(dirfd, parts.join('/'), how, how.length));
    if (fd >= 0) return fd;
    const code = errnoName();
    if (code === 'EAGAIN' && attempt < 8) continue;
    throw new SafeFsError(code, shown, reasonOf(code, resolve));
  }
}

/** The openat walk: one component at a time, each opened O_PATH|O_NOFOLLOW and checked before it is used. */
function openByWalk(dirfd: number, parts: readonly string[], flags: number, mode: number, resolve: Resolve, shown: string): number {
  const queue = [...parts];
  const stack: number[] = []; // descriptors of the directories entered (dirfd itself is not ours to close)
  const fail = (code: string): never => {
    throw new SafeFsError(code, shown, reasonOf(code, resolve));
  };
  let links = 0;
  const follow = (fd: number): void => {
    const target = linkText(fd);
    closeSync(fd);
    if (resolve === 'no-symlinks') fail('ELOOP');
    if (++links > MAX_LINKS) fail('ELOOP');
    if (target.startsWith('/')) fail('EXDEV');
    queue.unshift(...target.split('/').filter((part) => part !== '' && part !== '.'));
  };
  try {
    for (;;) {
      const part = queue.shift();
      if (part === undefined) fail('ENOENT'); // a symlink to "." or to nothing
      const top = stack[stack.length - 1] ?? dirfd;
      if (part === '..') {
        const left = stack.pop();
        if (left === undefined) fail('EXDEV');
        closeSync(left as number);
        continue;
      }
      if (queue.length > 0) {
        const fd = libc().openat(top, part as string, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) fail(errnoName());
        const stat = fstatSync(fd);
        if (stat.isSymbolicLink()) {
          follow(fd);
          continue;
        }
        if (!stat.isDirectory()) {
          closeSync(fd);
          fail('ENOTDIR');
        }
        stack.push(fd);
        continue;
      }
      const fd = libc().openat(top, part as string, flags | O_NOFOLLOW | O_CLOEXEC, (flags & O_CREAT) !== 0 ? mode : 0);
      if (fd >= 0) return fd;
      const code = errnoName();
      // ELOOP from O_NOFOLLOW: the last component is a symlink. O_DIRECTORY|O_NOFOLLOW on a symlink gives ENOTDIR.
      if ((code === 'ELOOP' || code === 'ENOTDIR') && resolve === 'beneath') {
        const link = libc().openat(top, part as string, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
        if (link >= 0 && fstatSync(link).isSymbolicLink()) {
          follow(link);
          continue;
        }
        if (link >= 0) closeSync(link);
      }
      if (code === 'ENOTDIR' && resolve === 'no-symlinks') {
        const link = libc().openat(top, part as string, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
        const isLink = link >= 0 && fstatSync(link).isSymbolicLink();
        if (link >= 0) closeSync(link);
        if (isLink) fail('ELOOP');
      }
      fail(code);
    }
  } finally {
    for (const fd of stack) closeSync(fd);
  }
}

/**
 * Opens `relative` (one or more components, no `..`) below the directory `dirfd` without leaving it and without
 * following symlinks (or, with `beneath`, only relative ones that stay below it). `shown` names the path in errors.
 */
export function openBeneath(dirfd: number, relative: string, flags: number, options: { readonly mode?: number; readonly resolve?: Resolve; readonly shown?: string } = {}): number {
  const shown = options.shown ?? relative;
  const parts = components(relative, shown);
  const resolve = options.resolve ?? 'no-symlinks';
  const mode = options.mode ?? 0;
  if (parts.length === 1 && resolve === 'no-symlinks') return openAt(dirfd, parts[0] ?? '', flags, mode, shown);
  return openat2Available() ? openWithOpenat2(dirfd, parts, flags, mode, resolve, shown) : openByWalk(dirfd, parts, flags, mode, resolve, shown);
}

/**
 * Opens a directory the caller trusts by path (the agent's own configuration or flags: symlinks in it are the admin's),
 * creating it (and its parents, `mode`) when `create` is given. O_RDONLY|O_DIRECTORY|O_CLOEXEC.
 */
export function openDirectory(path: string, create?: { readonly mode: number }): number {
  try {
    return openSync(path, O_RDONLY | O_DIRECTORY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    if (code !== 'ENOENT' || create === undefined) throw new SafeFsError(code, path, reasonOf(code, 'single'));
  }
  mkdirSync(path, { recursive: true, mode: create.mode });
  return openSync(path, O_RDONLY | O_DIRECTORY);
}

function describeType(stat: Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** Reads an open descriptor that must be a regular file of at most maxBytes bytes. */
export function readRegularFd(fd: number, maxBytes: number, shown: string): Buffer {
  const stat = fstatSync(fd);
  if (!stat.isFile()) throw new SafeFsError('EINVAL', shown, `${describeType(stat)}, not a regular file (not read)`);
  const tooBig = (): never => {
    throw new SafeFsError('EFBIG', shown, `larger than ${maxBytes} bytes (not read)`);
  };
  if (stat.size > maxBytes) tooBig();
  // The size can change under us (or be 0 for a procfs file): read until EOF, at most one byte more than allowed.
  const cap = maxBytes + 1;
  let buf = Buffer.allocUnsafe(Math.min(cap, Math.max(stat.size + 1, 4096)));
  let length = 0;
  for (;;) {
    if (length === buf.length) {
      if (length >= cap) tooBig();
      const bigger = Buffer.allocUnsafe(Math.min(cap, buf.length * 2));
      buf.copy(bigger, 0, 0, length);
      buf = bigger;
    }
    const got = readSync(fd, buf, length, buf.length - length, null);
    if (got === 0) break;
    length += got;
  }
  if (length > maxBytes) tooBig();
  return buf.subarray(0, length);
}

export interface ReadOptions {
  /** Refuse files larger than this (default 1 MiB). */
  readonly maxBytes?: number;
  readonly resolve?: Resolve;
  /** The path as errors name it (default: relative). */
  readonly shown?: string;
  /** Refuse a file not owned by this uid. */
  readonly owner?: number;
}

/**
 * Reads a regular file below dirfd as UTF-8 (O_NONBLOCK, so a FIFO cannot block the open; fstat then refuses
 * anything but a regular file), or null when it does not exist.
 */
export function readFileBeneath(dirfd: number, relative: string, options: ReadOptions = {}): string | null {
  const shown = options.shown ?? relative;
  let fd: number;
  try {
    fd = openBeneath(dirfd, relative, O_RDONLY | O_NONBLOCK | O_NOCTTY, { resolve: options.resolve ?? 'no-symlinks', shown });
  } catch (error) {
    if (error instanceof SafeFsError && error.code === 'ENOENT') return null;
    throw error;
  }
  try {
    if (options.owner !== undefined) {
      const stat = fstatSync(fd);
      if (stat.uid !== options.owner) throw new SafeFsError('EPERM', shown, `owned by uid ${stat.uid}, not ${options.owner} (not trusted)`);
    }
    return readRegularFd(fd, options.maxBytes ?? 1 << 20, shown).toString('utf8');
  } finally {
    closeSync(fd);
  }
}


/**
 * Reads a file at a path the caller trusts (its own flag or default), bounded: O_NONBLOCK (a FIFO cannot block the
 * open or a read: no writer reads as empty, a writer with nothing written is refused) and at most maxBytes (so
 * /dev/zero is refused, /dev/null reads as empty). null when it does not exist.
 */
export function readTrustedFile(path: string, maxBytes: number): string | null {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new SafeFsError(code, path, reasonOf(code, 'single'));
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new SafeFsError('EISDIR', path, 'a directory, not a file');
    const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(stat.size + 1, 4096)));
    let chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, 0, Math.min(buf.length, maxBytes + 1 - length), null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        throw new SafeFsError(code, path, code === 'EAGAIN' ? 'nothing to read yet (a FIFO or socket?): not waited for' : `read failed (${code})`);
      }
      if (got === 0) break;
      chunks.push(Buffer.from(buf.subarray(0, got)));
      length += got;
      if (length > maxBytes) throw new SafeFsError('EFBIG', path, `larger than ${maxBytes} bytes (not read)`);
    }
    const text = Buffer.concat(chunks, length).toString('utf8');
    chunks = [];
    return text;
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Buffer): void {
  for (let offset = 0; offset < data.length; ) offset += writeSync(fd, data, offset, data.length - offset);
}

/** A fresh name nobody can guess: `.<name>.<96 random bits>.tmp`. */
export function temporaryName(name: string): string {
  return `.${name}.${randomBytes(12).toString('hex')}.tmp`;
}

export interface WriteOptions {
  /** The file's mode, set on the descriptor (the umask does not apply). */
  readonly mode: number;
  /** Owner to give the file (fchown on the descriptor); default: left as created. */
  readonly owner?: { readonly uid: number; readonly gid: number };
  /** The directory's path, for errors. */
  readonly shown?: string;
}

/**
 * Replaces `name` in the directory atomically: a new file under an unpredictable name (O_CREAT|O_EXCL|O_NOFOLLOW),
 * written, mode and owner set on its descriptor, then renamed over `name` with renameat (a symlink at `name` is
 * replaced, never followed). A reader sees the old or the new content, never a mix.
 */
export function writeFileAtomic(dirfd: number, name: string, data: string | Buffer, options: WriteOptions): void {
  const shown = `${options.shown ?? '.'}/${name}`;
  checkName(name, shown);
  const temporary = temporaryName(name);
  const fd = openAt(dirfd, temporary, O_WRONLY | O_CREAT | O_EXCL, options.mode & 0o777, `${options.shown ?? '.'}/${temporary}`);
  let renamed = false;
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fchmodSync(fd, options.mode);
    if (options.owner !== undefined) fchownSync(fd, options.owner.uid, options.owner.gid);
    closeSync(fd);
    if (libc().renameat(dirfd, temporary, dirfd, name) !== 0) {
      const code = errnoName();
      throw new SafeFsError(code, shown, `rename into place failed (${code})`);
    }
    renamed = true;
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    throw error;
  } finally {
    if (!renamed) libc().unlinkat(dirfd, temporary, 0);
  }
}

/** Creates `name` exclusively (O_CREAT|O_EXCL|O_NOFOLLOW) and returns its descriptor; EEXIST when anything is there. */
export function createExclusive(dirfd: number, name: string, flags: number, mode: number, shown = name): number {
  const fd = openAt(dirfd, name, flags | O_CREAT | O_EXCL, mode & 0o777, shown);
  try {
    fchmodSync(fd, mode);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

/**
 * Opens the directory `name` in dirfd, creating it (mkdirat never follows a symlink at its last component) with
 * exactly `mode` (set on the descriptor) when it is missing. A symlink or a non-directory there is refused.
 */
export function openOrMakeDirectory(dirfd: number, name: string, mode: number, shown = name): { readonly fd: number; readonly created: boolean } {
  checkName(name, shown);
  let created = false;
  if (libc().mkdirat(dirfd, name, mode & 0o777) === 0) created = true;
  else if (errnoName() !== 'EEXIST') {
    const code = errnoName();
    throw new SafeFsError(code, shown, reasonOf(code, 'single'));
  }
  const fd = openAt(dirfd, name, O_RDONLY | O_DIRECTORY, 0, shown);
  if (created) fchmodSync(fd, mode);
  return { fd, created };
}

/** Removes the name (a file, symlink, FIFO …: unlinkat never follows); false when it was not there. */
export function unlinkAt(dirfd: number, name: string, shown = name): boolean {
  checkName(name, shown);
  if (libc().unlinkat(dirfd, name, 0) === 0) return true;
  const code = errnoName();
  if (code === 'ENOENT') return false;
  throw new SafeFsError(code, shown, reasonOf(code, 'single'));
}

/** Removes an empty directory; false when it was not there or is not empty. */
export function removeDirectoryAt(dirfd: number, name: string, shown = name): boolean {
  checkName(name, shown);
  if (libc().unlinkat(dirfd, name, AT_REMOVEDIR) === 0) return true;
  const code = errnoName();
  if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST') return false;
  throw new SafeFsError(code, shown, reasonOf(code, 'single'));
}

/** The names in an open directory (read through /proc/self/fd, i.e. the directory the descriptor holds). */
export function listDirectory(fd: number): string[] {
  return readdirSync(`/proc/self/fd/${fd}`);
}

/**
 * Removes `name` and, if it is a directory, everything below it, through descriptors only: a directory is entered
 * with O_NOFOLLOW|O_DIRECTORY, entries are unlinked with unlinkat, so a symlink swapped in anywhere is removed, never
 * followed. Gives up (false, leaving what is left) beyond `maxEntries` entries or `maxDepth` levels.
 */
export function removeTreeAt(dirfd: number, name: string, limits: { readonly maxEntries: number; readonly maxDepth: number } = { maxEntries: 10_000, maxDepth: 8 }): boolean {
  let budget = limits.maxEntries;
  const remove = (parent: number, entry: string, depth: number): boolean => {
    if (--budget < 0) return false;
    if (libc().unlinkat(parent, entry, 0) === 0) return true;
    const code = errnoName();
    if (code === 'ENOENT') return true;
    if (code !== 'EISDIR' && code !== 'EPERM') throw new SafeFsError(code, entry, reasonOf(code, 'single'));
    if (depth >= limits.maxDepth) return false;
    let fd: number;
    try {
      fd = openAt(parent, entry, O_RDONLY | O_DIRECTORY, 0);
    } catch (error) {
      if (error instanceof SafeFsError && error.code === 'ENOENT') return true;
      throw error;
    }
    let complete = true;
    try {
      for (const child of listDirectory(fd)) complete = remove(fd, child, depth + 1) && complete;
    } finally {
      closeSync(fd);
    }
    return complete && (removeDirectoryAt(parent, entry) || !existsAt(parent, entry));
  };
  return remove(dirfd, name, 0);
}

/** Whether `name` exists in the directory (a symlink counts, and is not followed). */
export function existsAt(dirfd: number, name: string): boolean {
  const fd = libc().openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) return false;
  closeSync(fd);
  return true;
}

/** fstat of `name` in the directory without following it, or null when absent. */
export function statAt(dirfd: number, name: string): Stats | null {
  checkName(name, name);
  const fd = libc().openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    return fstatSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Whether `name` in the directory is the very file the descriptor `fd` holds (same device and inode). */
export function isSameFileAt(dirfd: number, name: string, fd: number): boolean {
  const there = statAt(dirfd, name);
  if (there === null) return false;
  const held = fstatSync(fd);
  return there.ino === held.ino && there.dev === held.dev;
}
