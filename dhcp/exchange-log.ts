// The DHCPv4 server's per-exchange info lines (reply, RELEASE/DECLINE), written as pino would write them but without its generic serializer.
//
// Why: serve logs one info line per exchange, right after the reply. On the same CPU as the client, pino's generic
// path (key iteration, escaping, the bindings, the timestamp function, the level formatter) costs ~25 µs per line
// there, most of the same-CPU DORA gap to dnsmasq (BENCHMARKS.md, "DHCP DORA").
// How: what pino itself would put in the line is read from the logger once through pino.symbols (the level prefix
// from its level cache, its timestamp function, its messageKey, its line end and destination stream); per line the
// logger's current bindings string, the timestamp and the escaped values are concatenated in the order pino writes
// them. Values that repeat between exchanges (message types, the client's MAC, its address, the destination) are
// escaped once. The result is pino's line byte for byte, except that a lone UTF-16 surrogate is escaped as
// JSON.stringify does (pino may copy it raw); both parse to the same record.
// Anything that could make pino write something else sends the line through log.info instead: a mixin,
// logMethod/streamWrite hooks, a log formatter, a serializer for one of the line's keys, redaction, nestedKey,
// msgPrefix, a stream that asks for metadata (multistream), custom levels without "info", and records with
// droppedOptions/planWarnings. Not reproduced: pino's "pino_asJson" diagnostics-channel event (no effect on the line).
// test/unit/dhcp-exchange-log.test.ts compares the lines with pino's own.
import { pino, type Logger } from 'pino';
import { messageTypeName, type DhcpPacket } from './packet.js';
import type { DhcpLogDecision, DhcpReplyDecision } from './responder.js';

/**
 * What every log line about one request carries; giaddr is undefined unless relayed (pino leaves undefined out).
 * On this path log records are spelled out key by key, never `{ ...fields, more }`: V8 keeps objects built by a
 * spread followed by more keys alive through young-generation GCs (measured: every such record was promoted), so
 * each exchange left garbage in the old generation until the next full GC (serve RSS after 10k exchanges).
 */
export interface ExchangeFields {
  readonly msgType: string;
  readonly mac: string;
  readonly xid: string;
  readonly giaddr: string | undefined;
}

export function exchangeFields(packet: DhcpPacket): ExchangeFields {
  return {
    msgType: messageTypeName(packet.messageType),
    mac: packet.chaddr,
    xid: `0x${packet.xid.toString(16).padStart(8, '0')}`,
    giaddr: packet.giaddr !== '0.0.0.0' ? packet.giaddr : undefined,
  };
}

function requestedAddress(packet: DhcpPacket): string | null {
  const option50 = packet.options.get(50);
  if (option50 !== undefined && option50.length === 4) return option50.join('.');
  return packet.ciaddr !== '0.0.0.0' ? packet.ciaddr : null;
}

/** A destination as pino holds it: write(line) is all it is given. */
interface LineStream {
  write(line: string): unknown;
}

/** The logger's own pieces of an info line. */
interface LineParts {
  /** `{"level":"info"` as the level formatter made it. */
  readonly head: string;
  /** The logger's timestamp function (`,"timestamp":"…"`), called with the logger as `this`, as pino does. */
  readonly time: (this: Logger) => unknown;
  /** `,"msg":` */
  readonly messageKey: string;
  /** `}\n` */
  readonly end: string;
  readonly stream: LineStream;
}

/** The record keys the hand-written lines use: a serializer on any of them means pino would write something else. */
const LINE_KEYS = ['msgType', 'mac', 'xid', 'giaddr', 'reply', 'address', 'destination', 'clientMessage'];

function isObject(value: unknown): value is Record<PropertyKey, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Reads the pieces from the logger once; null when pino could write something else than the hand-written lines. */
function lineParts(log: Logger): LineParts | null {
  const symbols = pino.symbols;
  const read = (sym: symbol): unknown => Reflect.get(log, sym) as unknown;
  const infoValue = log.levels.values['info'];
  const lsCache = read(symbols.lsCacheSym);
  const head = infoValue !== undefined && isObject(lsCache) ? lsCache[infoValue] : undefined;
  const time = read(symbols.timeSym);
  const messageKey = read(symbols.messageKeySym);
  const errorKey = read(symbols.errorKeySym);
  const end = read(symbols.endSym);
  const stream = read(symbols.streamSym);
  const hooks = read(symbols.hooksSym);
  const formatters = read(symbols.formattersSym);
  const serializers = read(symbols.serializersSym);
  const stringifiers = read(symbols.stringifiersSym);
  if (
    typeof head !== 'string' ||
    typeof time !== 'function' ||
    typeof messageKey !== 'string' ||
    JSON.stringify(messageKey) !== `"${messageKey}"` ||
    typeof end !== 'string' ||
    typeof read(symbols.chindingsSym) !== 'string' ||
    !isObject(stream) ||
    typeof stream['write'] !== 'function' ||
    stream[symbols.needsMetadataGsym] === true ||
    read(symbols.mixinSym) ||
    read(symbols.nestedKeySym) ||
    (log.msgPrefix !== undefined && log.msgPrefix !== '') ||
    !isObject(hooks) ||
    hooks['logMethod'] ||
    hooks['streamWrite'] ||
    !isObject(formatters) ||
    formatters['log'] ||
    !isObject(serializers) ||
    // (pino runs serializers.err on the errorKey: it must not be one of the line's keys either)
    [...LINE_KEYS, messageKey].some((key) => serializers[key] !== undefined || key === errorKey) ||
    !isObject(stringifiers) ||
    Reflect.ownKeys(stringifiers).length > 0
  ) {
    return null;
  }
  return {
    head,
    time: time as (this: Logger) => unknown,
    messageKey: `,"${messageKey}":`,
    end,
    stream: stream as unknown as LineStream,
  };
}

/**
 * `value` escaped for inside a JSON string, exactly as JSON.stringify escapes it. Scans in JavaScript first:
 * JSON.stringify is a call into V8's runtime (~500 instructions for a short string here), and these values rarely
 * need escaping.
 */
function escaped(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(value).slice(1, -1);
  }
  return value;
}

/** Escaped forms of values that repeat from exchange to exchange (message types, the client's MAC, its address). */
class Escaped {
  private readonly cache = new Map<string, string>();

  get(value: string): string {
    let text = this.cache.get(value);
    if (text === undefined) {
      if (this.cache.size >= 64) this.cache.clear(); // a server answering many clients (masquerade) keeps the last ones
      text = escaped(value);
      this.cache.set(value, text);
    }
    return text;
  }
}

/** Writes the server's exchange lines for one logger (the server's child logger). */
export class ExchangeLog {
  private readonly parts: LineParts | null;
  private readonly repeated = new Escaped();
  /** The last reply's destination and its `,"destination":"…"` piece. */
  private destinationAddress = '';
  private destinationPort = -1;
  private destinationPiece = '';

  constructor(private readonly log: Logger) {
    this.parts = lineParts(log);
  }

  /** Whether lines are hand-written (false: every line goes through log.info). */
  get fast(): boolean {
    return this.parts !== null;
  }

  /** The line after a reply was sent: what was asked, what was answered, with which address, to where, and why. */
  reply(decision: DhcpReplyDecision, fields: ExchangeFields, packet: DhcpPacket): void {
    const log = this.log;
    if (!log.isLevelEnabled('info')) return;
    const address = decision.reply.yiaddr !== '0.0.0.0' ? decision.reply.yiaddr : requestedAddress(packet);
    const parts = this.parts;
    if (parts !== null && decision.dropped.length === 0 && decision.warnings.length === 0) {
      const { address: to, port } = decision.destination;
      if (to !== this.destinationAddress || port !== this.destinationPort) {
        this.destinationAddress = to;
        this.destinationPort = port;
        this.destinationPiece = `,"destination":"${escaped(`${to}:${port}`)}"`;
      }
      const repeated = this.repeated;
      parts.stream.write(
        this.start(parts, fields) +
          ',"reply":"' +
          repeated.get(messageTypeName(decision.reply.messageType)) +
          (address === null ? '","address":null' : '","address":"' + repeated.get(address) + '"') +
          this.destinationPiece +
          this.msg(parts, fields) +
          escaped(decision.note) +
          '"' +
          parts.end,
      );
      return;
    }
    log.info(
      {
        msgType: fields.msgType,
        mac: fields.mac,
        xid: fields.xid,
        giaddr: fields.giaddr,
        reply: messageTypeName(decision.reply.messageType),
        address,
        destination: `${decision.destination.address}:${decision.destination.port}`,
        droppedOptions: decision.dropped.length > 0 ? decision.dropped : undefined,
        planWarnings: decision.warnings.length > 0 ? decision.warnings : undefined,
      },
      `dhcpv4 ${fields.msgType} from ${fields.mac}: ${decision.note}`,
    );
  }

  /** The line for a RELEASE or DECLINE (nothing is sent back). */
  clientLog(decision: DhcpLogDecision, fields: ExchangeFields): void {
    const log = this.log;
    if (!log.isLevelEnabled('info')) return;
    const msg = `dhcpv4 ${decision.log} from ${decision.mac}`;
    const parts = this.parts;
    if (parts === null) {
      log.info({ msgType: fields.msgType, mac: fields.mac, xid: fields.xid, giaddr: fields.giaddr, address: decision.address, clientMessage: decision.message }, msg);
      return;
    }
    parts.stream.write(
      this.start(parts, fields) +
        (decision.address === null ? ',"address":null' : ',"address":"' + escaped(decision.address) + '"') +
        (decision.message === null ? ',"clientMessage":null' : ',"clientMessage":"' + escaped(decision.message) + '"') +
        parts.messageKey +
        '"' +
        escaped(msg) +
        '"' +
        parts.end,
    );
  }

  /** Level, timestamp, the logger's bindings, then msgType, mac, xid and giaddr (when relayed). */
  private start(parts: LineParts, fields: ExchangeFields): string {
    // Read per line, as pino does: setBindings() replaces it.
    const bindings = Reflect.get(this.log, pino.symbols.chindingsSym) as string;
    const repeated = this.repeated;
    return (
      parts.head +
      String(parts.time.call(this.log)) +
      bindings +
      ',"msgType":"' +
      repeated.get(fields.msgType) +
      '","mac":"' +
      repeated.get(fields.mac) +
      '","xid":"' +
      escaped(fields.xid) +
      (fields.giaddr === undefined ? '"' : '","giaddr":"' + repeated.get(fields.giaddr) + '"')
    );
  }

  /** `,"msg":"dhcpv4 DHCPDISCOVER from 02:…: ` (the reply's note follows). */
  private msg(parts: LineParts, fields: ExchangeFields): string {
    const repeated = this.repeated;
    return parts.messageKey + '"dhcpv4 ' + repeated.get(fields.msgType) + ' from ' + repeated.get(fields.mac) + ': ';
  }
}
