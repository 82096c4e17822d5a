// Is this open file a network namespace, and not the node's own? fstatfs (nsfs), the NS_GET_NSTYPE ioctl and a dev/inode comparison, on a descriptor opened without blocking.
//
// A namespace path comes from CNI_NETNS, --netns, --pid or an attachment record. Opening it blindly blocks on a FIFO
// (the daemon stalls) and setns(2) on a regular file fails late; worse, the node's own namespace is a perfectly good
// namespace to setns into, and a teardown there deletes the node's links. So, like containernetworking's ns.GetNS
// (statfs = NSFS_MAGIC), the descriptor is opened O_RDONLY|O_NONBLOCK|O_CLOEXEC, fstatfs must say nsfs, the ioctl must
// say CLONE_NEWNET (where the kernel has it, 4.11+), and its dev/inode must differ from the node's network namespace:
// PID 1's, and the kernel's own (init_net, where kernel threads such as kthreadd, PID 2, live: PID 1 may hold
// capabilities the agent lacks, and then even root may not look at its namespace), and, for the CNI plugin, from the
// caller's own (the runtime runs plugins in the node's).
import { closeSync, constants, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import koffi from 'koffi';
import { CLONE_NEWNET, libc } from './libc.js';
import { errnoName } from './kernel-error.js';

/** statfs(2) f_type of the namespace filesystem (include/uapi/linux/magic.h). */
export const NSFS_MAGIC = 0x6e736673;
/** ioctl_ns(2): which kind of namespace a namespace descriptor is. */
const NS_GET_NSTYPE = 0xb703; // _IO(0xb7, 0x3)
const O_CLOEXEC = 0o2000000;

let fstatfsFn: ((fd: number, buf: Buffer) => number) | undefined;

/** fstatfs(2); void * gets the Buffer's memory itself, so the kernel's struct statfs lands in it. */
function fstatfs(fd: number, buf: Buffer): number {
  fstatfsFn ??= koffi.load('libc.so.6').func('int fstatfs(int fd, void *buf)') as (fd: number, buf: Buffer) => number;
  return fstatfsFn(fd, buf);
}

/**
 * f_type of the filesystem holding fd: the first field of struct statfs (a long on x86-64 and arm64, whose low 32
 * bits come first; 32 bits, big-endian, on s390x). The magic numbers fit in 32 bits.
 */
function filesystemType(fd: number): number | string {
  const buf = Buffer.alloc(256);
  if (fstatfs(fd, buf) !== 0) return errnoName(koffi.errno());
  return process.arch === 's390x' ? buf.readUInt32BE(0) : buf.readUInt32LE(0);
}

/** What is wrong with fd as a pod network namespace; null when it is one. `ownNetns` adds the caller's namespace to the refused ones. */
export function netnsProblem(fd: number, path: string, ownNetns: boolean): string | null {
  const st = fstatSync(fd);
  if (st.isFIFO()) return `${path} is a FIFO, not a network namespace`;
  if (st.isDirectory()) return `${path} is a directory, not a network namespace`;
  const type = filesystemType(fd);
  if (typeof type === 'string') return `cannot tell whether ${path} is a namespace (fstatfs: ${type})`;
  if (type !== NSFS_MAGIC) return `${path} is not a network namespace (a ${st.isFile() ? 'regular file' : 'file'} on filesystem 0x${type.toString(16)}, not nsfs)`;
  // NS_GET_NSTYPE takes no argument (the zero is ignored).
  const { ret: nstype, errno } = libc().ioctlInt(fd, NS_GET_NSTYPE, 0);
  if (nstype >= 0 && nstype !== CLONE_NEWNET) return `${path} is a namespace but not a network namespace (type 0x${nstype.toString(16)})`;
  if (nstype < 0 && !['ENOTTY', 'EINVAL'].includes(errnoName(errno))) return `cannot tell the namespace type of ${path} (${errnoName(errno)})`;
  const refused: [string, string][] = [['/proc/1/ns/net', "the node's own network namespace (that of PID 1)"]];
  if (isKernelThread(2)) refused.push(['/proc/2/ns/net', "the node's own network namespace (the kernel's, init_net)"]);
  if (ownNetns) refused.push(['/proc/thread-self/ns/net', "this process's own network namespace (the node's)"]);
  for (const [other, what] of refused) {
    if (sameNamespace(other, st.dev, st.ino)) return `${path} is ${what}`;
  }
  return null;
}

/** PF_KTHREAD in /proc/PID/stat's flags: a kernel thread, which no process can pretend to be. */
const PF_KTHREAD = 0x00200000;

function isKernelThread(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (in parentheses, which may itself hold spaces): state, ppid, pgrp, session,
    // tty_nr, tpgid, flags.
    const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
    return Number.isInteger(flags) && (flags & PF_KTHREAD) !== 0;
  } catch {
    return false;
  }
}

/**
 * Whether the namespace link `other` names the namespace with this dev/inode. stat follows the link; where that is
 * not allowed (PID 1 may hold capabilities we lack, and the ptrace check then refuses even root), the link's text
 * "net:[INODE]" still names it: namespace inodes are unique within nsfs, and the target is on nsfs.
 */
function sameNamespace(other: string, dev: number, ino: number): boolean {
  try {
    const ns = statSync(other);
    return ns.dev === dev && ns.ino === ino;
  } catch {
    // Fall through to the link's text.
  }
  try {
    const match = /^net:\[(\d+)\]$/.exec(readlinkSync(other));
    return match !== null && Number(match[1]) === ino;
  } catch {
    return false; // No such link to compare with (no /proc/1 in a private PID namespace): nothing to refuse by it.
  }
}

/**
 * Opens `path` as a network namespace: non-blocking (a FIFO cannot hang us), close-on-exec, and checked; returns the
 * descriptor or throws the errno (ENOENT, EACCES…) of the open as node does, or an Error carrying `problem`.
 */
export function openNetnsChecked(path: string, ownNetns: boolean): { readonly fd: number } | { readonly problem: string } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | O_CLOEXEC);
  let problem: string | null;
  try {
    problem = netnsProblem(fd, path, ownNetns);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  if (problem === null) return { fd };
  closeSync(fd);
  return { problem };
}
