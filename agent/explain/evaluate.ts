// Evaluates one packet against nftables chains from `nft -j list ruleset`, rule by rule, for the match types our rulesets use.
//
// Supported matches: meta iifname/oifname/l4proto/nfproto/protocol, ip/ip6 saddr/daddr/protocol/nexthdr, tcp/udp/th
// sport/dport, ct state/direction (the packet is the first of a new connection: NAT chains only ever see that one).
// Values: single values, anonymous sets, ranges, prefixes, ct flag lists; named sets (@name) and anything else are
// reported as "cannot evaluate" and treated as no match, so the answer is never silently wrong.
import { ipFamily, ipToBigInt } from '../plan/ip.js';
import type { NftChain, NftExpr, NftRule, NftRuleset } from './nft-json.js';
import { renderRule, renderSelector, renderValue, ruleCounter } from './nft-json.js';
import type { Packet } from './packet.js';

/** The packet as a hook sees it: addresses/ports after any NAT so far, and the interfaces known at that hook. */
export interface HookPacket {
  readonly packet: Packet;
  readonly iif: string | null;
  readonly oif: string | null;
}

export interface NatAction {
  readonly kind: 'dnat' | 'snat' | 'masquerade' | 'redirect';
  /** null: masquerade (the outgoing interface's address) or redirect (the incoming one). */
  readonly addr: string | null;
  readonly port: number | null;
}

export interface RuleEvaluation {
  /** "ip nat KUBEVIRT_PREINBOUND". */
  readonly chain: string;
  /** 1-based position in its chain. */
  readonly index: number;
  readonly rule: NftRule;
  readonly text: string;
  readonly packets: number | null;
  readonly matched: boolean;
  /** Why it did not match ("needs tcp dport 80, packet has 81") or why it could not be evaluated. */
  readonly why: string | null;
  readonly unknown: boolean;
  /** Nesting depth (0 for the base chain), for printing jumps indented. */
  readonly depth: number;
  /** What a matching rule did: "jump KUBEVIRT_PREINBOUND", "DNAT to 10.0.2.2", "accept". */
  readonly action: string | null;
}

export type Verdict = 'accept' | 'drop' | 'reject';

export interface ChainOutcome {
  /** accept also when the chain fell through to an accept policy. */
  readonly verdict: Verdict;
  readonly nat: NatAction | null;
  /** Every rule looked at, in order (including those in jumped-to chains). */
  readonly evaluations: readonly RuleEvaluation[];
  /** The chain's policy decided (no terminal rule matched). */
  readonly byPolicy: boolean;
}

const L4_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function l4Name(p: Packet): string {
  return p.protocol === 'icmpv6' ? 'ipv6-icmp' : p.protocol;
}

type Selected = { readonly kind: 'value'; readonly value: string | number | null } | { readonly kind: 'absent'; readonly why: string } | { readonly kind: 'unknown'; readonly why: string };

/** The packet's value for a match's left side. */
function select(left: unknown, hp: HookPacket): Selected {
  const p = hp.packet;
  if (!isObject(left)) return { kind: 'unknown', why: `unsupported selector ${JSON.stringify(left)}` };
  const meta = left['meta'];
  if (isObject(meta)) {
    switch (meta['key']) {
      case 'iifname':
        return { kind: 'value', value: hp.iif };
      case 'oifname':
        return { kind: 'value', value: hp.oif };
      case 'l4proto':
        return { kind: 'value', value: l4Name(p) };
      case 'nfproto':
        return { kind: 'value', value: p.family === 4 ? 'ipv4' : 'ipv6' };
      case 'protocol':
        return { kind: 'value', value: p.family === 4 ? 'ip' : 'ip6' };
      default:
        return { kind: 'unknown', why: `meta ${String(meta['key'])} is not evaluated` };
    }
  }
  const payload = left['payload'];
  if (isObject(payload)) {
    const proto = payload['protocol'];
    const field = payload['field'];
    if (proto === 'ip' || proto === 'ip6') {
      const family = proto === 'ip' ? 4 : 6;
      if (p.family !== family) return { kind: 'absent', why: `packet is IPv${p.family}` };
      if (field === 'saddr') return { kind: 'value', value: p.saddr };
      if (field === 'daddr') return { kind: 'value', value: p.daddr };
      if (field === 'protocol' || field === 'nexthdr') return { kind: 'value', value: l4Name(p) };
      return { kind: 'unknown', why: `${proto} ${String(field)} is not evaluated` };
    }
    if (proto === 'tcp' || proto === 'udp' || proto === 'th') {
      if (p.protocol !== 'tcp' && p.protocol !== 'udp') return { kind: 'absent', why: `packet is ${p.protocol}` };
      if (proto !== 'th' && p.protocol !== proto) return { kind: 'absent', why: `packet is ${p.protocol}` };
      if (field === 'dport') return { kind: 'value', value: p.dport };
      if (field === 'sport') return { kind: 'value', value: p.sport };
      return { kind: 'unknown', why: `${proto} ${String(field)} is not evaluated` };
    }
    return { kind: 'unknown', why: `${String(proto)} ${String(field)} is not evaluated` };
  }
  const ct = left['ct'];
  if (isObject(ct)) {
    if (ct['key'] === 'state') return { kind: 'value', value: 'new' };
    if (ct['key'] === 'direction') return { kind: 'value', value: 'original' };
    return { kind: 'unknown', why: `ct ${String(ct['key'])} is not evaluated` };
  }
  return { kind: 'unknown', why: `unsupported selector ${JSON.stringify(left)}` };
}

type Tri = boolean | 'unknown';

function compareIp(a: string, b: string): number | null {
  const fa = ipFamily(a);
  if (fa === null || fa !== ipFamily(b)) return null;
  const x = ipToBigInt(a);
  const y = ipToBigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function scalarEquals(actual: string | number, expected: unknown): Tri {
  if (typeof expected === 'number') {
    if (typeof actual === 'number') return actual === expected;
    return L4_NAMES[expected] === actual;
  }
  if (typeof expected === 'string') {
    if (expected.startsWith('@')) return 'unknown';
    if (typeof actual === 'string') {
      const ipCmp = compareIp(actual, expected);
      if (ipCmp !== null) return ipCmp === 0;
      if (expected.endsWith('*') && !expected.endsWith('\\*')) return actual.startsWith(expected.slice(0, -1));
      return actual === expected.replace(/\\\*/g, '*');
    }
    return false;
  }
  if (isObject(expected)) {
    const range = expected['range'];
    if (Array.isArray(range) && range.length === 2) {
      const [lo, hi] = range as unknown[];
      if (typeof actual === 'number' && typeof lo === 'number' && typeof hi === 'number') return lo <= actual && actual <= hi;
      if (typeof actual === 'string' && typeof lo === 'string' && typeof hi === 'string') {
        const a = compareIp(actual, lo);
        const b = compareIp(actual, hi);
        if (a === null || b === null) return false;
        return a >= 0 && b <= 0;
      }
      return 'unknown';
    }
    const prefix = expected['prefix'];
    if (isObject(prefix) && typeof prefix['addr'] === 'string' && typeof prefix['len'] === 'number' && typeof actual === 'string') {
      const family = ipFamily(actual);
      if (family === null || family !== ipFamily(prefix['addr'])) return false;
      const shift = BigInt((family === 4 ? 32 : 128) - prefix['len']);
      return ipToBigInt(actual) >> shift === ipToBigInt(prefix['addr']) >> shift;
    }
    if ('set' in expected) return setContains(actual, expected['set']);
  }
  if (Array.isArray(expected)) return setContains(actual, expected);
  return 'unknown';
}

function setContains(actual: string | number, elements: unknown): Tri {
  const list = Array.isArray(elements) ? elements : [elements];
  let sawUnknown = false;
  for (const element of list) {
    const r = scalarEquals(actual, element);
    if (r === true) return true;
    if (r === 'unknown') sawUnknown = true;
  }
  return sawUnknown ? 'unknown' : false;
}

interface MatchResult {
  readonly result: Tri;
  readonly why: string | null;
}

function evaluateMatch(match: Record<string, unknown>, hp: HookPacket): MatchResult {
  const selector = renderSelector(match['left']);
  const expected = renderValue(match['right']);
  const selected = select(match['left'], hp);
  if (selected.kind === 'unknown') return { result: 'unknown', why: selected.why };
  if (selected.kind === 'absent') return { result: false, why: `needs ${selector} ${expected}, ${selected.why}` };
  const actual = selected.value;
  const op = typeof match['op'] === 'string' ? match['op'] : '==';
  if (actual === null) return { result: false, why: `needs ${selector} ${expected}, the packet has none at this hook` };
  let result: Tri;
  if (op === '==' || op === 'in') result = scalarEquals(actual, match['right']);
  else if (op === '!=') {
    const eq = scalarEquals(actual, match['right']);
    result = eq === 'unknown' ? 'unknown' : !eq;
  } else if ((op === '<' || op === '>' || op === '<=' || op === '>=') && typeof actual === 'number' && typeof match['right'] === 'number') {
    const r = match['right'];
    result = op === '<' ? actual < r : op === '>' ? actual > r : op === '<=' ? actual <= r : actual >= r;
  } else result = 'unknown';
  if (result === 'unknown') return { result, why: `cannot evaluate ${selector} ${op} ${expected}` };
  if (result) return { result, why: null };
  const opText = op === '==' || op === 'in' ? '' : `${op} `;
  return { result, why: `needs ${selector} ${opText}${expected}, packet has ${String(actual)}` };
}

function natOf(kind: NatAction['kind'], body: unknown): NatAction {
  const addr = isObject(body) && typeof body['addr'] === 'string' ? body['addr'] : null;
  const port = isObject(body) && typeof body['port'] === 'number' ? body['port'] : null;
  return { kind, addr, port };
}

type Step =
  | { readonly kind: 'verdict'; readonly verdict: Verdict | 'return' }
  | { readonly kind: 'jump' | 'goto'; readonly target: string }
  | { readonly kind: 'nat'; readonly nat: NatAction };

/** The terminal statement of a matching rule (the first verdict, jump or NAT), or null to continue with the next rule. */
function statementOf(expr: readonly NftExpr[]): Step | null {
  for (const e of expr) {
    if ('accept' in e) return { kind: 'verdict', verdict: 'accept' };
    if ('drop' in e) return { kind: 'verdict', verdict: 'drop' };
    if ('reject' in e) return { kind: 'verdict', verdict: 'reject' };
    if ('return' in e) return { kind: 'verdict', verdict: 'return' };
    for (const j of ['jump', 'goto'] as const) {
      const body = e[j];
      if (isObject(body) && typeof body['target'] === 'string') return { kind: j, target: body['target'] };
    }
    for (const n of ['dnat', 'snat', 'redirect'] as const) if (n in e) return { kind: 'nat', nat: natOf(n, e[n]) };
    if ('masquerade' in e) return { kind: 'nat', nat: natOf('masquerade', e['masquerade']) };
  }
  return null;
}

function describeStep(step: Step): string {
  switch (step.kind) {
    case 'verdict':
      return step.verdict;
    case 'jump':
    case 'goto':
      return `${step.kind} ${step.target}`;
    case 'nat': {
      const n = step.nat;
      if (n.kind === 'masquerade') return 'masquerade (SNAT to the outgoing interface address)';
      const to = n.addr === null ? '' : ` to ${n.addr}${n.port === null ? '' : `:${n.port}`}`;
      return `${n.kind.toUpperCase()}${to}`;
    }
  }
}

function chainLabel(c: { family: string; table: string; name: string }): string {
  return `${c.family} ${c.table} ${c.name}`;
}

type Flow = { readonly kind: 'fallthrough' } | { readonly kind: 'return' } | { readonly kind: 'verdict'; readonly verdict: Verdict; readonly nat: NatAction | null };

const MAX_DEPTH = 16;

/** Evaluates a base chain (following jumps/gotos) for one packet at its hook. */
export function evaluateChain(ruleset: NftRuleset, chain: NftChain, hp: HookPacket): ChainOutcome {
  const evaluations: RuleEvaluation[] = [];
  const find = (name: string): NftChain | undefined => ruleset.chains.find((c) => c.family === chain.family && c.table === chain.table && c.name === name);

  const run = (current: NftChain, depth: number): Flow => {
    if (depth > MAX_DEPTH) return { kind: 'verdict', verdict: 'drop', nat: null };
    let index = 0;
    for (const rule of current.rules) {
      index++;
      let matched: Tri = true;
      let why: string | null = null;
      for (const e of rule.expr) {
        const m = e['match'];
        if (!isObject(m)) continue;
        const r = evaluateMatch(m, hp);
        if (r.result !== true) {
          matched = r.result;
          why = r.why;
          break;
        }
      }
      const step = matched === true ? statementOf(rule.expr) : null;
      evaluations.push({
        chain: chainLabel(current),
        index,
        rule,
        text: renderRule(rule),
        packets: ruleCounter(rule),
        matched: matched === true,
        why,
        unknown: matched === 'unknown',
        depth,
        action: step === null ? null : describeStep(step),
      });
      if (matched !== true || step === null) continue;
      if (step.kind === 'nat') return { kind: 'verdict', verdict: 'accept', nat: step.nat };
      if (step.kind === 'verdict') {
        if (step.verdict === 'return') return { kind: 'return' };
        return { kind: 'verdict', verdict: step.verdict, nat: null };
      }
      const target = find(step.target);
      if (target === undefined) continue;
      const inner = run(target, depth + 1);
      if (inner.kind === 'verdict') return inner;
      if (step.kind === 'goto') return { kind: 'fallthrough' };
    }
    return { kind: 'fallthrough' };
  };

  const flow = run(chain, 0);
  if (flow.kind === 'verdict') return { verdict: flow.verdict, nat: flow.nat, evaluations, byPolicy: false };
  return { verdict: chain.policy === 'drop' ? 'drop' : 'accept', nat: null, evaluations, byPolicy: true };
}

/** The base chains registered at a hook for the packet's family (ip/ip6 and inet), in priority order. */
export function baseChainsAt(ruleset: NftRuleset, hook: string, family: 4 | 6): NftChain[] {
  const families = family === 4 ? ['ip', 'inet'] : ['ip6', 'inet'];
  return ruleset.chains.filter((c) => c.hook === hook && families.includes(c.family)).sort((a, b) => (a.prio ?? 0) - (b.prio ?? 0));
}
