// A blocking rtnetlink socket through libc (koffi): send one request, read its reply, on the calling thread.
//
// Why: the `netlink` package's socket is asynchronous (libuv poll, a queued write, a promise per reply): ~180 µs per
// request here, against ~10 µs for send(2) + recv(2) — the kernel executes an rtnetlink request inside sendmsg, so
// the reply is already queued when send returns. A setup with 64 networks makes ~1,500 requests.
// This transport stands in for that package's NetlinkSocket under its RtNetlinkSocket (which only formats and parses
// messages), so message building and parsing stay the package's. It also asks for extended acks (NETLINK_EXT_ACK),
// so a refusal carries the kernel's own text ("Device is busy", …), which the package's socket drops.
// The socket belongs to the network namespace of the thread that created it (see agent/netns.ts).
import { getSystemErrorName } from 'node:util';
import koffi from 'koffi';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const MSG_TRUNC = 0x20;
const EINTR = 4;
const EAGAIN = 11;
const ENODEV = 19;
const SIOCGIFINDEX = 0x8933;
const IFNAMSIZ = 16;

const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

/** How long a request may wait for the kernel's answer (it answers at once; this only guards against a hang). */
const REPLY_TIMEOUT_SECONDS = 30;
/** Receive buffer: a dump datagram is at most ~32 KiB; MSG_TRUNC reports anything larger. */
const RECEIVE_BUFFER_BYTES = 256 * 1024;

/** One netlink message as the `netlink` package's parsers take it. */
export interface RawNetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly port: number;
  readonly data: Buffer;
}

/** The kernel refused a request: errno (positive) and, when it said more, its extended-ack text. */
export class NetlinkRejection extends Error {
  constructor(
    readonly errno: number,
    readonly kernelMessage: string | null,
  ) {
    super(`Request rejected: ${errnoText(errno)}${kernelMessage !== null ? ` (${kernelMessage})` : ''}`);
    this.name = 'NetlinkRejection';
  }
}

function errnoText(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `E${errno}`;
  }
}

interface SocketCalls {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, length: number): number;
  send(fd: number, buf: Buffer, length: number, flags: number): number;
  recv(fd: number, buf: Buffer, length: number, flags: number): number;
  ioctl(fd: number, request: number, buf: Buffer): number;
  close(fd: number): number;
}

let calls: SocketCalls | undefined;

type RawFn = (...args: unknown[]) => unknown;

function socketCalls(): SocketCalls {
  if (calls !== undefined) return calls;
  const lib = koffi.load('libc.so.6');
  const socket = lib.func('int socket(int domain, int type, int protocol)') as RawFn;
  const setsockopt = lib.func('int setsockopt(int fd, int level, int name, const void *value, unsigned int len)') as RawFn;
  // void * parameters get a Buffer's memory directly (no copy in or out).
  const send = lib.func('long send(int fd, const void *buf, size_t len, int flags)') as RawFn;
  const recv = lib.func('long recv(int fd, void *buf, size_t len, int flags)') as RawFn;
  // ioctl is variadic; a pointer third argument travels like a fixed one on x86-64 and aarch64 (see libc.ts).
  const ioctl = lib.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as RawFn;
  const close = lib.func('int close(int fd)') as RawFn;
  calls = {
    socket: (domain, type, protocol) => Number(socket(domain, type, protocol)),
    setsockopt: (fd, level, name, value, length) => Number(setsockopt(fd, level, name, value, length)),
    send: (fd, buf, length, flags) => Number(send(fd, buf, length, flags)),
    recv: (fd, buf, length, flags) => Number(recv(fd, buf, length, flags)),
    ioctl: (fd, request, buf) => Number(ioctl(fd, request, buf)),
    close: (fd) => Number(close(fd)),
  };
  return calls;
}

function failure(what: string): Error {
  const errno = koffi.errno();
  return new Error(`netlink ${what} failed: ${errnoText(errno)}`);
}

/** Reads the kernel's NLMSGERR_ATTR_MSG out of an NLMSG_ERROR payload, or null. */
export function extendedAckMessage(message: RawNetlinkMessage): string | null {
  if ((message.flags & NLM_F_ACK_TLVS) === 0 || message.data.length < 4 + NLMSG_HDRLEN) return null;
  // struct nlmsgerr: int error; struct nlmsghdr msg; then the request's payload unless capped; then the TLVs.
  const requestLength = message.data.readUInt32LE(4);
  let offset = 4 + ((message.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : requestLength);
  offset = (offset + 3) & ~3;
  while (offset + 4 <= message.data.length) {
    const length = message.data.readUInt16LE(offset);
    const type = message.data.readUInt16LE(offset + 2) & 0x3fff;
    if (length < 4 || offset + length > message.data.length) return null;
    if (type === NLMSGERR_ATTR_MSG) {
      const text = message.data.subarray(offset + 4, offset + length).toString('utf8').replace(/\0.*$/s, '').trim();
      return text === '' ? null : text;
    }
    offset += (length + 3) & ~3;
  }
  return null;
}

/** Splits one datagram into messages (nlmsghdr-aligned). */
export function splitMessages(datagram: Buffer): RawNetlinkMessage[] {
  const messages: RawNetlinkMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= datagram.length) {
    const length = datagram.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > datagram.length) throw new Error(`netlink: malformed reply (message length ${length})`);
    messages.push({
      type: datagram.readUInt16LE(offset + 4),
      flags: datagram.readUInt16LE(offset + 6),
      seq: datagram.readUInt32LE(offset + 8),
      port: datagram.readUInt32LE(offset + 12),
      data: Buffer.from(datagram.subarray(offset + NLMSG_HDRLEN, offset + length)),
    });
    offset += (length + 3) & ~3;
  }
  return messages;
}

type MessageListener = (...args: unknown[]) => void;

/**
 * The subset of the `netlink` package's NetlinkSocket that its RtNetlinkSocket uses: request() (resolves with
 * [messages, rinfo] like the package's, after the work is done synchronously), on() (no unsolicited messages arrive:
 * the socket joins no multicast group), close().
 */
export class SyncNetlinkSocket {
  private seq = 1;
  private fd: number;
  private readonly buffer = Buffer.alloc(RECEIVE_BUFFER_BYTES);

  constructor() {
    const c = socketCalls();
    this.fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (this.fd < 0) throw failure('socket');
    const timeout = Buffer.alloc(16);
    timeout.writeBigInt64LE(BigInt(REPLY_TIMEOUT_SECONDS), 0);
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    if (c.setsockopt(this.fd, SOL_SOCKET, SO_RCVTIMEO, timeout, timeout.length) !== 0) {
      const err = failure('setsockopt SO_RCVTIMEO');
      c.close(this.fd);
      throw err;
    }
    // Best effort: without extended acks, refusals carry the errno only.
    c.setsockopt(this.fd, SOL_NETLINK, NETLINK_EXT_ACK, one, one.length);
  }

  on(_event: string, _listener: MessageListener): this {
    return this;
  }

  close(): void {
    if (this.fd < 0) return;
    socketCalls().close(this.fd);
    this.fd = -1;
  }

  /**
   * The ifindex of a link by name (SIOCGIFINDEX, what if_nametoindex(3) does), in the socket's namespace; null when
   * there is no such link. A few µs: no RTM_GETLINK reply to build and parse.
   */
  interfaceIndex(name: string): number | null {
    if (this.fd < 0) throw new Error('netlink socket is closed');
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || nameBytes.includes(0) || name.includes('/')) return null;
    const ifreq = Buffer.alloc(40);
    nameBytes.copy(ifreq, 0);
    if (socketCalls().ioctl(this.fd, SIOCGIFINDEX, ifreq) === 0) return ifreq.readInt32LE(IFNAMSIZ);
    const errno = koffi.errno();
    if (errno === ENODEV) return null;
    throw new Error(`netlink: SIOCGIFINDEX ${name} failed: ${errnoText(errno)}`);
  }

  /** Sends one request (REQUEST|ACK added) and reads until its ACK, error or dump end. Throws NetlinkRejection on an error reply. */
  requestSync(type: number, payload: readonly Buffer[] | Buffer, flags: number): RawNetlinkMessage[] {
    if (this.fd < 0) throw new Error('netlink socket is closed');
    const c = socketCalls();
    const seq = this.seq;
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    const body = Buffer.isBuffer(payload) ? payload : Buffer.concat(payload);
    const request = Buffer.alloc(NLMSG_HDRLEN + body.length);
    request.writeUInt32LE(request.length, 0);
    request.writeUInt16LE(type, 4);
    request.writeUInt16LE((flags | NLM_F_REQUEST | NLM_F_ACK) & 0xffff, 6);
    request.writeUInt32LE(seq, 8);
    request.writeUInt32LE(0, 12);
    body.copy(request, NLMSG_HDRLEN);
    for (;;) {
      const sent = c.send(this.fd, request, request.length, 0);
      if (sent >= 0) break;
      if (koffi.errno() !== EINTR) throw failure('send');
    }
    const replies: RawNetlinkMessage[] = [];
    for (;;) {
      const received = c.recv(this.fd, this.buffer, this.buffer.length, MSG_TRUNC);
      if (received < 0) {
        const errno = koffi.errno();
        if (errno === EINTR) continue;
        if (errno === EAGAIN) throw new Error(`netlink: no reply from the kernel within ${REPLY_TIMEOUT_SECONDS} s`);
        throw failure('recv');
      }
      if (received > this.buffer.length) throw new Error(`netlink: reply of ${received} bytes exceeds the ${this.buffer.length}-byte buffer`);
      for (const message of splitMessages(this.buffer.subarray(0, received))) {
        if (message.seq !== seq) continue; // a late ACK of an earlier request
        if (message.type === NLMSG_ERROR) {
          const errno = -message.data.readInt32LE(0);
          if (errno !== 0) throw new NetlinkRejection(errno, extendedAckMessage(message));
          return replies;
        }
        if (message.type === NLMSG_DONE) return replies;
        // A plain reply (RTM_GETLINK by name) is followed by the ACK asked for; dump parts (MULTI) by DONE.
        replies.push(message);
      }
    }
  }

  /** NetlinkSocket.request's contract: resolves with [messages, rinfo]; rejects like the package on an error reply. */
  request(type: number, data: readonly Buffer[] | Buffer, options?: { readonly flags?: number }): Promise<[RawNetlinkMessage[], object]> {
    try {
      return Promise.resolve([this.requestSync(type, data, Number(options?.flags ?? 0)), {}]);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
