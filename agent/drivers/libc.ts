// Typed libc calls through koffi (setns, open, close, ioctl, socket, setsockopt, send, recv, fcntl, execv): synchronous, on the calling (main) thread, errno captured.
import koffi from 'koffi';

export const CLONE_NEWNET = 0x40000000;
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;

/** Result of a libc call: the return value, and errno when it is negative. */
export interface SysResult {
  readonly ret: number;
  readonly errno: number;
}

interface Libc {
  setns(fd: number, nstype: number): SysResult;
  open(path: string, flags: number): SysResult;
  close(fd: number): SysResult;
  /** ioctl with a pointer argument; the kernel may write into buf (e.g. TUNSETIFF returns the name). */
  ioctlBuffer(fd: number, request: number, buf: Buffer): SysResult;
  /** ioctl with an integer argument (TUNSETOWNER, TUNSETPERSIST, …). */
  ioctlInt(fd: number, request: number, value: number): SysResult;
  socket(domain: number, type: number, protocol: number): SysResult;
  /** setsockopt with a byte-buffer value (SO_BINDTODEVICE takes the interface name). */
  setsockoptBuffer(fd: number, level: number, name: number, value: Buffer): SysResult;
  /** send(2) of the whole buffer. */
  send(fd: number, buf: Buffer, flags: number): SysResult;
  /** recv(2) into buf (its memory is passed as is, no copy); returns the length, as MSG_TRUNC reports it. */
  recv(fd: number, buf: Buffer, flags: number): SysResult;
  /** fcntl with an integer argument (F_GETFD, F_SETFD, …). */
  fcntlInt(fd: number, command: number, value: number): SysResult;
  /** Replaces the process image (same PID); returns only on failure. */
  execv(path: string, argv: readonly string[]): SysResult;
}

export const F_GETFD = 1;
export const F_SETFD = 2;
export const FD_CLOEXEC = 1;

let cached: Libc | undefined;

type RawFn = (...args: unknown[]) => unknown;

function wrap(fn: RawFn): (...args: unknown[]) => SysResult {
  return (...args) => {
    const ret = Number(fn(...args));
    return { ret, errno: ret < 0 ? koffi.errno() : 0 };
  };
}

/** Loads libc lazily: importing this module costs nothing until a call is made. */
export function libc(): Libc {
  if (cached !== undefined) return cached;
  const lib = koffi.load('libc.so.6');
  const setns = wrap(lib.func('int setns(int fd, int nstype)') as RawFn);
  const open = wrap(lib.func('int open(const char *path, int flags)') as RawFn);
  const close = wrap(lib.func('int close(int fd)') as RawFn);
  // ioctl is variadic in C. Declared here with fixed third arguments: on Linux x86-64 and aarch64 an integer or pointer
  // variadic argument travels in the same register as a fixed one, and glibc's ioctl only forwards it to the syscall.
  const ioctlBuffer = wrap(lib.func('ioctl', 'int', ['int', 'unsigned long', koffi.inout('uint8_t *')]) as RawFn);
  const ioctlInt = wrap(lib.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as RawFn);
  const socket = wrap(lib.func('int socket(int domain, int type, int protocol)') as RawFn);
  const setsockopt = wrap(lib.func('int setsockopt(int fd, int level, int name, const uint8_t *value, unsigned int len)') as RawFn);
  // void * parameters get a Buffer's memory directly (no copy in or out).
  const send = wrap(lib.func('long send(int fd, const void *buf, size_t len, int flags)') as RawFn);
  const recv = wrap(lib.func('long recv(int fd, void *buf, size_t len, int flags)') as RawFn);
  // fcntl is variadic too; F_GETFD/F_SETFD take an int, which travels like a fixed argument (see ioctl above).
  const fcntl = wrap(lib.func('fcntl', 'int', ['int', 'int', 'int']) as RawFn);
  const execv = wrap(lib.func('int execv(const char *path, const char **argv)') as RawFn);
  cached = {
    setns: (fd, nstype) => setns(fd, nstype),
    open: (path, flags) => open(path, flags),
    close: (fd) => close(fd),
    ioctlBuffer: (fd, request, buf) => ioctlBuffer(fd, request, buf),
    ioctlInt: (fd, request, value) => ioctlInt(fd, request, value),
    socket: (domain, type, protocol) => socket(domain, type, protocol),
    setsockoptBuffer: (fd, level, name, value) => setsockopt(fd, level, name, value, value.length),
    send: (fd, buf, flags) => send(fd, buf, buf.length, flags),
    recv: (fd, buf, flags) => recv(fd, buf, buf.length, flags),
    fcntlInt: (fd, command, value) => fcntl(fd, command, value),
    execv: (path, argv) => execv(path, [...argv, null]),
  };
  return cached;
}
