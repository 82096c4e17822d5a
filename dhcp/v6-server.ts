// The DHCPv6 server of one bridge: udp6 [::]:547 in the pod's namespace, bound to the bridge, joined to ff02::1:2 there, answers via v6-responder.
//
// Replies go to the client's (link-local) source address, port 546: SO_BINDTODEVICE makes the bridge the outgoing
// interface of a destination without a zone, and keeps the receive side on the bridge too, so two bridges in one pod
// each serve only their own guest and nothing leaks out of the pod NIC. The socket is made inside the attachment's
// namespace (drivers/udp-socket.ts; the group is joined with that namespace's interface index) and read through a
// ReceiveGate (receive-gate.ts) as the DHCPv4 server's. One pino line per exchange; every line a guest triggers goes
// through the attachment's log budget; malformed packets are dropped with a debug line.
import { countDhcpMessage } from './message-counters.js';
import type { Socket } from 'node:dgram';
import type { DhcpV6Plan } from '../agent/plan/plan-types.js';
import { DHCP_RECEIVE_BUFFER_BYTES } from '../agent/drivers/socket-options.js';
import { openUdpFd, udpSocketFromFd } from '../agent/drivers/udp-socket.js';
import { ReceiveGate } from './receive-gate.js';
import { guestLineAllowed, type RunningService, type ServiceContext } from './service.js';
import { respondV6 } from './v6-responder.js';
import { ALL_DHCP_RELAY_AGENTS_AND_SERVERS, DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, Dhcpv6DecodeError, decodeDhcpv6Message, ipv6ToBytes } from './v6-packet.js';

export interface DhcpV6ServerOptions {
  /** Server port (default 547); tests may use another. */
  readonly port?: number;
  /** Client port replies go to (default 546). */
  readonly clientPort?: number;
}

function withoutZone(address: string): string {
  const percent = address.indexOf('%');
  return percent < 0 ? address : address.slice(0, percent);
}

export async function startDhcpV6Server(plan: DhcpV6Plan, context: ServiceContext, options: DhcpV6ServerOptions = {}): Promise<RunningService> {
  const iface = plan.interface;
  const name = `dhcpv6 ${iface}`;
  const log = context.logger.child({ service: 'dhcpv6', interface: iface });
  const clientPort = options.clientPort ?? DHCPV6_CLIENT_PORT;
  const group = ipv6ToBytes(ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
  const opened = context.inNamespace(() =>
    openUdpFd({ family: 6, port: options.port ?? DHCPV6_SERVER_PORT, ifname: iface, joinGroup: group, receiveBufferBytes: DHCP_RECEIVE_BUFFER_BYTES }),
  );
  const socket: Socket = await udpSocketFromFd(opened, 6);
  const gate = new ReceiveGate(socket, context.limits, (counters) => {
    if (guestLineAllowed(context, log)) log.warn({ rateLimited: counters.rateLimited, limit: context.limits.packetsPerSecond }, 'dhcpv6 requests over the rate limit: reading paused');
  });

  socket.on('error', (error) => log.error({ err: error }, 'dhcpv6 socket error'));
  socket.on('message', (packet, rinfo) => {
    if (!gate.admit()) return;
    // libuv names the zone by looking the index up in the main thread's namespace: meaningless here, and not needed.
    const source = withoutZone(rinfo.address);
    let request;
    try {
      request = decodeDhcpv6Message(packet);
    } catch (error) {
      countDhcpMessage('v6', 'undecodable', 'dropped');
      if (!guestLineAllowed(context, log)) return;
      if (error instanceof Dhcpv6DecodeError) {
        log.debug({ source, bytes: packet.length, reason: error.reason }, `dhcpv6 malformed packet dropped: ${error.message}`);
      } else {
        log.error({ source, bytes: packet.length, err: error }, 'dhcpv6 decoder failed');
      }
      return;
    }
    let decision;
    try {
      decision = respondV6(request, plan, { address: source });
    } catch (error) {
      const reason = error instanceof Dhcpv6DecodeError ? error.message : String(error);
      if (guestLineAllowed(context, log)) log.info({ type: request.msgType, source, xid: request.transactionId }, `dhcpv6 request dropped: ${reason}`);
      return;
    }
    // Records spelled out key by key, not `{ ...fields, more }`: V8 promotes such objects (see server-v4.ts).
    const { type, transactionId: xid, mac, clientDuid: duid } = decision.log;
    countDhcpMessage('v6', String(type), decision.kind === 'ignore' ? 'ignored' : 'replied');
    if (decision.kind === 'ignore') {
      if (guestLineAllowed(context, log)) log.info({ type, xid, mac, duid, source, reason: decision.reason }, `dhcpv6 ${type} ignored`);
      return;
    }
    socket.send(decision.bytes, clientPort, source, (error) => {
      if (!guestLineAllowed(context, log)) return;
      if (error) {
        log.warn({ type, xid, mac, duid, source, reply: decision.replyType, err: error }, `dhcpv6 ${decision.replyType} not sent`);
        return;
      }
      log.info(
        { type, xid, mac, duid, source, reply: decision.replyType, address: decision.address, status: decision.status, iaids: decision.log.iaids },
        `dhcpv6 ${type} → ${decision.replyType}`,
      );
    });
  });
  log.info({ address: plan.address, prefixLength: plan.prefixLength, clientMac: plan.clientMac }, 'dhcpv6 server listening');

  let closing: Promise<void> | null = null;
  return {
    name,
    close() {
      if (closing === null) {
        gate.close();
        closing = new Promise<void>((resolve) => {
          try {
            socket.close(() => resolve());
          } catch {
            resolve();
          }
        });
      }
      return closing;
    },
  };
}
