// A DHCP relay-style DORA client for benchmarks: from giaddr:67 it sends DISCOVER then REQUEST to SERVER:67 and times each DORA.
//
// Run inside the client netns (`ip netns exec NS node dist/test/bench/dora-client.js SERVER GIADDR COUNT`); prints
// {"latenciesMs": [...], "lost": N} on stdout. Relay mode (giaddr ≠ 0) makes every server unicast to giaddr:67, so the
// agent's serve and dnsmasq are measured on exactly the same path.
import { createSocket, type Socket } from 'node:dgram';
import { decodeDhcpPacket, DhcpMessageType, DhcpOption, encodeDhcpPacket, type DhcpPacket } from '../../dhcp/packet.js';

const [server = '', giaddr = '', countText = '100', mac = '02:be:0c:00:00:01'] = process.argv.slice(2);
const count = Number(countText);
const TIMEOUT_MS = 2000;

function request(xid: number, type: number, options: Map<number, Buffer>): Buffer {
  const packet: DhcpPacket = {
    op: 1, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0,
    ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr, chaddr: mac, sname: '', file: '',
    options: new Map([[DhcpOption.PARAMETER_REQUEST_LIST, Buffer.from([1, 3, 6, 15, 26, 28, 51, 54])], ...options]),
    messageType: type,
  };
  return encodeDhcpPacket(packet);
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

/** Resolves with the first reply of `type` for `xid`, or null after the timeout. */
function awaitReply(socket: Socket, xid: number, type: number): Promise<DhcpPacket | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      resolve(null);
    }, TIMEOUT_MS);
    function onMessage(buf: Buffer): void {
      try {
        const p = decodeDhcpPacket(buf);
        if (p.xid !== xid || p.messageType !== type) return;
        clearTimeout(timer);
        socket.off('message', onMessage);
        resolve(p);
      } catch {
        // Not a DHCP reply for us.
      }
    }
    socket.on('message', onMessage);
  });
}

function send(socket: Socket, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.send(buf, 67, server, (err) => (err ? reject(err) : resolve())));
}

async function main(): Promise<void> {
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve) => socket.bind(67, giaddr, resolve));
  const latenciesMs: number[] = [];
  let lost = 0;
  let xid = (process.pid * 65536) >>> 0;
  for (let i = 0; i < count; i++) {
    xid = (xid + 1) >>> 0;
    const start = process.hrtime.bigint();
    const offerWait = awaitReply(socket, xid, DhcpMessageType.OFFER);
    await send(socket, request(xid, DhcpMessageType.DISCOVER, new Map()));
    const offer = await offerWait;
    if (offer === null) {
      lost++;
      continue;
    }
    const serverId = offer.options.get(DhcpOption.SERVER_IDENTIFIER) ?? ipBytes(server);
    const ackWait = awaitReply(socket, xid, DhcpMessageType.ACK);
    await send(socket, request(xid, DhcpMessageType.REQUEST, new Map([[DhcpOption.REQUESTED_ADDRESS, ipBytes(offer.yiaddr)], [DhcpOption.SERVER_IDENTIFIER, serverId]])));
    const ack = await ackWait;
    if (ack === null) {
      lost++;
      continue;
    }
    latenciesMs.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  socket.close();
  process.stdout.write(`${JSON.stringify({ latenciesMs, lost })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`dora-client: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
