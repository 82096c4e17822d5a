// UDP server sockets for the serving core, made with libc (koffi) so they can be created inside a pod's network namespace.
//
// Why not dgram.createSocket().bind(): Node creates the descriptor at bind, asynchronously, in whatever namespace the
// main thread is in by then, and the main thread may stand in a pod's namespace only inside a synchronous
// NetnsScope.run. So the descriptor is made here, synchronously (call openUdpFd inside the scope): socket(2) fixes the
// socket's namespace for its whole life; SO_BINDTODEVICE is set before bind(2) (no window in which a datagram from
// another interface is queued), and for DHCPv6 the multicast group is joined with the interface index of the pod's
// namespace (dgram's addMembership would resolve "::%name" in the main thread's namespace). udpSocketFromFd then hands
// the bound descriptor to node:dgram (bind({ fd })), which reads and sends through libuv as for any other socket.
// Sends on such a socket use its namespace's routes whatever thread sends; a link-local destination needs no zone
// (the socket's bound device is the outgoing interface).
import dgram from 'node:dgram';
import koffi from 'koffi';
import { KernelError, describeErrno, errnoName } from './kernel-error.js';

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_BROADCAST = 6;
const SO_RCVBUF = 8;
const SO_BINDTODEVICE = 25;
const SOL_IPV6 = 41;
const IPV6_V6ONLY = 26;
const IPV6_JOIN_GROUP = 20;

type RawFn = (...args: unknown[]) => unknown;

interface UdpLibc {
  socket: RawFn;
  setsockopt: RawFn;
  getsockopt: RawFn;
  bind: RawFn;
  close: RawFn;
  ifNameToIndex: RawFn;
}

let cached: UdpLibc | undefined;

function udpLibc(): UdpLibc {
  if (cached !== undefined) return cached;
  const lib = koffi.load('libc.so.6');
  cached = {
    socket: lib.func('int socket(int domain, int type, int protocol)') as RawFn,
    setsockopt: lib.func('int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t len)') as RawFn,
    getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, void *len)') as RawFn,
    bind: lib.func('int bind(int fd, const uint8_t *addr, uint32_t len)') as RawFn,
    close: lib.func('int close(int fd)') as RawFn,
    ifNameToIndex: lib.func('unsigned int if_nametoindex(const char *name)') as RawFn,
  };
  return cached;
}

export interface UdpSocketSpec {
  readonly family: 4 | 6;
  readonly port: number;
  /** The interface the socket is bound to (SO_BINDTODEVICE), in the namespace current when openUdpFd runs. */
  readonly ifname: string;
  /** SO_BROADCAST (DHCPv4 replies to 255.255.255.255). */
  readonly broadcast?: boolean;
  /** A 16-byte IPv6 multicast group joined on the interface (DHCPv6: ff02::1:2). */
  readonly joinGroup?: Buffer;
  /** SO_RCVBUF asked for (best effort; the kernel caps it at net.core.rmem_max and doubles it). */
  readonly receiveBufferBytes?: number;
}

export interface UdpFd {
  readonly fd: number;
  readonly ifindex: number;
  /** SO_RCVBUF the kernel granted, or null when it was not asked for or refused. */
  readonly receiveBufferBytes: number | null;
}

function intValue(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeInt32LE(value);
  return out;
}

/**
 * Creates, configures and binds a UDP socket in the current network namespace (synchronous: call it inside a
 * NetnsScope.run). Throws a KernelError naming the interface and the step; the descriptor is closed on failure.
 */
export function openUdpFd(spec: UdpSocketSpec): UdpFd {
  const libc = udpLibc();
  const op = `udp${spec.family} socket on ${spec.ifname}`;
  const fail = (step: string): never => {
    const code = errnoName(koffi.errno());
    throw new KernelError(`${op}: ${step}`, code, `${step} ${spec.ifname}: ${describeErrno(code)}`);
  };
  const ifindex = Number(libc.ifNameToIndex(spec.ifname));
  if (ifindex === 0) throw new KernelError(`${op}: bind to device`, 'ENODEV', `setsockopt SO_BINDTODEVICE ${spec.ifname}: ${describeErrno('ENODEV')}`);
  const fd = Number(libc.socket(spec.family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd < 0) fail('socket');
  try {
    const setopt = (level: number, name: number, value: Buffer, step: string): void => {
      if (Number(libc.setsockopt(fd, level, name, value, value.length)) < 0) fail(step);
    };
    setopt(SOL_SOCKET, SO_REUSEADDR, intValue(1), 'setsockopt SO_REUSEADDR');
    if (spec.family === 6) setopt(SOL_IPV6, IPV6_V6ONLY, intValue(1), 'setsockopt IPV6_V6ONLY');
    setopt(SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${spec.ifname}\0`, 'utf8'), 'setsockopt SO_BINDTODEVICE');
    if (spec.broadcast === true) setopt(SOL_SOCKET, SO_BROADCAST, intValue(1), 'setsockopt SO_BROADCAST');
    let receiveBufferBytes: number | null = null;
    if (spec.receiveBufferBytes !== undefined) {
      const value = intValue(spec.receiveBufferBytes);
      if (Number(libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, value, 4)) === 0) {
        const out = Buffer.alloc(4);
        const length = intValue(4);
        if (Number(libc.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, out, length)) === 0) receiveBufferBytes = out.readInt32LE(0);
      }
    }
    let address: Buffer;
    if (spec.family === 4) {
      address = Buffer.alloc(16); // sockaddr_in, 0.0.0.0:port
      address.writeUInt16LE(AF_INET, 0);
      address.writeUInt16BE(spec.port, 2);
    } else {
      address = Buffer.alloc(28); // sockaddr_in6, [::]:port
      address.writeUInt16LE(AF_INET6, 0);
      address.writeUInt16BE(spec.port, 2);
    }
    if (Number(libc.bind(fd, address, address.length)) < 0) fail(`bind port ${spec.port} on`);
    if (spec.joinGroup !== undefined) {
      const mreq = Buffer.alloc(20); // struct ipv6_mreq: group, interface index
      spec.joinGroup.copy(mreq, 0, 0, 16);
      mreq.writeUInt32LE(ifindex, 16);
      setopt(SOL_IPV6, IPV6_JOIN_GROUP, mreq, 'setsockopt IPV6_JOIN_GROUP');
    }
    return { fd, ifindex, receiveBufferBytes };
  } catch (error) {
    libc.close(fd);
    throw error;
  }
}

/** Hands a bound descriptor from openUdpFd to node:dgram; closes it if dgram refuses it. */
export async function udpSocketFromFd(opened: UdpFd, family: 4 | 6): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd: opened.fd }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    try {
      socket.close();
    } catch {
      udpLibc().close(opened.fd);
    }
    throw error;
  }
  return socket;
}
