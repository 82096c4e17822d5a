// Draws the pod plumbing per network as text: guest ↔ tap ↔ bridge ↔ pod NIC ↔ NAT ↔ pod IP, with live link state, nft counters and the DHCP lease plan.
import type { AddressInfo, LinkInfo } from '../drivers/kernel.js';
import type { DhcpV4Plan } from '../plan/plan-types.js';
import { decodeIPv4List, decodeUInt, fromHex } from '../../dhcp/options.js';
import type { NftRuleset } from './nft-json.js';
import { renderRule, ruleCounter } from './nft-json.js';
import { SPOOF_TABLE } from '../../bindings/spoof-nft.js';

/** One network as setup recorded it (state dir) or as found live. */
export interface PictureNetwork {
  readonly name: string;
  readonly binding: string;
  readonly podInterface: string | null;
  /** The pod NIC's name now (eth0-nic after the bridge binding's rename). */
  readonly nicName: string | null;
  readonly bridge: string | null;
  readonly tap: string | null;
  readonly guestMac: string | null;
  /** The address the guest should end up with (CIDR). */
  readonly guestAddress: string | null;
  /** The lease the DHCP server hands out (from the plan); null when only derived from the state. */
  readonly dhcp: DhcpV4Plan | null;
}

export interface PictureInput {
  readonly networks: readonly PictureNetwork[];
  readonly links: readonly LinkInfo[];
  readonly addresses: readonly AddressInfo[];
  readonly ruleset: NftRuleset | null;
  readonly ipForward: string | null;
}

function linkLine(input: PictureInput, name: string | null, role: string): string {
  if (name === null) return `  ${role}: (none)`;
  const link = input.links.find((l) => l.name === name);
  if (link === undefined) return `  ${name.padEnd(15)} MISSING (${role})`;
  const master = link.masterIndex === null ? '' : ` master ${input.links.find((l) => l.index === link.masterIndex)?.name ?? `#${link.masterIndex}`}`;
  const addrs = input.addresses
    .filter((a) => a.index === link.index && a.scope !== 'link')
    .map((a) => a.cidr)
    .join(' ');
  const learning = link.learning === false ? ' learning off' : '';
  return `  ${name.padEnd(15)} ${link.kind.padEnd(6)} ${link.up ? 'up  ' : 'DOWN'}${master}${learning} mtu ${link.mtu} mac ${link.mac}${addrs ? `  ${addrs}` : ''}  (${role})`;
}

/** "10.0.2.2/24 router 10.0.2.1 dns 10.96.0.10 mtu 1450 lease 999d" from a DhcpV4Plan. */
export function describeLease(dhcp: DhcpV4Plan): string {
  const parts = [`${dhcp.yiaddr}/${dhcp.prefixLength}`];
  const opt = (code: number): Buffer | null => {
    const hex = dhcp.options[String(code)];
    return hex === undefined ? null : fromHex(hex);
  };
  const router = opt(3);
  if (router) parts.push(`router ${decodeIPv4List(router).join(',')}`);
  const dns = opt(6);
  if (dns) parts.push(`dns ${decodeIPv4List(dns).join(',')}`);
  const mtu = opt(26);
  if (mtu) parts.push(`mtu ${decodeUInt(mtu)}`);
  if (dhcp.options['121'] !== undefined) parts.push('classless routes');
  const days = dhcp.leaseSeconds / 86400;
  parts.push(`lease ${Number.isInteger(days) ? `${days}d` : `${dhcp.leaseSeconds}s`}`);
  parts.push(`from ${dhcp.serverIdentifier} on ${dhcp.interface}${dhcp.clientMac ? ` to ${dhcp.clientMac} only` : ' to any client'}`);
  return parts.join(' ');
}

function natLines(input: PictureInput, network: PictureNetwork): string[] {
  if (input.ruleset === null) return ['       │   (nft ruleset not readable)'];
  const lines: string[] = [];
  const relevant = input.ruleset.chains.filter((c) => c.table === 'nat' && (c.family === 'ip' || c.family === 'ip6'));
  for (const chain of relevant) {
    for (const rule of chain.rules) {
      const text = renderRule(rule);
      const mentions = [network.podInterface, network.bridge, network.guestAddress?.split('/')[0]].some((s) => s !== null && s !== undefined && text.includes(s));
      if (!mentions && !chain.name.startsWith('KUBEVIRT_')) continue;
      const packets = ruleCounter(rule);
      lines.push(`       │   ${chain.family} ${chain.name.padEnd(20)} ${text}${packets === null ? '' : `  [${packets} pkts]`}`);
    }
  }
  return lines.length > 0 ? lines : ['       │   NO NAT RULES (inbound connections will not reach the guest)'];
}

/** The anti-spoofing rules on the guest's tap, each with what it drops and how many packets it dropped so far. */
function guardLines(input: PictureInput, network: PictureNetwork): string[] {
  if (input.ruleset === null || network.tap === null) return [];
  const rules = input.ruleset.chains
    .filter((chain) => chain.family === 'bridge' && chain.table === SPOOF_TABLE)
    .flatMap((chain) => chain.rules)
    .filter((rule) => rule.comment !== undefined && renderRule(rule).includes(`"${network.tap}"`));
  if (rules.length === 0) return ['       │ spoof guard: off'];
  return [
    '       │ spoof guard (drops what the guest sends from another address):',
    ...rules.map((rule) => `       │   ${(rule.comment ?? '').replace(/^spoof [^:]*: /, '').padEnd(16)} ${ruleCounter(rule) ?? 0} dropped`),
  ];
}

export function renderPicture(input: PictureInput): string {
  const out: string[] = [];
  for (const n of input.networks) {
    out.push(`network ${n.name} (${n.binding})`);
    const lease = n.dhcp !== null ? `DHCP offers ${describeLease(n.dhcp)}` : n.guestAddress !== null ? `expected address ${n.guestAddress} (pass --vmi for the full lease plan)` : 'no DHCP';
    out.push(`  guest           mac ${n.guestMac ?? '?'}  ${lease}`);
    out.push('       │');
    out.push(...guardLines(input, n));
    out.push(linkLine(input, n.tap, 'tap, opened by qemu'));
    out.push('       │');
    out.push(linkLine(input, n.bridge, 'in-pod bridge'));
    out.push('       │');
    if (n.binding === 'masquerade') {
      out.push(`       │ routed (net.ipv4.ip_forward=${input.ipForward ?? '?'}) through NAT:`);
      out.push(...natLines(input, n));
      out.push(linkLine(input, n.podInterface, 'pod NIC, holds the pod IP'));
    } else {
      out.push(linkLine(input, n.nicName, 'pod NIC, bridged: the guest owns the pod IP'));
      if (n.nicName !== n.podInterface && n.podInterface !== null) out.push(linkLine(input, n.podInterface, 'identity keeper, keeps the original name'));
    }
    out.push('');
  }
  if (input.networks.length === 0) out.push('no networks found (no state in --state-dir and no k6t-* bridges in the namespace)');
  return `${out.join('\n')}\n`;
}
