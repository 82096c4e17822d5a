// A thread that runs blocking rtnetlink exchanges off the main thread, for the resident cni-daemon: link deletions wait there for the kernel.
//
// Why: the kernel executes an RTM_DELLINK inside send(2), and after unlisting the links (a few ms) it waits, still
// inside that call, for RCU grace periods before freeing them (tens of ms here: ~45 ms for an in-pod bridge + tap on
// this 2-core VM). On the main thread that wait blocks the daemon and every invocation queued behind it. Here the main
// thread hands a request and a socket (its fd: file descriptors are process-wide) to this thread, keeps serving, and
// can tell when the links are gone from the namespace (netlink-sync.ts linkListed) long before the call returns.
//
// The thread is plain JavaScript evaluated from a string (a single executable application has no files to start a
// worker from); it loads koffi from the path the main thread resolved. It only moves bytes: send the request, read
// datagrams until the request's ACK/error/DONE, post them back. Parsing and error mapping stay in netlink-sync.ts.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const koffi = require(workerData.koffiPath);
const lib = koffi.load('libc.so.6');
const send = lib.func('long send(int fd, const void *buf, size_t len, int flags)');
const recv = lib.func('long recv(int fd, void *buf, size_t len, int flags)');
const EINTR = 4, NLMSG_ERROR = 2, NLMSG_DONE = 3, MSG_TRUNC = 0x20, HDR = 16;
const buffer = Buffer.alloc(256 * 1024);
function finished(datagram, seq) {
  for (let offset = 0; offset + HDR <= datagram.length; ) {
    const length = datagram.readUInt32LE(offset);
    if (length < HDR) return true;
    const type = datagram.readUInt16LE(offset + 4);
    if (datagram.readUInt32LE(offset + 8) === seq && (type === NLMSG_ERROR || type === NLMSG_DONE)) return true;
    offset += (length + 3) & ~3;
  }
  return false;
}
parentPort.on('message', ({ id, fd, request, seq }) => {
  const bytes = Buffer.from(request.buffer, request.byteOffset, request.byteLength);
  const datagrams = [];
  try {
    for (;;) {
      if (Number(send(fd, bytes, bytes.length, 0)) >= 0) break;
      const errno = koffi.errno();
      if (errno !== EINTR) throw new Error('send failed: errno ' + errno);
    }
    for (;;) {
      const received = Number(recv(fd, buffer, buffer.length, MSG_TRUNC));
      if (received < 0) {
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        throw new Error(errno === 11 ? 'no reply from the kernel in time' : 'recv failed: errno ' + errno);
      }
      if (received > buffer.length) throw new Error('reply of ' + received + ' bytes exceeds the buffer');
      const datagram = Buffer.from(buffer.subarray(0, received));
      datagrams.push(datagram);
      if (finished(datagram, seq)) break;
    }
    parentPort.postMessage({ id, datagrams });
  } catch (err) {
    parentPort.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
parentPort.postMessage({ ready: true });
`;

interface Reply {
  readonly id?: number;
  readonly ready?: boolean;
  readonly datagrams?: Uint8Array[];
  readonly error?: string;
}

/** A thread for blocking rtnetlink exchanges. */
export interface NetlinkWorker {
  /** Sends `request` on `fd` from the thread and resolves with every datagram up to its answer. */
  exchange(fd: number, request: Buffer, seq: number): Promise<Buffer[]>;
  /** Keeps `completion` (work that goes on after its caller was answered) until it settles; close() waits for it. */
  track(completion: Promise<unknown>): void;
  /** Exchanges and tracked completions not yet settled. */
  pending(): number;
  /** Exchanges started so far. */
  exchanged(): number;
  /** Waits for everything pending, then stops the thread. */
  close(): Promise<void>;
}

export interface NetlinkWorkerOptions {
  /** Told when tracked work fails after its caller was answered (nobody else hears of it). */
  readonly onLateError?: (err: Error) => void;
}

/** Starts the thread and resolves once it has loaded libc; rejects when it cannot (then the caller stays synchronous). */
export async function startNetlinkWorker(options: NetlinkWorkerOptions = {}): Promise<NetlinkWorker> {
  const koffiPath = createRequire(import.meta.url).resolve('koffi');
  const thread = new Worker(THREAD_SOURCE, { eval: true, workerData: { koffiPath } });
  const waiting = new Map<number, { resolve: (datagrams: Buffer[]) => void; reject: (err: Error) => void }>();
  const unsettled = new Set<Promise<void>>();
  let nextId = 1;
  let failure: Error | null = null;

  // The thread keeps the process alive only while it has work.
  const updateRef = (): void => {
    if (unsettled.size > 0) thread.ref();
    else thread.unref();
  };
  const keep = (work: Promise<unknown>, report: boolean): void => {
    const settled = work.then(
      () => undefined,
      (err: unknown) => {
        if (report) options.onLateError?.(err instanceof Error ? err : new Error(String(err)));
      },
    );
    unsettled.add(settled);
    updateRef();
    void settled.then(() => {
      unsettled.delete(settled);
      updateRef();
    });
  };
  const failAll = (err: Error): void => {
    failure = err;
    for (const entry of waiting.values()) entry.reject(err);
    waiting.clear();
  };

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    thread.once('error', onError);
    thread.once('message', (message: Reply) => {
      thread.off('error', onError);
      if (message.ready === true) resolve();
      else reject(new Error('netlink worker: unexpected first message'));
    });
  });
  thread.on('message', (message: Reply) => {
    if (message.id === undefined) return;
    const entry = waiting.get(message.id);
    if (entry === undefined) return;
    waiting.delete(message.id);
    if (message.error !== undefined) entry.reject(new Error(`netlink worker: ${message.error}`));
    else entry.resolve((message.datagrams ?? []).map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength)));
  });
  thread.on('error', (err) => failAll(new Error(`netlink worker failed: ${err.message}`)));
  thread.on('exit', (code) => failAll(new Error(`netlink worker exited (${code})`)));
  updateRef();

  return {
    exchange(fd, request, seq) {
      if (failure !== null) return Promise.reject(failure);
      const id = nextId++;
      const answered = new Promise<Buffer[]>((resolve, reject) => waiting.set(id, { resolve, reject }));
      keep(answered, false);
      thread.postMessage({ id, fd, request, seq });
      return answered;
    },
    track: (completion) => keep(completion, true),
    pending: () => unsettled.size,
    exchanged: () => nextId - 1,
    async close() {
      while (unsettled.size > 0) await Promise.all([...unsettled]);
      thread.removeAllListeners('exit');
      await thread.terminate();
    },
  };
}

let active: NetlinkWorker | null = null;

/** The worker link deletions use in this process (the cni-daemon sets one), or null: deletions then block as before. */
export function backgroundNetlink(): NetlinkWorker | null {
  return active;
}

export function setBackgroundNetlink(worker: NetlinkWorker | null): void {
  active = worker;
}
