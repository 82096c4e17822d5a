// The `nft -j list ruleset` document as typed tables, chains and rules (in evaluation order), plus a renderer back to nft syntax.
import { InputError } from '../plan/errors.js';

/** One expression of a rule's `expr` array, as nft prints it (left untyped beyond "an object with one key"). */
export type NftExpr = Readonly<Record<string, unknown>>;

export interface NftRule {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly handle: number;
  readonly expr: readonly NftExpr[];
  /** The rule's `comment`, if any (the anti-spoofing rules say what they drop). */
  readonly comment?: string;
}

export interface NftChain {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  /** Base chains only. */
  readonly hook: string | null;
  readonly type: string | null;
  readonly prio: number | null;
  readonly policy: 'accept' | 'drop' | null;
  /** In the order the kernel evaluates them (nft lists a chain's rules in order). */
  readonly rules: readonly NftRule[];
}

export interface NftRuleset {
  readonly chains: readonly NftChain[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

/** Parses the text of `nft -j list ruleset`; `source` names where it came from in errors. */
export function parseNftJson(text: string, source = 'nft -j list ruleset'): NftRuleset {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InputError(source, `not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!isObject(doc) || !Array.isArray(doc['nftables'])) throw new InputError(source, 'expected {"nftables": [...]}');
  const chains = new Map<string, { chain: Omit<NftChain, 'rules'>; rules: NftRule[] }>();
  const key = (family: string, table: string, name: string): string => `${family}\u0000${table}\u0000${name}`;
  for (const item of doc['nftables'] as unknown[]) {
    if (!isObject(item)) continue;
    const chain = item['chain'];
    if (isObject(chain)) {
      const family = str(chain['family']) ?? '';
      const table = str(chain['table']) ?? '';
      const name = str(chain['name']) ?? '';
      const policy = str(chain['policy']);
      chains.set(key(family, table, name), {
        chain: {
          family,
          table,
          name,
          hook: str(chain['hook']),
          type: str(chain['type']),
          prio: typeof chain['prio'] === 'number' ? chain['prio'] : null,
          policy: policy === 'accept' || policy === 'drop' ? policy : null,
        },
        rules: [],
      });
      continue;
    }
    const rule = item['rule'];
    if (isObject(rule)) {
      const family = str(rule['family']) ?? '';
      const table = str(rule['table']) ?? '';
      const chainName = str(rule['chain']) ?? '';
      const entry = chains.get(key(family, table, chainName));
      const expr = Array.isArray(rule['expr']) ? (rule['expr'] as unknown[]).filter(isObject) : [];
      const comment = str(rule['comment']);
      const parsed: NftRule = {
        family,
        table,
        chain: chainName,
        handle: typeof rule['handle'] === 'number' ? rule['handle'] : 0,
        expr,
        ...(comment !== null ? { comment } : {}),
      };
      if (entry) entry.rules.push(parsed);
    }
  }
  return { chains: [...chains.values()].map(({ chain, rules }) => ({ ...chain, rules })) };
}

/** The packet count of the rule's `counter` statement, or null when it has none. */
export function ruleCounter(rule: NftRule): number | null {
  for (const e of rule.expr) {
    const counter = e['counter'];
    if (isObject(counter) && typeof counter['packets'] === 'number') return counter['packets'];
  }
  return null;
}

/** A match operand as nft prints it: 80, "eth0", { 80, 443 }, 8000-8100, 10.0.2.0/24. */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.map(renderValue).join(',');
  if (isObject(value)) {
    if (Array.isArray(value['set'])) return `{ ${(value['set'] as unknown[]).map(renderValue).join(', ')} }`;
    if ('set' in value) return `{ ${renderValue(value['set'])} }`;
    if (Array.isArray(value['range'])) return (value['range'] as unknown[]).map(renderValue).join('-');
    const prefix = value['prefix'];
    if (isObject(prefix)) return `${renderValue(prefix['addr'])}/${String(prefix['len'])}`;
  }
  return JSON.stringify(value);
}

/** The left side of a match: `iifname`, `tcp dport`, `ip saddr`, `ct state`, `meta l4proto`. */
export function renderSelector(left: unknown): string {
  if (!isObject(left)) return JSON.stringify(left);
  const meta = left['meta'];
  if (isObject(meta)) {
    const k = str(meta['key']) ?? '?';
    return ['iifname', 'oifname', 'iif', 'oif', 'mark'].includes(k) ? k : `meta ${k}`;
  }
  const payload = left['payload'];
  if (isObject(payload)) return `${str(payload['protocol']) ?? '?'} ${str(payload['field']) ?? '?'}`;
  const ct = left['ct'];
  if (isObject(ct)) return `ct ${str(ct['key']) ?? '?'}`;
  return JSON.stringify(left);
}

function renderNat(kind: string, body: unknown): string {
  if (!isObject(body)) return kind;
  const addr = body['addr'] !== undefined ? renderValue(body['addr']) : '';
  const port = body['port'] !== undefined ? `:${renderValue(body['port'])}` : '';
  return `${kind} to ${addr}${port}`.trim();
}

/** One expression as nft syntax; counters are left out (the picture prints them separately). */
export function renderExpr(e: NftExpr): string | null {
  const match = e['match'];
  if (isObject(match)) {
    const op = str(match['op']) ?? '==';
    const shownOp = op === '==' || op === 'in' ? '' : `${op} `;
    const selector = renderSelector(match['left']);
    const right = match['right'];
    const shown = typeof right === 'string' && selector.endsWith('ifname') ? `"${right}"` : renderValue(right);
    return `${selector} ${shownOp}${shown}`;
  }
  if ('counter' in e) return null;
  for (const verdict of ['accept', 'drop', 'return', 'continue']) if (verdict in e) return verdict;
  for (const jump of ['jump', 'goto']) {
    const body = e[jump];
    if (isObject(body)) return `${jump} ${str(body['target']) ?? '?'}`;
  }
  for (const nat of ['dnat', 'snat', 'redirect']) if (nat in e) return renderNat(nat, e[nat]);
  if ('masquerade' in e) return 'masquerade';
  if ('reject' in e) return 'reject';
  if ('log' in e) return 'log';
  return JSON.stringify(e);
}

export function renderRule(rule: NftRule): string {
  return rule.expr.map(renderExpr).filter((s): s is string => s !== null).join(' ');
}
