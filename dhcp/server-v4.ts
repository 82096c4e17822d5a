// The DHCPv4 server for one planned interface: a udp4 :67 socket bound to the bridge, decode → respond() → send, never crashing.
//
// - One socket per bridge (SO_REUSEADDR on :67, then SO_BINDTODEVICE): it receives only what arrives on its bridge,
//   and its replies, broadcasts included, leave through that bridge whatever the pod's routes say (a plain broadcast
//   has no route in a bridge-binding pod and leaks out of eth0 in a masquerade pod).
//   Caveat: Node binds before the device can be set, so a datagram arriving on another interface in that instant may
//   be queued; it is answered like any other (a wrong chaddr is ignored; a client matches replies by xid and chaddr).
// - Decisions are dhcp/responder.ts's (pure); this file only moves bytes and logs. Every input is handled inside a
//   try/catch: a decode error is counted and logged (rate-limited), never thrown; a send error is logged.
// - A 2 MiB receive buffer (capped by net.core.rmem_max): at 2000 requests/s the default 208 KiB holds ~0.1 s of
//   datagrams, and a process descheduled longer than that (a busy node, a VM's vCPU stall) loses the rest at the
//   socket (UDP RcvbufErrors), which perfdhcp showed here. Best effort: a failure leaves the default.
// - Logs (pino): one line per exchange at info (type, MAC, address, interface, xid, reply; written by exchange-log.ts
//   as pino would, without its generic serializer), ignored packets at debug, counters at close.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { Logger } from 'pino';
import type { DhcpV4Plan } from '../agent/plan/plan-types.js';
import { bindToDevice, enlargeReceiveBuffer } from '../agent/drivers/socket-options.js';
import { ExchangeLog, exchangeFields, type ExchangeFields } from './exchange-log.js';
import { DhcpDecodeError, decodeDhcpPacket, type DhcpPacket } from './packet.js';
import { DHCP_SERVER_PORT, respond, type DhcpDecision } from './responder.js';
import type { RunningService } from './service.js';

export interface DhcpV4Counters {
  /** Datagrams read from the socket. */
  received: number;
  /** Datagrams the codec rejected. */
  decodeErrors: number;
  replies: number;
  ignored: number;
  /** RELEASE / DECLINE records. */
  logged: number;
  sendErrors: number;
  /** Unexpected exceptions while handling a datagram (a bug; the server keeps running). */
  internalErrors: number;
}

export interface DhcpV4Server extends RunningService {
  readonly counters: Readonly<DhcpV4Counters>;
  /** SO_RCVBUF the kernel granted (null: the default, the enlargement was refused). */
  readonly receiveBufferBytes: number | null;
}

export interface DhcpV4ServerOptions {
  /** UDP port to listen on (default 67; tests may use another). */
  readonly port?: number;
  /** At most this many decode-error lines per window, then one "suppressed" line (default 10 per 10 s). */
  readonly decodeErrorBurst?: number;
  readonly decodeErrorWindowMs?: number;
}

/** Lets `burst` events through per window; counts the rest so the next window can say how many were dropped. */
class RateLimit {
  private windowStart = 0;
  private used = 0;
  suppressed = 0;

  constructor(
    private readonly burst: number,
    private readonly windowMs: number,
  ) {}

  /** true: log this one. When a new window opens, `suppressed` holds what the last one swallowed (read then reset). */
  allow(now: number): boolean {
    if (now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used < this.burst) {
      this.used++;
      return true;
    }
    this.suppressed++;
    return false;
  }
}

/** Opens the socket (bound to plan.interface) and serves until close(). Rejects if the socket cannot be set up. */
export async function startDhcpV4Server(plan: DhcpV4Plan, logger: Logger, options: DhcpV4ServerOptions = {}): Promise<DhcpV4Server> {
  const log = logger.child({ subcomponent: 'dhcpv4', interface: plan.interface });
  const counters: DhcpV4Counters = { received: 0, decodeErrors: 0, replies: 0, ignored: 0, logged: 0, sendErrors: 0, internalErrors: 0 };
  const decodeLimit = new RateLimit(options.decodeErrorBurst ?? 10, options.decodeErrorWindowMs ?? 10_000);
  const socket: Socket = createSocket({ type: 'udp4', reuseAddr: true });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind({ port: options.port ?? DHCP_SERVER_PORT, address: '0.0.0.0' }, () => {
      socket.off('error', onError);
      resolve();
    });
  }).catch((err: unknown) => {
    socket.close();
    throw err;
  });
  try {
    bindToDevice(socket, plan.interface);
    socket.setBroadcast(true);
  } catch (err) {
    socket.close();
    throw err;
  }
  const receiveBufferBytes = enlargeReceiveBuffer(socket);

  const send = (decision: Extract<DhcpDecision, { kind: 'reply' }>, fields: ExchangeFields): void => {
    const { address, port } = decision.destination;
    socket.send(decision.wire, port, address, (err) => {
      if (err) {
        counters.sendErrors++;
        const { msgType, mac, xid, giaddr } = fields;
        log.warn({ msgType, mac, xid, giaddr, err: err.message, destination: `${address}:${port}` }, 'dhcpv4 reply not sent');
      }
    });
  };

  const exchangeLog = new ExchangeLog(log);
  const logReply = (decision: Extract<DhcpDecision, { kind: 'reply' }>, fields: ExchangeFields, packet: DhcpPacket): void =>
    exchangeLog.reply(decision, fields, packet);

  const handle = (datagram: Buffer, from: RemoteInfo): void => {
    counters.received++;
    let packet: DhcpPacket;
    try {
      packet = decodeDhcpPacket(datagram);
    } catch (err) {
      counters.decodeErrors++;
      const suppressedBefore = decodeLimit.suppressed;
      if (decodeLimit.allow(Date.now())) {
        const reason = err instanceof DhcpDecodeError ? err.reason : 'unexpected';
        const extra = suppressedBefore > 0 ? { suppressed: suppressedBefore } : {};
        if (suppressedBefore > 0) decodeLimit.suppressed = 0;
        log.warn({ reason, from: `${from.address}:${from.port}`, bytes: datagram.length, ...extra }, `dhcpv4 packet dropped: ${(err as Error).message}`);
      }
      return;
    }
    const fields = exchangeFields(packet);
    const decision = respond(packet, plan);
    switch (decision.kind) {
      case 'reply':
        counters.replies++;
        send(decision, fields);
        // dgram sends after a nextTick (its address lookup): log in the next turn so formatting the line does not
        // delay the reply on the wire.
        setImmediate(logReply, decision, fields, packet);
        return;
      case 'log':
        counters.logged++;
        exchangeLog.clientLog(decision, fields);
        return;
      case 'ignore':
        counters.ignored++;
        log.debug({ msgType: fields.msgType, mac: fields.mac, xid: fields.xid, giaddr: fields.giaddr, reason: decision.ignore }, 'dhcpv4 request ignored');
        return;
    }
  };

  socket.on('message', (datagram: Buffer, from: RemoteInfo) => {
    try {
      handle(datagram, from);
    } catch (err) {
      counters.internalErrors++;
      log.error({ err: err instanceof Error ? err.message : String(err), bytes: datagram.length }, 'dhcpv4 internal error handling a packet');
    }
  });
  // A socket error after bind (rare: e.g. ENOBUFS) is logged; the socket stays open.
  socket.on('error', (err) => log.error({ err: err.message }, 'dhcpv4 socket error'));

  log.info({ serverIdentifier: plan.serverIdentifier, clientMac: plan.clientMac, address: `${plan.yiaddr}/${plan.prefixLength}`, receiveBufferBytes }, 'dhcpv4 server listening');

  let closing: Promise<void> | null = null;
  return {
    name: `dhcpv4 ${plan.interface}`,
    counters,
    receiveBufferBytes,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        socket.close(() => {
          log.info({ ...counters }, 'dhcpv4 server stopped');
          resolve();
        });
      });
      return closing;
    },
  };
}
