// DHCPv6 message codec (RFC 8415 client/server framing, options, IA_NA/IAADDR, DUIDs, RFC 3646 23/24): pure, bounded.
//
// Decoding decisions (exercised by test/unit/dhcp-v6-packet.test.ts):
// - A message is msg-type (1 byte), transaction-id (3 bytes) and options; fewer than 4 bytes → `too-short`, more than
//   65535 → `too-large`. Relay messages (RELAY-FORW 12, RELAY-REPL 13) have another framing and are `unsupported`
//   (the server answers clients on its own link only).
// - Options are 2-byte code, 2-byte length, payload; a header or payload that runs past its area → `truncated-option`.
//   Options are kept in wire order, repeats included; nested options (IA_NA, IAADDR) are decoded on demand with the
//   same bounded reader, and each typed accessor checks its own fixed part (`invalid-option`).
// - The only exception thrown is `Dhcpv6DecodeError` (without a stack trace: these come from untrusted input).
import { bigIntToIp, ipFamily, ipToBigInt } from '../agent/plan/ip.js';

export const DHCPV6_CLIENT_PORT = 546;
export const DHCPV6_SERVER_PORT = 547;
/** All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1). */
export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS = 'ff02::1:2';
export const MAX_MESSAGE_LENGTH = 65535;
const HEADER_LENGTH = 4;
const OPTION_HEADER_LENGTH = 4;

export const Dhcpv6MessageType = {
  SOLICIT: 1,
  ADVERTISE: 2,
  REQUEST: 3,
  CONFIRM: 4,
  RENEW: 5,
  REBIND: 6,
  REPLY: 7,
  RELEASE: 8,
  DECLINE: 9,
  RECONFIGURE: 10,
  INFORMATION_REQUEST: 11,
  RELAY_FORW: 12,
  RELAY_REPL: 13,
} as const;
export type Dhcpv6MessageTypeName = keyof typeof Dhcpv6MessageType;

/** Option codes (RFC 8415 §21, RFC 3646). */
export const Dhcpv6OptionCode = {
  CLIENTID: 1,
  SERVERID: 2,
  IA_NA: 3,
  IA_TA: 4,
  IAADDR: 5,
  ORO: 6,
  PREFERENCE: 7,
  ELAPSED_TIME: 8,
  STATUS_CODE: 13,
  RAPID_COMMIT: 14,
  DNS_SERVERS: 23,
  DOMAIN_LIST: 24,
  IA_PD: 25,
} as const;

export const Dhcpv6StatusCode = {
  Success: 0,
  UnspecFail: 1,
  NoAddrsAvail: 2,
  NoBinding: 3,
  NotOnLink: 4,
  UseMulticast: 5,
} as const;

export function messageTypeName(type: number): string {
  for (const [name, value] of Object.entries(Dhcpv6MessageType)) if (value === type) return name;
  return `TYPE${type}`;
}

export interface Dhcpv6Option {
  readonly code: number;
  readonly data: Buffer;
}

export interface Dhcpv6Message {
  readonly msgType: number;
  /** The 24-bit transaction id. */
  readonly transactionId: number;
  /** In wire order, repeats included. */
  readonly options: readonly Dhcpv6Option[];
}

export type Dhcpv6DecodeReason = 'too-short' | 'too-large' | 'unsupported' | 'truncated-option' | 'invalid-option';

export class Dhcpv6DecodeError extends Error {
  constructor(
    readonly reason: Dhcpv6DecodeReason,
    message: string,
    /** Byte offset of the offending field in the area being read, when there is one. */
    readonly offset: number | null = null,
  ) {
    super(`${reason}: ${message}`);
    this.name = 'Dhcpv6DecodeError';
  }
}

/** Encoding refuses values that do not fit their field. */
export class Dhcpv6EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Dhcpv6EncodeError';
  }
}

function fail(reason: Dhcpv6DecodeReason, message: string, offset: number | null = null): never {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    throw new Dhcpv6DecodeError(reason, message, offset);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------------------------------------
// Framing

/** Reads a run of options filling `area` exactly. */
export function decodeOptions(area: Uint8Array): Dhcpv6Option[] {
  const buf = asBuffer(area);
  const out: Dhcpv6Option[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (offset + OPTION_HEADER_LENGTH > buf.length) fail('truncated-option', `option header at offset ${offset} runs past the end`, offset);
    const code = buf.readUInt16BE(offset);
    const length = buf.readUInt16BE(offset + 2);
    const start = offset + OPTION_HEADER_LENGTH;
    if (start + length > buf.length) fail('truncated-option', `option ${code} at offset ${offset} claims ${length} bytes, ${buf.length - start} left`, offset);
    out.push({ code, data: buf.subarray(start, start + length) });
    offset = start + length;
  }
  return out;
}

export function decodeDhcpv6Message(bytes: Uint8Array): Dhcpv6Message {
  if (bytes.length < HEADER_LENGTH) fail('too-short', `${bytes.length} bytes, a DHCPv6 message has at least 4`);
  if (bytes.length > MAX_MESSAGE_LENGTH) fail('too-large', `${bytes.length} bytes`);
  const buf = asBuffer(bytes);
  const msgType = buf[0] ?? 0;
  if (msgType === Dhcpv6MessageType.RELAY_FORW || msgType === Dhcpv6MessageType.RELAY_REPL) {
    fail('unsupported', `relay message ${messageTypeName(msgType)}`, 0);
  }
  return { msgType, transactionId: buf.readUIntBE(1, 3), options: decodeOptions(buf.subarray(HEADER_LENGTH)) };
}

export function encodeOption(code: number, data: Uint8Array): Buffer {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new Dhcpv6EncodeError(`option code ${code} is out of range`);
  if (data.length > 0xffff) throw new Dhcpv6EncodeError(`option ${code} payload is ${data.length} bytes, more than 65535`);
  const header = Buffer.alloc(OPTION_HEADER_LENGTH);
  header.writeUInt16BE(code, 0);
  header.writeUInt16BE(data.length, 2);
  return Buffer.concat([header, data]);
}

export function encodeOptions(options: readonly Dhcpv6Option[]): Buffer {
  return Buffer.concat(options.map((option) => encodeOption(option.code, option.data)));
}

export function encodeDhcpv6Message(message: Dhcpv6Message): Buffer {
  if (!Number.isInteger(message.msgType) || message.msgType < 1 || message.msgType > 0xff) {
    throw new Dhcpv6EncodeError(`message type ${message.msgType} is out of range`);
  }
  if (!Number.isInteger(message.transactionId) || message.transactionId < 0 || message.transactionId > 0xffffff) {
    throw new Dhcpv6EncodeError(`transaction id ${message.transactionId} is out of range`);
  }
  const header = Buffer.alloc(HEADER_LENGTH);
  header[0] = message.msgType;
  header.writeUIntBE(message.transactionId, 1, 3);
  const out = Buffer.concat([header, encodeOptions(message.options)]);
  if (out.length > MAX_MESSAGE_LENGTH) throw new Dhcpv6EncodeError(`message is ${out.length} bytes, more than 65535`);
  return out;
}

export function findOption(options: readonly Dhcpv6Option[], code: number): Dhcpv6Option | undefined {
  return options.find((option) => option.code === code);
}

export function findOptions(options: readonly Dhcpv6Option[], code: number): Dhcpv6Option[] {
  return options.filter((option) => option.code === code);
}

// ---------------------------------------------------------------------------------------------
// Addresses

export function ipv6ToBytes(address: string): Buffer {
  if (ipFamily(address) !== 6) throw new Dhcpv6EncodeError(`"${address}" is not an IPv6 address`);
  const value = ipToBigInt(address);
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(value >> 64n, 0);
  out.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn, 8);
  return out;
}

export function bytesToIpv6(bytes: Uint8Array, offset = 0): string {
  const buf = asBuffer(bytes);
  return bigIntToIp((buf.readBigUInt64BE(offset) << 64n) | buf.readBigUInt64BE(offset + 8), 6);
}

// ---------------------------------------------------------------------------------------------
// IA_NA (RFC 8415 §21.4) and IAADDR (§21.6)

export interface IaNa {
  readonly iaid: number;
  readonly t1: number;
  readonly t2: number;
  readonly options: readonly Dhcpv6Option[];
}

export interface IaAddress {
  readonly address: string;
  readonly preferredLifetime: number;
  readonly validLifetime: number;
  readonly options: readonly Dhcpv6Option[];
}

export function decodeIaNa(data: Uint8Array): IaNa {
  const buf = asBuffer(data);
  if (buf.length < 12) fail('invalid-option', `IA_NA is ${buf.length} bytes, needs at least 12`);
  return { iaid: buf.readUInt32BE(0), t1: buf.readUInt32BE(4), t2: buf.readUInt32BE(8), options: decodeOptions(buf.subarray(12)) };
}

export function decodeIaAddress(data: Uint8Array): IaAddress {
  const buf = asBuffer(data);
  if (buf.length < 24) fail('invalid-option', `IAADDR is ${buf.length} bytes, needs at least 24`);
  return {
    address: bytesToIpv6(buf, 0),
    preferredLifetime: buf.readUInt32BE(16),
    validLifetime: buf.readUInt32BE(20),
    options: decodeOptions(buf.subarray(24)),
  };
}

function u32(value: number, what: string): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new Dhcpv6EncodeError(`${what} ${value} is out of range`);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

export function encodeIaNa(ia: IaNa): Buffer {
  return Buffer.concat([u32(ia.iaid, 'IAID'), u32(ia.t1, 'T1'), u32(ia.t2, 'T2'), encodeOptions(ia.options)]);
}

export function encodeIaAddress(ia: IaAddress): Buffer {
  return Buffer.concat([
    ipv6ToBytes(ia.address),
    u32(ia.preferredLifetime, 'preferred lifetime'),
    u32(ia.validLifetime, 'valid lifetime'),
    encodeOptions(ia.options),
  ]);
}

// ---------------------------------------------------------------------------------------------
// STATUS_CODE (§21.13), ORO (§21.7), ELAPSED_TIME (§21.9)

export interface StatusCode {
  readonly code: number;
  readonly message: string;
}

export function encodeStatusCode(status: StatusCode): Buffer {
  if (!Number.isInteger(status.code) || status.code < 0 || status.code > 0xffff) throw new Dhcpv6EncodeError(`status code ${status.code} is out of range`);
  const head = Buffer.alloc(2);
  head.writeUInt16BE(status.code);
  return Buffer.concat([head, Buffer.from(status.message, 'utf8')]);
}

export function decodeStatusCode(data: Uint8Array): StatusCode {
  const buf = asBuffer(data);
  if (buf.length < 2) fail('invalid-option', `STATUS_CODE is ${buf.length} bytes, needs at least 2`);
  return { code: buf.readUInt16BE(0), message: buf.subarray(2).toString('utf8') };
}

export function decodeOptionRequest(data: Uint8Array): number[] {
  const buf = asBuffer(data);
  if (buf.length % 2 !== 0) fail('invalid-option', `ORO length ${buf.length} is odd`);
  const out: number[] = [];
  for (let i = 0; i < buf.length; i += 2) out.push(buf.readUInt16BE(i));
  return out;
}

export function encodeOptionRequest(codes: readonly number[]): Buffer {
  const out = Buffer.alloc(codes.length * 2);
  codes.forEach((code, index) => {
    if (!Number.isInteger(code) || code < 0 || code > 0xffff) throw new Dhcpv6EncodeError(`requested option ${code} is out of range`);
    out.writeUInt16BE(code, index * 2);
  });
  return out;
}

/** Elapsed time in hundredths of a second. */
export function decodeElapsedTime(data: Uint8Array): number {
  const buf = asBuffer(data);
  if (buf.length !== 2) fail('invalid-option', `ELAPSED_TIME is ${buf.length} bytes, must be 2`);
  return buf.readUInt16BE(0);
}

// ---------------------------------------------------------------------------------------------
// DUIDs (RFC 8415 §11)

export const DuidType = { LLT: 1, EN: 2, LL: 3, UUID: 4 } as const;
/** RFC 8415 §11.1: a DUID is at most 128 octets, not counting the type code. */
export const MAX_DUID_LENGTH = 130;

export interface Duid {
  readonly type: number;
  /** DUID-LLT and DUID-LL: the hardware type (1 = Ethernet). */
  readonly hardwareType: number | null;
  /** DUID-LLT and DUID-LL: the link-layer address, lower-case colon form. */
  readonly linkLayerAddress: string | null;
}

function formatLinkLayer(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join(':');
}

export function decodeDuid(data: Uint8Array): Duid {
  const buf = asBuffer(data);
  if (buf.length < 3 || buf.length > MAX_DUID_LENGTH) fail('invalid-option', `DUID is ${buf.length} bytes, must be 3 to ${MAX_DUID_LENGTH}`);
  const type = buf.readUInt16BE(0);
  if (type === DuidType.LLT) {
    if (buf.length < 9) fail('invalid-option', `DUID-LLT is ${buf.length} bytes, needs at least 9`);
    return { type, hardwareType: buf.readUInt16BE(2), linkLayerAddress: formatLinkLayer(buf.subarray(8)) };
  }
  if (type === DuidType.LL) {
    if (buf.length < 5) fail('invalid-option', `DUID-LL is ${buf.length} bytes, needs at least 5`);
    return { type, hardwareType: buf.readUInt16BE(2), linkLayerAddress: formatLinkLayer(buf.subarray(4)) };
  }
  return { type, hardwareType: null, linkLayerAddress: null };
}
