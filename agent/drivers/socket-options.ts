// Socket options Node's dgram lacks: SO_BINDTODEVICE on a bound dgram socket, so its traffic stays on one interface.
import type { Socket } from 'node:dgram';
import { libc } from './libc.js';
import { KernelError, describeErrno, errnoName } from './kernel-error.js';

const SOL_SOCKET = 1;
const SO_BINDTODEVICE = 25;

/** The file descriptor under a bound dgram socket (libuv's UDP handle exposes it on Unix). */
export function dgramFd(socket: Socket): number {
  for (const key of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, unknown>)[key];
    if (typeof state === 'object' && state !== null && 'handle' in state) {
      const handle = (state as { handle: { fd?: unknown } | null }).handle;
      if (handle !== null && typeof handle.fd === 'number' && handle.fd >= 0) return handle.fd;
    }
  }
  throw new Error('dgram socket has no file descriptor yet: bind it first');
}

/**
 * Binds a (bound) dgram socket to one interface: it then receives only what arrives on that interface, and its sends,
 * broadcasts included, leave through it whatever the routing table says.
 */
export function bindToDevice(socket: Socket, ifname: string): void {
  const fd = dgramFd(socket);
  const result = libc().setsockoptBuffer(fd, SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`, 'utf8'));
  if (result.ret < 0) {
    const code = errnoName(result.errno);
    throw new KernelError(`socket: bind to device ${ifname}`, code, `setsockopt SO_BINDTODEVICE ${ifname}: ${describeErrno(code)}`);
  }
}

/** What a DHCP socket asks for: ~1 s of requests at 2000/s (the kernel caps it at net.core.rmem_max, then doubles it). */
export const DHCP_RECEIVE_BUFFER_BYTES = 2 * 1024 * 1024;

/**
 * Raises a bound dgram socket's SO_RCVBUF so a burst survives while the process is not scheduled. Best effort:
 * returns the size the kernel granted, or null when it refused (the default then stays).
 */
export function enlargeReceiveBuffer(socket: Socket, bytes: number = DHCP_RECEIVE_BUFFER_BYTES): number | null {
  try {
    socket.setRecvBufferSize(bytes);
    return socket.getRecvBufferSize();
  } catch {
    return null;
  }
}
