// DHCP option payload encoders/decoders: address lists, integers, strings, 119 domain search, 121 classless routes, DUID-LL.
import { bigIntToIp, ipFamily, ipToBigInt, networkOf, parseCidr, prefixToMask } from '../agent/plan/ip.js';

/** A payload could not be encoded or decoded. `code` is the DHCP option code concerned, when there is one. */
export class DhcpOptionError extends Error {
  constructor(
    readonly code: number | null,
    message: string,
  ) {
    super(message);
    this.name = 'DhcpOptionError';
  }
}

/** DHCPv4 option codes the agent emits (RFC 2132, 3397, 3442). */
export const DhcpV4Option = {
  SubnetMask: 1,
  Router: 3,
  DomainNameServer: 6,
  HostName: 12,
  DomainName: 15,
  InterfaceMtu: 26,
  NtpServers: 42,
  LeaseTime: 51,
  ServerIdentifier: 54,
  TftpServerName: 66,
  BootFileName: 67,
  DomainSearch: 119,
  ClasslessStaticRoute: 121,
} as const;

/** DHCPv6 option codes (RFC 8415, RFC 3646). */
export const DhcpV6Option = {
  ClientId: 1,
  ServerId: 2,
  IaNa: 3,
  IaAddr: 5,
  DnsServers: 23,
  DomainList: 24,
} as const;

/** KubeVirt's "infinite" lease: 999 × 24 h. */
export const INFINITE_LEASE_SECONDS = 999 * 24 * 3600;

/** KubeVirt's error texts (pkg/network/dhcp/server/server.go). */
export const ERROR_SEARCH_DOMAIN_NOT_VALID = 'Search domain is not valid';
export const ERROR_SEARCH_DOMAINS_TOO_LONG = 'Search domains length exceeded allowable size';

/** Maximum payload of a single DHCPv4 option. */
export const MAX_OPTION_LENGTH = 255;

// ---------------------------------------------------------------------------------------------
// Generic helpers

export function toHex(payload: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('hex');
}

export function fromHex(hex: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(hex)) throw new DhcpOptionError(null, `invalid hex payload "${hex}"`);
  return Buffer.from(hex, 'hex');
}

function ipv4Bytes(ip: string, code: number | null): Buffer {
  if (ipFamily(ip) !== 4) throw new DhcpOptionError(code, `"${ip}" is not an IPv4 address`);
  const value = ipToBigInt(ip);
  const out = Buffer.alloc(4);
  out.writeUInt32BE(Number(value));
  return out;
}

function ipv6Bytes(ip: string, code: number | null): Buffer {
  if (ipFamily(ip) !== 6) throw new DhcpOptionError(code, `"${ip}" is not an IPv6 address`);
  const value = ipToBigInt(ip);
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(value >> 64n, 0);
  out.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn, 8);
  return out;
}

function bytesToIpv4(payload: Uint8Array, offset: number): string {
  return `${payload[offset]}.${payload[offset + 1]}.${payload[offset + 2]}.${payload[offset + 3]}`;
}

// ---------------------------------------------------------------------------------------------
// Addresses, integers, strings

/** Concatenated 4-byte IPv4 addresses (options 3, 6, 42, 54, …). */
export function encodeIPv4List(addresses: readonly string[], code: number | null = null): Buffer {
  return Buffer.concat(addresses.map((ip) => ipv4Bytes(ip, code)));
}

export function decodeIPv4List(payload: Uint8Array): string[] {
  if (payload.length % 4 !== 0) throw new DhcpOptionError(null, `IPv4 address list length ${payload.length} is not a multiple of 4`);
  const out: string[] = [];
  for (let i = 0; i < payload.length; i += 4) out.push(bytesToIpv4(payload, i));
  return out;
}

/** Concatenated 16-byte IPv6 addresses (DHCPv6 option 23). */
export function encodeIPv6List(addresses: readonly string[], code: number | null = null): Buffer {
  return Buffer.concat(addresses.map((ip) => ipv6Bytes(ip, code)));
}

export function decodeIPv6List(payload: Uint8Array): string[] {
  if (payload.length % 16 !== 0) throw new DhcpOptionError(null, `IPv6 address list length ${payload.length} is not a multiple of 16`);
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const out: string[] = [];
  for (let i = 0; i < buf.length; i += 16) {
    out.push(bigIntToIp((buf.readBigUInt64BE(i) << 64n) | buf.readBigUInt64BE(i + 8), 6));
  }
  return out;
}

function checkInteger(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new DhcpOptionError(null, `${what} value ${value} is out of range 0..${max}`);
}

export function encodeU8(value: number): Buffer {
  checkInteger(value, 0xff, 'u8');
  return Buffer.from([value]);
}

export function encodeU16(value: number): Buffer {
  checkInteger(value, 0xffff, 'u16');
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
}

export function encodeU32(value: number): Buffer {
  checkInteger(value, 0xffff_ffff, 'u32');
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

export function decodeUInt(payload: Uint8Array): number {
  if (payload.length !== 1 && payload.length !== 2 && payload.length !== 4) {
    throw new DhcpOptionError(null, `integer payload must be 1, 2 or 4 bytes, got ${payload.length}`);
  }
  let value = 0;
  for (const byte of payload) value = value * 256 + byte;
  return value;
}

/** The raw bytes of a string, as Go's []byte(s) (UTF-8). */
export function encodeString(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

export function decodeString(payload: Uint8Array): string {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
}

/** Option 1: the subnet mask of a prefix length. */
export function encodeSubnetMask(prefixLength: number): Buffer {
  checkInteger(prefixLength, 32, 'prefix length');
  return ipv4Bytes(prefixToMask(prefixLength), DhcpV4Option.SubnetMask);
}

// ---------------------------------------------------------------------------------------------
// Option 119: domain search (RFC 3397, names in RFC 1035 §3.1 form, no compression)

/** KubeVirt's search domain regex (lower-case ASCII only; the last label starts with a letter; a trailing dot is allowed). */
export const SEARCH_DOMAIN_PATTERN = /^(?:[_a-z0-9](?:[_a-z0-9-]{0,61}[a-z0-9])?\.)*(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)?$/;

/**
 * KubeVirt's isValidSearchDomain: at most 253 characters and matching SEARCH_DOMAIN_PATTERN.
 * Unlike KubeVirt, the empty string is not valid (KubeVirt would encode it as two root names).
 */
export function isValidSearchDomain(domain: string): boolean {
  return domain.length > 0 && domain.length <= 253 && SEARCH_DOMAIN_PATTERN.test(domain);
}

/** One name in RFC 1035 wire form. A single trailing dot (FQDN) is the root label, not an extra empty label. */
function encodeDomainName(domain: string): Buffer {
  const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
  const parts: Buffer[] = [];
  if (name !== '') {
    for (const label of name.split('.')) {
      const bytes = Buffer.from(label, 'ascii');
      if (bytes.length === 0 || bytes.length > 63) {
        throw new DhcpOptionError(DhcpV4Option.DomainSearch, `${ERROR_SEARCH_DOMAIN_NOT_VALID}: '${domain}'`);
      }
      parts.push(Buffer.from([bytes.length]), bytes);
    }
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/**
 * Option 119 payload. Throws DhcpOptionError with KubeVirt's messages on an invalid domain
 * ("Search domain is not valid: 'x'") or when the payload exceeds 255 bytes
 * ("Search domains length exceeded allowable size: was N long"). An empty list encodes to an empty buffer.
 */
export function encodeDomainSearch(domains: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const domain of domains) {
    if (!isValidSearchDomain(domain)) {
      throw new DhcpOptionError(DhcpV4Option.DomainSearch, `${ERROR_SEARCH_DOMAIN_NOT_VALID}: '${domain}'`);
    }
    parts.push(encodeDomainName(domain));
  }
  const payload = Buffer.concat(parts);
  if (payload.length > MAX_OPTION_LENGTH) {
    throw new DhcpOptionError(DhcpV4Option.DomainSearch, `${ERROR_SEARCH_DOMAINS_TOO_LONG}: was ${payload.length} long`);
  }
  return payload;
}

/** Encoded size of a domain in option 119 (for fitting lists into 255 bytes). */
export function domainSearchEntryLength(domain: string): number {
  return encodeDomainName(domain).length;
}

/**
 * Decodes option 119 (RFC 1035 names, following RFC 1035 §4.1.4 compression pointers, which RFC 3397
 * allows and which point into the option data). Names are returned without a trailing dot; the root is ".".
 */
export function decodeDomainSearch(payload: Uint8Array): string[] {
  const names: string[] = [];
  let offset = 0;
  while (offset < payload.length) {
    const { name, next } = readName(payload, offset);
    names.push(name);
    offset = next;
  }
  return names;
}

function readName(payload: Uint8Array, start: number): { name: string; next: number } {
  const labels: string[] = [];
  let offset = start;
  let next = -1;
  let jumps = 0;
  for (;;) {
    if (offset >= payload.length) throw new DhcpOptionError(DhcpV4Option.DomainSearch, `truncated name at offset ${offset}`);
    const length = payload[offset] ?? 0;
    if (length === 0) {
      if (next < 0) next = offset + 1;
      break;
    }
    const kind = length & 0xc0;
    if (kind === 0xc0) {
      if (offset + 1 >= payload.length) throw new DhcpOptionError(DhcpV4Option.DomainSearch, `truncated pointer at offset ${offset}`);
      const target = ((length & 0x3f) << 8) | (payload[offset + 1] ?? 0);
      if (next < 0) next = offset + 2;
      if (++jumps > payload.length || target >= payload.length) {
        throw new DhcpOptionError(DhcpV4Option.DomainSearch, `bad compression pointer to ${target}`);
      }
      offset = target;
      continue;
    }
    if (kind !== 0) throw new DhcpOptionError(DhcpV4Option.DomainSearch, `reserved label type 0x${kind.toString(16)} at offset ${offset}`);
    if (offset + 1 + length > payload.length) throw new DhcpOptionError(DhcpV4Option.DomainSearch, `truncated label at offset ${offset}`);
    labels.push(Buffer.from(payload.subarray(offset + 1, offset + 1 + length)).toString('latin1'));
    offset += 1 + length;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.'), next };
}

// ---------------------------------------------------------------------------------------------
// Option 121: classless static routes (RFC 3442)

/** A route as the agent carries it: dst "default" or an IPv4 CIDR; no gw = on-link (0.0.0.0). */
export interface ClasslessRoute {
  readonly dst: string;
  readonly gw?: string;
}

/** A decoded option 121 entry: dst is always a CIDR ("0.0.0.0/0" for the default route), gw always set. */
export interface DecodedClasslessRoute {
  readonly dst: string;
  readonly gw: string;
}

export function isDefaultDestination(dst: string): boolean {
  if (dst === 'default') return true;
  const cidr = parseCidr(dst);
  return cidr !== null && cidr.prefixLength === 0;
}

/** KubeVirt's sortRoutes: non-default routes first in their original order, then the default route(s). */
export function sortRoutesDefaultLast<T extends ClasslessRoute>(routes: readonly T[]): T[] {
  return [...routes.filter((r) => !isDefaultDestination(r.dst)), ...routes.filter((r) => isDefaultDestination(r.dst))];
}

/**
 * KubeVirt's formClasslessRoutes: each entry is [width, ceil(width/8) significant octets of the network, gateway (4 bytes)];
 * routes without a gateway get 0.0.0.0; default routes go last. An empty or absent list encodes to an empty buffer.
 */
export function encodeClasslessRoutes(routes: readonly ClasslessRoute[] | null | undefined): Buffer {
  if (!routes) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  for (const route of sortRoutesDefaultLast(routes)) {
    let width = 0;
    let network = 0n;
    if (route.dst !== 'default') {
      const cidr = parseCidr(route.dst);
      if (cidr === null || cidr.family !== 4) {
        throw new DhcpOptionError(DhcpV4Option.ClasslessStaticRoute, `route destination "${route.dst}" is not an IPv4 CIDR`);
      }
      width = cidr.prefixLength;
      network = networkOf(cidr).address;
    }
    const octets = width > 0 ? Math.floor((width - 1) / 8) + 1 : 0;
    const dstBytes = Buffer.alloc(4);
    dstBytes.writeUInt32BE(Number(network));
    const gw = route.gw === undefined || route.gw === '' ? Buffer.alloc(4) : ipv4Bytes(route.gw, DhcpV4Option.ClasslessStaticRoute);
    parts.push(Buffer.from([width]), dstBytes.subarray(0, octets), gw);
  }
  return Buffer.concat(parts);
}

export function decodeClasslessRoutes(payload: Uint8Array): DecodedClasslessRoute[] {
  const out: DecodedClasslessRoute[] = [];
  let offset = 0;
  while (offset < payload.length) {
    const width = payload[offset] ?? 0;
    if (width > 32) throw new DhcpOptionError(DhcpV4Option.ClasslessStaticRoute, `prefix width ${width} > 32 at offset ${offset}`);
    const octets = width > 0 ? Math.floor((width - 1) / 8) + 1 : 0;
    if (offset + 1 + octets + 4 > payload.length) {
      throw new DhcpOptionError(DhcpV4Option.ClasslessStaticRoute, `truncated route at offset ${offset}`);
    }
    const dst = [0, 0, 0, 0];
    for (let i = 0; i < octets; i++) dst[i] = payload[offset + 1 + i] ?? 0;
    // RFC 3442: bits beyond the width are ignored.
    const raw = BigInt(((dst[0] ?? 0) * 2 ** 24 + (dst[1] ?? 0) * 2 ** 16 + (dst[2] ?? 0) * 2 ** 8 + (dst[3] ?? 0)));
    const network = networkOf({ family: 4, address: raw, prefixLength: width }).address;
    out.push({ dst: `${bigIntToIp(network, 4)}/${width}`, gw: bytesToIpv4(payload, offset + 1 + octets) });
    offset += 1 + octets + 4;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// DHCPv6 DUID

/** DUID-LL (RFC 8415 §11.4): type 3, hardware type (1 = Ethernet), link-layer address. */
export function encodeDuidLL(mac: string, hardwareType = 1): Buffer {
  const octets = mac.split(/[:-]/);
  if (octets.length !== 6 || octets.some((o) => !/^[0-9a-fA-F]{2}$/.test(o))) {
    throw new DhcpOptionError(DhcpV6Option.ServerId, `"${mac}" is not a 48-bit MAC address`);
  }
  checkInteger(hardwareType, 0xffff, 'hardware type');
  return Buffer.concat([encodeU16(3), encodeU16(hardwareType), Buffer.from(octets.join(''), 'hex')]);
}
