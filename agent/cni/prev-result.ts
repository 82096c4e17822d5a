// The previous plugin's result (config `prevResult`): interfaces, IPs (with their interface index), routes and DNS.
//
// The DNS part becomes the attachment's resolv.conf and the guest's DHCP options, so each string is checked for what
// it is (nameservers: IP addresses; domain and search: DNS names; options: resolv.conf option tokens): a newline
// there would otherwise write lines of the tenant's choosing into a file root reads back.
import { isIP } from 'node:net';
import { CNI_CODES, CniSpecError } from './errors.js';

export interface ResultInterface {
  readonly name: string;
  readonly mac?: string;
  readonly mtu?: number;
  readonly sandbox?: string;
}

export interface ResultIp {
  readonly address: string;
  readonly gateway?: string;
  readonly interface?: number;
}

export interface ResultRoute {
  readonly dst: string;
  readonly gw?: string;
}

export interface ResultDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface PrevResult {
  readonly cniVersion: string | null;
  readonly interfaces: readonly ResultInterface[];
  readonly ips: readonly ResultIp[];
  readonly routes: readonly ResultRoute[];
  readonly dns: ResultDns;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(field: string, message: string): CniSpecError {
  return new CniSpecError(CNI_CODES.invalidConfig, `prevResult.${field}`, message);
}

function list(object: Record<string, unknown>, key: string): unknown[] {
  const value = object[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw bad(key, 'must be an array');
  return value;
}

function str(object: Record<string, unknown>, key: string, field: string, required: boolean): string | undefined {
  const value = object[key];
  if (value === undefined || (value === '' && !required)) {
    if (required) throw bad(field, 'missing');
    return undefined;
  }
  if (typeof value !== 'string') throw bad(field, 'must be a string');
  return value;
}

function strings(object: Record<string, unknown>, key: string, field: string): string[] | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v): v is string => typeof v === 'string')) throw bad(field, 'must be an array of strings');
  return value;
}

/** An IPv4 or IPv6 address, the latter optionally with a zone (`fe80::1%eth0`), as resolv.conf takes it. */
function isNameserver(text: string): boolean {
  const [address = '', zone, extra] = text.split('%');
  if (extra !== undefined) return false;
  if (zone !== undefined) return isIP(address) === 6 && /^[A-Za-z0-9_.-]{1,15}$/.test(zone);
  return isIP(address) !== 0;
}

/** A DNS name (labels of letters, digits, '-' and '_', at most 63 bytes each, 253 in all; a trailing dot allowed). */
function isDnsName(text: string): boolean {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
}

/** A resolv.conf option: a word, optionally with a numeric value (`ndots:5`, `edns0`, `single-request-reopen`). */
function isResolverOption(text: string): boolean {
  return text.length <= 64 && /^[A-Za-z0-9][A-Za-z0-9_.-]*(:[0-9]{1,5})?$/.test(text);
}

function checked(values: readonly string[] | undefined, field: string, ok: (text: string) => boolean, what: string): void {
  (values ?? []).forEach((text, i) => {
    if (!ok(text)) throw bad(`${field}[${i}]`, `must be ${what}, got ${JSON.stringify(text)}`);
  });
}

export function parsePrevResult(value: unknown): PrevResult {
  if (!isObject(value)) throw new CniSpecError(CNI_CODES.invalidConfig, 'prevResult', 'must be an object');
  const interfaces = list(value, 'interfaces').map((entry, i): ResultInterface => {
    if (!isObject(entry)) throw bad(`interfaces[${i}]`, 'must be an object');
    const name = str(entry, 'name', `interfaces[${i}].name`, true) as string;
    const mac = str(entry, 'mac', `interfaces[${i}].mac`, false);
    const sandbox = str(entry, 'sandbox', `interfaces[${i}].sandbox`, false);
    const mtu = entry['mtu'];
    if (mtu !== undefined && (typeof mtu !== 'number' || !Number.isInteger(mtu))) throw bad(`interfaces[${i}].mtu`, 'must be an integer');
    return { name, ...(mac !== undefined ? { mac } : {}), ...(sandbox !== undefined ? { sandbox } : {}), ...(mtu !== undefined ? { mtu } : {}) };
  });
  const ips = list(value, 'ips').map((entry, i): ResultIp => {
    if (!isObject(entry)) throw bad(`ips[${i}]`, 'must be an object');
    const address = str(entry, 'address', `ips[${i}].address`, true) as string;
    if (!address.includes('/')) throw bad(`ips[${i}].address`, `must be an address in CIDR notation, got ${JSON.stringify(address)}`);
    const gateway = str(entry, 'gateway', `ips[${i}].gateway`, false);
    const index = entry['interface'];
    if (index !== undefined && (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= interfaces.length)) {
      throw bad(`ips[${i}].interface`, `must index prevResult.interfaces (0-${interfaces.length - 1}), got ${JSON.stringify(index)}`);
    }
    return { address, ...(gateway !== undefined ? { gateway } : {}), ...(index !== undefined ? { interface: index } : {}) };
  });
  const routes = list(value, 'routes').map((entry, i): ResultRoute => {
    if (!isObject(entry)) throw bad(`routes[${i}]`, 'must be an object');
    const dst = str(entry, 'dst', `routes[${i}].dst`, true) as string;
    const gw = str(entry, 'gw', `routes[${i}].gw`, false);
    return { dst, ...(gw !== undefined ? { gw } : {}) };
  });
  const dnsValue = value['dns'];
  let dns: ResultDns = {};
  if (dnsValue !== undefined && dnsValue !== null) {
    if (!isObject(dnsValue)) throw bad('dns', 'must be an object');
    const nameservers = strings(dnsValue, 'nameservers', 'dns.nameservers');
    const search = strings(dnsValue, 'search', 'dns.search');
    const options = strings(dnsValue, 'options', 'dns.options');
    const domain = str(dnsValue, 'domain', 'dns.domain', false);
    checked(nameservers, 'dns.nameservers', isNameserver, 'an IP address');
    checked(search, 'dns.search', isDnsName, 'a DNS name');
    checked(options, 'dns.options', isResolverOption, 'a resolv.conf option (a word, optionally :number)');
    if (domain !== undefined && !isDnsName(domain)) throw bad('dns.domain', `must be a DNS name, got ${JSON.stringify(domain)}`);
    dns = {
      ...(nameservers ? { nameservers } : {}),
      ...(domain !== undefined ? { domain } : {}),
      ...(search ? { search } : {}),
      ...(options ? { options } : {}),
    };
  }
  const version = value['cniVersion'];
  return { cniVersion: typeof version === 'string' ? version : null, interfaces, ips, routes, dns };
}

/** The pod NIC of this attachment: the interface named CNI_IFNAME in a sandbox (the netns), and its IPs. */
export function podNicOf(prev: PrevResult, ifname: string): { readonly index: number; readonly nic: ResultInterface; readonly ips: readonly ResultIp[] } {
  const index = prev.interfaces.findIndex((entry) => entry.name === ifname && entry.sandbox !== undefined);
  const nic = prev.interfaces[index];
  if (nic === undefined) {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'prevResult.interfaces', `no interface ${JSON.stringify(ifname)} (CNI_IFNAME) inside a sandbox; is a primary CNI plugin before virt-net-agent in the chain?`);
  }
  // An IP without an interface index belongs to the only sandbox interface when there is one.
  const sandboxed = prev.interfaces.filter((entry) => entry.sandbox !== undefined).length;
  const ips = prev.ips.filter((ip) => ip.interface === index || (ip.interface === undefined && sandboxed === 1));
  return { index, nic, ips };
}
