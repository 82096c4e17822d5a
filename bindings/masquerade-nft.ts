// Renders KubeVirt's masquerade nftables ruleset (and its teardown) as one atomic `nft -f` transaction text.
//
// Source of truth: kubevirt/kubevirt pkg/network/setup/netpod/masquerade/masquerade.go (setupNATByFamily,
// forwardPorts, forwardPortRange, skipForwardPorts) and its masquerade_test.go expectations; the nft driver
// (pkg/network/driver/nft/nft.go) runs `nft add table|chain|rule <family> nat ...` one command at a time.
// We emit the same tables, chains, rules and rule order, per family (ip first, then ip6), with two
// deliberate differences:
//
// 1. Idempotence. KubeVirt appends rules with `nft add rule` on every run, so running it twice duplicates
//    every rule. We instead emit, inside ONE transaction: `add table` and `add chain` (both no-ops when the
//    object already exists with the same spec), then `flush chain` for each of OUR chains, then the
//    `add rule`s. Applying the text twice therefore yields the identical ruleset, and a changed input
//    (e.g. new ports) atomically replaces the old rules: `nft -f` is all-or-nothing.
//    We never `delete table` / `flush table` / `flush ruleset`: the `ip nat` / `ip6 nat` tables are shared.
//    Istio's init container (iptables-nft) programs the same `ip nat` table with its own upper-case chains
//    (PREROUTING, OUTPUT, ISTIO_INBOUND, ...), and deleting or flushing the table would wipe those.
//    Chain names are case-sensitive, so our lower-case base chains never collide with Istio's.
// 2. Interface names are double-quoted (`iifname "eth0"`), which is how `nft list` prints them anyway. An
//    unquoted name that happens to be an nft keyword or starts with a digit would not parse in a file.
//    Names and addresses are validated, so no input can inject nft syntax.
import { ipFamily } from '../agent/plan/ip.js';
import type { MasqueradeNftInput } from './binding.js';

export type NftFamily = 'ip' | 'ip6';

export interface NftOwnedChain {
  readonly name: string;
  /** Base chains only: `type nat hook <hook> priority <priority>`. Regular (jump-target) chains have none. */
  readonly base: { readonly type: 'nat'; readonly hook: 'prerouting' | 'input' | 'output' | 'postrouting'; readonly priority: number } | null;
}

export interface NftOwnedTable {
  readonly family: NftFamily;
  readonly table: string;
  /** The chains this agent owns in that table, in KubeVirt's creation order. */
  readonly chains: readonly NftOwnedChain[];
}

const NAT_TABLE = 'nat';
const PREROUTING = 'prerouting';
const INPUT = 'input';
const OUTPUT = 'output';
const POSTROUTING = 'postrouting';
const PREINBOUND = 'KUBEVIRT_PREINBOUND';
const POSTINBOUND = 'KUBEVIRT_POSTINBOUND';

const OWNED_CHAINS: readonly NftOwnedChain[] = [
  { name: PREROUTING, base: { type: 'nat', hook: 'prerouting', priority: -100 } },
  { name: INPUT, base: { type: 'nat', hook: 'input', priority: 100 } },
  { name: OUTPUT, base: { type: 'nat', hook: 'output', priority: -100 } },
  { name: POSTROUTING, base: { type: 'nat', hook: 'postrouting', priority: 100 } },
  { name: PREINBOUND, base: null },
  { name: POSTINBOUND, base: null },
];

/**
 * What the masquerade ruleset owns: per family, table `nat` and exactly these six chains. Everything else in
 * those tables (e.g. Istio's upper-case iptables-nft chains) belongs to someone else and is never touched.
 */
export const MASQUERADE_NFT_TABLES: readonly NftOwnedTable[] = [
  { family: 'ip', table: NAT_TABLE, chains: OWNED_CHAINS },
  { family: 'ip6', table: NAT_TABLE, chains: OWNED_CHAINS },
];

/** Libvirt's legacy (non-Unix-transport) migration ports: direct 49152, block 49153 (WithLegacyMigrationPorts). */
export const LEGACY_MIGRATION_PORTS: readonly number[] = [49152, 49153];
/** istio.ReservedPorts(): Envoy ports skipped from loopback when there are no ports (pkg/network/istio/ports.go). */
export const ISTIO_RESERVED_PORTS: readonly number[] = [15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090];
/** istio.NonProxiedPorts(): the only port DNAT'ed in PREINBOUND under Istio (SSH). */
export const ISTIO_NON_PROXIED_PORTS: readonly number[] = [22];
/** istio.GetLoopbackAddress(): Envoy's inbound source address, SNAT'ed like 127.0.0.1 (IPv4 only). */
export const ISTIO_LOOPBACK_ADDRESS = '127.0.0.6';

interface FamilyParams {
  readonly family: NftFamily;
  readonly guest: string;
  readonly gateway: string;
  readonly loopback: string;
  /** Pod IPv4 added to the output-chain DNAT addresses under Istio (IPv4 only). */
  readonly podIp: string | null;
}

/** The complete masquerade ruleset (ip if input.ipv4, then ip6 if input.ipv6) as one `nft -f` text. */
export function renderMasqueradeNft(input: MasqueradeNftInput): string {
  const podIface = quoteIfname(input.podInterface, 'podInterface');
  const bridge = quoteIfname(input.bridge, 'bridge');
  const lines: string[] = [];
  for (const p of familyParams(input)) {
    const owned = ownedTable(p.family);
    lines.push(`add table ${p.family} ${owned.table}`);
    for (const c of owned.chains) lines.push(addChainLine(p.family, owned.table, c));
    for (const c of owned.chains) lines.push(`flush chain ${p.family} ${owned.table} ${c.name}`);
    const rule = (chain: string, spec: string): void => {
      lines.push(`add rule ${p.family} ${owned.table} ${chain} ${spec}`);
    };
    renderFamilyRules(p, input, podIface, bridge, rule);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Removes our chains (and only ours) for the families present in the input, as one `nft -f` text.
 *
 * Every chain is first ensured with `add table` / `add chain` (a no-op when it exists), then all are flushed
 * (dropping the jump rules that reference KUBEVIRT_PRE/POSTINBOUND), then deleted. This makes the teardown
 * idempotent: nft 1.0.6 has no `destroy` (delete-if-exists, nft >= 1.0.8), and a bare `delete chain` of a
 * missing chain would abort the whole transaction.
 *
 * The `nat` table itself is deliberately left in place: it may hold other users' chains (Istio), and
 * "delete the table only if it is empty" cannot be expressed in an nft transaction. An empty table has no
 * hooks and costs nothing; a caller that knows it is the sole owner may delete it separately.
 */
export function renderMasqueradeNftTeardown(input: Pick<MasqueradeNftInput, 'ipv4' | 'ipv6'>): string {
  const families: NftFamily[] = [];
  if (input.ipv4 !== null) families.push('ip');
  if (input.ipv6 !== null) families.push('ip6');
  const lines: string[] = [];
  for (const family of families) {
    const owned = ownedTable(family);
    lines.push(`add table ${family} ${owned.table}`);
    for (const c of owned.chains) lines.push(addChainLine(family, owned.table, c));
    for (const c of owned.chains) lines.push(`flush chain ${family} ${owned.table} ${c.name}`);
    for (const c of owned.chains) lines.push(`delete chain ${family} ${owned.table} ${c.name}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function renderFamilyRules(
  p: FamilyParams,
  input: MasqueradeNftInput,
  podIface: string,
  bridge: string,
  rule: (chain: string, spec: string) => void,
): void {
  const { family, guest, gateway, loopback } = p;
  const istio = input.istio;

  rule(POSTROUTING, `${family} saddr ${guest} counter masquerade`);
  rule(PREROUTING, `iifname ${podIface} counter jump ${PREINBOUND}`);
  rule(POSTROUTING, `oifname ${bridge} counter jump ${POSTINBOUND}`);

  const skipForwardPorts = (ports: readonly number[]): void => {
    const set = `{ ${ports.join(', ')} }`;
    rule(OUTPUT, `tcp dport ${set} ${family} saddr ${loopback} counter return`);
    rule(POSTINBOUND, `tcp dport ${set} ${family} saddr ${loopback} counter return`);
  };
  // forwardPorts(): always a brace set, even for one port; nothing when the list is empty.
  const forwardPorts = (protocol: string, ports: readonly number[]): void => {
    if (ports.length === 0) return;
    rule(PREINBOUND, `${protocol} dport { ${ports.join(', ')} } counter dnat to ${guest}`);
  };

  if (input.legacyMigrationPorts) skipForwardPorts(LEGACY_MIGRATION_PORTS);

  const dnatAddrs = [loopback];
  if (istio && family === 'ip' && p.podIp !== null) dnatAddrs.push(p.podIp);
  const dnatSpec = `{ ${dnatAddrs.join(', ')} }`;
  const snatAddrs = [loopback];
  if (istio && family === 'ip') snatAddrs.push(ISTIO_LOOPBACK_ADDRESS);
  const snatSpec = `{ ${snatAddrs.join(', ')} }`;

  for (const port of input.ports) {
    const protocol = normalizeProtocol(port.protocol);
    const num = checkPort(port.port, 'port');
    if (istio) {
      // KubeVirt forwards only the non-proxied port (22), and always as tcp, whatever the port's protocol.
      forwardPorts('tcp', ISTIO_NON_PROXIED_PORTS.filter((np) => np === num));
    } else {
      forwardPorts(protocol, [num]);
    }
    rule(POSTINBOUND, `${protocol} dport ${num} ${family} saddr ${snatSpec} counter snat to ${gateway}`);
    rule(OUTPUT, `${family} daddr ${dnatSpec} ${protocol} dport ${num} counter dnat to ${guest}`);
  }

  // The planner passes portRanges only when the PortRangesSpec feature gate is on (KubeVirt drops them otherwise).
  for (const range of input.portRanges) {
    const protocol = normalizeProtocol(range.protocol);
    const start = checkPort(range.start, 'portRange.start');
    const end = checkPort(range.end, 'portRange.end');
    if (start > end) throw new RangeError(`masquerade nft: port range ${start}-${end} has start > end`);
    const spec = `${start}-${end}`;
    if (istio) {
      forwardPorts('tcp', ISTIO_NON_PROXIED_PORTS.filter((np) => start <= np && np <= end));
    } else {
      rule(PREINBOUND, `${protocol} dport ${spec} counter dnat to ${guest}`);
    }
    rule(POSTINBOUND, `${protocol} dport ${spec} ${family} saddr ${snatSpec} counter snat to ${gateway}`);
    rule(OUTPUT, `${family} daddr ${dnatSpec} ${protocol} dport ${spec} counter dnat to ${guest}`);
  }

  if (input.ports.length === 0 && input.portRanges.length === 0) {
    if (istio) {
      skipForwardPorts(ISTIO_RESERVED_PORTS);
      forwardPorts('tcp', ISTIO_NON_PROXIED_PORTS);
    } else {
      rule(PREINBOUND, `counter dnat to ${guest}`);
    }
    rule(POSTINBOUND, `${family} saddr ${snatSpec} counter snat to ${gateway}`);
    rule(OUTPUT, `${family} daddr ${dnatSpec} counter dnat to ${guest}`);
  }
}

function familyParams(input: MasqueradeNftInput): FamilyParams[] {
  const out: FamilyParams[] = [];
  if (input.ipv4 !== null) {
    const podIp = input.ipv4.podIp === null ? null : checkIp(input.ipv4.podIp, 4, 'ipv4.podIp');
    out.push({
      family: 'ip',
      guest: checkIp(input.ipv4.guest, 4, 'ipv4.guest'),
      gateway: checkIp(input.ipv4.gateway, 4, 'ipv4.gateway'),
      loopback: '127.0.0.1',
      podIp,
    });
  }
  if (input.ipv6 !== null) {
    out.push({
      family: 'ip6',
      guest: checkIp(input.ipv6.guest, 6, 'ipv6.guest'),
      gateway: checkIp(input.ipv6.gateway, 6, 'ipv6.gateway'),
      loopback: '::1',
      podIp: null,
    });
  }
  return out;
}

function ownedTable(family: NftFamily): NftOwnedTable {
  const t = MASQUERADE_NFT_TABLES.find((x) => x.family === family);
  if (t === undefined) throw new Error(`masquerade nft: no owned table for family ${family}`);
  return t;
}

function addChainLine(family: NftFamily, table: string, c: NftOwnedChain): string {
  const head = `add chain ${family} ${table} ${c.name}`;
  return c.base === null ? head : `${head} { type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority}; }`;
}

/** KubeVirt: empty protocol means tcp, then strings.ToLower. */
function normalizeProtocol(protocol: string): 'tcp' | 'udp' {
  const p = (protocol === '' ? 'tcp' : protocol).toLowerCase();
  if (p !== 'tcp' && p !== 'udp') throw new RangeError(`masquerade nft: unsupported protocol ${JSON.stringify(protocol)}`);
  return p;
}

function checkPort(port: number, what: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`masquerade nft: ${what} ${String(port)} is not in 1..65535`);
  }
  return port;
}

function checkIp(ip: string, version: 4 | 6, what: string): string {
  if (ipFamily(ip) !== version) throw new RangeError(`masquerade nft: ${what} ${JSON.stringify(ip)} is not an IPv${version} address`);
  return ip;
}

/** Linux IFNAMSIZ is 16 (15 chars); no '/', whitespace, quotes or control characters. */
export function quoteIfname(name: string, what: string): string {
  if (name.length === 0 || name.length > 15 || !/^[A-Za-z0-9_.:@+-]+$/.test(name)) {
    throw new RangeError(`masquerade nft: ${what} ${JSON.stringify(name)} is not a valid interface name`);
  }
  return `"${name}"`;
}
