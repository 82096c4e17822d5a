// One readiness poller for every descriptor Node cannot watch itself (the serving core's raw ICMPv6 sockets): one epoll
// set, one epoll_wait at a time on a libuv threadpool thread (koffi async), the reads on the main thread.
//
// Why: a blocking recvfrom per raw socket holds one threadpool thread each (libuv has 4 by default), so a handful of
// router advertisers starved every other async fs/dns call of the process, and hundreds could not run at all. Here one
// thread waits for all of them; when epoll_wait returns, the callback runs on the main thread and calls each ready
// descriptor's handler, which reads non-blocking (MSG_DONTWAIT) until EAGAIN or its per-wake budget, then the wait is
// armed again. Level-triggered: what a handler leaves unread is reported again by the next wait.
// pause(fd) keeps a descriptor registered but asks for no events (its datagrams wait in, and overflow from, the kernel's
// receive buffer); resume(fd) asks again. An eventfd in the set wakes the waiting thread when the last descriptor is
// unwatched or the poller closes, so no epoll_wait stays pending (it would keep the process's event loop alive).
import koffi from 'koffi';
import { KernelError, describeErrno, errnoName } from './kernel-error.js';

const EPOLL_CLOEXEC = 0o2000000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLL_CTL_MOD = 3;
const EPOLLIN = 0x001;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const MAX_EVENTS = 64;
/** struct epoll_event is packed on x86-64 (u32 events, u64 data: 12 bytes); naturally aligned elsewhere (16 bytes). */
const EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const DATA_OFFSET = process.arch === 'x64' ? 4 : 8;
/** After a failed epoll_wait (EINTR), wait this long before the next one, so an error cannot spin. */
const RETRY_MS = 10;

type RawFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

interface PollLibc {
  epollCreate1: RawFn;
  epollCtl: RawFn;
  epollWait: RawFn;
  eventfd: RawFn;
  write: RawFn;
  read: RawFn;
  close: RawFn;
}

let cached: PollLibc | undefined;

function pollLibc(): PollLibc {
  if (cached !== undefined) return cached;
  const lib = koffi.load('libc.so.6');
  cached = {
    epollCreate1: lib.func('int epoll_create1(int flags)') as RawFn,
    epollCtl: lib.func('int epoll_ctl(int epfd, int op, int fd, void *event)') as RawFn,
    epollWait: lib.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)') as RawFn,
    eventfd: lib.func('int eventfd(unsigned int initval, int flags)') as RawFn,
    write: lib.func('long write(int fd, const void *buf, size_t count)') as RawFn,
    read: lib.func('long read(int fd, void *buf, size_t count)') as RawFn,
    close: lib.func('int close(int fd)') as RawFn,
  };
  return cached;
}

export interface FdPoller {
  /** Calls onReadable on the main thread whenever fd has something to read (until unwatch). Throws KernelError. */
  watch(fd: number, onReadable: () => void): void;
  /** No events for fd until resume (it stays registered). */
  pause(fd: number): void;
  resume(fd: number): void;
  /** Forgets fd (call before closing it). Idempotent. */
  unwatch(fd: number): void;
  /** Descriptors watched. */
  readonly size: number;
  /** Wakes the waiting thread and releases the epoll set and the eventfd. */
  close(): Promise<void>;
}

export interface FdPollerOptions {
  /** Called with an error a handler threw (the poller goes on). */
  readonly onHandlerError?: (fd: number, error: unknown) => void;
}

export function createFdPoller(options: FdPollerOptions = {}): FdPoller {
  const libc = pollLibc();
  const epfd = Number(libc.epollCreate1(EPOLL_CLOEXEC));
  if (epfd < 0) {
    const code = errnoName(koffi.errno());
    throw new KernelError('epoll_create1', code, `epoll_create1: ${describeErrno(code)}`);
  }
  const wakeFd = Number(libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wakeFd < 0) {
    const code = errnoName(koffi.errno());
    libc.close(epfd);
    throw new KernelError('eventfd', code, `eventfd: ${describeErrno(code)}`);
  }
  const handlers = new Map<number, () => void>();
  const events = Buffer.alloc(EVENT_SIZE * MAX_EVENTS);
  const control = Buffer.alloc(EVENT_SIZE);
  const counter = Buffer.alloc(8);
  let waiting: Promise<void> | null = null;
  let closed = false;

  const ctl = (op: number, fd: number, mask: number, what: string): void => {
    control.fill(0);
    control.writeUInt32LE(mask, 0);
    control.writeUInt32LE(fd, DATA_OFFSET);
    if (Number(libc.epollCtl(epfd, op, fd, control)) < 0) {
      const code = errnoName(koffi.errno());
      throw new KernelError(`epoll_ctl ${what} fd ${fd}`, code, `epoll_ctl ${what} fd ${fd}: ${describeErrno(code)}`);
    }
  };
  ctl(EPOLL_CTL_ADD, wakeFd, EPOLLIN, 'add');

  const wake = (): void => {
    counter.writeBigUInt64LE(1n);
    libc.write(wakeFd, counter, 8);
  };

  const dispatch = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const fd = events.readUInt32LE(i * EVENT_SIZE + DATA_OFFSET);
      if (fd === wakeFd) {
        libc.read(wakeFd, counter, 8);
        continue;
      }
      // An fd unwatched (or closed and reused by an unwatched socket) since the wait began has no handler, or one
      // that finds nothing to read (EAGAIN): both harmless.
      const handler = handlers.get(fd);
      if (handler === undefined) continue;
      try {
        handler();
      } catch (error) {
        options.onHandlerError?.(fd, error);
      }
    }
  };

  const arm = (): void => {
    if (waiting !== null || closed || handlers.size === 0) return;
    waiting = new Promise<void>((resolve) => {
      libc.epollWait.async(epfd, events, MAX_EVENTS, -1, (error: unknown, result: unknown) => {
        waiting = null;
        resolve();
        const count = Number(result);
        if (closed) return;
        if (error !== null && error !== undefined) {
          setTimeout(arm, RETRY_MS);
          return;
        }
        if (count < 0) {
          setTimeout(arm, RETRY_MS); // EINTR (errno is the worker thread's: not readable here)
          return;
        }
        dispatch(count);
        arm();
      });
    });
  };

  return {
    watch(fd, onReadable) {
      if (closed) throw new KernelError(`epoll_ctl add fd ${fd}`, 'EBADF', 'fd poller is closed');
      if (handlers.has(fd)) throw new KernelError(`epoll_ctl add fd ${fd}`, 'EEXIST', `fd ${fd} is already watched`);
      ctl(EPOLL_CTL_ADD, fd, EPOLLIN, 'add');
      handlers.set(fd, onReadable);
      arm();
    },
    pause(fd) {
      if (handlers.has(fd)) ctl(EPOLL_CTL_MOD, fd, 0, 'pause');
    },
    resume(fd) {
      if (handlers.has(fd)) ctl(EPOLL_CTL_MOD, fd, EPOLLIN, 'resume');
    },
    unwatch(fd) {
      if (!handlers.delete(fd)) return;
      libc.epollCtl(epfd, EPOLL_CTL_DEL, fd, control);
      if (handlers.size === 0) wake(); // let the pending wait return, so it does not hold the event loop
    },
    get size() {
      return handlers.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      handlers.clear();
      wake();
      if (waiting !== null) await waiting;
      libc.close(wakeFd);
      libc.close(epfd);
    },
  };
}
