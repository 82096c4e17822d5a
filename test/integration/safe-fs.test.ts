// The safe file primitives (agent/drivers/safe-fs.ts) on a real filesystem, with openat2 and with the openat walk: symlinks at every component, FIFOs, devices, oversize files, dangling links, O_EXCL collisions.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createExclusive,
  O_RDONLY,
  O_WRONLY,
  openat2Available,
  openBeneath,
  openDirectory,
  openOrMakeDirectory,
  readFileBeneath,
  readTrustedFile,
  removeTreeAt,
  SafeFsError,
  setOpenat2ForTesting,
  writeFileAtomic,
} from '../../agent/drivers/safe-fs.js';

const isRoot = process.getuid?.() === 0;

let base: string;
beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'vna-safefs-'));
});
afterAll(() => {
  rmSync(base, { recursive: true, force: true });
  setOpenat2ForTesting(undefined);
});

let counter = 0;
/** A fresh directory with an open descriptor; `outside` is a sibling holding a secret file. */
function fixture(): { dir: string; fd: number; outside: string; secret: string } {
  const root = join(base, `case${counter++}`);
  const dir = join(root, 'dir');
  const outside = join(root, 'outside');
  mkdirSync(dir, { recursive: true });
  mkdirSync(outside);
  const secret = join(outside, 'secret');
  writeFileSync(secret, 'host secret\n');
  return { dir, fd: openDirectory(dir), outside, secret };
}

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) closeSync(fd);
});
function track<T extends { fd: number }>(value: T): T {
  opened.push(value.fd);
  return value;
}

function refusal(fn: () => unknown): SafeFsError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SafeFsError) return error;
    throw error;
  }
  throw new Error('expected a SafeFsError, nothing was thrown');
}

describe.each([
  ['openat2', true],
  ['openat walk', false],
] as const)('resolution beneath a descriptor (%s)', (_name, useOpenat2) => {
  beforeAll(() => {
    if (useOpenat2 && !openat2Available()) return;
    setOpenat2ForTesting(useOpenat2);
  });
  afterAll(() => setOpenat2ForTesting(undefined));

  it('reads a plain nested file', () => {
    const f = track(fixture());
    mkdirSync(join(f.dir, 'a/b'), { recursive: true });
    writeFileSync(join(f.dir, 'a/b/file'), 'content\n');
    expect(readFileBeneath(f.fd, 'a/b/file')).toBe('content\n');
    expect(readFileBeneath(f.fd, 'a/b/missing')).toBeNull();
  });

  it.each(['a', 'a/b', 'a/b/file'])('refuses a symlink at %s (no-symlinks), and never returns the outside file', (where) => {
    const f = track(fixture());
    mkdirSync(join(f.dir, 'a/b'), { recursive: true });
    writeFileSync(join(f.dir, 'a/b/file'), 'content\n');
    // Replace the component by a symlink to an outside copy of the tree holding the secret at the same place.
    const copy = join(f.outside, 'tree');
    mkdirSync(join(copy, 'a/b'), { recursive: true });
    writeFileSync(join(copy, 'a/b/file'), readFileSync(f.secret));
    rmSync(join(f.dir, where), { recursive: true });
    symlinkSync(join(copy, where), join(f.dir, where));
    const error = refusal(() => readFileBeneath(f.fd, 'a/b/file'));
    expect(error.code).toBe('ELOOP');
    expect(error.message).toBe('a/b/file: is or passes through a symbolic link (not followed)');
    // A relative link that stays inside is refused too in this mode.
    rmSync(join(f.dir, where));
  });

  it('beneath: follows relative links that stay inside (the kubelet downward-API layout)', () => {
    const f = track(fixture());
    mkdirSync(join(f.dir, 'podinfo/..2024_01_01_00_00_00.1'), { recursive: true });
    writeFileSync(join(f.dir, 'podinfo/..2024_01_01_00_00_00.1/network-status'), '[]');
    symlinkSync('..2024_01_01_00_00_00.1', join(f.dir, 'podinfo/..data'));
    symlinkSync('..data/network-status', join(f.dir, 'podinfo/network-status'));
    expect(readFileBeneath(f.fd, 'podinfo/network-status', { resolve: 'beneath' })).toBe('[]');
    const podinfo = openBeneath(f.fd, 'podinfo', O_RDONLY | 0o200000);
    opened.push(podinfo);
    expect(readFileBeneath(podinfo, 'network-status', { resolve: 'beneath' })).toBe('[]');
    expect(refusal(() => readFileBeneath(podinfo, 'network-status')).code).toBe('ELOOP');
  });

  it('beneath: refuses absolute links and links climbing out', () => {
    const f = track(fixture());
    symlinkSync(f.secret, join(f.dir, 'absolute'));
    symlinkSync('../outside/secret', join(f.dir, 'climbing'));
    symlinkSync('../../../../../../../proc/self/root/etc/hostname', join(f.dir, 'far'));
    symlinkSync('/proc/self/root', join(f.dir, 'magic'));
    for (const name of ['absolute', 'climbing', 'far', 'magic/etc/hostname']) {
      const error = refusal(() => readFileBeneath(f.fd, name, { resolve: 'beneath' }));
      expect(error.code, name).toBe('EXDEV');
      expect(error.message).toContain('leads outside the directory');
    }
  });

  it('beneath: a symlink loop ends with ELOOP', () => {
    const f = track(fixture());
    symlinkSync('b', join(f.dir, 'a'));
    symlinkSync('a', join(f.dir, 'b'));
    expect(refusal(() => readFileBeneath(f.fd, 'a', { resolve: 'beneath' })).code).toBe('ELOOP');
  });

  it('refuses paths that are not below the directory', () => {
    const f = track(fixture());
    expect(refusal(() => readFileBeneath(f.fd, '../outside/secret')).code).toBe('EINVAL');
    expect(refusal(() => readFileBeneath(f.fd, f.secret)).code).toBe('EINVAL');
  });

  it('a FIFO is refused at once (O_NONBLOCK open, fstat), not read', () => {
    const f = track(fixture());
    expect(spawnSync('mkfifo', [join(f.dir, 'fifo')]).status).toBe(0);
    mkdirSync(join(f.dir, 'etc'));
    expect(spawnSync('mkfifo', [join(f.dir, 'etc/resolv.conf')]).status).toBe(0);
    const started = Date.now();
    expect(refusal(() => readFileBeneath(f.fd, 'fifo')).message).toBe('fifo: a FIFO, not a regular file (not read)');
    expect(refusal(() => readFileBeneath(f.fd, 'etc/resolv.conf')).message).toBe('etc/resolv.conf: a FIFO, not a regular file (not read)');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.runIf(isRoot)('a character device (/dev/zero\'s node) is refused, not read', () => {
    const f = track(fixture());
    expect(spawnSync('mknod', [join(f.dir, 'zero'), 'c', '1', '5']).status).toBe(0);
    expect(refusal(() => readFileBeneath(f.fd, 'zero')).message).toBe('zero: a character device, not a regular file (not read)');
  });

  it('an oversize file is refused; one at the cap is read', () => {
    const f = track(fixture());
    writeFileSync(join(f.dir, 'big'), 'x'.repeat(1025));
    writeFileSync(join(f.dir, 'fits'), 'x'.repeat(1024));
    expect(refusal(() => readFileBeneath(f.fd, 'big', { maxBytes: 1024 })).message).toBe('big: larger than 1024 bytes (not read)');
    expect(readFileBeneath(f.fd, 'fits', { maxBytes: 1024 })).toHaveLength(1024);
  });

  it('a dangling symlink is refused for reading and never created through for writing', () => {
    const f = track(fixture());
    const victim = join(f.outside, 'created-by-root');
    mkdirSync(join(f.dir, 'sub'));
    symlinkSync(victim, join(f.dir, 'sub/dangling'));
    expect(refusal(() => readFileBeneath(f.fd, 'sub/dangling')).code).toBe('ELOOP');
    expect(refusal(() => openBeneath(f.fd, 'sub/dangling', O_WRONLY | 0o100, { mode: 0o600 })).code).toBe('ELOOP');
    expect(existsSync(victim)).toBe(false);
  });
});

describe('writing beneath a descriptor', () => {
  it('writeFileAtomic replaces a symlink at the name instead of writing through it', () => {
    const f = track(fixture());
    symlinkSync(f.secret, join(f.dir, 'state.json'));
    writeFileAtomic(f.fd, 'state.json', '{"ok":true}\n', { mode: 0o600 });
    expect(readFileSync(f.secret, 'utf8')).toBe('host secret\n');
    expect(lstatSync(join(f.dir, 'state.json')).isFile()).toBe(true);
    expect(readFileSync(join(f.dir, 'state.json'), 'utf8')).toBe('{"ok":true}\n');
    expect(statSync(join(f.dir, 'state.json')).mode & 0o777).toBe(0o600);
    expect(readdirSync(f.dir)).toEqual(['state.json']); // no temporary left behind
  });

  it('writeFileAtomic sets the mode on the descriptor whatever the umask, and the owner when asked', () => {
    const f = track(fixture());
    const previous = process.umask(0o077);
    try {
      writeFileAtomic(f.fd, 'serve.json', '{}\n', { mode: 0o644, ...(isRoot ? { owner: { uid: 107, gid: 107 } } : {}) });
    } finally {
      process.umask(previous);
    }
    const stat = statSync(join(f.dir, 'serve.json'));
    expect(stat.mode & 0o777).toBe(0o644);
    if (isRoot) expect([stat.uid, stat.gid]).toEqual([107, 107]);
  });

  it('temporary names are unpredictable and a failed write leaves none', () => {
    const f = track(fixture());
    // A directory in the way of the rename: the write fails, and its temporary file is removed.
    mkdirSync(join(f.dir, 'taken'));
    writeFileSync(join(f.dir, 'taken/x'), '');
    expect(() => writeFileAtomic(f.fd, 'taken', 'data', { mode: 0o600 })).toThrow(SafeFsError);
    expect(readdirSync(f.dir)).toEqual(['taken']);
  });

  it('createExclusive refuses anything already at the name: a file, a symlink, a dangling symlink', () => {
    const f = track(fixture());
    writeFileSync(join(f.dir, 'file'), '');
    symlinkSync(f.secret, join(f.dir, 'link'));
    symlinkSync(join(f.outside, 'nothing'), join(f.dir, 'dangling'));
    for (const name of ['file', 'link', 'dangling']) expect(refusal(() => createExclusive(f.fd, name, O_WRONLY, 0o640)).code, name).toBe('EEXIST');
    expect(existsSync(join(f.outside, 'nothing'))).toBe(false);
    const fd = createExclusive(f.fd, 'fresh', O_WRONLY, 0o640);
    closeSync(fd);
    expect(statSync(join(f.dir, 'fresh')).mode & 0o777).toBe(0o640);
  });

  it('openOrMakeDirectory creates with the exact mode and refuses a symlink or a file at the name', () => {
    const f = track(fixture());
    const previous = process.umask(0o077);
    let made: { fd: number; created: boolean };
    try {
      made = openOrMakeDirectory(f.fd, 'vmi', 0o755);
    } finally {
      process.umask(previous);
    }
    opened.push(made.fd);
    expect(made.created).toBe(true);
    expect(statSync(join(f.dir, 'vmi')).mode & 0o777).toBe(0o755);
    const again = openOrMakeDirectory(f.fd, 'vmi', 0o700);
    opened.push(again.fd);
    expect(again.created).toBe(false);
    symlinkSync(f.outside, join(f.dir, 'linked'));
    writeFileSync(join(f.dir, 'plain'), '');
    expect(refusal(() => openOrMakeDirectory(f.fd, 'linked', 0o700)).code).toMatch(/^(ELOOP|ENOTDIR)$/);
    expect(refusal(() => openOrMakeDirectory(f.fd, 'plain', 0o700)).code).toBe('ENOTDIR');
  });

  it('removeTreeAt removes links without following them', () => {
    const f = track(fixture());
    mkdirSync(join(f.dir, 'tree/sub'), { recursive: true });
    writeFileSync(join(f.dir, 'tree/sub/file'), '');
    symlinkSync(f.outside, join(f.dir, 'tree/sub/to-outside'));
    symlinkSync(f.outside, join(f.dir, 'tree/dir-link'));
    expect(removeTreeAt(f.fd, 'tree')).toBe(true);
    expect(existsSync(join(f.dir, 'tree'))).toBe(false);
    expect(readFileSync(f.secret, 'utf8')).toBe('host secret\n');
  });
});

describe('reading a trusted path', () => {
  it('is bounded: /dev/zero is refused at the cap, /dev/null and a FIFO without a writer read as empty, never blocking', () => {
    const f = track(fixture());
    expect(refusal(() => readTrustedFile('/dev/zero', 4096)).message).toBe('/dev/zero: larger than 4096 bytes (not read)');
    expect(readTrustedFile('/dev/null', 4096)).toBe('');
    expect(spawnSync('mkfifo', [join(f.dir, 'fifo')]).status).toBe(0);
    expect(readTrustedFile(join(f.dir, 'fifo'), 4096)).toBe('');
    expect(readTrustedFile(join(f.dir, 'missing'), 4096)).toBeNull();
    expect(readTrustedFile(f.secret, 4096)).toBe('host secret\n');
    expect(refusal(() => readTrustedFile(f.dir, 4096)).code).toBe('EISDIR');
  });

  it('a FIFO with a writer that writes nothing is refused, not waited for', async () => {
    const f = track(fixture());
    const fifo = join(f.dir, 'fifo');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const writer = spawn('sh', ['-c', `exec 3<>"${fifo}"; echo open; sleep 30`], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      await new Promise<void>((resolve) => writer.stdout.once('data', () => resolve()));
      expect(refusal(() => readTrustedFile(fifo, 4096)).message).toBe(`${fifo}: nothing to read yet (a FIFO or socket?): not waited for`);
    } finally {
      writer.kill('SIGKILL');
    }
  });
});
