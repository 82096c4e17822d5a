// Small IPv4/IPv6 address and CIDR helpers (parse, format, network, host N, global-unicast checks).

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  readonly address: bigint;
  readonly prefixLength: number;
}

const IPV4_PART = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;
const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * Dotted-quad IPv4 without leading zeros: what node:net's isIPv4 accepts. (node:net's IPv6 check compiles one very
 * large regular expression on first use, ~17 ms of a cold start here; these two are plain string checks.)
 */
export function isIPv4Address(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => IPV4_PART.test(part));
}

/** IPv6 text as node:net's isIPv6 accepts it (one "::", an IPv4 tail allowed), except that a zone ("%eth0") is refused. */
export function isIPv6Address(text: string): boolean {
  const halves = text.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (half: string): string[] => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  const all = [...head, ...tail];
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes('.')) {
    // Only as the text's final group ("::ffff:1.2.3.4"), never before a trailing "::".
    if (halves.length === 2 && tail.length === 0) return false;
    if (!isIPv4Address(last)) return false;
    all.pop();
    count++;
  }
  if (!all.every((group) => IPV6_GROUP.test(group))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

function bits(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function ipToBigInt(ip: string): bigint {
  if (isIPv4Address(ip)) {
    return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  if (isIPv6Address(ip)) {
    let text = ip;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
    const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (v4Tail?.[1]) {
      const v4 = ipToBigInt(v4Tail[1]);
      text = text.slice(0, -v4Tail[1].length) + ((v4 >> 16n) & 0xffffn).toString(16) + ':' + (v4 & 0xffffn).toString(16);
    }
    const [head = '', tail] = text.split('::');
    const headGroups = head === '' ? [] : head.split(':');
    const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
    const missing = 8 - headGroups.length - tailGroups.length;
    const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
    return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
  }
  throw new Error(`invalid IP address "${ip}"`);
}

export function bigIntToIp(value: bigint, family: Family): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => Number((value >> shift) & 0xffn)).join('.');
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return ipv6GroupsText(groups);
}

/**
 * Network-order bytes (4 or 16) → text, as bigIntToIp formats them, without BigInt arithmetic (netlink dumps format
 * every address and route of the pod: with 64 networks the BigInt path was ~7 ms of a setup).
 */
export function bytesToIp(bytes: Uint8Array, family: Family): string {
  if (family === 4) return `${bytes[0] ?? 0}.${bytes[1] ?? 0}.${bytes[2] ?? 0}.${bytes[3] ?? 0}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return ipv6GroupsText(groups);
}

/** Eight hex groups ("0" for zero) → RFC 5952 text. */
function ipv6GroupsText(groups: readonly string[]): string {
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups.
  let bestStart = -1;
  let bestLength = 0;
  for (let start = 0; start < 8; ) {
    if (groups[start] !== '0') {
      start++;
      continue;
    }
    let end = start;
    while (end < 8 && groups[end] === '0') end++;
    if (end - start > bestLength && end - start >= 2) {
      bestStart = start;
      bestLength = end - start;
    }
    start = end;
  }
  if (bestStart < 0) return groups.join(':');
  return groups.slice(0, bestStart).join(':') + '::' + groups.slice(bestStart + bestLength).join(':');
}

export function ipFamily(ip: string): Family | null {
  if (isIPv4Address(ip)) return 4;
  if (isIPv6Address(ip)) return 6;
  return null;
}

/** Parses "10.0.2.0/24"; returns null when malformed. The address keeps its host bits. */
export function parseCidr(text: string): Cidr | null {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!match?.[1] || match[2] === undefined) return null;
  const family = ipFamily(match[1]);
  const prefixLength = Number(match[2]);
  if (family === null || prefixLength > bits(family)) return null;
  return { family, address: ipToBigInt(match[1]), prefixLength };
}

export function cidrAddress(cidr: Cidr): string {
  return bigIntToIp(cidr.address, cidr.family);
}

export function networkOf(cidr: Cidr): Cidr {
  const hostBits = BigInt(bits(cidr.family) - cidr.prefixLength);
  return { ...cidr, address: (cidr.address >> hostBits) << hostBits };
}

export function formatCidr(cidr: Cidr): string {
  return `${cidrAddress(cidr)}/${cidr.prefixLength}`;
}

/** The Nth address of the CIDR's network (1 = first host), with the CIDR's prefix length. */
export function nthHost(cidr: Cidr, n: number): Cidr {
  return { ...cidr, address: networkOf(cidr).address + BigInt(n) };
}

export function addressCount(cidr: Cidr): bigint {
  return 1n << BigInt(bits(cidr.family) - cidr.prefixLength);
}

export function prefixToMask(prefixLength: number): string {
  const mask = prefixLength === 0 ? 0n : ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - prefixLength)) - 1n);
  return bigIntToIp(mask, 4);
}

/** Go's IsGlobalUnicast: not unspecified, loopback, link-local, multicast or broadcast. */
export function isGlobalUnicast(ip: string): boolean {
  const family = ipFamily(ip);
  if (family === null) return false;
  const value = ipToBigInt(ip);
  if (family === 4) {
    const first = Number(value >> 24n);
    const second = Number((value >> 16n) & 0xffn);
    if (value === 0n || value === 0xffffffffn) return false;
    // Go: multicast is 224.0.0.0/4 only; class E (240/4, except the broadcast address) counts as global unicast.
    if (first === 127 || (first >= 224 && first < 240)) return false;
    if (first === 169 && second === 254) return false;
    return true;
  }
  if (value === 0n || value === 1n) return false;
  const top16 = Number(value >> 112n);
  if ((top16 & 0xffc0) === 0xfe80) return false;
  if ((top16 & 0xff00) === 0xff00) return false;
  return true;
}

export function stripPrefix(cidrText: string): string {
  return cidrText.split('/')[0] ?? cidrText;
}

/** The same network? (both CIDRs reduced to the shorter… here: identical network and prefix). */
export function sameNetwork(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.prefixLength === b.prefixLength && networkOf(a).address === networkOf(b).address;
}
