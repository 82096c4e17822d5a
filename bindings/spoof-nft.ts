// Renders the opt-in anti-spoofing ruleset: one nftables bridge-family table that lets each guest send only from its own MAC and IPs.
//
// Beyond KubeVirt (which has none), like the bridge CNI's `macspoofchk` and Incus' `security.mac_filtering` /
// `security.ipv4_filtering` / `security.ipv6_filtering`. Frames are checked where they enter the bridge from the
// guest's tap (bridge family, prerouting hook): that covers both bridged traffic (bridge binding) and traffic to the
// bridge itself (masquerade gateway, DHCP server). The table is this agent's alone, so the text deletes and re-creates
// it inside the same transaction: networks that disappeared lose their rules, and there is never a moment without
// protection (`nft -f` is all-or-nothing).
import { ipFamily } from '../agent/plan/ip.js';
import { quoteIfname } from './masquerade-nft.js';

/** The bridge-family table this agent owns (nothing else lives in it). */
export const SPOOF_TABLE = 'virt_net_agent';
export const SPOOF_CHAIN = 'guest-spoof';
/**
 * A named counter every drop rule also counts into (besides its own counter, which `explain` shows per rule): the
 * metrics read the guard's drops of a pod with one small nf_tables request for this object instead of dumping and
 * walking every rule (agent/drivers/nft-counters.ts).
 */
export const SPOOF_DROPS_COUNTER = 'drops';
/** Bridge-family `filter` priority: before anything else a bridge port sees. */
const PRIORITY = -200;

export interface SpoofGuard {
  /** The VMI network name (rule comments, so `explain` and tests can name what dropped). */
  readonly network: string;
  /** The guest's tap: the bridge port whose ingress is checked. */
  readonly tap: string;
  /** The only source MAC the guest may use (Ethernet and ARP sender). */
  readonly mac: string;
  /**
   * The guest's IPv4 / IPv6 addresses (no prefix), or null when the plan does not know the guest's IPs (an L2
   * secondary network without IPAM): then only the MAC is enforced. With IP filtering, IPv4 from 0.0.0.0 is allowed
   * only as a DHCP client (udp 68 → 67), IPv6 from :: (DAD, MLD) and fe80::/10 (link-local, ND, DHCPv6), and every
   * other EtherType (VLAN tags, …) is dropped so no header can smuggle a forged address past the checks.
   */
  readonly ips: { readonly ipv4: readonly string[]; readonly ipv6: readonly string[] } | null;
}

/** The nft `comment` of a guard rule: "spoof <network>: <what>". */
export function spoofRuleComment(network: string, what: string): string {
  return `spoof ${network}: ${what}`;
}

/** The whole table for these guards, as one `nft -f` text (replaces whatever the table held). */
export function renderSpoofNft(guards: readonly SpoofGuard[]): string {
  const lines = [
    `add table bridge ${SPOOF_TABLE}`,
    `delete table bridge ${SPOOF_TABLE}`,
    `add table bridge ${SPOOF_TABLE}`,
    `add counter bridge ${SPOOF_TABLE} ${SPOOF_DROPS_COUNTER}`,
    `add chain bridge ${SPOOF_TABLE} ${SPOOF_CHAIN} { type filter hook prerouting priority ${PRIORITY}; policy accept; }`,
  ];
  for (const guard of guards) {
    for (const spec of guardRules(guard)) lines.push(`add rule bridge ${SPOOF_TABLE} ${SPOOF_CHAIN} ${spec}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Removes the table (idempotent: `add` first, so a missing table does not abort the transaction). */
export function renderSpoofNftTeardown(): string {
  return `add table bridge ${SPOOF_TABLE}\ndelete table bridge ${SPOOF_TABLE}\n`;
}

function guardRules(guard: SpoofGuard): string[] {
  const tap = `iifname ${quoteIfname(guard.tap, 'tap')}`;
  const mac = checkMac(guard.mac);
  const label = commentLabel(guard.network);
  const drop = (what: string): string => `counter name "${SPOOF_DROPS_COUNTER}" counter drop comment "${spoofRuleComment(label, what)}"`;
  const rules = [`${tap} ether saddr != ${mac} ${drop('source MAC')}`];
  if (guard.ips === null) return rules;

  const ipv4 = guard.ips.ipv4.map((ip) => checkIp(ip, 4));
  const ipv6 = guard.ips.ipv6.map((ip) => checkIp(ip, 6));
  rules.push(`${tap} ether type arp arp saddr ether != ${mac} ${drop('ARP sender MAC')}`);
  rules.push(`${tap} ether type arp arp saddr ip != ${anySet(['0.0.0.0', ...ipv4])} ${drop('ARP sender IPv4')}`);
  rules.push(`${tap} ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept`);
  rules.push(
    ipv4.length === 0 ? `${tap} ether type ip ${drop('source IPv4')}` : `${tap} ether type ip ip saddr != ${anySet(ipv4)} ${drop('source IPv4')}`,
  );
  rules.push(`${tap} ether type ip6 ip6 saddr != ${anySet(['::', 'fe80::/10', ...ipv6])} ${drop('source IPv6')}`);
  // 0x8035 (RARP): QEMU's announce-self on the migration target (five frames from the guest MAC, checked above) that
  // tells the switches where the guest now is; nothing in the pod answers RARP.
  rules.push(`${tap} ether type != { arp, ip, ip6, 0x8035 } ${drop('EtherType')}`);
  return rules;
}

function anySet(items: readonly string[]): string {
  return items.length === 1 ? (items[0] ?? '') : `{ ${items.join(', ')} }`;
}

function checkMac(mac: string): string {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) throw new RangeError(`spoof nft: mac ${JSON.stringify(mac)} is not a lower-case MAC`);
  return mac;
}

function checkIp(ip: string, version: 4 | 6): string {
  if (ipFamily(ip) !== version) throw new RangeError(`spoof nft: ${JSON.stringify(ip)} is not an IPv${version} address`);
  return ip;
}

/** The network name as it can appear inside a quoted nft comment (at most 128 bytes in all). */
function commentLabel(network: string): string {
  return network.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 63);
}
