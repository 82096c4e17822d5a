// The DHCPv4 server for one planned interface: a udp4 :67 socket in the pod's namespace bound to the bridge, decode → respond() → send, never crashing.
//
// - One socket per bridge (SO_REUSEADDR on :67, SO_BINDTODEVICE before bind; drivers/udp-socket.ts creates it inside
//   the attachment's namespace): it receives only what arrives on its bridge, and its replies, broadcasts included,
//   leave through that bridge whatever the pod's routes say (a plain broadcast has no route in a bridge-binding pod
//   and leaks out of eth0 in a masquerade pod).
// - Decisions are dhcp/responder.ts's (pure); this file only moves bytes and logs. Every input is handled inside a
//   try/catch: a decode error is counted and logged (rate-limited), never thrown; a send error is logged.
// - A 2 MiB receive buffer (capped by net.core.rmem_max): at 2000 requests/s the default 208 KiB holds ~0.1 s of
//   datagrams, and a process descheduled longer than that (a busy node, a VM's vCPU stall) loses the rest at the
//   socket (UDP RcvbufErrors), which perfdhcp showed here. Best effort: a failure leaves the default.
// - Fairness: a ReceiveGate (receive-gate.ts) pauses the socket after a few datagrams per loop turn and over the
//   attachment's sustained rate, so a flooding guest cannot hold up the other guests of the process.
// - Logs (pino): one line per exchange at info (type, MAC, address, interface, xid, reply; written by exchange-log.ts
//   as pino would, without its generic serializer), ignored packets at debug, counters at close. Every line a guest
//   triggers goes through the attachment's log budget (service.ts guestLineAllowed).
import { countDhcpMessage } from './message-counters.js';
import type { RemoteInfo, Socket } from 'node:dgram';
import type { DhcpV4Plan } from '../agent/plan/plan-types.js';
import { DHCP_RECEIVE_BUFFER_BYTES } from '../agent/drivers/socket-options.js';
import { openUdpFd, udpSocketFromFd } from '../agent/drivers/udp-socket.js';
import { ExchangeLog, exchangeFields, type ExchangeFields } from './exchange-log.js';
import { DhcpDecodeError, decodeDhcpPacket, type DhcpPacket } from './packet.js';
import { ReceiveGate } from './receive-gate.js';
import { DHCP_SERVER_PORT, respond, type DhcpDecision } from './responder.js';
import { guestLineAllowed, type RunningService, type ServiceContext } from './service.js';

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
  /** Times the guest's sustained rate was exceeded (reads paused). */
  rateLimited: number;
}

export interface DhcpV4Server extends RunningService {
  readonly counters: Readonly<DhcpV4Counters>;
  /** SO_RCVBUF the kernel granted (null: the default, the enlargement was refused). */
  readonly receiveBufferBytes: number | null;
}

export interface DhcpV4ServerOptions {
  /** UDP port to listen on (default 67; tests may use another). */
  readonly port?: number;
}

/** Opens the socket (bound to plan.interface) and serves until close(). Rejects if the socket cannot be set up. */
export async function startDhcpV4Server(plan: DhcpV4Plan, context: ServiceContext, options: DhcpV4ServerOptions = {}): Promise<DhcpV4Server> {
  const log = context.logger.child({ subcomponent: 'dhcpv4', interface: plan.interface });
  const counters: DhcpV4Counters = { received: 0, decodeErrors: 0, replies: 0, ignored: 0, logged: 0, sendErrors: 0, internalErrors: 0, rateLimited: 0 };
  const opened = context.inNamespace(() =>
    openUdpFd({ family: 4, port: options.port ?? DHCP_SERVER_PORT, ifname: plan.interface, broadcast: true, receiveBufferBytes: DHCP_RECEIVE_BUFFER_BYTES }),
  );
  const socket: Socket = await udpSocketFromFd(opened, 4);
  const receiveBufferBytes = opened.receiveBufferBytes;
  const gate = new ReceiveGate(socket, context.limits, (gateCounters) => {
    counters.rateLimited = gateCounters.rateLimited;
    if (guestLineAllowed(context, log)) log.warn({ rateLimited: gateCounters.rateLimited, limit: context.limits.packetsPerSecond }, 'dhcpv4 requests over the rate limit: reading paused');
  });

  const send = (decision: Extract<DhcpDecision, { kind: 'reply' }>, fields: ExchangeFields): void => {
    const { address, port } = decision.destination;
    socket.send(decision.wire, port, address, (err) => {
      if (err) {
        counters.sendErrors++;
        if (!guestLineAllowed(context, log)) return;
        const { msgType, mac, xid, giaddr } = fields;
        log.warn({ msgType, mac, xid, giaddr, err: err.message, destination: `${address}:${port}` }, 'dhcpv4 reply not sent');
      }
    });
  };

  const exchangeLog = new ExchangeLog(log);
  const logReply = (decision: Extract<DhcpDecision, { kind: 'reply' }>, fields: ExchangeFields, packet: DhcpPacket): void => {
    if (guestLineAllowed(context, log)) exchangeLog.reply(decision, fields, packet);
  };

  const handle = (datagram: Buffer, from: RemoteInfo): void => {
    counters.received++;
    let packet: DhcpPacket;
    try {
      packet = decodeDhcpPacket(datagram);
    } catch (err) {
      counters.decodeErrors++;
      countDhcpMessage('v4', 'undecodable', 'dropped');
      if (guestLineAllowed(context, log)) {
        const reason = err instanceof DhcpDecodeError ? err.reason : 'unexpected';
        log.warn({ reason, from: `${from.address}:${from.port}`, bytes: datagram.length }, `dhcpv4 packet dropped: ${(err as Error).message}`);
      }
      return;
    }
    const fields = exchangeFields(packet);
    const decision = respond(packet, plan);
    switch (decision.kind) {
      case 'reply':
        counters.replies++;
        countDhcpMessage('v4', fields.msgType, 'replied');
        send(decision, fields);
        // dgram sends after a nextTick (its address lookup): log in the next turn so formatting the line does not
        // delay the reply on the wire.
        setImmediate(logReply, decision, fields, packet);
        return;
      case 'log':
        counters.logged++;
        countDhcpMessage('v4', fields.msgType, 'logged');
        if (guestLineAllowed(context, log)) exchangeLog.clientLog(decision, fields);
        return;
      case 'ignore':
        counters.ignored++;
        countDhcpMessage('v4', fields.msgType, 'ignored');
        if (log.isLevelEnabled('debug') && guestLineAllowed(context, log)) log.debug({ msgType: fields.msgType, mac: fields.mac, xid: fields.xid, giaddr: fields.giaddr, reason: decision.ignore }, 'dhcpv4 request ignored');
        return;
    }
  };

  socket.on('message', (datagram: Buffer, from: RemoteInfo) => {
    if (!gate.admit()) return;
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
        gate.close();
        socket.close(() => {
          log.info({ ...counters }, 'dhcpv4 server stopped');
          resolve();
        });
      });
      return closing;
    },
  };
}
