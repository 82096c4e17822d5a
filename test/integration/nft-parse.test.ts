// Loads the masquerade ruleset with the real nft parser in throwaway netns: idempotence, foreign chains, teardown.
import { describe, expect, it } from 'vitest';
import type { MasqueradeNftInput } from '../../bindings/binding.js';
import {
  MASQUERADE_NFT_TABLES,
  renderMasqueradeNft,
  renderMasqueradeNftTeardown,
  type NftFamily,
} from '../../bindings/masquerade-nft.js';
import { netnsAvailable, withNetns, type Netns } from '../helpers/netns.js';

const V4 = { guest: '10.0.2.2', gateway: '10.0.2.1', podIp: '10.244.1.5' } as const;
const V6 = { guest: 'fd10:0:2::2', gateway: 'fd10:0:2::1' } as const;

function input(over: Partial<MasqueradeNftInput> = {}): MasqueradeNftInput {
  return {
    podInterface: 'eth0',
    bridge: 'k6t-eth0',
    ipv4: V4,
    ipv6: null,
    ports: [],
    portRanges: [],
    istio: false,
    legacyMigrationPorts: false,
    ...over,
  };
}

const CASES: readonly { readonly name: string; readonly input: MasqueradeNftInput }[] = [
  { name: 'default IPv4, no ports', input: input() },
  { name: 'IPv6-only', input: input({ ipv4: null, ipv6: V6 }) },
  { name: 'dual stack, no ports', input: input({ ipv6: V6 }) },
  {
    name: 'ports tcp/udp, dual stack',
    input: input({ ipv6: V6, ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 8080 }] }),
  },
  {
    name: 'portRanges, dual stack',
    input: input({
      ipv6: V6,
      portRanges: [
        { protocol: 'tcp', start: 1000, end: 2000 },
        { protocol: 'udp', start: 1500, end: 2500 },
      ],
    }),
  },
  { name: 'legacy migration ports', input: input({ ipv6: V6, legacyMigrationPorts: true }) },
  { name: 'Istio, no ports, dual stack', input: input({ ipv6: V6, istio: true }) },
  {
    name: 'Istio with ports 22/8080 and legacy migration',
    input: input({
      ipv6: V6,
      istio: true,
      legacyMigrationPorts: true,
      ports: [{ protocol: 'tcp', port: 22 }, { protocol: 'udp', port: 8080 }],
    }),
  },
  {
    name: 'Istio with port ranges',
    input: input({ istio: true, portRanges: [{ protocol: 'tcp', start: 20, end: 25 }] }),
  },
  { name: 'custom CIDR 10.11.12.0/24', input: input({ ipv4: { guest: '10.11.12.2', gateway: '10.11.12.1', podIp: null } }) },
  { name: 'secondary pod interface', input: input({ podInterface: 'pod16477688c0e', bridge: 'k6t-16477688c0e' }) },
];

// ---- helpers -------------------------------------------------------------------------------------------

function families(i: MasqueradeNftInput): NftFamily[] {
  return [...(i.ipv4 !== null ? (['ip'] as const) : []), ...(i.ipv6 !== null ? (['ip6'] as const) : [])];
}

async function nftApply(ns: Netns, text: string): Promise<void> {
  await ns.execOk(['nft', '-f', '-'], { input: text });
}

async function listRuleset(ns: Netns): Promise<string> {
  return (await ns.execOk(['nft', 'list', 'ruleset'])).stdout;
}

/** An Istio-like foreign chain (iptables-nft style upper-case name) in the same `<family> nat` table. */
function foreignText(fams: readonly NftFamily[]): string {
  return fams
    .map(
      (f) =>
        `add table ${f} nat\n` +
        `add chain ${f} nat PREROUTING { type nat hook prerouting priority -100; }\n` +
        `add rule ${f} nat PREROUTING tcp dport 15008 counter return\n`,
    )
    .join('');
}

/** `nft list ruleset` text → "family table chain" → rule lines (the chain's `type ...` header excluded). */
function rulesByChain(listing: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let table: string | null = null;
  let chain: string[] | null = null;
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const t = /^table (\S+) (\S+) \{$/.exec(line);
    const c = /^chain (\S+) \{$/.exec(line);
    if (t !== null) {
      table = `${t[1]} ${t[2]}`;
    } else if (c !== null && table !== null) {
      chain = [];
      out.set(`${table} ${c[1]}`, chain);
    } else if (line === '}') {
      if (chain !== null) chain = null;
      else table = null;
    } else if (chain !== null && line !== '' && !line.startsWith('type ')) {
      chain.push(line);
    }
  }
  return out;
}

/** What `nft list` prints for one of our `add rule` specs: single-element sets unwrapped, counters shown. */
function listedForm(spec: string): string {
  return sortSets(spec.replace(/\{ ([^,{}]+) \}/g, '$1').replace(/\bcounter\b/g, 'counter packets 0 bytes 0'));
}

/** nft lists anonymous-set elements in value order, so set contents are compared order-insensitively. */
function sortSets(rule: string): string {
  return rule.replace(/\{ ([^{}]+) \}/g, (_m, body: string) => `{ ${body.split(', ').sort().join(', ')} }`);
}

/** Expected rules per chain, in order, from the rendered `add rule` lines. */
function expectedRules(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^add rule (\S+) (\S+) (\S+) (.*)$/.exec(line);
    if (m === null) continue;
    const key = `${m[1]} ${m[2]} ${m[3]}`;
    const list = out.get(key) ?? [];
    list.push(listedForm(m[4] ?? ''));
    out.set(key, list);
  }
  return out;
}

interface JsonChain {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  readonly type?: string;
  readonly hook?: string;
  readonly prio?: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Chains from `nft -j list ruleset` (nftables JSON schema: {nftables: [{chain: {...}}, ...]}). */
async function jsonChains(ns: Netns): Promise<JsonChain[]> {
  const parsed: unknown = JSON.parse((await ns.execOk(['nft', '-j', 'list', 'ruleset'])).stdout);
  if (!isRecord(parsed) || !Array.isArray(parsed.nftables)) throw new Error('unexpected nft -j output');
  const chains: JsonChain[] = [];
  for (const item of parsed.nftables as unknown[]) {
    if (!isRecord(item) || !isRecord(item.chain)) continue;
    const c = item.chain;
    if (typeof c.family !== 'string' || typeof c.table !== 'string' || typeof c.name !== 'string') continue;
    chains.push({
      family: c.family,
      table: c.table,
      name: c.name,
      ...(typeof c.type === 'string' ? { type: c.type } : {}),
      ...(typeof c.hook === 'string' ? { hook: c.hook } : {}),
      ...(typeof c.prio === 'number' ? { prio: c.prio } : {}),
    });
  }
  return chains;
}

function ownedKeys(fams: readonly NftFamily[]): string[] {
  return MASQUERADE_NFT_TABLES.filter((t) => fams.includes(t.family)).flatMap((t) =>
    t.chains.map((c) => `${t.family} ${t.table} ${c.name}`),
  );
}

// ---- tests ---------------------------------------------------------------------------------------------

// Generous timeout: each case runs ~15 nft/ip commands, and `ip netns del` alone can take >1 s on a loaded host.
describe.skipIf(!netnsAvailable())('masquerade ruleset through the real nft parser (netns)', { timeout: 120_000 }, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      await withNetns('vna-nft', async (ns) => {
        const fams = families(c.input);
        await nftApply(ns, foreignText(fams));

        const text = renderMasqueradeNft(c.input);
        await nftApply(ns, text);
        const once = await listRuleset(ns);
        await nftApply(ns, text);
        const twice = await listRuleset(ns);
        expect(twice).toBe(once); // idempotent: no duplicated rules, same chains

        // The kernel holds exactly our rules, in our order, in each of our chains.
        const listed = rulesByChain(twice);
        const expected = expectedRules(text);
        for (const key of ownedKeys(fams)) {
          expect((listed.get(key) ?? []).map(sortSets), key).toEqual(expected.get(key) ?? []);
        }

        // Base chains: hooks and priorities as KubeVirt declares them (JSON, numeric prio).
        const chains = await jsonChains(ns);
        for (const t of MASQUERADE_NFT_TABLES.filter((x) => fams.includes(x.family))) {
          for (const oc of t.chains) {
            const jc = chains.find((x) => x.family === t.family && x.table === t.table && x.name === oc.name);
            expect(jc, `${t.family} ${oc.name}`).toBeDefined();
            if (oc.base !== null) {
              expect(jc).toMatchObject({ type: 'nat', hook: oc.base.hook, prio: oc.base.priority });
            } else {
              expect(jc?.hook).toBeUndefined();
            }
          }
        }

        // The foreign (Istio-like) chain and its rule survived both applies.
        for (const f of fams) {
          expect(listed.get(`${f} nat PREROUTING`)).toEqual(['tcp dport 15008 counter packets 0 bytes 0 return']);
        }

        // Teardown removes our chains only; it is idempotent too.
        const teardown = renderMasqueradeNftTeardown(c.input);
        await nftApply(ns, teardown);
        const afterTeardown = await listRuleset(ns);
        await nftApply(ns, teardown);
        expect(await listRuleset(ns)).toBe(afterTeardown);
        const left = rulesByChain(afterTeardown);
        expect([...left.keys()].sort()).toEqual(fams.map((f) => `${f} nat PREROUTING`).sort());
        for (const f of fams) {
          expect(left.get(`${f} nat PREROUTING`)).toEqual(['tcp dport 15008 counter packets 0 bytes 0 return']);
        }
        const jsonLeft = await jsonChains(ns);
        expect(jsonLeft.map((x) => `${x.family} ${x.table} ${x.name}`).sort()).toEqual(
          fams.map((f) => `${f} nat PREROUTING`).sort(),
        );
      });
    });
  }

  it('a changed input atomically replaces the previous rules (same result as a fresh apply)', async () => {
    const before = input({ ipv6: V6, ports: [{ protocol: 'tcp', port: 80 }] });
    const after = input({ ipv6: V6, istio: true, portRanges: [{ protocol: 'udp', start: 5000, end: 5010 }] });
    const fresh = await withNetns('vna-nft', async (ns) => {
      await nftApply(ns, renderMasqueradeNft(after));
      return listRuleset(ns);
    });
    await withNetns('vna-nft', async (ns) => {
      await nftApply(ns, renderMasqueradeNft(before));
      await nftApply(ns, renderMasqueradeNft(after));
      expect(await listRuleset(ns)).toBe(fresh);
    });
  });

  it('teardown on a namespace that never had the ruleset succeeds and leaves only empty nat tables', async () => {
    await withNetns('vna-nft', async (ns) => {
      await nftApply(ns, renderMasqueradeNftTeardown(input({ ipv6: V6 })));
      expect(await jsonChains(ns)).toEqual([]);
      expect(await listRuleset(ns)).toBe('table ip nat {\n}\ntable ip6 nat {\n}\n');
    });
  });

  it('a rejected transaction changes nothing (nft -f is atomic)', async () => {
    await withNetns('vna-nft', async (ns) => {
      await nftApply(ns, renderMasqueradeNft(input()));
      const good = await listRuleset(ns);
      const broken = `${renderMasqueradeNft(input({ ports: [{ protocol: 'tcp', port: 80 }] }))}add rule ip nat output this is not nft\n`;
      const r = await ns.exec(['nft', '-f', '-'], { input: broken });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/syntax error|Error/);
      expect(await listRuleset(ns)).toBe(good);
    });
  });
});
