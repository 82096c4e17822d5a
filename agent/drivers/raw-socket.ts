// A raw ICMPv6 socket through koffi (Node has none): bound to one interface, hop limit 255, receive filtered by ICMPv6 type.
//
// The kernel fills the ICMPv6 checksum of raw IPPROTO_ICMPV6 sockets itself. The socket is non-blocking: the owner
// watches `fd` with the process's one FdPoller (drivers/fd-poller.ts) and calls tryReceive() on the main thread until it
// returns null, so no thread ever blocks on one socket. openIcmpv6Socket is synchronous: called inside a
// NetnsScope.run, the socket (and the interface index it resolves) belongs to that namespace for its whole life.
import koffi from 'koffi';
import { KernelError, describeErrno, errnoName } from './kernel-error.js';

const AF_INET6 = 10;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const MSG_DONTWAIT = 0x40;
const IPPROTO_ICMPV6 = 58;
const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
const SOL_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const ICMP6_FILTER = 1;
const SOCKADDR_IN6_LENGTH = 28;

type RawFn = (...args: unknown[]) => unknown;

interface RawLibc {
  socket: RawFn;
  bind: RawFn;
  setsockopt: RawFn;
  sendto: RawFn;
  recvfrom: RawFn;
  close: RawFn;
  ifNameToIndex: RawFn;
}

let cached: RawLibc | undefined;

function rawLibc(): RawLibc {
  if (cached !== undefined) return cached;
  const lib = koffi.load('libc.so.6');
  cached = {
    socket: lib.func('int socket(int domain, int type, int protocol)') as RawFn,
    bind: lib.func('int bind(int fd, const uint8_t *addr, uint32_t len)') as RawFn,
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t len)') as RawFn,
    sendto: lib.func('long sendto(int fd, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)') as RawFn,
    recvfrom: lib.func('long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *addrlen)') as RawFn,
    close: lib.func('int close(int fd)') as RawFn,
    ifNameToIndex: lib.func('unsigned int if_nametoindex(const char *name)') as RawFn,
  };
  return cached;
}

function check(op: string, ret: number): number {
  if (ret >= 0) return ret;
  const code = errnoName(koffi.errno());
  throw new KernelError(op, code, `${op}: ${describeErrno(code)}`);
}

function intValue(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32LE(value);
  return out;
}

/** struct sockaddr_in6 (family, port, flowinfo, address, scope id) in host byte order where Linux expects it. */
export function sockaddrIn6(address: Buffer, scopeId: number, port = 0): Buffer {
  const out = Buffer.alloc(SOCKADDR_IN6_LENGTH);
  out.writeUInt16LE(AF_INET6, 0);
  out.writeUInt16BE(port, 2);
  address.copy(out, 8, 0, 16);
  out.writeUInt32LE(scopeId, 24);
  return out;
}

/** struct icmp6_filter passing only the given ICMPv6 types (Linux: a set bit blocks the type). */
function icmp6Filter(passTypes: readonly number[]): Buffer {
  const words = new Array<number>(8).fill(0xffff_ffff);
  for (const type of passTypes) words[type >> 5] = (words[type >> 5] ?? 0) & ~(1 << (type & 31)) >>> 0;
  const out = Buffer.alloc(32);
  words.forEach((word, index) => out.writeUInt32LE(word >>> 0, index * 4));
  return out;
}

export interface ReceivedPacket {
  readonly data: Buffer;
  /** The 16-byte source address. */
  readonly source: Buffer;
}

export interface Icmpv6Socket {
  readonly ifname: string;
  readonly ifindex: number;
  /** The (non-blocking) descriptor, for a poller; -1 once closed. */
  readonly fd: number;
  /** bind(2) to a local address of the interface (e.g. its link-local); throws KernelError (EADDRNOTAVAIL while tentative). */
  bindAddress(address: Buffer): void;
  /** sendto(2) an ICMPv6 message to address%ifindex; throws KernelError. */
  send(message: Buffer, destination: Buffer): void;
  /** One non-blocking recvfrom: a packet, or null when none is queued (EAGAIN); throws KernelError on other errors. */
  tryReceive(): ReceivedPacket | null;
  /** Closes the fd (unwatch it from its poller first). Idempotent. */
  close(): void;
}

export interface Icmpv6SocketOptions {
  /** ICMPv6 types to receive (everything else is filtered in the kernel); [] receives nothing useful. */
  readonly receiveTypes: readonly number[];
}

/** Opens socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6) bound to `ifname`, hop limits 255 (RFC 4861 §6.1.2), no loopback. */
export function openIcmpv6Socket(ifname: string, options: Icmpv6SocketOptions): Icmpv6Socket {
  const libc = rawLibc();
  const op = `icmpv6 socket on ${ifname}`;
  const ifindex = Number(libc.ifNameToIndex(ifname));
  if (ifindex === 0) throw new KernelError(op, 'ENODEV', `${op}: no interface ${ifname}`);
  const fd = check(op, Number(libc.socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_ICMPV6)));
  const setopt = (level: number, name: number, value: Buffer, what: string): void => {
    check(`${op}: setsockopt ${what}`, Number(libc.setsockopt(fd, level, name, value, value.length)));
  };
  try {
    setopt(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`, 'utf8'), 'SO_BINDTODEVICE');
    setopt(SOL_IPV6, IPV6_MULTICAST_HOPS, intValue(255), 'IPV6_MULTICAST_HOPS');
    setopt(SOL_IPV6, IPV6_UNICAST_HOPS, intValue(255), 'IPV6_UNICAST_HOPS');
    setopt(SOL_IPV6, IPV6_MULTICAST_LOOP, intValue(0), 'IPV6_MULTICAST_LOOP');
    setopt(IPPROTO_ICMPV6, ICMP6_FILTER, icmp6Filter(options.receiveTypes), 'ICMP6_FILTER');
  } catch (error) {
    libc.close(fd);
    throw error;
  }

  let closed = false;
  // One receive buffer per socket, reused: a received packet is copied out of it.
  const buf = Buffer.alloc(1500);
  const from = Buffer.alloc(SOCKADDR_IN6_LENGTH);
  const fromLength = Buffer.alloc(4);

  return {
    ifname,
    ifindex,
    get fd() {
      return closed ? -1 : fd;
    },
    bindAddress(address) {
      if (closed) throw new KernelError(`${op}: bind`, 'EBADF', `${op}: closed`);
      const sa = sockaddrIn6(address, ifindex);
      check(`${op}: bind`, Number(libc.bind(fd, sa, sa.length)));
    },
    send(message, destination) {
      if (closed) throw new KernelError(`${op}: send`, 'EBADF', `${op}: closed`);
      const sa = sockaddrIn6(destination, ifindex);
      check(`${op}: sendto`, Number(libc.sendto(fd, message, message.length, 0, sa, sa.length)));
    },
    tryReceive() {
      if (closed) return null;
      fromLength.writeUInt32LE(SOCKADDR_IN6_LENGTH);
      const length = Number(libc.recvfrom(fd, buf, buf.length, MSG_DONTWAIT, from, fromLength));
      if (length < 0) {
        const code = errnoName(koffi.errno());
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') return null;
        throw new KernelError(`${op}: recvfrom`, code, `${op}: recvfrom: ${describeErrno(code)}`);
      }
      return { data: Buffer.from(buf.subarray(0, length)), source: Buffer.from(from.subarray(8, 24)) };
    },
    close() {
      if (closed) return;
      closed = true;
      libc.close(fd);
    },
  };
}
