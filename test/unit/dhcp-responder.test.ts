// Unit tests for the DHCPv4 responder (dhcp/responder.ts): message-type table, MAC filter, NAK, INFORM, relay, sizing.
import { describe, expect, it } from 'vitest';
import type { DhcpV4Plan } from '../../agent/plan/plan-types.js';
import { decodeDhcpPacket, encodeDhcpPacket, type DhcpPacket } from '../../dhcp/packet.js';
import { respond, type DhcpDecision, type DhcpReplyDecision } from '../../dhcp/responder.js';
import { clientRequest, GUEST_MAC } from '../fixtures/dhcp-requests.js';

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/** Bridge binding: one guest MAC, the fake bridge IP as server identifier (written upper-case on purpose). */
const bridgePlan: DhcpV4Plan = {
  interface: 'k6t-eth0',
  serverIdentifier: '169.254.75.10',
  clientMac: '02:42:AC:11:00:02',
  yiaddr: '10.244.1.5',
  prefixLength: 24,
  leaseSeconds: 86313600,
  options: {
    '1': 'ffffff00',
    '3': '0af40101',
    '6': '0a60000a',
    '12': hex('vmi-alpine'),
    '15': hex('default.svc.cluster.local'),
    '26': '0578',
    // RFC 1035 labels: default.svc.cluster.local, svc.cluster.local (no compression)
    '119': '0764656661756c740373766307636c7573746572056c6f63616c00' + '0373766307636c7573746572056c6f63616c00',
    // RFC 3442: 10.244.0.0/16 via 10.244.1.1, default via 10.244.1.1
    '121': '100af40af40101' + '000af40101',
  },
};

/** Masquerade: any MAC, 10.0.2.2 from 10.0.2.1; 51 and 1 left for the responder to derive. */
const masqPlan: DhcpV4Plan = {
  interface: 'k6t-eth0',
  serverIdentifier: '10.0.2.1',
  clientMac: null,
  yiaddr: '10.0.2.2',
  prefixLength: 24,
  leaseSeconds: 3600,
  options: { '3': '0a000201', '6': '0a60000a' },
};


function request(type: number | null, patch: Partial<DhcpPacket> = {}, options: Array<[number, number[] | Buffer]> = []): DhcpPacket {
  // Always go through the wire, as the server will.
  return decodeDhcpPacket(encodeDhcpPacket(clientRequest(type, { secs: 3, ...patch }, options), { maxSize: 1500 }));
}

function asReply(d: DhcpDecision): DhcpReplyDecision {
  if (d.kind !== 'reply') throw new Error(`expected a reply, got ${JSON.stringify(d)}`);
  return d;
}

function wireOrder(buf: Buffer): number[] {
  const out: number[] = [];
  let i = 240;
  while (i < buf.length && buf[i] !== 255) {
    if (buf[i] === 0) {
      i++;
      continue;
    }
    out.push(buf[i]!);
    i += 2 + buf[i + 1]!;
  }
  return out;
}

const ip = (s: string): number[] => s.split('.').map(Number);
const BCAST = { address: '255.255.255.255', port: 68, broadcast: true };

describe('DISCOVER → OFFER', () => {
  it('offers the planned address with every plan option, 53 and 54', () => {
    const r = asReply(respond(request(1, {}, [[55, [1, 3, 6, 12, 15, 28, 42, 121]]]), bridgePlan));
    expect(r.reply.messageType).toBe(2);
    expect(r.reply.op).toBe(2);
    expect(r.reply.yiaddr).toBe('10.244.1.5');
    expect(r.reply.ciaddr).toBe('0.0.0.0');
    expect(r.reply.siaddr).toBe('0.0.0.0');
    expect(r.reply.xid).toBe(0x11223344);
    expect(r.reply.chaddr).toBe(GUEST_MAC);
    expect(r.reply.hops).toBe(0);
    expect(r.destination).toEqual(BCAST);
    const decoded = decodeDhcpPacket(r.wire);
    expect(decoded.messageType).toBe(2);
    for (const [code, payload] of Object.entries(bridgePlan.options)) {
      expect(decoded.options.get(Number(code))!.toString('hex'), `option ${code}`).toBe(payload);
    }
    expect([...decoded.options.get(54)!]).toEqual(ip('169.254.75.10'));
    expect(decoded.options.get(51)!.readUInt32BE(0)).toBe(86313600);
    expect(r.dropped).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.wire.length).toBeGreaterThanOrEqual(300);
    expect(r.wire.length).toBeLessThanOrEqual(548);
  });

  it('puts the requested options first, in the order of option 55, then the rest by code', () => {
    const r = asReply(respond(request(1, {}, [[55, [121, 3, 1, 99, 6, 53, 121]]]), bridgePlan));
    expect(wireOrder(r.wire)).toEqual([53, 121, 3, 1, 6, 12, 15, 26, 51, 54, 119]);
  });

  it('derives 51 and 1 when the plan omits them (masquerade, any MAC)', () => {
    const r = asReply(respond(request(1, { chaddr: 'de:ad:be:ef:00:01' }), masqPlan));
    const o = decodeDhcpPacket(r.wire).options;
    expect(o.get(51)!.readUInt32BE(0)).toBe(3600);
    expect([...o.get(1)!]).toEqual([255, 255, 255, 0]);
    expect([...o.get(54)!]).toEqual(ip('10.0.2.1'));
    expect(r.reply.yiaddr).toBe('10.0.2.2');
  });

  it('echoes the client identifier (RFC 6842)', () => {
    const clientId = [1, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
    const r = asReply(respond(request(1, {}, [[61, clientId]]), bridgePlan));
    expect([...decodeDhcpPacket(r.wire).options.get(61)!]).toEqual(clientId);
  });

  it('keeps the broadcast flag and still broadcasts', () => {
    const r = asReply(respond(request(1, { flags: 0x8000 }), bridgePlan));
    expect(r.reply.flags).toBe(0x8000);
    expect(r.destination).toEqual(BCAST);
  });
});

describe('client MAC filter', () => {
  it('ignores another chaddr on a bridge plan', () => {
    const d = respond(request(1, { chaddr: '02:42:ac:11:00:03' }), bridgePlan);
    expect(d.kind).toBe('ignore');
    expect(d.kind === 'ignore' && d.ignore).toMatch(/chaddr 02:42:ac:11:00:03 is not the planned client/);
  });

  it('compares case- and separator-insensitively', () => {
    expect(respond(request(1), { ...bridgePlan, clientMac: '02-42-ac-11-00-02' }).kind).toBe('reply');
    expect(respond(request(1), { ...bridgePlan, clientMac: '0242AC110002' }).kind).toBe('reply');
  });

  it('ignores a chaddr that is only a prefix of the planned MAC', () => {
    expect(respond(request(1, { hlen: 3, chaddr: '02:42:ac' }), bridgePlan).kind).toBe('ignore');
  });

  it('answers nobody when the planned MAC is unparsable', () => {
    const d = respond(request(1), { ...bridgePlan, clientMac: 'not-a-mac' });
    expect(d.kind).toBe('ignore');
  });

  it('answers any chaddr on a masquerade plan', () => {
    for (const mac of ['02:00:00:00:00:01', 'ff:ff:ff:ff:ff:ff']) {
      expect(respond(request(1, { chaddr: mac }), masqPlan).kind).toBe('reply');
    }
  });
});

describe('REQUEST → ACK / NAK / ignore', () => {
  const ours = [54, ip('169.254.75.10')] as [number, number[]];
  const cases: Array<[string, Partial<DhcpPacket>, Array<[number, number[]]>, string, { address: string; port: number; broadcast: boolean }]> = [
    ['SELECTING: 54 ours, 50 planned', {}, [ours, [50, ip('10.244.1.5')]], 'ack', BCAST],
    ['INIT-REBOOT: 50 planned, no 54', {}, [[50, ip('10.244.1.5')]], 'ack', BCAST],
    ['INIT-REBOOT: 50 another address', {}, [[50, ip('10.244.1.9')]], 'nak', BCAST],
    ['SELECTING: 54 ours, 50 another address', {}, [ours, [50, ip('192.168.0.7')]], 'nak', BCAST],
    ['RENEWING: ciaddr planned', { ciaddr: '10.244.1.5' }, [], 'ack', { address: '10.244.1.5', port: 68, broadcast: false }],
    ['REBINDING: ciaddr planned, broadcast flag', { ciaddr: '10.244.1.5', flags: 0x8000 }, [], 'ack', { address: '10.244.1.5', port: 68, broadcast: false }],
    ['RENEWING: ciaddr another address', { ciaddr: '10.244.1.77' }, [], 'nak', BCAST],
    ['no address at all', {}, [], 'ack', BCAST],
    ['malformed option 50', {}, [[50, [10, 244, 1]]], 'nak', BCAST],
    ['54 names another server', {}, [[54, ip('10.0.0.1')], [50, ip('10.244.1.5')]], 'ignore', BCAST],
    ['malformed 54', {}, [[54, [1, 2]]], 'ignore', BCAST],
  ];
  it.each(cases)('%s → %s', (_name, patch, options, expected, destination) => {
    const d = respond(request(3, patch, options), bridgePlan);
    if (expected === 'ignore') {
      expect(d.kind).toBe('ignore');
      return;
    }
    const r = asReply(d);
    expect(r.reply.messageType).toBe(expected === 'ack' ? 5 : 6);
    expect(r.destination).toEqual(destination);
    expect(decodeDhcpPacket(r.wire).messageType).toBe(r.reply.messageType);
  });

  it('ACK carries the lease, the planned address and ciaddr from the request', () => {
    const r = asReply(respond(request(3, { ciaddr: '10.244.1.5' }), bridgePlan));
    expect(r.reply.yiaddr).toBe('10.244.1.5');
    expect(r.reply.ciaddr).toBe('10.244.1.5');
    expect(decodeDhcpPacket(r.wire).options.get(51)!.readUInt32BE(0)).toBe(86313600);
  });

  it('NAK carries only 53 and 54 (plus the 61 echo), and zero addresses', () => {
    const r = asReply(respond(request(3, { ciaddr: '10.1.1.1' }, [[61, [1, 2, 3]], [55, [1, 3, 6]]]), bridgePlan));
    expect(r.reply.messageType).toBe(6);
    expect([...decodeDhcpPacket(r.wire).options.keys()].sort((a, b) => a - b)).toEqual([53, 54, 61]);
    expect(r.reply.yiaddr).toBe('0.0.0.0');
    expect(r.reply.ciaddr).toBe('0.0.0.0');
    expect(r.note).toBe('nak: client requested 10.1.1.1, planned 10.244.1.5');
  });
});

describe('INFORM, RELEASE, DECLINE', () => {
  it('INFORM → ACK without yiaddr and without lease times, unicast to ciaddr', () => {
    const plan: DhcpV4Plan = { ...bridgePlan, options: { ...bridgePlan.options, '51': '00000e10', '58': '00000708', '59': '00000c4e' } };
    const r = asReply(respond(request(8, { ciaddr: '10.244.1.5' }), plan));
    expect(r.reply.messageType).toBe(5);
    expect(r.reply.yiaddr).toBe('0.0.0.0');
    expect(r.reply.ciaddr).toBe('10.244.1.5');
    const o = decodeDhcpPacket(r.wire).options;
    expect(o.has(51)).toBe(false);
    expect(o.has(58)).toBe(false);
    expect(o.has(59)).toBe(false);
    expect(o.get(6)!.toString('hex')).toBe('0a60000a');
    expect(r.destination).toEqual({ address: '10.244.1.5', port: 68, broadcast: false });
  });

  it('RELEASE → log with ciaddr, no reply', () => {
    const d = respond(request(7, { ciaddr: '10.244.1.5' }, [[54, ip('169.254.75.10')]]), bridgePlan);
    expect(d).toEqual({ kind: 'log', log: 'release', mac: GUEST_MAC, address: '10.244.1.5', message: null });
  });

  it('DECLINE → log with option 50 and the client message', () => {
    const d = respond(request(4, {}, [[50, ip('10.244.1.5')], [56, [...Buffer.from('arp\nconflict')]]]), bridgePlan);
    expect(d).toEqual({ kind: 'log', log: 'decline', mac: GUEST_MAC, address: '10.244.1.5', message: 'arp?conflict' });
  });

  it('RELEASE/DECLINE naming another server → ignore', () => {
    expect(respond(request(7, { ciaddr: '10.244.1.5' }, [[54, ip('10.9.9.9')]]), bridgePlan).kind).toBe('ignore');
    expect(respond(request(4, {}, [[54, ip('10.9.9.9')]]), bridgePlan).kind).toBe('ignore');
  });

  it('RELEASE from another MAC → ignore', () => {
    expect(respond(request(7, { chaddr: '02:42:ac:11:00:99' }), bridgePlan).kind).toBe('ignore');
  });
});

describe('ignored messages', () => {
  it.each<[string, DhcpPacket]>([
    ['a BOOTREPLY', request(1, { op: 2 })],
    ['plain BOOTP (no 53)', request(null)],
    ['OFFER from a client', request(2)],
    ['ACK from a client', request(5)],
    ['NAK from a client', request(6)],
    ['DHCPLEASEQUERY (10)', request(10)],
  ])('%s', (_name, p) => {
    expect(respond(p, masqPlan).kind).toBe('ignore');
  });

  it('ignores everything when the plan addresses are unusable', () => {
    const d = respond(request(1), { ...masqPlan, yiaddr: 'nope' });
    expect(d.kind === 'ignore' && d.ignore).toMatch(/unusable plan/);
  });
});

describe('relay (giaddr)', () => {
  it('unicasts to giaddr:67 and echoes option 82 (perfdhcp)', () => {
    const agentInfo = [1, 4, 0xde, 0xad, 0xbe, 0xef];
    const r = asReply(respond(request(1, { giaddr: '10.50.0.2', hops: 1 }, [[82, agentInfo]]), masqPlan));
    expect(r.destination).toEqual({ address: '10.50.0.2', port: 67, broadcast: false });
    expect(r.reply.giaddr).toBe('10.50.0.2');
    expect(r.reply.hops).toBe(0);
    expect([...decodeDhcpPacket(r.wire).options.get(82)!]).toEqual(agentInfo);
  });

  it('REQUEST via relay → ACK to giaddr:67 even with ciaddr set', () => {
    const r = asReply(respond(request(3, { giaddr: '10.50.0.2', ciaddr: '10.0.2.2' }), masqPlan));
    expect(r.reply.messageType).toBe(5);
    expect(r.destination).toEqual({ address: '10.50.0.2', port: 67, broadcast: false });
  });

  it('NAK via relay → giaddr:67 with the broadcast bit set', () => {
    const r = asReply(respond(request(3, { giaddr: '10.50.0.2' }, [[50, ip('10.0.2.99')]]), masqPlan));
    expect(r.reply.messageType).toBe(6);
    expect(r.reply.flags & 0x8000).toBe(0x8000);
    expect(r.destination).toEqual({ address: '10.50.0.2', port: 67, broadcast: false });
  });
});

describe('plan handling', () => {
  it('always uses plan.serverIdentifier for 54 and skips bad plan entries with a warning', () => {
    const plan: DhcpV4Plan = { ...masqPlan, options: { ...masqPlan.options, '54': '01020304', '52': '01', '300': '00', '42': 'xyz', '15': 'abc' } };
    const r = asReply(respond(request(1), plan));
    const o = decodeDhcpPacket(r.wire).options;
    expect([...o.get(54)!]).toEqual(ip('10.0.2.1'));
    expect(o.has(42)).toBe(false);
    expect(o.has(15)).toBe(false);
    expect(r.warnings).toHaveLength(4);
  });

  it('sends zero-length plan options', () => {
    const r = asReply(respond(request(1), { ...masqPlan, options: { ...masqPlan.options, '80': '' } }));
    expect(decodeDhcpPacket(r.wire).options.get(80)!.length).toBe(0);
  });
});

describe('reply size (option 57)', () => {
  const big = (n: number, fill: string): string => fill.repeat(n);
  const fatPlan: DhcpV4Plan = {
    ...bridgePlan,
    options: { ...bridgePlan.options, '119': big(200, 'aa'), '224': big(100, 'bb'), '225': big(40, 'cc') },
  };

  it('fits 548 bytes without 57 by overloading file/sname, dropping nothing', () => {
    const r = asReply(respond(request(1), fatPlan));
    expect(r.wire.length).toBeLessThanOrEqual(548);
    expect(wireOrder(r.wire)).toContain(52);
    expect(r.dropped).toEqual([]);
    const o = decodeDhcpPacket(r.wire).options;
    for (const [code, payload] of Object.entries(fatPlan.options)) expect(o.get(Number(code))!.toString('hex')).toBe(payload);
  });

  it('drops unrequested options, highest code first, when even overload cannot fit', () => {
    const plan: DhcpV4Plan = { ...fatPlan, options: { ...fatPlan.options, '226': big(100, 'dd'), '227': big(100, 'ee') } };
    const r = asReply(respond(request(1, {}, [[55, [1, 3, 6, 119, 226]]]), plan));
    expect(r.wire.length).toBeLessThanOrEqual(548);
    expect(r.dropped).toEqual([227, 225, 224]);
    const o = decodeDhcpPacket(r.wire).options;
    for (const code of [1, 3, 6, 51, 54, 119, 226]) expect(o.has(code), `option ${code}`).toBe(true);
  });

  it('uses a larger 57 and neither overloads nor drops', () => {
    const plan: DhcpV4Plan = { ...fatPlan, options: { ...fatPlan.options, '226': big(100, 'dd'), '227': big(100, 'ee') } };
    const r = asReply(respond(request(1, {}, [[57, [0x05, 0xdc]]]), plan));
    expect(r.dropped).toEqual([]);
    expect(wireOrder(r.wire)).not.toContain(52);
    expect(r.wire.length).toBeLessThanOrEqual(1500 - 28);
  });

  it('treats a 57 below 576 as 576', () => {
    const r = asReply(respond(request(1, {}, [[57, [0x01, 0x00]]]), fatPlan));
    expect(r.wire.length).toBeLessThanOrEqual(548);
    expect(r.dropped).toEqual([]);
  });

  it('drops a huge client-identifier echo rather than failing', () => {
    const r = asReply(respond(request(1, {}, [[61, Buffer.alloc(700, 1)]]), bridgePlan));
    expect(r.wire.length).toBeLessThanOrEqual(548);
    expect(r.dropped).toEqual([61]);
    expect(decodeDhcpPacket(r.wire).options.get(121)!.toString('hex')).toBe(bridgePlan.options['121']);
  });
});
