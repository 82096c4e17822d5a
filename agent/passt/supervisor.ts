// Agent-managed passt (libvirt < 11.1): runs passt in the pod netns with the VMI's port forwards, restarts it with backoff, stops it cleanly.
//
// The socket dir must be writable by passt's user (it binds its socket after dropping privileges), so that user may
// put anything there. It is therefore root's, group runAs gid, mode 1775 (sticky): passt creates its socket, nobody
// but root can remove or replace root's files in it. The log is created there by root through a descriptor (no
// symlink followed; anything else at its name is removed first), so passt, which opens it by path as uid 0 before it
// drops to runAs, only ever opens root's own file. A log elsewhere must be in a folder only root can write.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fchmodSync, fchownSync, fstatSync, mkdirSync } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createExclusive, O_APPEND, O_CREAT, O_NONBLOCK, O_WRONLY, openAt, openDirectory, openOrMakeDirectory, SafeFsError, unlinkAt } from '../drivers/safe-fs.js';
import { AgentError } from '../plan/errors.js';
import type { Logger } from 'pino';

export const PASST_SOCKET_NAME = 'passt.socket';

export interface PasstSupervisorOptions {
  /** The pod's network namespace file (/proc/PID/ns/net, /run/netns/NAME); passt runs there via nsenter. */
  readonly netnsPath: string;
  /** Created if missing; root's, group runAs gid, mode 1775: passt drops privileges before it binds its socket. */
  readonly socketDir: string;
  /** passt's -t/-u arguments (passtPortArgs). */
  readonly portArgs: readonly string[];
  /** Default <socketDir>/passt.log. */
  readonly logFile?: string;
  /** The uid/gid passt runs as (--runas); default nobody (65534:65534). */
  readonly runAs?: { readonly uid: number; readonly gid: number };
  /** Default "passt" from PATH. */
  readonly binary?: string;
  /** Default "nsenter" from PATH. */
  readonly nsenter?: string;
  /**
   * RLIMIT_NOFILE for passt (set through prlimit(1)). Forwarding "all" ports binds one socket per unbound
   * non-ephemeral port and protocol (~65k): with a lower limit passt fails with "Can't open enough sockets".
   */
  readonly nofile?: number;
  /** Restart backoff: first delay, doubled per quick failure up to max. Default 250 ms … 10 s. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** How long passt must stay up for the backoff to reset. Default 30 s. */
  readonly stableMs?: number;
  readonly log: Logger;
}

export interface PasstSupervisor {
  readonly socketPath: string;
  readonly logFile: string;
  /** passt's pid while it runs, else undefined. */
  pid(): number | undefined;
  /** How many times passt was started (1 after the first start). */
  starts(): number;
  /** Resolves when passt's socket exists (after the current start). */
  ready(timeoutMs: number): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; no restart afterwards; removes the socket. */
  stop(): Promise<void>;
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isSocket();
  } catch {
    return false;
  }
}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

/**
 * Opens (creating it and its missing parents) the socket dir without following a symlink at its own name, and makes
 * it root's, group runAs gid, 1775 on the descriptor. An existing dir another user owned (an older version gave it to
 * runAs) becomes root's the same way.
 */
function prepareSocketDir(socketDir: string, runAs: { uid: number; gid: number }): number {
  const path = resolve(socketDir);
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const parent = openDirectory(dirname(path));
    try {
      const { fd } = openOrMakeDirectory(parent, basename(path), 0o1775, path);
      fchownSync(fd, euid(), runAs.gid);
      fchmodSync(fd, 0o1775);
      return fd;
    } finally {
      closeSync(parent);
    }
  } catch (error) {
    if (error instanceof SafeFsError) throw new AgentError('--socket-dir', error.message, 2);
    throw error;
  }
}

/**
 * Makes `name` in the directory a regular file of ours for passt's log: kept (appended to) when it already is one
 * with a single link, else whatever is there (a symlink, a FIFO, another user's file) is removed and a new one is made
 * with O_EXCL. Never follows a symlink.
 */
function prepareLog(dirFd: number, name: string, shown: string): void {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openAt(dirFd, name, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0o640, shown);
      const st = fstatSync(fd);
      closeSync(fd);
      if (st.isFile() && st.uid === euid() && st.nlink === 1) return;
    } catch (error) {
      if (!(error instanceof SafeFsError)) throw error;
    }
    unlinkAt(dirFd, name, shown);
    try {
      closeSync(createExclusive(dirFd, name, O_WRONLY | O_APPEND, 0o640, shown));
      return;
    } catch (error) {
      if (!(error instanceof SafeFsError) || error.code !== 'EEXIST') throw new AgentError('--log-file', error instanceof Error ? error.message : String(error), 2);
    }
  }
  throw new AgentError('--log-file', `${shown}: something keeps re-creating it; not used`, 2);
}

/**
 * The log's folder: the socket dir (already safe), or a folder only root can write (passt opens the log by path as
 * uid 0, so a folder someone else may write could swap the file for a symlink between restarts).
 */
function openLogDir(logFile: string, socketDir: string, socketDirFd: number): { fd: number; own: boolean } {
  const folder = dirname(resolve(logFile));
  if (folder === resolve(socketDir)) return { fd: socketDirFd, own: false };
  let fd: number;
  try {
    fd = openDirectory(folder);
  } catch (error) {
    throw new AgentError('--log-file', error instanceof Error ? error.message : String(error), 2);
  }
  const st = fstatSync(fd);
  if (st.uid !== euid() || (st.mode & 0o022) !== 0) {
    closeSync(fd);
    throw new AgentError('--log-file', `${folder} (mode ${(st.mode & 0o777).toString(8)}, owner ${st.uid}) may be written by others: passt opens its log there by path as root; use a folder only root can write (or the socket dir)`, 2);
  }
  return { fd, own: true };
}

/** The full command line: nsenter into the netns, passt in the foreground, logging only to its file. */
export function passtCommand(options: PasstSupervisorOptions, socketPath: string, logFile: string): string[] {
  const runAs = options.runAs ?? { uid: 65534, gid: 65534 };
  const limit = options.nofile !== undefined ? ['prlimit', `--nofile=${options.nofile}:${options.nofile}`, '--'] : [];
  return [
    ...limit,
    options.nsenter ?? 'nsenter',
    `--net=${options.netnsPath}`,
    '--',
    options.binary ?? 'passt',
    '--foreground',
    '--runas',
    `${runAs.uid}:${runAs.gid}`,
    '--socket',
    socketPath,
    '--log-file',
    logFile,
    ...options.portArgs,
  ];
}

/** Can uid/gid search (x) this directory? */
function searchable(mode: number, owner: number, group: number, uid: number, gid: number): boolean {
  if (uid === 0) return true;
  if (owner === uid) return (mode & 0o100) !== 0;
  if (group === gid) return (mode & 0o010) !== 0;
  return (mode & 0o001) !== 0;
}

/**
 * passt binds its socket after dropping to runAs: every ancestor of the socket dir must be searchable by that
 * user, or the bind fails with EACCES while passt still logs success (pitfall 12). Say which one is not.
 */
export async function checkReachable(socketDir: string, runAs: { uid: number; gid: number }): Promise<void> {
  let dir = resolve(socketDir);
  for (;;) {
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
    const st = await stat(dir);
    if (!searchable(st.mode, st.uid, st.gid, runAs.uid, runAs.gid)) {
      throw new AgentError(
        '--socket-dir',
        `${dir} (mode ${(st.mode & 0o777).toString(8)}, owner ${st.uid}) is not searchable by uid ${runAs.uid}: passt binds its socket after dropping privileges`,
        2,
      );
    }
  }
}

export async function startPasstSupervisor(options: PasstSupervisorOptions): Promise<PasstSupervisor> {
  const { log } = options;
  const socketPath = join(options.socketDir, PASST_SOCKET_NAME);
  const logFile = options.logFile ?? join(options.socketDir, 'passt.log');
  const runAs = options.runAs ?? { uid: 65534, gid: 65534 };
  const backoff = options.backoff ?? { initialMs: 250, maxMs: 10_000 };
  const stableMs = options.stableMs ?? 30_000;
  const argv = passtCommand(options, socketPath, logFile);

  const socketDirFd = prepareSocketDir(options.socketDir, runAs);
  try {
    await checkReachable(options.socketDir, runAs);
    // passt opens its log file before it changes uid but after dropping capabilities (root without
    // CAP_DAC_OVERRIDE): the file is created here, root's (the uid passt starts as), in a folder only root controls.
    const logDir = openLogDir(logFile, options.socketDir, socketDirFd);
    try {
      prepareLog(logDir.fd, basename(logFile), logFile);
    } finally {
      if (logDir.own) closeSync(logDir.fd);
    }
  } catch (error) {
    closeSync(socketDirFd);
    throw error;
  }
  let dirClosed = false;
  /** The stale socket (or anything at its name) goes through the dir's descriptor, never by a path that could be swapped. */
  const removeSocket = async (): Promise<void> => {
    unlinkAt(socketDirFd, PASST_SOCKET_NAME, socketPath);
  };

  let child: ChildProcess | undefined;
  let startCount = 0;
  let stopping = false;
  let delay = backoff.initialMs;
  let restartTimer: NodeJS.Timeout | undefined;
  let exitedPromise: Promise<void> = Promise.resolve();
  /** The last exit's stderr, for the readiness error. */
  let lastFailure = '';

  const launch = async (): Promise<void> => {
    if (stopping) return;
    // A socket left by the previous passt would make the new one fail to bind.
    await removeSocket();
    if (stopping) return;
    const [file, ...args] = argv;
    const started = Date.now();
    const proc = spawn(file ?? 'nsenter', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    startCount += 1;
    let stderr = '';
    proc.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 2048) stderr += b.toString('utf8');
    });
    exitedPromise = new Promise((resolve) => {
      proc.once('error', (err) => {
        log.error({ err: err.message, argv }, 'cannot start passt');
      });
      proc.once('exit', (code, signal) => {
        if (child === proc) child = undefined;
        resolve();
        if (stopping) return;
        const ranFor = Date.now() - started;
        lastFailure = stderr.split('\n').filter((l) => l.trim() !== '' && !l.includes('to syslog')).join('; ');
        if (ranFor >= stableMs) delay = backoff.initialMs;
        log.warn({ code, signal, ranForMs: ranFor, restartInMs: delay, stderr: stderr.trim() || undefined, logFile }, 'passt exited; restarting');
        restartTimer = setTimeout(() => {
          restartTimer = undefined;
          void launch();
        }, delay);
        delay = Math.min(delay * 2, backoff.maxMs);
      });
    });
    log.info({ pid: proc.pid, start: startCount, socketPath, ports: options.portArgs }, 'passt started');
  };

  await launch();

  return {
    socketPath,
    logFile,
    pid: () => child?.pid,
    starts: () => startCount,
    ready: async (timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (child !== undefined && (await isSocket(socketPath))) return;
        if (Date.now() > deadline) {
          const why = lastFailure !== '' ? `; last exit: ${lastFailure}` : '';
          throw new Error(`passt socket ${socketPath} did not appear within ${timeoutMs} ms (see ${logFile})${why}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: async () => {
      stopping = true;
      if (restartTimer !== undefined) clearTimeout(restartTimer);
      const proc = child;
      if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        proc.kill('SIGTERM');
        await exitedPromise;
        clearTimeout(kill);
      }
      if (!dirClosed) {
        await removeSocket();
        closeSync(socketDirFd);
        dirClosed = true;
      }
      log.info({ socketPath }, 'passt stopped');
    },
  };
}
