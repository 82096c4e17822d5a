// A blocking rtnetlink socket through libc (koffi): send one request, read its reply, on the calling thread.
//
// Why: an asynchronous netlink socket (libuv poll, a queued write, a promise per reply; the npm `netlink` package's,
// which the agent used before) costs ~180 µs per request here, against ~10 µs for send(2) + recv(2): the kernel
// executes an rtnetlink request inside sendmsg, so the reply is already queued when send returns. A setup with 64
// networks makes ~1,500 requests. The socket asks for extended acks (NETLINK_EXT_ACK), so a refusal carries the
// kernel's own text ("mtu greater than device maximum", …). Message bodies are rtnl-codec.ts's; this file moves them.
// The socket belongs to the network namespace of the thread that created it (see agent/apply/netns.ts).
import { errnoName } from './kernel-error.js';
import { ethtoolLinkState } from './link-sync.js';
import { libc, type SysResult } from './libc.js';
import type { NetlinkWorker } from './netlink-worker.js';

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
const SIOCGIFNAME = 0x8910;
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

/** One netlink message: its header's fields and its body. */
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
    super(`Request rejected: ${errnoName(errno)}${kernelMessage !== null ? ` (${kernelMessage})` : ''}`);
    this.name = 'NetlinkRejection';
  }
}

/** The result of a libc call, or an Error naming the call and its errno. */
function checked(what: string, result: SysResult): number {
  if (result.ret < 0) throw new Error(`netlink ${what} failed: ${errnoName(result.errno)}`);
  return result.ret;
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

/** An rtnetlink socket: requestSync() sends a request and returns its replies; interfaceIndex() looks a name up. */
export class SyncNetlinkSocket {
  private seq = 1;
  private fd: number;
  private readonly buffer = Buffer.alloc(RECEIVE_BUFFER_BYTES);

  /** `protocol`: NETLINK_ROUTE (default) or another netlink family (NETLINK_NETFILTER = 12 for nf_tables). */
  constructor(protocol: number = NETLINK_ROUTE) {
    const c = libc();
    this.fd = checked('socket', c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol));
    const timeout = Buffer.alloc(16);
    timeout.writeBigInt64LE(BigInt(REPLY_TIMEOUT_SECONDS), 0);
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    try {
      checked('setsockopt SO_RCVTIMEO', c.setsockoptBuffer(this.fd, SOL_SOCKET, SO_RCVTIMEO, timeout));
    } catch (err) {
      c.close(this.fd);
      throw err;
    }
    // Best effort: without extended acks, refusals carry the errno only.
    c.setsockoptBuffer(this.fd, SOL_NETLINK, NETLINK_EXT_ACK, one);
  }

  close(): void {
    if (this.fd < 0) return;
    libc().close(this.fd);
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
    const { ret, errno } = libc().ioctlBuffer(this.fd, SIOCGIFINDEX, ifreq);
    if (ret === 0) return ifreq.readInt32LE(IFNAMSIZ);
    if (errno === ENODEV) return null;
    throw new Error(`netlink: SIOCGIFINDEX ${name} failed: ${errnoName(errno)}`);
  }

  /**
   * Settles the carrier state of the link (see link-sync.ts): the kernel processes a pending carrier change of the
   * link before this returns, in the socket's namespace. Returns whether it has carrier (null: no ethtool get_link).
   */
  syncLinkState(name: string): boolean | null {
    if (this.fd < 0) throw new Error('netlink socket is closed');
    return ethtoolLinkState(this.fd, name);
  }

  /** The datagram of one request (REQUEST|ACK added) and its sequence number. */
  private encode(type: number, body: Buffer, flags: number, ack = true): { request: Buffer; seq: number } {
    if (this.fd < 0) throw new Error('netlink socket is closed');
    const seq = this.seq;
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    const request = Buffer.alloc(NLMSG_HDRLEN + body.length);
    request.writeUInt32LE(request.length, 0);
    request.writeUInt16LE(type, 4);
    request.writeUInt16LE((flags | NLM_F_REQUEST | (ack ? NLM_F_ACK : 0)) & 0xffff, 6);
    request.writeUInt32LE(seq, 8);
    request.writeUInt32LE(0, 12);
    body.copy(request, NLMSG_HDRLEN);
    return { request, seq };
  }

  /** Sends one request (REQUEST, and ACK unless `ack` is false) and reads until its ACK, error or dump end. Throws NetlinkRejection on an error reply. */
  requestSync(type: number, body: Buffer, flags: number, ack = true): RawNetlinkMessage[] {
    const { request, seq } = this.encode(type, body, flags, ack);
    const c = libc();
    for (;;) {
      const sent = c.send(this.fd, request, 0);
      if (sent.ret >= 0) break;
      if (sent.errno !== EINTR) checked('send', sent);
    }
    const replies: RawNetlinkMessage[] = [];
    for (;;) {
      const { ret: received, errno } = c.recv(this.fd, this.buffer, MSG_TRUNC);
      if (received < 0) {
        if (errno === EINTR) continue;
        if (errno === EAGAIN) throw new Error(`netlink: no reply from the kernel within ${REPLY_TIMEOUT_SECONDS} s`);
        checked('recv', { ret: received, errno });
      }
      if (received > this.buffer.length) throw new Error(`netlink: reply of ${received} bytes exceeds the ${this.buffer.length}-byte buffer`);
      if (collectReplies(this.buffer.subarray(0, received), seq, replies)) return replies;
    }
  }

  /**
   * The same exchange run on `worker`'s thread: the main thread keeps running while the kernel works (see
   * netlink-worker.ts). Nothing else may use this socket until the promise settles.
   */
  async requestInWorker(type: number, body: Buffer, flags: number, worker: NetlinkWorker): Promise<RawNetlinkMessage[]> {
    const { request, seq } = this.encode(type, body, flags);
    const datagrams = await worker.exchange(this.fd, request, seq);
    const replies: RawNetlinkMessage[] = [];
    for (const datagram of datagrams) if (collectReplies(datagram, seq, replies)) return replies;
    throw new Error('netlink: the worker returned no answer to the request');
  }

  /**
   * Whether the namespace still lists a link with this ifindex (SIOCGIFNAME: a lookup under RCU, no rtnl lock, so it
   * answers while another thread's deletion holds or waits in the kernel). A link being unregistered is unlisted at
   * the start of the deletion, before the grace periods.
   */
  linkListed(index: number): boolean {
    if (this.fd < 0) throw new Error('netlink socket is closed');
    const ifreq = Buffer.alloc(40);
    ifreq.writeInt32LE(index, IFNAMSIZ);
    const { ret, errno } = libc().ioctlBuffer(this.fd, SIOCGIFNAME, ifreq);
    if (ret === 0) return true;
    if (errno === ENODEV) return false;
    throw new Error(`netlink: SIOCGIFNAME ${index} failed: ${errnoName(errno)}`);
  }
}

/**
 * Adds the messages of `datagram` answering request `seq` to `replies`; true once the answer is complete (ACK, DONE).
 * Throws NetlinkRejection on an error reply.
 */
function collectReplies(datagram: Buffer, seq: number, replies: RawNetlinkMessage[]): boolean {
  for (const message of splitMessages(datagram)) {
    if (message.seq !== seq) continue; // a late ACK of an earlier request
    if (message.type === NLMSG_ERROR) {
      const errno = -message.data.readInt32LE(0);
      if (errno !== 0) throw new NetlinkRejection(errno, extendedAckMessage(message));
      return true;
    }
    if (message.type === NLMSG_DONE) return true;
    // A plain reply (RTM_GETLINK by name) is followed by the ACK asked for; dump parts (MULTI) by DONE.
    replies.push(message);
  }
  return false;
}
