// What node:dgram does not offer for the serving core's sockets: pausing and resuming a bound socket's reads (per-guest
// fairness), and the receive buffer size DHCP sockets ask for.
import type { Socket } from 'node:dgram';

interface UdpHandle {
  recvStart?: unknown;
  recvStop?: unknown;
}

/** libuv's UDP handle under a bound dgram socket (node:dgram keeps it in a symbol-keyed state object). */
function udpHandle(socket: Socket): UdpHandle | null {
  for (const key of Object.getOwnPropertySymbols(socket)) {
    const state = (socket as unknown as Record<symbol, unknown>)[key];
    if (typeof state === 'object' && state !== null && 'handle' in state) {
      const handle = (state as { handle: UdpHandle | null }).handle;
      if (handle !== null && typeof handle === 'object') return handle;
    }
  }
  return null;
}

/**
 * Stops (false) or restarts (true) reading a bound dgram socket: while stopped, datagrams wait in the kernel's
 * receive buffer (and the kernel drops what does not fit). Called from a 'message' listener, stopping takes effect
 * before libuv reads the next datagram. Returns false when this Node's dgram does not expose its handle's
 * recvStart/recvStop (the caller then drops instead of pausing), or the socket is closed.
 */
export function setReceiving(socket: Socket, receiving: boolean): boolean {
  const handle = udpHandle(socket);
  const method = handle === null ? undefined : receiving ? handle.recvStart : handle.recvStop;
  if (typeof method !== 'function') return false;
  (method as (this: UdpHandle) => unknown).call(handle as UdpHandle);
  return true;
}

/**
 * What a DHCP socket asks for: ~1 s of requests at 2000/s (the kernel caps it at net.core.rmem_max, then doubles it).
 * At 2000 requests/s the default 208 KiB holds ~0.1 s of datagrams, and a process descheduled longer than that (a busy
 * node, a VM's vCPU stall) loses the rest at the socket (UDP RcvbufErrors), which perfdhcp showed here.
 */
export const DHCP_RECEIVE_BUFFER_BYTES = 2 * 1024 * 1024;
