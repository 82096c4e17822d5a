// DHCPv4 message codec (RFC 2131/2132 framing, RFC 3396 long options, option overload 52): pure, bounded, typed errors.
//
// Decoding decisions (documented contract, exercised by test/unit/dhcp-packet.test.ts):
// - Fewer than 240 bytes (236-byte fixed header + 4-byte magic cookie) → `too-short`; more than 65535 → `too-large`.
// - op must be 1 (BOOTREQUEST) or 2 (BOOTREPLY); hlen must be ≤ 16 (the chaddr field size).
// - A missing END is tolerated when the option area ends cleanly on an option boundary (dnsmasq's option_find1
//   reads such packets too); trailing PAD bytes are skipped. Anything after END is ignored. An option whose length byte or payload
//   runs past the end of its area (options field, `file` or `sname`) is an error, never silently truncated.
// - Option overload (52) is read only from the options field; it must have length 1 and value 1, 2 or 3. The `file`
//   field (value 1 or 3) and then `sname` (2 or 3) are parsed as further options, in that order (RFC 2131 §4.1),
//   and the decoded `file`/`sname` strings are then empty. 52 is framing, consumed by the codec: it never appears
//   in `options` (the encoder computes its own).
// - Repeated instances of an option are concatenated in wire order across options → file → sname (RFC 3396).
// - The scan always advances; per packet there is one allocation for all option payloads (≤ input length) plus
//   the result objects, the instance index lives in fixed scratch arrays (~260 KB, allocated once); the only
//   exception thrown is `DhcpDecodeError` (built without a stack trace: these come from untrusted input).
//
// Encoding decisions:
// - Options go out with 53 first, then the codes in `order` (if given), then the rest in ascending code order.
//   Payloads longer than 255 bytes are split into consecutive instances (RFC 3396); shorter ones are never split.
// - The message is padded to 300 bytes (the BOOTP minimum that common servers use) and must fit `maxSize`
//   (default 548: a 576-byte IP datagram minus IP and UDP headers, RFC 2131 §2). When the options field is too
//   small, option overload (52) moves whole options into an empty `file`, then an empty `sname` (first fit in wire
//   order, else first fit by decreasing size; the pieces of one option stay in order; 53 stays in the options
//   field). If it still does not fit, `DhcpEncodeError('too-large')` / null: choosing what to drop is policy and
//   belongs to the caller (see dhcp/responder.ts).

export const DHCP_MAGIC_COOKIE = 0x63825363;
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
/** The broadcast bit of `flags` (RFC 2131 §2, figure 2). */
export const BROADCAST_FLAG = 0x8000;
/** op … file: the fixed BOOTP header. */
export const FIXED_HEADER_LENGTH = 236;
/** Fixed header plus magic cookie: the shortest valid DHCP message. */
export const MIN_PACKET_LENGTH = 240;
/** The largest input the decoder accepts (a UDP payload cannot be larger). */
export const MAX_PACKET_LENGTH = 65535;
/** Replies are padded to this size, as BOOTP relays and common servers expect. */
export const MIN_ENCODED_LENGTH = 300;
/** DHCP message bytes a client must accept without option 57 (576-byte datagram − 20 IP − 8 UDP). */
export const DEFAULT_MAX_MESSAGE_SIZE = 548;
/** IP + UDP header bytes, to turn option 57 (a datagram size) into a DHCP message size. */
export const IP_UDP_HEADER_LENGTH = 28;

const OFF_CIADDR = 12;
const OFF_YIADDR = 16;
const OFF_SIADDR = 20;
const OFF_GIADDR = 24;
const OFF_CHADDR = 28;
const CHADDR_LENGTH = 16;
const OFF_SNAME = 44;
const SNAME_LENGTH = 64;
const OFF_FILE = 108;
const FILE_LENGTH = 128;
const OFF_COOKIE = 236;

export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;
export type DhcpMessageTypeName = keyof typeof DhcpMessageType;

/** Option codes the codec and the responder refer to by name. */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_IDENTIFIER: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_IDENTIFIER: 61,
  RELAY_AGENT_INFORMATION: 82,
  END: 255,
} as const;

/** "DHCPDISCOVER" etc. for logs; "DHCP(n)" for unknown types, "BOOTP" for none. */
const TYPE_NAMES = new Map<number, string>(Object.entries(DhcpMessageType).map(([name, value]) => [value, `DHCP${name}`]));

export function messageTypeName(type: number | null): string {
  if (type === null) return 'BOOTP';
  return TYPE_NAMES.get(type) ?? `DHCP(${type})`;
}

/** A decoded (or to-be-encoded) DHCPv4 message. */
export interface DhcpPacket {
  readonly op: number;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  /** Raw flags; see `isBroadcast` / `BROADCAST_FLAG`. */
  readonly flags: number;
  /** Dotted quads. */
  readonly ciaddr: string;
  readonly yiaddr: string;
  readonly siaddr: string;
  readonly giaddr: string;
  /** The first `hlen` bytes of chaddr as lower-case, colon-separated hex ("" when hlen is 0). */
  readonly chaddr: string;
  /** NUL-terminated latin1 strings ("" when the field carries overloaded options). */
  readonly sname: string;
  readonly file: string;
  /** Code → payload, repeated instances already concatenated; never contains 0, 52 or 255. */
  readonly options: ReadonlyMap<number, Buffer>;
  /** Option 53 when it is exactly one byte, else null (BOOTP or malformed). Takes precedence over options[53] when encoding. */
  readonly messageType: number | null;
}

export function isBroadcast(p: Pick<DhcpPacket, 'flags'>): boolean {
  return (p.flags & BROADCAST_FLAG) !== 0;
}

export type DhcpDecodeReason =
  | 'too-short'
  | 'too-large'
  | 'bad-op'
  | 'bad-magic-cookie'
  | 'bad-hlen'
  | 'option-truncated'
  | 'option-overrun'
  | 'bad-overload';

/** The only exception `decodeDhcpPacket` throws. */
export class DhcpDecodeError extends Error {
  constructor(
    readonly reason: DhcpDecodeReason,
    message: string,
    /** Byte offset of the offending field, when there is one. */
    readonly offset: number | null = null,
  ) {
    super(`${reason}: ${message}`);
    this.name = 'DhcpDecodeError';
  }
}

export type DhcpEncodeReason = 'invalid-field' | 'invalid-option' | 'too-large';

export class DhcpEncodeError extends Error {
  constructor(
    readonly reason: DhcpEncodeReason,
    message: string,
  ) {
    super(`${reason}: ${message}`);
    this.name = 'DhcpEncodeError';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers (exported for the responder and tests)

/** "a.b.c.d" → its value as a uint32, or -1 if it is not a canonical dotted quad (no leading zeros, parts ≤ 255). */
function ipv4Value(s: string): number {
  if (s.length < 7 || s.length > 15) return -1;
  let result = 0;
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || parts > 3) return -1;
      result = result * 256 + value;
      parts++;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return -1; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return -1;
    } else {
      return -1;
    }
  }
  return parts === 4 ? result : -1;
}

/** "a.b.c.d" → 4 bytes, or null if it is not a canonical dotted quad (no leading zeros, each part ≤ 255). */
export function parseIPv4(s: string): Buffer | null {
  const v = ipv4Value(s);
  if (v < 0) return null;
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(v);
  return out;
}

export function formatIPv4(buf: Buffer, offset = 0): string {
  return `${buf[offset]!}.${buf[offset + 1]!}.${buf[offset + 2]!}.${buf[offset + 3]!}`;
}

/** Lower-case hex without separators, for comparing MACs written as aa:bb:…, AA-BB-… or aabb…; null if not hex. */
export function normalizeHardwareAddress(s: string): string | null {
  const hex = s.replace(/[:\-.]/g, '').toLowerCase();
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) return null;
  return hex;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function formatHex(buf: Buffer, offset: number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += (i === 0 ? '' : ':') + HEX[buf[offset + i]!]!;
  return out;
}

function readCString(buf: Buffer, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && buf[end] !== 0) end++;
  return buf.toString('latin1', offset, end);
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/**
 * Option instances found so far, as parallel arrays (no per-option allocation): code, payload start, payload end.
 * Capacity is bounded by the input: every instance takes at least 2 bytes.
 */
interface Found {
  count: number;
  readonly code: Uint8Array;
  readonly start: Int32Array;
  readonly end: Int32Array;
}

/**
 * Scratch space reused by every decode (decoding is synchronous and never re-entered): typed-array allocation per
 * packet dominated the decoder's cost. Sized for the largest accepted input: the options field of a 65535-byte
 * message plus file and sname hold at most (65535 − 240 + 192) / 2 instances of ≥ 2 bytes.
 */
const MAX_INSTANCES = ((MAX_PACKET_LENGTH - MIN_PACKET_LENGTH + FILE_LENGTH + SNAME_LENGTH) >> 1) + 1;
const SCRATCH: Found = {
  count: 0,
  code: new Uint8Array(MAX_INSTANCES),
  start: new Int32Array(MAX_INSTANCES),
  end: new Int32Array(MAX_INSTANCES),
};
const CODE_TOTAL = new Int32Array(256).fill(-1);

/** Decode errors come from untrusted input at line rate: build them without the (costly, useless) stack trace. */
function fail(reason: DhcpDecodeReason, message: string, offset: number | null = null): never {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    throw new DhcpDecodeError(reason, message, offset);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Scans [start, end) of buf, recording option payload ranges in `found`. Tolerates a missing END (see header). */
function scanOptions(buf: Buffer, start: number, end: number, where: string, found: Found): void {
  let i = start;
  while (i < end) {
    const code = buf[i]!;
    if (code === DhcpOption.PAD) {
      i += 1;
      continue;
    }
    if (code === DhcpOption.END) return;
    if (i + 1 >= end) fail('option-truncated', `option ${code} in ${where} has no length byte`, i);
    const length = buf[i + 1]!;
    const dataStart = i + 2;
    const dataEnd = dataStart + length;
    if (dataEnd > end) {
      fail('option-overrun', `option ${code} in ${where} claims ${length} bytes, only ${end - dataStart} left`, i);
    }
    const n = found.count++;
    found.code[n] = code;
    found.start[n] = dataStart;
    found.end[n] = dataEnd;
    i = dataEnd;
  }
}

/** Decodes one DHCPv4 message. Throws only `DhcpDecodeError`. The result shares no memory with `buf`. */
export function decodeDhcpPacket(buf: Buffer): DhcpPacket {
  if (buf.length < MIN_PACKET_LENGTH) fail('too-short', `${buf.length} bytes, need at least ${MIN_PACKET_LENGTH}`);
  if (buf.length > MAX_PACKET_LENGTH) fail('too-large', `${buf.length} bytes, at most ${MAX_PACKET_LENGTH}`);
  const op = buf[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) fail('bad-op', `op ${op} is neither BOOTREQUEST (1) nor BOOTREPLY (2)`, 0);
  const hlen = buf[2]!;
  if (hlen > CHADDR_LENGTH) fail('bad-hlen', `hlen ${hlen} exceeds the ${CHADDR_LENGTH}-byte chaddr field`, 2);
  const cookie = buf.readUInt32BE(OFF_COOKIE);
  if (cookie !== DHCP_MAGIC_COOKIE) fail('bad-magic-cookie', `0x${cookie.toString(16).padStart(8, '0')}`, OFF_COOKIE);

  const found = SCRATCH;
  found.count = 0;
  scanOptions(buf, MIN_PACKET_LENGTH, buf.length, 'options', found);

  // Option 52 (concatenated per RFC 3396, so a repeated 52 is two bytes and invalid).
  let overload = 0;
  let overloadBytes = -1;
  for (let k = 0; k < found.count; k++) {
    if (found.code[k] !== DhcpOption.OVERLOAD) continue;
    overloadBytes = Math.max(overloadBytes, 0) + found.end[k]! - found.start[k]!;
    if (found.end[k]! > found.start[k]!) overload = buf[found.start[k]!]!;
  }
  if (overloadBytes !== -1 && (overloadBytes !== 1 || overload < 1 || overload > 3)) {
    fail('bad-overload', `option 52 must be one byte 1..3, got ${overloadBytes} byte(s)${overloadBytes === 1 ? ` = ${overload}` : ''}`);
  }
  if (overload & 1) scanOptions(buf, OFF_FILE, OFF_FILE + FILE_LENGTH, 'file', found);
  if (overload & 2) scanOptions(buf, OFF_SNAME, OFF_SNAME + SNAME_LENGTH, 'sname', found);

  // Concatenate per code in wire order into one allocation; 52 is framing (and meaningless in file/sname).
  // total[code] is -1 for "not seen" (reset below for the codes used), then the payload length, then the write cursor.
  const total = CODE_TOTAL;
  const codes: number[] = [];
  let bytes = 0;
  for (let k = 0; k < found.count; k++) {
    const code = found.code[k]!;
    if (code === DhcpOption.OVERLOAD) continue;
    if (total[code] === -1) {
      total[code] = 0;
      codes.push(code);
    }
    const len = found.end[k]! - found.start[k]!;
    total[code] = total[code]! + len;
    bytes += len;
  }
  const store = Buffer.allocUnsafe(bytes); // every byte is written below; pooled for small sizes
  let offset = 0;
  const options = new Map<number, Buffer>();
  for (const code of codes) {
    const len = total[code]!;
    options.set(code, store.subarray(offset, offset + len));
    total[code] = offset;
    offset += len;
  }
  for (let k = 0; k < found.count; k++) {
    const code = found.code[k]!;
    if (code === DhcpOption.OVERLOAD) continue;
    buf.copy(store, total[code]!, found.start[k]!, found.end[k]!);
    total[code] = total[code]! + found.end[k]! - found.start[k]!;
  }
  for (const code of codes) total[code] = -1;

  const mt = options.get(DhcpOption.MESSAGE_TYPE);
  return {
    op,
    htype: buf[1]!,
    hlen,
    hops: buf[3]!,
    xid: buf.readUInt32BE(4),
    secs: buf.readUInt16BE(8),
    flags: buf.readUInt16BE(10),
    ciaddr: formatIPv4(buf, OFF_CIADDR),
    yiaddr: formatIPv4(buf, OFF_YIADDR),
    siaddr: formatIPv4(buf, OFF_SIADDR),
    giaddr: formatIPv4(buf, OFF_GIADDR),
    chaddr: formatHex(buf, OFF_CHADDR, hlen),
    sname: overload & 2 ? '' : readCString(buf, OFF_SNAME, SNAME_LENGTH),
    file: overload & 1 ? '' : readCString(buf, OFF_FILE, FILE_LENGTH),
    options,
    messageType: mt !== undefined && mt.length === 1 ? mt[0]! : null,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

export interface EncodeOptions {
  /** Largest DHCP message (UDP payload) allowed, ≥ 300; default 548. */
  readonly maxSize?: number;
  /** Codes to place first (after 53), in this order; the rest follow in ascending order. Absent codes are skipped. */
  readonly order?: readonly number[];
}

interface Instance {
  readonly code: number;
  readonly data: Buffer;
}

/** Where each option instance goes: 0 = options field, 1 = file, 2 = sname. */
interface Layout {
  readonly areas: readonly [Instance[], Instance[], Instance[]];
  readonly overload: number;
  readonly optionsBytes: number;
}

function checkInt(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new DhcpEncodeError('invalid-field', `${name} ${v} is not an integer in 0..${max}`);
}

function latin1Field(name: string, s: string, max: number): Buffer {
  if (!/^[\u0001-\u00ff]*$/.test(s)) throw new DhcpEncodeError('invalid-field', `${name} has a NUL or non-latin1 character`);
  const b = Buffer.from(s, 'latin1');
  if (b.length > max) throw new DhcpEncodeError('invalid-field', `${name} is ${b.length} bytes, the field holds ${max}`);
  return b;
}

function ipField(name: string, s: string): number {
  const v = ipv4Value(s);
  if (v < 0) throw new DhcpEncodeError('invalid-field', `${name} ${JSON.stringify(s)} is not a dotted quad`);
  return v;
}

/** The option instances in wire order, long payloads split into ≤ 255-byte pieces. */
function instances(p: DhcpPacket, order: readonly number[]): Instance[] {
  const payloads = new Map<number, Buffer>();
  for (const [code, data] of p.options) {
    if (!Number.isInteger(code) || code < 1 || code > 254) {
      throw new DhcpEncodeError('invalid-option', `option code ${code} is not in 1..254`);
    }
    if (code === DhcpOption.OVERLOAD) {
      throw new DhcpEncodeError('invalid-option', 'option 52 (overload) is computed by the encoder');
    }
    if (!Buffer.isBuffer(data)) throw new DhcpEncodeError('invalid-option', `option ${code} payload is not a Buffer`);
    payloads.set(code, data);
  }
  if (p.messageType !== null) {
    checkInt('messageType', p.messageType, 255);
    payloads.set(DhcpOption.MESSAGE_TYPE, Buffer.from([p.messageType]));
  }
  const codes: number[] = [];
  const seen = new Set<number>();
  const take = (code: number): void => {
    if (!seen.has(code) && payloads.has(code)) {
      seen.add(code);
      codes.push(code);
    }
  };
  take(DhcpOption.MESSAGE_TYPE);
  for (const code of order) take(code);
  for (const code of [...payloads.keys()].sort((a, b) => a - b)) take(code);

  const out: Instance[] = [];
  for (const code of codes) {
    const data = payloads.get(code)!;
    if (data.length === 0) {
      out.push({ code, data });
      continue;
    }
    for (let at = 0; at < data.length; at += 255) out.push({ code, data: data.subarray(at, Math.min(at + 255, data.length)) });
  }
  return out;
}

/**
 * Assigns instances to areas (0 options field, 1 file, 2 sname): first fit in the given order, each instance in the
 * earliest area with room but never before an earlier instance of the same code. Returns area per instance or null.
 */
function place(list: readonly Instance[], visit: readonly number[], free: [number, number, number]): number[] | null {
  const where: number[] = new Array<number>(list.length).fill(0);
  const minArea = new Map<number, number>();
  for (const idx of visit) {
    const inst = list[idx]!;
    const size = 2 + inst.data.length;
    let a = minArea.get(inst.code) ?? 0;
    while (a < 3 && free[a]! < size) a++;
    if (a === 3) return null;
    free[a] = free[a]! - size;
    where[idx] = a;
    minArea.set(inst.code, a);
  }
  return where;
}

function layout(list: readonly Instance[], capacities: readonly [number, number, number], overloadable: boolean): Layout | null {
  const total = list.reduce((n, inst) => n + 2 + inst.data.length, 0);
  if (total <= capacities[0]) return { areas: [[...list], [], []], overload: 0, optionsBytes: total };
  if (!overloadable) return null;
  // Overload: 3 bytes of the options field go to option 52. Try first fit in wire order (the earlier, i.e.
  // requested, options stay in the options field); if that fails, first fit by decreasing size, which packs
  // better. 53 is always placed first so it stays in the options field. Sorting is stable, so the 255-byte
  // pieces of a long option keep their order and its shorter last piece comes after them.
  const inOrder = list.map((_, i) => i);
  const bySize = [...inOrder].sort((x, y) => {
    const a = list[x]!;
    const b = list[y]!;
    if ((a.code === DhcpOption.MESSAGE_TYPE) !== (b.code === DhcpOption.MESSAGE_TYPE)) return a.code === DhcpOption.MESSAGE_TYPE ? -1 : 1;
    return b.data.length - a.data.length;
  });
  for (const visit of [inOrder, bySize]) {
    const free: [number, number, number] = [capacities[0] - 3, capacities[1], capacities[2]];
    const where = place(list, visit, free);
    if (where === null) continue;
    const areas: [Instance[], Instance[], Instance[]] = [[], [], []];
    list.forEach((inst, i) => areas[where[i]!]!.push(inst));
    const overload = (areas[1].length > 0 ? 1 : 0) | (areas[2].length > 0 ? 2 : 0);
    return { areas, overload, optionsBytes: capacities[0] - free[0] };
  }
  return null;
}

function writeOptions(buf: Buffer, offset: number, list: readonly Instance[], overload: number): number {
  let at = offset;
  let overloadWritten = overload === 0;
  const writeOverload = (): void => {
    buf[at] = DhcpOption.OVERLOAD;
    buf[at + 1] = 1;
    buf[at + 2] = overload;
    at += 3;
    overloadWritten = true;
  };
  for (const inst of list) {
    if (!overloadWritten && inst.code !== DhcpOption.MESSAGE_TYPE) writeOverload();
    buf[at] = inst.code;
    buf[at + 1] = inst.data.length;
    inst.data.copy(buf, at + 2);
    at += 2 + inst.data.length;
  }
  if (!overloadWritten) writeOverload();
  buf[at] = DhcpOption.END;
  return at + 1;
}

/**
 * Encodes `p`, or returns null when its options cannot fit `maxSize` even with overload.
 * Throws `DhcpEncodeError('invalid-field' | 'invalid-option')` for values that cannot be put on the wire.
 */
export function tryEncodeDhcpPacket(p: DhcpPacket, opts: EncodeOptions = {}): Buffer | null {
  const maxSize = opts.maxSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  if (!Number.isInteger(maxSize) || maxSize < MIN_ENCODED_LENGTH || maxSize > MAX_PACKET_LENGTH) {
    throw new DhcpEncodeError('invalid-field', `maxSize ${maxSize} is not an integer in ${MIN_ENCODED_LENGTH}..${MAX_PACKET_LENGTH}`);
  }
  checkInt('op', p.op, 255);
  checkInt('htype', p.htype, 255);
  checkInt('hlen', p.hlen, CHADDR_LENGTH);
  checkInt('hops', p.hops, 255);
  checkInt('xid', p.xid, 0xffffffff);
  checkInt('secs', p.secs, 0xffff);
  checkInt('flags', p.flags, 0xffff);
  const ciaddr = ipField('ciaddr', p.ciaddr);
  const yiaddr = ipField('yiaddr', p.yiaddr);
  const siaddr = ipField('siaddr', p.siaddr);
  const giaddr = ipField('giaddr', p.giaddr);
  const chaddrHex = normalizeHardwareAddress(p.chaddr);
  if (chaddrHex === null || chaddrHex.length !== p.hlen * 2) {
    throw new DhcpEncodeError('invalid-field', `chaddr ${JSON.stringify(p.chaddr)} is not ${p.hlen} hex bytes`);
  }
  const sname = latin1Field('sname', p.sname, SNAME_LENGTH);
  const file = latin1Field('file', p.file, FILE_LENGTH);

  const list = instances(p, opts.order ?? []);
  const fileFree = file.length === 0 ? FILE_LENGTH - 1 : 0;
  const snameFree = sname.length === 0 ? SNAME_LENGTH - 1 : 0;
  const plan = layout(list, [maxSize - MIN_PACKET_LENGTH - 1, fileFree, snameFree], fileFree + snameFree > 0);
  if (plan === null) return null;

  const length = Math.max(MIN_ENCODED_LENGTH, MIN_PACKET_LENGTH + plan.optionsBytes + 1);
  const buf = Buffer.allocUnsafe(length).fill(0); // pooled for small sizes, unlike Buffer.alloc
  buf[0] = p.op;
  buf[1] = p.htype;
  buf[2] = p.hlen;
  buf[3] = p.hops;
  buf.writeUInt32BE(p.xid, 4);
  buf.writeUInt16BE(p.secs, 8);
  buf.writeUInt16BE(p.flags, 10);
  buf.writeUInt32BE(ciaddr, OFF_CIADDR);
  buf.writeUInt32BE(yiaddr, OFF_YIADDR);
  buf.writeUInt32BE(siaddr, OFF_SIADDR);
  buf.writeUInt32BE(giaddr, OFF_GIADDR);
  buf.write(chaddrHex, OFF_CHADDR, 'hex');
  buf.writeUInt32BE(DHCP_MAGIC_COOKIE, OFF_COOKIE);
  writeOptions(buf, MIN_PACKET_LENGTH, plan.areas[0], plan.overload);
  if (plan.overload & 1) writeOptions(buf, OFF_FILE, plan.areas[1], 0);
  else file.copy(buf, OFF_FILE);
  if (plan.overload & 2) writeOptions(buf, OFF_SNAME, plan.areas[2], 0);
  else sname.copy(buf, OFF_SNAME);
  return buf;
}

/** Encodes `p`; throws `DhcpEncodeError` when a field is invalid or the options cannot fit `maxSize`. */
export function encodeDhcpPacket(p: DhcpPacket, opts: EncodeOptions = {}): Buffer {
  const buf = tryEncodeDhcpPacket(p, opts);
  if (buf === null) {
    throw new DhcpEncodeError('too-large', `options do not fit ${opts.maxSize ?? DEFAULT_MAX_MESSAGE_SIZE} bytes even with overload`);
  }
  return buf;
}
