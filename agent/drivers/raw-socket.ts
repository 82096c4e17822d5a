// A raw ICMPv6 socket through koffi (Node has none): bound to one interface, hop limit 255, receive filtered by ICMPv6 type.
//
// The kernel fills the ICMPv6 checksum of raw IPPROTO_ICMPV6 sockets itself. receive() runs a blocking recvfrom on a
// koffi worker thread; SO_RCVTIMEO bounds it (so a caller loop can check for shutdown) and shutdown(2) wakes it at once,
// so close() never waits for a packet that will not come. The fd is closed only after the pending receive returned.
import koffi from 'koffi';
import { KernelError, describeErrno, errnoName } from './kernel-error.js';

const AF_INET6 = 10;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const IPPROTO_ICMPV6 = 58;
const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;
const SO_RCVTIMEO = 20;
const SOL_IPV6 = 41;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const ICMP6_FILTER = 1;
const SHUT_RDWR = 2;
const SOCKADDR_IN6_LENGTH = 28;

type RawFn = ((...args: unknown[]) => unknown) & { async: (...args: unknown[]) => void };

interface RawLibc {
  socket: RawFn;
  bind: RawFn;
  setsockopt: RawFn;
  sendto: RawFn;
  recvfrom: RawFn;
  shutdown: RawFn;
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
    shutdown: lib.func('int shutdown(int fd, int how)') as RawFn,
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
  /** bind(2) to a local address of the interface (e.g. its link-local); throws KernelError (EADDRNOTAVAIL while tentative). */
  bindAddress(address: Buffer): void;
  /** sendto(2) an ICMPv6 message to address%ifindex; throws KernelError. */
  send(message: Buffer, destination: Buffer): void;
  /** One recvfrom on a worker thread: a packet, or null on timeout, shutdown or error. Only one at a time. */
  receive(): Promise<ReceivedPacket | null>;
  /** Wakes a pending receive and closes the fd once it returned. Idempotent. */
  close(): Promise<void>;
}

export interface Icmpv6SocketOptions {
  /** ICMPv6 types to receive (everything else is filtered in the kernel); [] receives nothing useful. */
  readonly receiveTypes: readonly number[];
  /** Upper bound of one blocking receive, in ms (default 1000). */
  readonly receiveTimeoutMs?: number;
}

/** Opens socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6) bound to `ifname`, hop limits 255 (RFC 4861 §6.1.2), no loopback. */
export function openIcmpv6Socket(ifname: string, options: Icmpv6SocketOptions): Icmpv6Socket {
  const libc = rawLibc();
  const op = `icmpv6 socket on ${ifname}`;
  const ifindex = Number(libc.ifNameToIndex(ifname));
  if (ifindex === 0) throw new KernelError(op, 'ENODEV', `${op}: no interface ${ifname}`);
  const fd = check(op, Number(libc.socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6)));
  const setopt = (level: number, name: number, value: Buffer, what: string): void => {
    check(`${op}: setsockopt ${what}`, Number(libc.setsockopt(fd, level, name, value, value.length)));
  };
  try {
    setopt(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`, 'utf8'), 'SO_BINDTODEVICE');
    setopt(SOL_IPV6, IPV6_MULTICAST_HOPS, intValue(255), 'IPV6_MULTICAST_HOPS');
    setopt(SOL_IPV6, IPV6_UNICAST_HOPS, intValue(255), 'IPV6_UNICAST_HOPS');
    setopt(SOL_IPV6, IPV6_MULTICAST_LOOP, intValue(0), 'IPV6_MULTICAST_LOOP');
    setopt(IPPROTO_ICMPV6, ICMP6_FILTER, icmp6Filter(options.receiveTypes), 'ICMP6_FILTER');
    const timeoutMs = options.receiveTimeoutMs ?? 1000;
    const timeval = Buffer.alloc(16);
    timeval.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
    timeval.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1000), 8);
    setopt(SOL_SOCKET, SO_RCVTIMEO, timeval, 'SO_RCVTIMEO');
  } catch (error) {
    libc.close(fd);
    throw error;
  }

  let pending: Promise<ReceivedPacket | null> | null = null;
  let closing: Promise<void> | null = null;
  let closed = false;

  return {
    ifname,
    ifindex,
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
    receive() {
      if (closed || closing !== null) return Promise.resolve(null);
      if (pending !== null) return pending;
      const buf = Buffer.alloc(1500);
      const from = Buffer.alloc(SOCKADDR_IN6_LENGTH);
      const fromLength = Buffer.alloc(4);
      fromLength.writeUInt32LE(SOCKADDR_IN6_LENGTH);
      pending = new Promise<ReceivedPacket | null>((resolve) => {
        libc.recvfrom.async(fd, buf, buf.length, 0, from, fromLength, (error: unknown, result: unknown) => {
          pending = null;
          const length = Number(result);
          if (error || !Number.isInteger(length) || length <= 0) resolve(null);
          else resolve({ data: Buffer.from(buf.subarray(0, length)), source: Buffer.from(from.subarray(8, 24)) });
        });
      });
      return pending;
    },
    close() {
      if (closing !== null) return closing;
      closing = (async () => {
        libc.shutdown(fd, SHUT_RDWR); // wakes a blocked recvfrom (returns 0); ENOTCONN on an unconnected socket is expected
        if (pending !== null) await pending;
        closed = true;
        libc.close(fd);
      })();
      return closing;
    },
  };
}
