// Entering the pod's network namespace with setns(2) on the main thread (whole run), or for one synchronous call (scoped).
//
// How the agent reaches the pod network (documented design choice):
//   * The CLI calls enterNetns({netnsPath} | {pid}) first thing, before any netlink socket exists. setns(2) moves only
//     the calling thread — Node's main thread, where all JavaScript runs. From then on, everything created on the main
//     thread belongs to the pod: new rtnetlink sockets, /dev/net/tun opens (taps), spawned children (nft), and files
//     opened synchronously under /proc/sys/net.
//   * Caveat: libuv's threadpool threads (fs.promises, fs callbacks, dns.lookup, zlib, crypto) and any worker threads
//     STAY in the old namespace. So /proc/sys/net must be read and written with readFileSync/writeFileSync (main thread),
//     never fs.promises. Sockets made before the switch stay bound to the old namespace (enterNetns refuses to run once
//     a netlink socket was opened, see noteNetlinkSocketOpened).
//   * /sys is a mount, not per-thread: after setns, /sys/class/net still lists the OLD namespace's links (`ip netns exec`
//     remounts /sys in a private mount namespace; setns does not). The drivers therefore never read /sys.
//   * openNetnsScope() is the in-process alternative used by tests and tools that must stay in their own namespace:
//     scope.run(fn) switches the main thread into the target, runs fn synchronously, and switches back before any other
//     JavaScript can run. A netlink socket created inside run() stays bound to the target for its whole life.
//   * Every target is checked before use (agent/drivers/netns-check.ts): opened non-blocking, it must be on nsfs, a
//     network namespace, and not the node's own (PID 1's); a FIFO, a regular file or /proc/1/ns/net is an InputError
//     naming the flag, never a hang or a change to the node.
import { closeSync, openSync } from 'node:fs';
import { InputError } from '../plan/errors.js';
import { CLONE_NEWNET, libc } from '../drivers/libc.js';
import { errnoName, KernelError } from '../drivers/kernel-error.js';
import { openNetnsChecked } from '../drivers/netns-check.js';

/** Which namespace: a bind-mounted path (/var/run/netns/X, /proc/PID/ns/net) or a process id. */
export interface NetnsTarget {
  readonly netnsPath?: string;
  readonly pid?: number;
  /**
   * Refuse the caller's own network namespace too (besides PID 1's): the CNI plugin runs in the node's namespace,
   * so a CNI_NETNS naming its own is the node's.
   */
  readonly refuseOwn?: boolean;
}

/** The flag that names the target in error messages, and the path to open. */
function resolveTarget(target: NetnsTarget): { readonly field: '--netns' | '--pid'; readonly path: string } {
  if (target.netnsPath !== undefined && target.pid !== undefined) {
    throw new InputError('--netns', 'give either --netns or --pid, not both');
  }
  if (target.pid !== undefined) {
    if (!Number.isInteger(target.pid) || target.pid <= 0) throw new InputError('--pid', `not a process id: ${String(target.pid)}`);
    return { field: '--pid', path: `/proc/${target.pid}/ns/net` };
  }
  if (target.netnsPath === undefined || target.netnsPath === '') {
    throw new InputError('--netns', 'needs a namespace path such as /var/run/netns/NAME');
  }
  return { field: '--netns', path: target.netnsPath };
}

/** Opens and checks the namespace file; turns ENOENT and friends, and a file that is no pod netns, into InputErrors naming the flag. */
function openTarget(target: NetnsTarget): { readonly fd: number; readonly field: '--netns' | '--pid'; readonly path: string } {
  const { field, path } = resolveTarget(target);
  try {
    const opened = openNetnsChecked(path, target.refuseOwn === true);
    if ('problem' in opened) throw new InputError(field, opened.problem);
    return { fd: opened.fd, field, path };
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') {
      throw new InputError(field, field === '--pid' ? `no such process ${target.pid ?? ''} (${path} does not exist)` : `no such network namespace ${path}`);
    }
    if (code === 'EACCES' || code === 'EPERM') throw new InputError(field, `permission denied opening ${path} (run as root; a process with capabilities beyond ours cannot be entered)`);
    throw new InputError(field, `cannot open ${path}: ${code}`);
  }
}

function setnsOrThrow(fd: number, field: string, path: string): void {
  const { ret, errno } = libc().setns(fd, CLONE_NEWNET);
  if (ret === 0) return;
  const code = errnoName(errno);
  if (code === 'EINVAL') throw new InputError(field, `${path} is not a network namespace`);
  if (code === 'EPERM') throw new InputError(field, `permission denied entering ${path} (needs CAP_SYS_ADMIN)`);
  throw new KernelError(`setns ${path}`, code, `setns(2) failed: ${code}`);
}

let openNetlinkSockets = 0;

/** Drivers call this when they open a netlink socket, so a late enterNetns is refused instead of silently half-working. */
export function noteNetlinkSocketOpened(): void {
  openNetlinkSockets++;
}

export function noteNetlinkSocketClosed(): void {
  openNetlinkSockets = Math.max(0, openNetlinkSockets - 1);
}

/**
 * Moves the main thread (all JavaScript) into the target network namespace for the rest of the process.
 * Must run before any netlink socket is created. See the file comment for what stays behind (threadpool, /sys).
 */
export function enterNetns(target: NetnsTarget): void {
  const { fd, field, path } = openTarget(target);
  try {
    if (openNetlinkSockets > 0) {
      throw new KernelError(`setns ${path}`, null, 'a netlink socket is already open in the old namespace; enter the namespace first');
    }
    setnsOrThrow(fd, field, path);
  } finally {
    closeSync(fd);
  }
}

/** A held-open namespace that synchronous code can step into and out of. */
export interface NetnsScope {
  /** The namespace file (e.g. /run/netns/pod, /proc/123/ns/net). */
  readonly path: string;
  /**
   * Runs fn with the main thread inside the namespace and switches back afterwards, even if fn throws.
   * fn must be synchronous: anything it leaves for later (promise continuations, callbacks) runs in the home namespace.
   */
  run<T>(fn: () => T): T;
  /** Closes both namespace descriptors. */
  close(): void;
}

/** Opens the target and the current (home) namespace of the main thread; errors as in enterNetns. */
export function openNetnsScope(target: NetnsTarget): NetnsScope {
  const { fd, field, path } = openTarget(target);
  let home: number;
  try {
    home = openSync('/proc/thread-self/ns/net', 'r');
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let closed = false;
  return {
    path,
    run<T>(fn: () => T): T {
      if (closed) throw new Error(`netns scope ${path} is closed`);
      setnsOrThrow(fd, field, path);
      try {
        return fn();
      } finally {
        const { ret, errno } = libc().setns(home, CLONE_NEWNET);
        if (ret !== 0) {
          // Staying in the wrong namespace would silently misdirect every later operation: stop hard.
          process.stderr.write(`virt-net-agent: cannot return to the home network namespace: ${errnoName(errno)}\n`);
          process.exit(70);
        }
      }
    },
    close() {
      if (closed) return;
      closed = true;
      closeSync(fd);
      closeSync(home);
    },
  };
}
