// Fuzz sender run inside a fake guest (`node --import tsx`): seeded malformed/random DHCPv4 datagrams to a live server, paced by probes.
//
// Usage: dhcp-fuzz-sender.ts COUNT SEED SERVER_IP
// Every WINDOW datagrams it sends a valid DISCOVER (a probe, unique xid) and waits for the OFFER: the server answers
// in arrival order, so at most WINDOW + 1 datagrams are ever queued and the kernel socket buffer does not overflow.
// stdout: "checkpoint N" after every CHECKPOINT datagrams, then one JSON summary line.
import { createSocket } from 'node:dgram';

const WINDOW = 48;
const CHECKPOINT = 100_000;
const PROBE_TIMEOUT_MS = 3_000;

const [countText, seedText] = process.argv.slice(2);
const server = process.argv[4] ?? '';
const total = Number(countText);
if (!Number.isInteger(total) || total < 1 || server === '') {
  process.stderr.write('usage: dhcp-fuzz-sender.ts COUNT SEED SERVER_IP\n');
  process.exit(2);
}

/** xorshift32: small, seeded, reproducible. */
let state = (Number(seedText) >>> 0) || 0x9e3779b9;
function next(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state;
}
const int = (n: number): number => next() % n;
const bytes = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = next() & 0xff;
  return b;
};

const COOKIE = Buffer.from([99, 130, 83, 99]);

function header(options: { op?: number; hlen?: number; xid?: number; chaddr?: Buffer; cookie?: Buffer } = {}): Buffer {
  const h = Buffer.alloc(240);
  h[0] = options.op ?? 1;
  h[1] = 1;
  h[2] = options.hlen ?? 6;
  h.writeUInt32BE(options.xid ?? next(), 4);
  (options.chaddr ?? bytes(6)).copy(h, 28, 0, 16);
  (options.cookie ?? COOKIE).copy(h, 236);
  return h;
}

function option(code: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([code, data.length]), data]);
}

/** A well-formed request of a random type with plausible options. */
function validRequest(xid = next(), chaddr = bytes(6), type = [1, 3, 3, 4, 7, 8][int(6)] ?? 1): Buffer {
  const parts = [header({ xid, chaddr }), option(53, Buffer.from([type])), option(61, Buffer.concat([Buffer.from([1]), chaddr]))];
  if (next() & 1) parts.push(option(55, Buffer.from([1, 3, 6, 12, 15, 26, 28, 51, 54, 119, 121])));
  if (type === 3 || type === 4) parts.push(option(50, Buffer.from([10, 0, 2, next() & 1 ? 2 : int(256)])));
  if (type === 3 && next() & 1) parts.push(option(54, Buffer.from([10, 0, 2, 1])));
  parts.push(Buffer.from([255]));
  const packet = Buffer.concat(parts);
  return packet.length < 300 ? Buffer.concat([packet, Buffer.alloc(300 - packet.length)]) : packet;
}

/** Random but structurally valid options: the server replies, so hostile 55/57/61/82 contents reach the encoder. */
function hostileOptions(): Buffer {
  const parts = [header(), option(53, Buffer.from([1 + int(8)]))];
  const n = int(12);
  for (let i = 0; i < n; i++) {
    const code = [55, 57, 61, 82, 50, 54, 12, 81, 1 + int(254)][int(9)] ?? 1;
    parts.push(option(code, bytes(code === 57 ? 2 : int(256))));
  }
  parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

function withOverload(): Buffer {
  const h = header();
  bytes(64).copy(h, 44); // sname
  bytes(128).copy(h, 108); // file
  if (next() & 1) h[44 + int(64)] = 255;
  if (next() & 1) h[108 + int(128)] = 255;
  const parts = [h, option(53, Buffer.from([1])), option(52, Buffer.from([int(256)]))];
  if (next() & 1) parts.push(Buffer.from([52, int(4), int(256), int(256)])); // odd lengths, repeated 52
  if (next() & 1) parts.push(Buffer.from([255]));
  return Buffer.concat(parts);
}

function mutate(packet: Buffer): Buffer {
  const copy = Buffer.from(packet);
  const flips = 1 + int(8);
  for (let i = 0; i < flips; i++) copy[int(copy.length)] = next() & 0xff;
  switch (int(4)) {
    case 0:
      return copy.subarray(0, int(copy.length + 1));
    case 1:
      return Buffer.concat([copy, bytes(int(64))]);
    default:
      return copy;
  }
}

/** One fuzz datagram; the kinds are the ones the issue names plus mutated valid packets. */
function fuzzPacket(): Buffer {
  const kind = int(100);
  if (kind < 14) return bytes(int(700)); // random bytes
  if (kind < 17) return Buffer.alloc(0); // zero-length
  if (kind < 27) return validRequest().subarray(0, int(240)); // truncated header
  if (kind < 39) {
    // option overrun: a length byte pointing past the end
    const body = Buffer.concat([header(), option(53, Buffer.from([1])), Buffer.from([1 + int(254), 10 + int(246)]), bytes(int(8))]);
    return body;
  }
  if (kind < 49) {
    // missing END (options simply stop, or run into padding)
    const body = Buffer.concat([header(), option(53, Buffer.from([1 + int(8)])), option(12, bytes(int(32)))]);
    return next() & 1 ? body : Buffer.concat([body, Buffer.alloc(int(64))]);
  }
  if (kind < 61) return withOverload(); // option overload 52
  if (kind < 68) return header({ hlen: 17 + int(239) }); // huge hlen (no options)
  if (kind < 72) return Buffer.concat([header({ hlen: 17 + int(239) }), option(53, Buffer.from([1])), Buffer.from([255])]);
  if (kind < 86) return mutate(validRequest()); // mutated valid packets
  if (kind < 94) return hostileOptions();
  if (kind < 97) return Buffer.concat([header({ op: int(256) }), option(53, Buffer.from([1])), Buffer.from([255])]); // bad op
  return Buffer.concat([header({ cookie: bytes(4) }), Buffer.from([255])]); // bad magic cookie
}

const socket = createSocket({ type: 'udp4', reuseAddr: true });
let waiting: { xid: number; resolve: (answered: boolean) => void; timer: NodeJS.Timeout } | null = null;
socket.on('message', (message) => {
  if (waiting === null || message.length < 8) return;
  if (message.readUInt32BE(4) === waiting.xid) {
    clearTimeout(waiting.timer);
    const { resolve } = waiting;
    waiting = null;
    resolve(true);
  }
});

function send(datagram: Buffer, address: string): Promise<void> {
  return new Promise((resolve) => socket.send(datagram, 67, address, () => resolve()));
}

async function probe(): Promise<boolean> {
  const xid = next();
  const answered = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      waiting = null;
      resolve(false);
    }, PROBE_TIMEOUT_MS);
    waiting = { xid, resolve, timer };
  });
  await send(validRequest(xid, bytes(6), 1), server);
  return answered;
}

async function main(): Promise<void> {
  await new Promise<void>((resolve) => socket.bind(68, '0.0.0.0', () => resolve()));
  socket.setBroadcast(true);
  const started = performance.now();
  let sent = 0;
  let probes = 0;
  let answered = 0;
  let bytesSent = 0;
  while (sent < total) {
    const burst = Math.min(WINDOW, total - sent);
    for (let i = 0; i < burst; i++) {
      const datagram = fuzzPacket();
      bytesSent += datagram.length;
      // Mostly unicast to the server; some as broadcasts, the way a client without an address sends.
      // Not awaited: the window is queued in one go (the probe below waits for the server anyway).
      socket.send(datagram, 67, int(10) === 0 ? '255.255.255.255' : server!);
      sent++;
      if (sent % CHECKPOINT === 0) process.stdout.write(`checkpoint ${sent}\n`);
    }
    probes++;
    if (await probe()) answered++;
  }
  const elapsedMs = performance.now() - started;
  process.stdout.write(`${JSON.stringify({ sent, bytesSent, probes, answered, elapsedMs: Math.round(elapsedMs) })}\n`);
  socket.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`fuzz sender failed: ${String(err)}\n`);
  process.exit(1);
});
