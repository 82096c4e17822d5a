// Unit tests for dhcp/exchange-log.ts: its hand-written exchange lines against pino's own, with serve's logger configuration.
import { pino, type Logger, type LoggerOptions } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { rfc3339Timestamp, serveLoggerOptions } from '../../agent/cli/cmd-serve.js';
import type { DhcpV4Plan } from '../../agent/plan/plan-types.js';
import { ExchangeLog, exchangeFields, type ExchangeFields } from '../../dhcp/exchange-log.js';
import { decodeDhcpPacket, encodeDhcpPacket, messageTypeName, type DhcpPacket } from '../../dhcp/packet.js';
import { respond, type DhcpLogDecision, type DhcpReplyDecision } from '../../dhcp/responder.js';
import { clientRequest, GUEST_MAC } from '../fixtures/dhcp-requests.js';

const VMI = { name: 'vmi-"alpine"', namespace: 'default', uid: '7a1c\\x-uid' };
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const bridgePlan: DhcpV4Plan = {
  interface: 'k6t-eth0',
  serverIdentifier: '169.254.75.10',
  clientMac: GUEST_MAC,
  yiaddr: '10.244.1.5',
  prefixLength: 24,
  leaseSeconds: 86313600,
  options: { '1': 'ffffff00', '3': '0af40101', '6': '0a60000a', '26': '0578' },
};
const masqPlan: DhcpV4Plan = { ...bridgePlan, serverIdentifier: '10.0.2.1', clientMac: null, yiaddr: '10.0.2.2', leaseSeconds: 3600, options: { '3': '0a000201' } };

function request(type: number, patch: Partial<DhcpPacket> = {}, options: Array<[number, number[] | Buffer]> = []): DhcpPacket {
  return decodeDhcpPacket(encodeDhcpPacket(clientRequest(type, patch, options, 0x00ab12cd), { maxSize: 1500 }));
}
const ip = (text: string): number[] => text.split('.').map(Number);

function reply(packet: DhcpPacket, plan: DhcpV4Plan): DhcpReplyDecision {
  const decision = respond(packet, plan);
  if (decision.kind !== 'reply') throw new Error(`expected a reply, got ${decision.kind}`);
  return decision;
}
function clientLog(packet: DhcpPacket, plan: DhcpV4Plan): DhcpLogDecision {
  const decision = respond(packet, plan);
  if (decision.kind !== 'log') throw new Error(`expected a log decision, got ${decision.kind}`);
  return decision;
}

/** The record server-v4.ts gave pino before exchange-log.ts (the reference). */
function pinoReply(log: Logger, decision: DhcpReplyDecision, fields: ExchangeFields, packet: DhcpPacket): void {
  const option50 = packet.options.get(50);
  const requested = option50 !== undefined && option50.length === 4 ? option50.join('.') : packet.ciaddr !== '0.0.0.0' ? packet.ciaddr : null;
  log.info(
    {
      msgType: fields.msgType,
      mac: fields.mac,
      xid: fields.xid,
      giaddr: fields.giaddr,
      reply: messageTypeName(decision.reply.messageType),
      address: decision.reply.yiaddr !== '0.0.0.0' ? decision.reply.yiaddr : requested,
      destination: `${decision.destination.address}:${decision.destination.port}`,
      droppedOptions: decision.dropped.length > 0 ? decision.dropped : undefined,
      planWarnings: decision.warnings.length > 0 ? decision.warnings : undefined,
    },
    `dhcpv4 ${fields.msgType} from ${fields.mac}: ${decision.note}`,
  );
}
function pinoClientLog(log: Logger, decision: DhcpLogDecision, fields: ExchangeFields): void {
  log.info(
    { msgType: fields.msgType, mac: fields.mac, xid: fields.xid, giaddr: fields.giaddr, address: decision.address, clientMessage: decision.message },
    `dhcpv4 ${decision.log} from ${decision.mac}`,
  );
}

/** serve's logger (or one with `extra` options) writing to memory, with the child bindings cmd-serve.ts and server-v4.ts add. */
function serveLogger(level: string, extra: Partial<LoggerOptions> = {}): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const root = pino({ ...serveLoggerOptions(VMI, level), ...extra }, { write: (line: string) => void lines.push(line) });
  const log = root.child({ network: 'default' }).child({ subcomponent: 'dhcpv4', interface: 'k6t-eth0' });
  return { log, lines };
}

type Exchange = { name: string; fast: boolean } & (
  | { kind: 'reply'; decision: DhcpReplyDecision; packet: DhcpPacket }
  | { kind: 'log'; decision: DhcpLogDecision; packet: DhcpPacket }
);

function exchanges(): Exchange[] {
  const discover = request(1);
  const nakRequest = request(3, {}, [[50, ip('10.244.1.99')]]);
  const nak = reply(nakRequest, bridgePlan);
  const relayed = request(1, { giaddr: '10.50.0.2', hops: 1, xid: 0xffffffff });
  const relayedNakRequest = request(3, { giaddr: '10.50.0.2' }, [[50, ip('10.0.2.99')]]);
  const inform = request(8, { ciaddr: '10.0.2.2' });
  const fat: DhcpV4Plan = { ...bridgePlan, options: { ...bridgePlan.options, '224': 'bb'.repeat(250), '225': 'cc'.repeat(250), '226': 'dd'.repeat(250) } };
  const warned: DhcpV4Plan = { ...masqPlan, options: { ...masqPlan.options, '300': '00', '42': 'xyz' } };
  const decline = request(4, {}, [
    [50, ip('10.244.1.5')],
    [56, Buffer.from('address "in use" \\ by\u00e9 peer', 'latin1')],
  ]);
  return [
    { name: 'DISCOVER → OFFER (broadcast)', kind: 'reply', fast: true, decision: reply(discover, bridgePlan), packet: discover },
    { name: 'REQUEST → ACK', kind: 'reply', fast: true, decision: reply(request(3, {}, [[50, ip('10.244.1.5')]]), bridgePlan), packet: request(3, {}, [[50, ip('10.244.1.5')]]) },
    { name: 'REQUEST → NAK (address: the requested one)', kind: 'reply', fast: true, decision: nak, packet: nakRequest },
    { name: 'NAK with no requested address (address null)', kind: 'reply', fast: true, decision: nak, packet: request(3) },
    { name: 'relayed DISCOVER → OFFER to giaddr:67', kind: 'reply', fast: true, decision: reply(relayed, masqPlan), packet: relayed },
    { name: 'relayed REQUEST → NAK', kind: 'reply', fast: true, decision: reply(relayedNakRequest, masqPlan), packet: relayedNakRequest },
    { name: 'INFORM → ACK (address: ciaddr)', kind: 'reply', fast: true, decision: reply(inform, masqPlan), packet: inform },
    {
      name: 'a note needing escaping',
      kind: 'reply',
      fast: true,
      decision: { ...nak, note: 'requested "10.244.1.99" \\ not ours\n\ttab \u0001 \u007f é ✓ \u2028 😀 </script>' },
      packet: nakRequest,
    },
    ...['say "hi"', 'back\\slash', 'new\nline', 'bell \u0007', 'del \u007f', 'é ✓ 😀 \u2028', 'lone \ud800 surrogate'].map((note) => ({
      name: `a note with ${JSON.stringify(note)}`,
      kind: 'reply' as const,
      fast: true,
      decision: { ...nak, note },
      packet: nakRequest,
    })),
    { name: 'an unknown message type name', kind: 'reply', fast: true, decision: reply(discover, bridgePlan), packet: { ...discover, messageType: 99 } },
    { name: 'dropped options → pino', kind: 'reply', fast: false, decision: reply(request(1, {}, [[55, [1, 3, 6]]]), fat), packet: request(1) },
    { name: 'plan warnings → pino', kind: 'reply', fast: false, decision: reply(discover, warned), packet: discover },
    { name: 'DECLINE with a client message', kind: 'log', fast: true, decision: clientLog(decline, bridgePlan), packet: decline },
    { name: 'RELEASE without address or message', kind: 'log', fast: true, decision: clientLog(request(7), masqPlan), packet: request(7) },
  ];
}

/** One line written by `fn`, checked to be the only one. */
function lineOf(lines: string[], fn: () => void): string {
  const before = lines.length;
  fn();
  expect(lines.length - before).toBe(1);
  return lines[lines.length - 1]!;
}

function runExchange(log: Logger, writer: ExchangeLog, exchange: Exchange, viaWriter: boolean): void {
  const fields = exchangeFields(exchange.packet);
  if (exchange.kind === 'reply') {
    if (viaWriter) writer.reply(exchange.decision, fields, exchange.packet);
    else pinoReply(log, exchange.decision, fields, exchange.packet);
  } else if (viaWriter) writer.clientLog(exchange.decision, fields);
  else pinoClientLog(log, exchange.decision, fields);
}

function expectSameLine(fast: string, reference: string, notBefore: number): void {
  const mine = JSON.parse(fast) as Record<string, unknown>;
  const theirs = JSON.parse(reference) as Record<string, unknown>;
  const timestamp = mine['timestamp'];
  expect(typeof timestamp).toBe('string');
  expect(timestamp).toMatch(RFC3339);
  const at = Date.parse(timestamp as string);
  expect(at).toBeGreaterThanOrEqual(notBefore);
  expect(at).toBeLessThanOrEqual(Date.now());
  delete mine['timestamp'];
  delete theirs['timestamp'];
  expect(mine).toStrictEqual(theirs);
  // Byte for byte too (key order, escaping, line end), apart from the timestamp value. One known difference: a lone
  // surrogate, which pino (Node < 25) copies raw into strings of up to 100 characters (written out as U+FFFD) and
  // exchange-log.ts escapes as JSON.stringify does (\ud800); both parse to the same string.
  const stamp = /"timestamp":"[^"]*"/;
  const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
  const normalized = (line: string): string =>
    line.replace(stamp, '"timestamp":""').replace(loneSurrogate, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  expect(normalized(fast)).toBe(normalized(reference));
}

describe('ExchangeLog', () => {
  it('writes the lines by hand for serve`s logger', () => {
    expect(new ExchangeLog(serveLogger('info').log).fast).toBe(true);
    expect(new ExchangeLog(serveLogger('debug').log).fast).toBe(true);
    // serve's own destination: pino's default (sonic-boom on stdout); nothing is logged here.
    const stdoutLogger = pino(serveLoggerOptions(VMI, 'info')).child({ network: 'default' }).child({ subcomponent: 'dhcpv4', interface: 'k6t-eth0' });
    expect(new ExchangeLog(stdoutLogger).fast).toBe(true);
  });

  for (const exchange of exchanges()) {
    it(`writes what pino writes: ${exchange.name}${exchange.fast ? '' : ' (through pino)'}`, () => {
      const { log, lines } = serveLogger('info');
      const writer = new ExchangeLog(log);
      const info = vi.spyOn(log, 'info');
      const start = Date.now();
      const reference = lineOf(lines, () => runExchange(log, writer, exchange, false));
      const callsBefore = info.mock.calls.length;
      const fast = lineOf(lines, () => runExchange(log, writer, exchange, true));
      expect(info.mock.calls.length - callsBefore, 'log.info calls').toBe(exchange.fast ? 0 : 1);
      expectSameLine(fast, reference, start);
      const parsed = JSON.parse(fast) as Record<string, unknown>;
      expect(parsed).toMatchObject({ level: 'info', component: 'virt-net-agent', kind: 'VirtualMachineInstance', network: 'default', subcomponent: 'dhcpv4', interface: 'k6t-eth0' });
      expect('giaddr' in parsed).toBe(exchange.packet.giaddr !== '0.0.0.0');
    });
  }

  it('writes what pino writes when one writer sees them all, twice (values cached between lines)', () => {
    const { log, lines } = serveLogger('info');
    const writer = new ExchangeLog(log);
    const other = request(1, { chaddr: '02:00:00:00:00:09', xid: 7 });
    const all = [...exchanges(), { name: 'another client', kind: 'reply' as const, fast: true, decision: reply(other, masqPlan), packet: other }];
    for (const exchange of [...all, ...all.reverse()]) {
      const start = Date.now();
      const reference = lineOf(lines, () => runExchange(log, writer, exchange, false));
      expectSameLine(lineOf(lines, () => runExchange(log, writer, exchange, true)), reference, start);
    }
  });

  it('escapes a lone surrogate as JSON.stringify does (valid UTF-8 out)', () => {
    const { log, lines } = serveLogger('info');
    const [offer] = exchanges();
    if (offer?.kind !== 'reply') throw new Error('expected the OFFER first');
    new ExchangeLog(log).reply({ ...offer.decision, note: 'lone \udc00' }, exchangeFields(offer.packet), offer.packet);
    expect(lines[0]).toContain('"msg":"dhcpv4 DHCPDISCOVER from 02:42:ac:11:00:02: lone \\udc00"');
  });

  it('writes nothing at level warn, nor after the level is raised to warn', () => {
    for (const setup of [() => serveLogger('warn'), () => serveLogger('info')]) {
      const { log, lines } = setup();
      const writer = new ExchangeLog(log);
      log.level = 'warn';
      for (const exchange of exchanges()) {
        runExchange(log, writer, exchange, true);
        runExchange(log, writer, exchange, false);
      }
      expect(lines).toEqual([]);
    }
  });

  it('follows bindings changed after it was built (setBindings)', () => {
    const { log, lines } = serveLogger('info');
    const writer = new ExchangeLog(log);
    log.setBindings({ interface: 'k6t-other' });
    const [exchange] = exchanges();
    const start = Date.now();
    const reference = lineOf(lines, () => runExchange(log, writer, exchange!, false));
    expectSameLine(lineOf(lines, () => runExchange(log, writer, exchange!, true)), reference, start);
  });

  it('goes through pino for loggers it cannot reproduce, with the same lines', () => {
    const variants: Array<Partial<LoggerOptions>> = [
      { mixin: () => ({ extra: 1 }) },
      { msgPrefix: '[dhcp] ' },
      { serializers: { mac: (mac: string) => mac.toUpperCase() } },
      { redact: ['address'] },
      { nestedKey: 'payload' },
      { formatters: { level: (label: string) => ({ level: label }), log: (record: Record<string, unknown>) => ({ ...record, formatted: true }) } },
      { hooks: { streamWrite: (line: string) => line.replace('dhcpv4', 'DHCPv4') } },
    ];
    for (const extra of variants) {
      const { log, lines } = serveLogger('info', extra);
      const writer = new ExchangeLog(log);
      expect(writer.fast, JSON.stringify(Object.keys(extra))).toBe(false);
      for (const exchange of exchanges()) {
        const start = Date.now();
        const reference = lineOf(lines, () => runExchange(log, writer, exchange, false));
        expectSameLine(lineOf(lines, () => runExchange(log, writer, exchange, true)), reference, start);
      }
    }
  });
});

describe('serve logger timestamp', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is what new Date().toISOString() gives, across seconds and back in time', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const timestamp = rfc3339Timestamp();
    const base = Date.UTC(2024, 1, 29, 23, 59, 59, 0);
    for (const at of [base, base + 7, base + 42, base + 999, base + 1000, base + 1001, base + 86_400_123, base - 1, base + 80, 0, 9, 253402300799999]) {
      vi.setSystemTime(at);
      expect(timestamp(), String(at)).toBe(`,"timestamp":"${new Date(at).toISOString()}"`);
    }
  });

  it('is the one serve`s logger writes', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.UTC(2025, 0, 2, 3, 4, 5, 6));
    const { log, lines } = serveLogger('info');
    log.info('x');
    expect((JSON.parse(lines[0]!) as Record<string, unknown>)['timestamp']).toBe('2025-01-02T03:04:05.006Z');
  });
});
