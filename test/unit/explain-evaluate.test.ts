// explain's packet evaluator on real `nft -j list ruleset` fixtures (captured from nft 1.0.6 with the agent's masquerade rulesets).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNftJson, renderRule } from '../../agent/explain/nft-json.js';
import { parsePacket } from '../../agent/explain/packet.js';
import { renderTrace } from '../../agent/explain/render-trace.js';
import { lookupRoute, tracePacket, type RoutingView } from '../../agent/explain/trace.js';
import { InputError } from '../../agent/plan/errors.js';

const fixture = (name: string) => parseNftJson(readFileSync(join(process.cwd(), 'test/fixtures/nft-json', name), 'utf8'));

/** The masquerade pod: eth0 10.244.1.5/24 with the default route, k6t-eth0 10.0.2.1/24 (and fd10:0:2::1/120). */
const view: RoutingView = {
  addresses: [
    { ifname: 'lo', cidr: '127.0.0.1/8' },
    { ifname: 'eth0', cidr: '10.244.1.5/24' },
    { ifname: 'eth0', cidr: 'fd00:10:244:1::5/64' },
    { ifname: 'k6t-eth0', cidr: '10.0.2.1/24' },
    { ifname: 'k6t-eth0', cidr: 'fd10:0:2::1/120' },
  ],
  routes: [
    { dst: 'default', dev: 'eth0', gw: '10.244.1.1' },
    { dst: 'default', dev: 'eth0', gw: 'fd00:10:244:1::1' },
    { dst: '10.244.1.0/24', dev: 'eth0', gw: null },
    { dst: '10.0.2.0/24', dev: 'k6t-eth0', gw: null },
    { dst: 'fd10:0:2::/120', dev: 'k6t-eth0', gw: null },
    { dst: 'fd00:10:244:1::/64', dev: 'eth0', gw: null },
  ],
};
const context = {
  interfaceRoles: { 'k6t-eth0': 'guest of network default' },
  masquerade: [{ network: 'default', podInterface: 'eth0', portsField: 'spec.domain.devices.interfaces[0].ports', ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 53 }] }],
};

describe('explain: nft JSON and rule rendering', () => {
  it('reads chains in evaluation order with their rules and renders them in nft syntax', () => {
    const rs = fixture('masquerade-ports.json');
    const pre = rs.chains.find((c) => c.name === 'KUBEVIRT_PREINBOUND');
    expect(pre?.rules.map(renderRule)).toEqual(['tcp dport 80 dnat to 10.0.2.2', 'udp dport 53 dnat to 10.0.2.2']);
    expect(rs.chains.find((c) => c.name === 'prerouting')).toMatchObject({ hook: 'prerouting', type: 'nat', prio: -100, policy: 'accept' });
    const filter = fixture('masquerade-range-filter.json');
    expect(filter.chains.find((c) => c.name === 'forward')?.rules.map(renderRule)[0]).toBe(
      'iifname "eth0" oifname "k6t-eth0" ip daddr 10.0.2.0/24 tcp dport { 80, 443 } accept',
    );
  });

  it('rejects what is not nft JSON, naming the source', () => {
    expect(() => parseNftJson('{"x":1}', 'nft')).toThrow(InputError);
    expect(() => parseNftJson('nope')).toThrow(expect.objectContaining({ field: 'nft -j list ruleset', message: expect.stringMatching(/^not JSON/) }));
  });
});

describe('explain: packet parsing', () => {
  it('parses IPv4, IPv6 and "in IFACE"', () => {
    expect(parsePacket('tcp 10.244.1.1:5000 -> 10.244.1.5:80')).toEqual({ family: 4, protocol: 'tcp', saddr: '10.244.1.1', daddr: '10.244.1.5', sport: 5000, dport: 80, iif: null });
    expect(parsePacket('udp [fd00::1]:7 -> [fd10:0:2::2]:53 in eth0')).toMatchObject({ family: 6, saddr: 'fd00::1', dport: 53, iif: 'eth0', sport: 7 });
    expect(parsePacket('icmp 10.0.2.2 -> 1.1.1.1')).toMatchObject({ protocol: 'icmp', sport: null, dport: null });
  });
  it('names the flag on bad input', () => {
    expect(() => parsePacket('tcp 1.2.3.4 -> 5.6.7.8')).toThrow('the destination needs a port');
    expect(() => parsePacket('sctp 1.2.3.4:1 -> 5.6.7.8:2')).toThrow(/protocol "sctp"/);
    expect(() => parsePacket('tcp 1.2.3.4:1 -> [::1]:2')).toThrow(/must both be IPv4 or both IPv6/);
    expect(() => parsePacket('tcp 1.2.3.4:1 to 5.6.7.8:2')).toThrow(InputError);
  });
});

describe('explain: tracing packets through the masquerade ruleset', () => {
  it('routes by longest prefix', () => {
    expect(lookupRoute(view, '10.0.2.2')).toEqual({ dev: 'k6t-eth0', gw: null });
    expect(lookupRoute(view, '8.8.8.8')).toEqual({ dev: 'eth0', gw: '10.244.1.1' });
    expect(lookupRoute(view, '2001:db8::1')).toEqual({ dev: 'eth0', gw: 'fd00:10:244:1::1' });
  });

  it('a listed port from the node is DNATed to the guest by PREINBOUND rule 1', () => {
    const trace = tracePacket(fixture('masquerade-ports.json'), view, parsePacket('tcp 10.244.1.1:5000 -> 10.244.1.5:80'));
    expect(trace.iif).toBe('eth0');
    expect(trace.nat.map((n) => [n.hook, n.action.kind, n.action.addr, n.by?.chain, n.by?.index])).toEqual([['prerouting', 'dnat', '10.0.2.2', 'ip nat KUBEVIRT_PREINBOUND', 1]]);
    expect(trace.end).toEqual({ kind: 'out', oif: 'k6t-eth0', addr: '10.0.2.2', port: 80, gw: null });
    expect(renderTrace(trace, view, context)).toContain('verdict: DNAT to 10.0.2.2 (prerouting, ip nat KUBEVIRT_PREINBOUND rule 1) → leaves on k6t-eth0 to 10.0.2.2:80 → guest of network default');
  });

  it('an unlisted port stays in the pod and the answer names the VMI ports field', () => {
    const trace = tracePacket(fixture('masquerade-ports.json'), view, parsePacket('tcp 10.244.1.1:5000 -> 10.244.1.5:81'));
    expect(trace.nat).toEqual([]);
    expect(trace.end).toEqual({ kind: 'local', addr: '10.244.1.5', port: 81 });
    const text = renderTrace(trace, view, context);
    expect(text).toContain("no rule matches: tcp port 81 is not in the VMI's ports list (spec.domain.devices.interfaces[0].ports: tcp 80, udp 53)");
    expect(text).toContain('rule 1 `tcp dport 80 dnat to 10.0.2.2` — no match: needs tcp dport 80, packet has 81');
  });

  it('UDP 53 matches the udp rule, not the tcp one', () => {
    const trace = tracePacket(fixture('masquerade-ports.json'), view, parsePacket('udp 10.244.1.1:999 -> 10.244.1.5:53'));
    expect(trace.nat[0]?.by?.index).toBe(2);
  });

  it('loopback to a listed port is DNATed in output and SNATed to the gateway in POSTINBOUND', () => {
    const trace = tracePacket(fixture('masquerade-ports.json'), view, parsePacket('udp 127.0.0.1:999 -> 127.0.0.1:53'));
    expect(trace.locallyGenerated).toBe(true);
    expect(trace.nat.map((n) => `${n.hook} ${n.action.kind} ${n.action.addr ?? ''}`)).toEqual(['output dnat 10.0.2.2', 'postrouting snat 10.0.2.1']);
  });

  it('the guest going out is masqueraded to the pod IP', () => {
    const trace = tracePacket(fixture('masquerade-ports.json'), view, parsePacket('tcp 10.0.2.2:4000 -> 8.8.8.8:443'));
    expect(trace.iif).toBe('k6t-eth0');
    expect(trace.nat.map((n) => n.action.kind)).toEqual(['masquerade']);
    expect(renderTrace(trace, view, context)).toContain('masquerade to 10.244.1.5 (eth0)');
  });

  it('with no ports listed every port is forwarded, in IPv6 too (ip6 table)', () => {
    const rs = fixture('masquerade-all-dual.json');
    const v4 = tracePacket(rs, view, parsePacket('tcp 10.244.1.1:1 -> 10.244.1.5:12345'));
    expect(v4.end).toMatchObject({ kind: 'out', addr: '10.0.2.2' });
    const v6 = tracePacket(rs, view, parsePacket('tcp [fd00:10:244:1::1]:1 -> [fd00:10:244:1::5]:22'));
    expect(v6.nat[0]?.action).toEqual({ kind: 'dnat', addr: 'fd10:0:2::2', port: null });
    expect(v6.end).toMatchObject({ kind: 'out', oif: 'k6t-eth0', addr: 'fd10:0:2::2' });
  });

  it('port ranges, legacy migration returns, and a filter table with a drop policy', () => {
    const rs = fixture('masquerade-range-filter.json');
    // udp 8050 is in the 8000-8100 range: DNATed; the forward chain only accepts tcp 80/443 to the guest: dropped by policy.
    const udp = tracePacket(rs, view, parsePacket('udp 10.244.1.1:1 -> 10.244.1.5:8050'));
    expect(udp.nat[0]?.action.addr).toBe('10.0.2.2');
    expect(udp.end).toEqual({ kind: 'dropped', hook: 'forward', chain: 'inet filter forward', verdict: 'drop' });
    // tcp 81 to the pod itself: no DNAT, then the inet filter input chain drops it.
    const drop = tracePacket(rs, view, parsePacket('tcp 10.244.1.1:1 -> 10.244.1.5:81'));
    expect(drop.end).toMatchObject({ kind: 'dropped', hook: 'input' });
    // Loopback to the legacy migration port 49152 hits `return` in output before any DNAT.
    const migration = tracePacket(rs, view, parsePacket('tcp 127.0.0.1:5 -> 127.0.0.1:49152'));
    expect(migration.nat).toEqual([]);
    expect(migration.end).toMatchObject({ kind: 'local' });
    // The guest's own traffic is accepted in forward (iifname k6t-eth0) and masqueraded.
    const out = tracePacket(rs, view, parsePacket('icmp 10.0.2.2 -> 1.1.1.1'));
    expect(out.end).toMatchObject({ kind: 'out', oif: 'eth0' });
    expect(out.nat.map((n) => n.action.kind)).toEqual(['masquerade']);
  });

  it('a source with no route back cannot arrive', () => {
    const noDefault: RoutingView = { ...view, routes: view.routes.filter((r) => r.dst !== 'default') };
    expect(tracePacket(fixture('masquerade-ports.json'), noDefault, parsePacket('tcp 8.8.8.8:1 -> 10.244.1.5:80')).end).toEqual({ kind: 'no-route', addr: '8.8.8.8' });
  });
});
