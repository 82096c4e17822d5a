// Router advertisement bytes (RFC 4861 §4.2 with SLLA, MTU and prefix options; RFC 8106 RDNSS/DNSSL) and the RA
// configuration derived from a DhcpV6Plan. Pure: the ICMPv6 checksum is left 0 (the kernel fills it on raw ICMPv6 sockets).
import { parseCidr } from '../agent/plan/ip.js';
import type { DhcpV6Plan } from '../agent/plan/plan-types.js';
import { DhcpOptionError, decodeDomainSearch, fromHex } from './options.js';
import { Dhcpv6OptionCode, ipv6ToBytes } from './v6-packet.js';

export const ICMPV6_ROUTER_SOLICITATION = 133;
export const ICMPV6_ROUTER_ADVERTISEMENT = 134;
export const ALL_NODES = 'ff02::1';

/** RFC 4861 §6.2.1 defaults: MaxRtrAdvInterval 600 s, MinRtrAdvInterval 0.33 × Max. */
export const MAX_RTR_ADV_INTERVAL_SECONDS = 600;
export const MIN_RTR_ADV_INTERVAL_SECONDS = 200;
/** RFC 8106 §5.1: RDNSS/DNSSL lifetime at least 3 × MaxRtrAdvInterval. */
export const DNS_OPTION_LIFETIME_SECONDS = 3 * MAX_RTR_ADV_INTERVAL_SECONDS;

const NdOption = { SourceLinkLayerAddress: 1, PrefixInformation: 3, Mtu: 5, Rdnss: 25, Dnssl: 31 } as const;

export interface RaPrefix {
  readonly prefix: string;
  readonly prefixLength: number;
  /** L flag: the prefix is on-link. */
  readonly onLink: boolean;
  /** A flag: hosts may form addresses with SLAAC (only meaningful for /64). */
  readonly autonomous: boolean;
  readonly validLifetime: number;
  readonly preferredLifetime: number;
}

export interface RouterAdvertisement {
  /** Cur Hop Limit advertised to hosts; 0 = unspecified. */
  readonly curHopLimit: number;
  readonly managed: boolean;
  readonly other: boolean;
  /** 0 = not a default router (the final RA on shutdown). */
  readonly routerLifetime: number;
  readonly reachableTime: number;
  readonly retransTimer: number;
  readonly sourceMac: string | null;
  readonly mtu: number | null;
  readonly prefixes: readonly RaPrefix[];
  readonly dnsServers: readonly string[];
  readonly searchDomains: readonly string[];
  readonly dnsLifetime: number;
}

export class RaBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RaBuildError';
  }
}

function u16(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RaBuildError(`${what} ${value} is out of range 0..65535`);
  return value;
}

function u32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RaBuildError(`${what} ${value} is out of range`);
  return value;
}

function macBytes(mac: string): Buffer {
  const octets = mac.split(/[:-]/);
  if (octets.length !== 6 || octets.some((octet) => !/^[0-9a-fA-F]{2}$/.test(octet))) throw new RaBuildError(`"${mac}" is not a 48-bit MAC address`);
  return Buffer.from(octets.join(''), 'hex');
}

/** RFC 1035 names, uncompressed, padded with zero bytes to a multiple of 8 (RFC 8106 §5.2). */
function dnsslNames(domains: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const domain of domains) {
    const name = domain.endsWith('.') ? domain.slice(0, -1) : domain;
    for (const label of name === '' ? [] : name.split('.')) {
      const bytes = Buffer.from(label, 'ascii');
      if (bytes.length === 0 || bytes.length > 63) throw new RaBuildError(`search domain "${domain}" has an invalid label`);
      parts.push(Buffer.from([bytes.length]), bytes);
    }
    parts.push(Buffer.from([0]));
  }
  const names = Buffer.concat(parts);
  return Buffer.concat([names, Buffer.alloc((8 - ((names.length + 8) % 8)) % 8)]);
}

function option(type: number, body: Buffer): Buffer {
  const total = body.length + 2;
  if (total % 8 !== 0) throw new RaBuildError(`ND option ${type} is ${total} bytes, not a multiple of 8`);
  if (total / 8 > 255) throw new RaBuildError(`ND option ${type} is too long (${total} bytes)`);
  return Buffer.concat([Buffer.from([type, total / 8]), body]);
}

/** The ICMPv6 Router Advertisement message (type 134), checksum 0. */
export function buildRouterAdvertisement(ra: RouterAdvertisement): Buffer {
  const header = Buffer.alloc(16);
  header[0] = ICMPV6_ROUTER_ADVERTISEMENT;
  if (!Number.isInteger(ra.curHopLimit) || ra.curHopLimit < 0 || ra.curHopLimit > 0xff) throw new RaBuildError(`cur hop limit ${ra.curHopLimit} is out of range 0..255`);
  header[4] = ra.curHopLimit;
  header[5] = (ra.managed ? 0x80 : 0) | (ra.other ? 0x40 : 0);
  header.writeUInt16BE(u16(ra.routerLifetime, 'router lifetime'), 6);
  header.writeUInt32BE(u32(ra.reachableTime, 'reachable time'), 8);
  header.writeUInt32BE(u32(ra.retransTimer, 'retrans timer'), 12);
  const options: Buffer[] = [];
  if (ra.sourceMac !== null) options.push(option(NdOption.SourceLinkLayerAddress, macBytes(ra.sourceMac)));
  if (ra.mtu !== null) {
    const body = Buffer.alloc(6);
    body.writeUInt32BE(u32(ra.mtu, 'MTU'), 2);
    options.push(option(NdOption.Mtu, body));
  }
  for (const prefix of ra.prefixes) {
    const cidr = parseCidr(`${prefix.prefix}/${prefix.prefixLength}`);
    if (cidr === null || cidr.family !== 6) throw new RaBuildError(`prefix "${prefix.prefix}/${prefix.prefixLength}" is not an IPv6 prefix`);
    const body = Buffer.alloc(30);
    body[0] = prefix.prefixLength;
    body[1] = (prefix.onLink ? 0x80 : 0) | (prefix.autonomous ? 0x40 : 0);
    body.writeUInt32BE(u32(prefix.validLifetime, 'prefix valid lifetime'), 2);
    body.writeUInt32BE(u32(prefix.preferredLifetime, 'prefix preferred lifetime'), 6);
    ipv6ToBytes(prefix.prefix).copy(body, 14);
    options.push(option(NdOption.PrefixInformation, body));
  }
  if (ra.dnsServers.length > 0) {
    const head = Buffer.alloc(6);
    head.writeUInt32BE(u32(ra.dnsLifetime, 'DNS lifetime'), 2);
    options.push(option(NdOption.Rdnss, Buffer.concat([head, ...ra.dnsServers.map((server) => ipv6ToBytes(server))])));
  }
  if (ra.searchDomains.length > 0) {
    const head = Buffer.alloc(6);
    head.writeUInt32BE(u32(ra.dnsLifetime, 'DNS lifetime'), 2);
    options.push(option(NdOption.Dnssl, Buffer.concat([head, dnsslNames(ra.searchDomains)])));
  }
  return Buffer.concat([header, ...options]);
}

/** The search domains of a DHCPv6 plan (its option 24), or [] when it has none or it does not decode. */
export function planSearchDomains(plan: DhcpV6Plan): string[] {
  const hex = plan.options[String(Dhcpv6OptionCode.DOMAIN_LIST)];
  if (hex === undefined || hex === '') return [];
  try {
    return decodeDomainSearch(fromHex(hex)).filter((name) => name !== '.');
  } catch (error) {
    if (error instanceof DhcpOptionError) return [];
    throw error;
  }
}

/**
 * The RA for a plan: flags, router lifetime, MTU and RDNSS from plan.ra, DNSSL from the plan's DHCPv6 domain list,
 * and the planned prefix as on-link only (L=1, A=0: the address comes from DHCPv6, KubeVirt's masquerade design).
 * `routerLifetime` overrides the plan (0 for the final RA). Null when the plan has no RA section.
 */
export function routerAdvertisementFromPlan(plan: DhcpV6Plan, sourceMac: string | null, routerLifetime?: number): RouterAdvertisement | null {
  const ra = plan.ra;
  if (ra === null) return null;
  const prefixes: RaPrefix[] = [];
  if (ra.prefix !== '') {
    const cidr = parseCidr(ra.prefix);
    if (cidr === null || cidr.family !== 6) throw new RaBuildError(`ra.prefix "${ra.prefix}" is not an IPv6 prefix`);
    prefixes.push({
      prefix: ra.prefix.split('/')[0] ?? '',
      prefixLength: cidr.prefixLength,
      onLink: true,
      autonomous: false,
      validLifetime: plan.validLifetime,
      preferredLifetime: plan.preferredLifetime,
    });
  }
  return {
    curHopLimit: 64,
    managed: ra.managed,
    other: ra.other,
    routerLifetime: routerLifetime ?? ra.routerLifetimeSeconds,
    reachableTime: 0,
    retransTimer: 0,
    sourceMac,
    mtu: ra.mtu > 0 ? ra.mtu : null,
    prefixes,
    dnsServers: ra.dns,
    searchDomains: planSearchDomains(plan),
    dnsLifetime: DNS_OPTION_LIFETIME_SECONDS,
  };
}

/** True for an ICMPv6 Router Solicitation as a raw ICMPv6 socket delivers it (no IPv6 header). */
export function isRouterSolicitation(packet: Uint8Array): boolean {
  return packet.length >= 8 && packet[0] === ICMPV6_ROUTER_SOLICITATION && packet[1] === 0;
}
