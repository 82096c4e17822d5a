// The DHCPv6 server of one bridge: udp6 [::]:547 bound to the bridge, joined to ff02::1:2 there, answers via v6-responder.
//
// Replies go to the client's (link-local) source address, port 546, scoped to the bridge; SO_BINDTODEVICE keeps both the
// receive side and the replies on the bridge, so two bridges in one pod each serve only their own guest and nothing
// leaks out of the pod NIC. One pino line per exchange; malformed packets are dropped with a debug line.
import dgram from 'node:dgram';
import type { Logger } from 'pino';
import type { DhcpV6Plan } from '../agent/plan/plan-types.js';
import { bindToDevice, enlargeReceiveBuffer } from '../agent/drivers/socket-options.js';
import type { RunningService } from './service.js';
import { respondV6 } from './v6-responder.js';
import { ALL_DHCP_RELAY_AGENTS_AND_SERVERS, DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, Dhcpv6DecodeError, decodeDhcpv6Message } from './v6-packet.js';

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

function bindSocket(socket: dgram.Socket, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    socket.once('error', onError);
    socket.bind({ port, address: '::', exclusive: false }, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}

export async function startDhcpV6Server(plan: DhcpV6Plan, logger: Logger, options: DhcpV6ServerOptions = {}): Promise<RunningService> {
  const iface = plan.interface;
  const name = `dhcpv6 ${iface}`;
  const log = logger.child({ service: 'dhcpv6', interface: iface });
  const clientPort = options.clientPort ?? DHCPV6_CLIENT_PORT;
  const socket = dgram.createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true });
  try {
    await bindSocket(socket, options.port ?? DHCPV6_SERVER_PORT);
    bindToDevice(socket, iface);
    socket.addMembership(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, `::%${iface}`);
  } catch (error) {
    socket.close();
    throw error;
  }
  enlargeReceiveBuffer(socket); // as the DHCPv4 server: a burst survives a scheduling stall

  socket.on('error', (error) => log.error({ err: error }, 'dhcpv6 socket error'));
  socket.on('message', (packet, rinfo) => {
    const source = withoutZone(rinfo.address);
    let request;
    try {
      request = decodeDhcpv6Message(packet);
    } catch (error) {
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
      log.info({ type: request.msgType, source, xid: request.transactionId }, `dhcpv6 request dropped: ${reason}`);
      return;
    }
    // Records spelled out key by key, not `{ ...fields, more }`: V8 promotes such objects (see server-v4.ts).
    const { type, transactionId: xid, mac, clientDuid: duid } = decision.log;
    if (decision.kind === 'ignore') {
      log.info({ type, xid, mac, duid, source, reason: decision.reason }, `dhcpv6 ${type} ignored`);
      return;
    }
    socket.send(decision.bytes, clientPort, `${source}%${iface}`, (error) => {
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
