// Follows a packet through the pod's netfilter hooks and routing (pure): prerouting → route → input | forward → postrouting, or output → postrouting.
import { ipFamily, ipToBigInt, parseCidr } from '../plan/ip.js';
import { baseChainsAt, evaluateChain, type ChainOutcome, type HookPacket, type NatAction, type RuleEvaluation } from './evaluate.js';
import type { NftChain, NftRuleset } from './nft-json.js';
import type { Packet } from './packet.js';

/** The pod's addresses and main-table routes, enough to decide local delivery and the outgoing interface. */
export interface RoutingView {
  readonly addresses: readonly { readonly ifname: string; readonly cidr: string }[];
  /** dst "default" or a CIDR. */
  readonly routes: readonly { readonly dst: string; readonly dev: string | null; readonly gw: string | null }[];
}

export interface HookTrace {
  readonly hook: 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
  readonly iif: string | null;
  readonly oif: string | null;
  readonly chains: readonly { readonly chain: NftChain; readonly outcome: ChainOutcome }[];
}

export type PathEnd =
  | { readonly kind: 'local'; readonly addr: string; readonly port: number | null }
  | { readonly kind: 'out'; readonly oif: string; readonly addr: string; readonly port: number | null; readonly gw: string | null }
  | { readonly kind: 'dropped'; readonly hook: string; readonly chain: string; readonly verdict: 'drop' | 'reject' }
  | { readonly kind: 'no-route'; readonly addr: string };

export interface PathTrace {
  readonly packet: Packet;
  /** The packet was sent by a process in the pod (saddr is one of its addresses). */
  readonly locallyGenerated: boolean;
  readonly iif: string | null;
  /** How iif was decided: given with "in IFACE", or the route back to the source. */
  readonly iifReason: string | null;
  readonly hooks: readonly HookTrace[];
  /** NAT applied, in order. */
  readonly nat: readonly { readonly hook: string; readonly action: NatAction; readonly by: RuleEvaluation | undefined }[];
  readonly end: PathEnd;
}

export function isLocalAddress(view: RoutingView, addr: string): boolean {
  const family = ipFamily(addr);
  if (family === null) return false;
  if (family === 4 && addr.startsWith('127.')) return true;
  if (family === 6 && ipToBigInt(addr) === 1n) return true;
  return view.addresses.some((a) => {
    const c = parseCidr(a.cidr);
    return c !== null && c.family === family && c.address === ipToBigInt(addr);
  });
}

/** Longest-prefix match over the main table. */
export function lookupRoute(view: RoutingView, addr: string): { readonly dev: string | null; readonly gw: string | null } | null {
  const family = ipFamily(addr);
  if (family === null) return null;
  const value = ipToBigInt(addr);
  const width = family === 4 ? 32 : 128;
  let best: { dev: string | null; gw: string | null; len: number } | null = null;
  for (const route of view.routes) {
    let len: number;
    if (route.dst === 'default') {
      const gwFamily = route.gw === null ? null : ipFamily(route.gw);
      if (gwFamily !== null && gwFamily !== family) continue;
      if (gwFamily === null && route.dev === null) continue;
      len = 0;
    } else {
      const c = parseCidr(route.dst);
      if (c === null || c.family !== family) continue;
      const shift = BigInt(width - c.prefixLength);
      if (value >> shift !== c.address >> shift) continue;
      len = c.prefixLength;
    }
    if (best === null || len > best.len) best = { dev: route.dev, gw: route.gw, len };
  }
  return best === null ? null : { dev: best.dev, gw: best.gw };
}

function lastMatch(outcome: ChainOutcome): RuleEvaluation | undefined {
  return [...outcome.evaluations].reverse().find((e) => e.matched && e.action !== null && !e.action.startsWith('jump') && !e.action.startsWith('goto'));
}

/** Runs one hook; returns the packet after NAT and whether it was dropped. */
function runHook(
  ruleset: NftRuleset,
  hook: HookTrace['hook'],
  packet: Packet,
  iif: string | null,
  oif: string | null,
  hooks: HookTrace[],
  nats: { hook: string; action: NatAction; by: RuleEvaluation | undefined }[],
): { packet: Packet; dropped: PathEnd | null } {
  const chains: { chain: NftChain; outcome: ChainOutcome }[] = [];
  let current = packet;
  let natDone = false;
  let dropped: PathEnd | null = null;
  for (const chain of baseChainsAt(ruleset, hook, packet.family)) {
    // A connection is NATed once per hook: after the first NAT verdict, later nat chains at this hook are skipped by conntrack.
    if (chain.type === 'nat' && natDone) continue;
    const hp: HookPacket = { packet: current, iif, oif };
    const outcome = evaluateChain(ruleset, chain, hp);
    chains.push({ chain, outcome });
    if (outcome.verdict !== 'accept') {
      dropped = { kind: 'dropped', hook, chain: `${chain.family} ${chain.table} ${chain.name}`, verdict: outcome.verdict };
      break;
    }
    if (outcome.nat !== null) {
      natDone = true;
      nats.push({ hook, action: outcome.nat, by: lastMatch(outcome) });
      if (outcome.nat.kind === 'dnat' && outcome.nat.addr !== null) {
        current = { ...current, daddr: outcome.nat.addr, dport: outcome.nat.port ?? current.dport };
      } else if (outcome.nat.kind === 'snat' && outcome.nat.addr !== null) {
        current = { ...current, saddr: outcome.nat.addr, sport: outcome.nat.port ?? current.sport };
      }
    }
  }
  hooks.push({ hook, iif, oif, chains });
  return { packet: current, dropped };
}

/** The whole path of one (new-connection) packet through the pod's netns. */
export function tracePacket(ruleset: NftRuleset, view: RoutingView, packet: Packet): PathTrace {
  const hooks: HookTrace[] = [];
  const nat: { hook: string; action: NatAction; by: RuleEvaluation | undefined }[] = [];
  const locallyGenerated = packet.iif === null && isLocalAddress(view, packet.saddr);

  if (locallyGenerated) {
    const route = lookupRoute(view, packet.daddr);
    const firstOif = isLocalAddress(view, packet.daddr) ? 'lo' : (route?.dev ?? null);
    const out = runHook(ruleset, 'output', packet, null, firstOif, hooks, nat);
    if (out.dropped) return { packet, locallyGenerated, iif: null, iifReason: null, hooks, nat, end: out.dropped };
    return finishOutgoing(ruleset, view, out.packet, null, { packet, locallyGenerated, iif: null, iifReason: null, hooks, nat }, 'output');
  }

  let iif = packet.iif;
  let iifReason: string | null = iif === null ? null : 'given with "in"';
  if (iif === null) {
    const back = lookupRoute(view, packet.saddr);
    iif = back?.dev ?? null;
    iifReason = iif === null ? null : `the route back to ${packet.saddr}`;
    if (iif === null) return { packet, locallyGenerated, iif, iifReason, hooks, nat, end: { kind: 'no-route', addr: packet.saddr } };
  }
  const pre = runHook(ruleset, 'prerouting', packet, iif, null, hooks, nat);
  const base = { packet, locallyGenerated, iif, iifReason, hooks, nat };
  if (pre.dropped) return { ...base, end: pre.dropped };
  const p = pre.packet;
  if (isLocalAddress(view, p.daddr)) {
    const input = runHook(ruleset, 'input', p, iif, null, hooks, nat);
    if (input.dropped) return { ...base, end: input.dropped };
    return { ...base, end: { kind: 'local', addr: input.packet.daddr, port: input.packet.dport } };
  }
  return finishOutgoing(ruleset, view, p, iif, base, 'forward');
}

function finishOutgoing(
  ruleset: NftRuleset,
  view: RoutingView,
  packet: Packet,
  iif: string | null,
  base: Omit<PathTrace, 'end'>,
  via: 'forward' | 'output',
): PathTrace {
  const hooks = base.hooks as HookTrace[];
  const nat = base.nat as { hook: string; action: NatAction; by: RuleEvaluation | undefined }[];
  if (via === 'output' && isLocalAddress(view, packet.daddr)) {
    const post = runHook(ruleset, 'postrouting', packet, null, 'lo', hooks, nat);
    if (post.dropped) return { ...base, end: post.dropped };
    return { ...base, end: { kind: 'local', addr: post.packet.daddr, port: post.packet.dport } };
  }
  const route = lookupRoute(view, packet.daddr);
  if (route === null || route.dev === null) return { ...base, end: { kind: 'no-route', addr: packet.daddr } };
  let p = packet;
  if (via === 'forward') {
    const fwd = runHook(ruleset, 'forward', p, iif, route.dev, hooks, nat);
    if (fwd.dropped) return { ...base, end: fwd.dropped };
    p = fwd.packet;
  }
  const post = runHook(ruleset, 'postrouting', p, iif, route.dev, hooks, nat);
  if (post.dropped) return { ...base, end: post.dropped };
  return { ...base, end: { kind: 'out', oif: route.dev, addr: post.packet.daddr, port: post.packet.dport, gw: route.gw } };
}

/** DNAT rules that were looked at and did not match (what the user probably expected to hit). */
export function missedDnatRules(trace: PathTrace): RuleEvaluation[] {
  return trace.hooks.flatMap((h) => h.chains.flatMap((c) => c.outcome.evaluations)).filter((e) => !e.matched && e.rule.expr.some((x) => 'dnat' in x));
}
