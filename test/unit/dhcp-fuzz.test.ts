// In-process fuzz of the DHCPv4 codec and responder: 200k seeded random/mutated packets (DHCP_FUZZ_ITERATIONS overrides), no crash, only DhcpDecodeError.
import { describe, expect, it } from 'vitest';
import type { DhcpV4Plan } from '../../agent/plan/plan-types.js';
import {
  DhcpDecodeError,
  decodeDhcpPacket,
  encodeDhcpPacket,
  type DhcpDecodeReason,
  type DhcpPacket,
} from '../../dhcp/packet.js';
import { respond, type DhcpDecision } from '../../dhcp/responder.js';
import { clientRequest, GUEST_MAC } from '../fixtures/dhcp-requests.js';

const ITERATIONS = Number(process.env.DHCP_FUZZ_ITERATIONS ?? 200_000);
const SEED = 0x5eed_d4c9;

/** mulberry32: small, fast, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const bridgePlan: DhcpV4Plan = {
  interface: 'k6t-eth0',
  serverIdentifier: '169.254.75.10',
  clientMac: GUEST_MAC,
  yiaddr: '10.244.1.5',
  prefixLength: 24,
  leaseSeconds: 86313600,
  options: {
    '1': 'ffffff00',
    '3': '0af40101',
    '6': '0a60000a',
    '12': Buffer.from('vmi-alpine').toString('hex'),
    '15': Buffer.from('default.svc.cluster.local').toString('hex'),
    '26': '0578',
    '119': '0764656661756c740373766307636c7573746572056c6f63616c00',
    '121': '100af40af40101000af40101',
    '224': 'ab'.repeat(150),
  },
};
const masqPlan: DhcpV4Plan = { ...bridgePlan, clientMac: null, serverIdentifier: '10.0.2.1', yiaddr: '10.0.2.2' };

function packet(type: number, patch: Partial<DhcpPacket>, options: Array<[number, number[]]>): Buffer {
  return encodeDhcpPacket(clientRequest(type, patch, options, 0x3903f326), { maxSize: 576 });
}

const ip = (s: string): number[] => s.split('.').map(Number);
const prl = [55, [1, 3, 6, 12, 15, 28, 42, 119, 121, 224]] as [number, number[]];
const bases: Buffer[] = [
  packet(1, {}, [[61, [1, 2, 0x42, 0xac, 0x11, 0, 2]], [57, [2, 64]], prl, [12, [...Buffer.from('fedora')]]]),
  packet(3, {}, [[54, ip('169.254.75.10')], [50, ip('10.244.1.5')], prl]),
  packet(3, {}, [[50, ip('10.244.1.99')]]),
  packet(3, { ciaddr: '10.244.1.5' }, [prl]),
  packet(8, { ciaddr: '10.244.1.5' }, [prl]),
  packet(7, { ciaddr: '10.244.1.5' }, [[54, ip('169.254.75.10')]]),
  packet(4, {}, [[50, ip('10.244.1.5')], [56, [...Buffer.from('in use')]]]),
  packet(1, { giaddr: '10.50.0.2', hops: 1, chaddr: '00:0c:01:02:03:04' }, [[82, [1, 4, 1, 2, 3, 4]], prl]),
  // Overloaded (file + sname carry options) and a long option split into pieces.
  packet(1, {}, [[224, new Array<number>(250).fill(1)], [225, new Array<number>(100).fill(2)], [226, new Array<number>(40).fill(3)]]),
  encodeDhcpPacket(
    { ...decodeDhcpPacket(packet(1, {}, [])), options: new Map([[119, Buffer.alloc(700, 0x61)]]) },
    { maxSize: 1500 },
  ),
];

type Strategy = (r: () => number) => Buffer;
const int = (r: () => number, n: number): number => Math.floor(r() * n);
/** 1 MiB of seeded noise, filled 4 bytes per draw; random byte strings are copied out of it at random offsets. */
const POOL = (() => {
  const r = prng(SEED ^ 0xa5a5a5a5);
  const b = Buffer.allocUnsafe(1 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(r() * 4294967296), i);
  return b;
})();
const randomBytes = (r: () => number, n: number): Buffer => {
  const at = int(r, POOL.length - n);
  return Buffer.from(POOL.subarray(at, at + n));
};
const pick = <T,>(r: () => number, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** A 240-byte valid header (cookie, sane hlen) followed by `tail`. */
function header(r: () => number, tail: Buffer): Buffer {
  const b = Buffer.concat([Buffer.from(pick(r, bases).subarray(0, 240)), tail]);
  if (r() < 0.3) b[2] = int(r, 17);
  return b;
}

const strategies: Array<[number, string, Strategy]> = [
  [10, 'random bytes', (r) => randomBytes(r, int(r, 700))],
  [15, 'valid header + random tail', (r) => header(r, randomBytes(r, int(r, 400)))],
  [
    25,
    'byte edits of a valid packet',
    (r) => {
      const b = Buffer.from(pick(r, bases));
      const edits = 1 + int(r, 8);
      for (let i = 0; i < edits; i++) {
        // Bias edits towards the option area, where the parser lives.
        const at = r() < 0.7 ? 236 + int(r, b.length - 236) : int(r, b.length);
        b[at] = r() < 0.5 ? b[at]! ^ (1 << int(r, 8)) : int(r, 256);
      }
      return b;
    },
  ],
  [10, 'truncated valid packet', (r) => { const b = pick(r, bases); return Buffer.from(b.subarray(0, int(r, b.length + 1))); }],
  [
    20,
    'random TLVs (lying lengths, overload, no END)',
    (r) => {
      const n = int(r, 20);
      const b = Buffer.allocUnsafe(240 + 3 + n * (2 + 255) + 1);
      pick(r, bases).copy(b, 0, 0, 240);
      if (r() < 0.3) b[2] = int(r, 17);
      let at = 240;
      b[at++] = 53;
      b[at++] = 1;
      b[at++] = 1 + int(r, 8);
      for (let i = 0; i < n; i++) {
        const code = r() < 0.1 ? 52 : r() < 0.1 ? pick(r, [0, 255, 50, 54, 55, 57, 61, 82]) : int(r, 256);
        const len = int(r, r() < 0.9 ? 32 : 256);
        const actual = r() < 0.85 ? len : int(r, 256);
        b[at++] = code;
        b[at++] = len;
        const from = int(r, POOL.length - actual);
        at += POOL.copy(b, at, from, from + actual);
      }
      if (r() < 0.5) b[at++] = 255;
      if (r() < 0.5) {
        const from = int(r, POOL.length - 192);
        POOL.copy(b, 44, from, from + 192); // sname + file: random options for overload
      }
      if (r() < 0.3) b[2] = int(r, 256); // huge hlen
      return b.subarray(0, at);
    },
  ],
  [
    10,
    'splice (insert/delete) in the option area',
    (r) => {
      const b = pick(r, bases);
      const at = 240 + int(r, b.length - 239);
      return r() < 0.5
        ? Buffer.concat([b.subarray(0, at), randomBytes(r, 1 + int(r, 20)), b.subarray(at)])
        : Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(r, 20)))]);
    },
  ],
  [
    10,
    'header chaos on a valid packet',
    (r) => {
      const b = Buffer.from(pick(r, bases));
      if (r() < 0.5) b[0] = r() < 0.8 ? 1 : int(r, 256);
      if (r() < 0.5) b[2] = int(r, 256);
      if (r() < 0.3) randomBytes(r, 4).copy(b, 12 + 4 * int(r, 4)); // ciaddr/yiaddr/siaddr/giaddr
      if (r() < 0.3) b.writeUInt16BE(int(r, 65536), 10);
      if (r() < 0.1) b.writeUInt32BE(int(r, 2 ** 32), 236);
      return b;
    },
  ],
];
const totalWeight = strategies.reduce((n, [w]) => n + w, 0);

function budget(p: DhcpPacket): number {
  const v = p.options.get(57);
  if (v === undefined || v.length !== 2) return 548;
  return Math.max(576, v.readUInt16BE(0)) - 28;
}

describe('DHCPv4 fuzz (in-process)', () => {
  it(`${ITERATIONS} seeded random/mutated packets: only DhcpDecodeError, respond never throws, replies stay valid`, () => {
    const r = prng(SEED);
    const reasons = new Map<DhcpDecodeReason, number>();
    const decisions = new Map<string, number>();
    const failures: string[] = [];
    let decoded = 0;
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < ITERATIONS && failures.length < 5; i++) {
      let roll = r() * totalWeight;
      let strategy = strategies[0]!;
      for (const s of strategies) {
        strategy = s;
        if ((roll -= s[0]) < 0) break;
      }
      const input = strategy[2](r);
      let p: DhcpPacket;
      try {
        p = decodeDhcpPacket(input);
      } catch (e) {
        if (e instanceof DhcpDecodeError) reasons.set(e.reason, (reasons.get(e.reason) ?? 0) + 1);
        else failures.push(`#${i} ${strategy[1]}: decode threw ${String(e)} on ${input.toString('hex')}`);
        continue;
      }
      decoded++;
      {
        const plan = r() < 0.5 ? bridgePlan : masqPlan;
        let d: DhcpDecision;
        try {
          d = respond(p, plan);
        } catch (e) {
          failures.push(`#${i} ${strategy[1]}: respond threw ${String(e)} on ${input.toString('hex')}`);
          continue;
        }
        const key = d.kind === 'reply' ? `reply:${d.reply.messageType}` : d.kind === 'log' ? `log:${d.log}` : 'ignore';
        decisions.set(key, (decisions.get(key) ?? 0) + 1);
        if (d.kind !== 'reply') continue;
        if (d.wire.length > budget(p)) failures.push(`#${i}: reply of ${d.wire.length} bytes over budget ${budget(p)}`);
        if (![67, 68].includes(d.destination.port)) failures.push(`#${i}: port ${d.destination.port}`);
        try {
          const back = decodeDhcpPacket(d.wire);
          if (back.messageType !== d.reply.messageType || back.xid !== p.xid) failures.push(`#${i}: reply does not decode to itself`);
        } catch (e) {
          failures.push(`#${i}: own reply does not decode: ${String(e)}`);
        }
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `dhcp fuzz: ${ITERATIONS} packets in ${seconds.toFixed(1)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU; decoded ${decoded}; ` +
        `errors ${JSON.stringify(Object.fromEntries(reasons))}; decisions ${JSON.stringify(Object.fromEntries(decisions))}`,
    );
    expect(failures).toEqual([]);
    // Coverage: every decode error path and every decision kind was reached.
    for (const reason of ['too-short', 'bad-op', 'bad-magic-cookie', 'bad-hlen', 'option-truncated', 'option-overrun', 'bad-overload'] as const) {
      expect(reasons.get(reason) ?? 0, reason).toBeGreaterThan(0);
    }
    expect(decoded).toBeGreaterThan(ITERATIONS / 5);
    for (const key of ['reply:2', 'reply:5', 'reply:6', 'log:release', 'log:decline', 'ignore']) {
      expect(decisions.get(key) ?? 0, key).toBeGreaterThan(0);
    }
  }, 600_000);
});
