// The cni-daemon's unix socket done the way root-only servers do it: a root-only directory checked (or made) before listen, the socket created under umask 077, each peer's credentials checked, and nothing but a stale socket ever removed.
//
// Who may talk to the daemon decides what root does to every pod on the node, so:
// - the directory must be root's and closed to others: made 0700 (0710 with the admin's socketGroup, so its members
//   can reach the socket) when missing; an existing one with another owner or mode is refused, not repaired (Multus'
//   choice, multus#771: a directory someone else could write may already hold their symlink or socket);
// - the socket is bound under umask 077 (no moment where it is open to all), then given mode 0600 (0660 and the
//   group with socketGroup);
// - a path that exists and is not a socket is an error; a socket nobody answers on is stale and replaced;
// - every accepted connection's peer (SO_PEERCRED, SO_PEERGROUPS) must be root, or have socketGroup as its group or one
//   of its supplementary groups; others are closed at once.
import { chmodSync, chownSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { connect, type Server, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import koffi from 'koffi';
import { InputError } from '../plan/errors.js';

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERGROUPS = 59;

/** True when something accepts connections on the socket (another daemon); false for a stale file. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function mode(bits: number): string {
  return (bits & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Makes the socket's directory (root 0700, or 0710 with `group`) when missing, refuses one that is not exactly that,
 * and clears a stale socket at `path`; errors are InputErrors naming --socket.
 */
export async function prepareSocketPath(path: string, group: number | null): Promise<void> {
  const dir = dirname(path);
  const wantMode = group === null ? 0o700 : 0o710;
  const uid = process.getuid?.() ?? 0;
  let st;
  try {
    st = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new InputError('--socket', `cannot inspect ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    const previous = process.umask(0o077);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } finally {
      process.umask(previous);
    }
    if (group !== null) {
      chownSync(dir, uid, group);
      chmodSync(dir, wantMode);
    }
    st = lstatSync(dir);
  }
  const wanted = `owned by ${uid === 0 ? 'root' : `uid ${uid}`}${group !== null ? ` and group ${group}` : ''} with mode ${mode(wantMode)}`;
  if (!st.isDirectory()) throw new InputError('--socket', `${dir} is not a directory (a symlink or a file): refusing it; the socket's directory must be ${wanted}`);
  if (st.uid !== uid || (st.mode & 0o7777) !== wantMode || (group !== null && st.gid !== group)) {
    throw new InputError('--socket', `${dir} is owned by uid ${st.uid} gid ${st.gid} with mode ${mode(st.mode)}: refusing a socket directory others could change; it must be ${wanted} (remove it or fix it)`);
  }
  let existing;
  try {
    existing = lstatSync(path);
  } catch {
    return;
  }
  if (!existing.isSocket()) throw new InputError('--socket', `${path} exists and is not a socket: refusing to delete it`);
  if (await listening(path)) throw new InputError('--socket', `${path}: another cni-daemon is already listening`);
  unlinkSync(path);
}

/** Listens on `path` with the socket created under umask 077, then gives it its mode (0600, or 0660 and `group`). */
export async function listenRestricted(server: Server, path: string, group: number | null): Promise<void> {
  const previous = process.umask(0o077);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  if (group !== null) chownSync(path, process.getuid?.() ?? 0, group);
  chmodSync(path, group === null ? 0o600 : 0o660);
}

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups (SO_PEERGROUPS, Linux 4.13+); empty where the kernel cannot tell. */
  readonly groups: readonly number[];
}

interface SockCalls {
  getsockopt(fd: number, level: number, name: number, value: Buffer, length: Buffer): number;
}

let calls: SockCalls | undefined;

function sockCalls(): SockCalls {
  if (calls !== undefined) return calls;
  const lib = koffi.load('libc.so.6');
  // void * gets the Buffer's memory itself: the kernel writes the option value and its length there.
  const getsockopt = lib.func('int getsockopt(int fd, int level, int name, void *value, void *length)') as SockCalls['getsockopt'];
  calls = { getsockopt: (fd, level, name, value, length) => getsockopt(fd, level, name, value, length) };
  return calls;
}

/** The descriptor of an accepted unix socket (libuv's pipe handle); null if node does not expose it. */
function socketFd(socket: Socket): number | null {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : null;
}

/** The peer's credentials as the kernel recorded them at connect(2); null when they cannot be read. */
export function peerCredentials(socket: Socket): PeerCredentials | null {
  const fd = socketFd(socket);
  if (fd === null) return null;
  const c = sockCalls();
  // Native byte order: little-endian but on s390x.
  const le = endianness() === 'LE';
  const u32 = (buf: Buffer, at: number): number => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const lengthOf = (n: number): Buffer => {
    const buf = Buffer.alloc(4);
    if (le) buf.writeUInt32LE(n);
    else buf.writeUInt32BE(n);
    return buf;
  };
  const cred = Buffer.alloc(12); // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, lengthOf(cred.length)) !== 0) return null;
  const groupsBuf = Buffer.alloc(4 * 256);
  const groupsLength = lengthOf(groupsBuf.length);
  const groups: number[] = [];
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groupsBuf, groupsLength) === 0) {
    const n = Math.floor(u32(groupsLength, 0) / 4);
    for (let i = 0; i < n; i++) groups.push(u32(groupsBuf, 4 * i));
  }
  return { pid: u32(cred, 0), uid: u32(cred, 4), gid: u32(cred, 8), groups };
}

/** Root (or the daemon's own user), or a member (primary or supplementary) of the admin's socketGroup. */
export function peerAllowed(peer: PeerCredentials | null, group: number | null): boolean {
  if (peer === null) return false;
  if (peer.uid === 0 || peer.uid === process.getuid?.()) return true;
  return group !== null && (peer.gid === group || peer.groups.includes(group));
}
