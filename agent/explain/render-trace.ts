// Prints a packet trace as text: the path chain by chain, then one verdict line that answers "where does it go, and why (not)?".
import type { RuleEvaluation } from './evaluate.js';
import { describePacket } from './packet.js';
import { missedDnatRules, type PathTrace, type RoutingView } from './trace.js';

/** What the trace printer knows about the pod beyond the kernel: which interface leads to which guest, and the VMI's port lists. */
export interface TraceContext {
  /** e.g. { "k6t-eth0": "guest of network default (tap0, 10.0.2.2)" }. */
  readonly interfaceRoles: Readonly<Record<string, string>>;
  /** Masquerade networks: where their ports come from in the VMI, and the ports (null when the VMI lists none: all forwarded). */
  readonly masquerade: readonly {
    readonly network: string;
    readonly podInterface: string;
    readonly portsField: string;
    readonly ports: readonly { readonly protocol: string; readonly port: number }[] | null;
    readonly portRanges?: readonly { readonly protocol: string; readonly start: number; readonly end: number }[];
  }[];
}

function counter(e: RuleEvaluation): string {
  return e.packets === null ? '' : ` [${e.packets} pkts]`;
}

function ruleLine(e: RuleEvaluation): string {
  const pad = '  '.repeat(e.depth + 2);
  if (e.matched) return `${pad}${e.chain}: rule ${e.index} \`${e.text}\`${counter(e)} → ${e.action ?? 'continue'}`;
  const why = e.unknown ? `cannot evaluate (${e.why ?? '?'}), treated as no match` : `no match: ${e.why ?? ''}`;
  return `${pad}${e.chain}: rule ${e.index} \`${e.text}\` — ${why}`;
}

function firstAddressOf(view: RoutingView, ifname: string, family: 4 | 6): string | null {
  for (const a of view.addresses) {
    if (a.ifname !== ifname) continue;
    const addr = a.cidr.split('/')[0] ?? '';
    if (family === 4 ? !addr.includes(':') : addr.includes(':') && !addr.startsWith('fe80')) return addr;
  }
  return null;
}

export function renderTrace(trace: PathTrace, view: RoutingView, context: TraceContext): string {
  const p = trace.packet;
  const lines: string[] = [`packet: ${describePacket(p)}`];
  if (trace.locallyGenerated) lines.push(`  sent by a process in the pod (${p.saddr} is a pod address)`);
  else if (trace.iif !== null) lines.push(`  arrives on ${trace.iif} (${trace.iifReason ?? ''})`);
  for (const hook of trace.hooks) {
    const ifs = [hook.iif !== null ? `in ${hook.iif}` : null, hook.oif !== null ? `out ${hook.oif}` : null].filter(Boolean).join(', ');
    lines.push(`${hook.hook}${ifs ? ` (${ifs})` : ''}:`);
    if (hook.chains.length === 0) lines.push('    no base chains at this hook');
    for (const { chain, outcome } of hook.chains) {
      lines.push(`  ${chain.family} ${chain.table} ${chain.name} (type ${chain.type ?? '?'}, priority ${chain.prio ?? '?'}, policy ${chain.policy ?? 'accept'}):`);
      const shown = outcome.evaluations.filter((e) => e.matched || e.unknown || e.rule.expr.some((x) => 'dnat' in x || 'drop' in x || 'reject' in x));
      for (const e of shown) lines.push(ruleLine(e));
      if (outcome.byPolicy) lines.push(`    no rule decided → policy ${outcome.verdict}`);
    }
  }
  const nats = trace.nat.map((n) => {
    if (n.action.kind === 'masquerade') {
      const oif = trace.end.kind === 'out' ? trace.end.oif : null;
      const addr = oif === null ? null : firstAddressOf(view, oif, p.family);
      return `masquerade to ${addr ?? 'the outgoing interface address'}${oif ? ` (${oif})` : ''}`;
    }
    const port = n.action.port === null ? '' : `:${n.action.port}`;
    return `${n.action.kind.toUpperCase()} to ${n.action.addr ?? '?'}${port} (${n.hook}${n.by ? `, ${n.by.chain} rule ${n.by.index}` : ''})`;
  });
  lines.push(`verdict: ${verdict(trace, context, nats)}`);
  return `${lines.join('\n')}\n`;
}

function verdict(trace: PathTrace, context: TraceContext, nats: readonly string[]): string {
  const end = trace.end;
  const natText = nats.length > 0 ? `${nats.join(', then ')} → ` : '';
  switch (end.kind) {
    case 'dropped':
      return `${natText}${end.verdict === 'drop' ? 'DROPPED' : 'REJECTED'} at ${end.hook} by ${end.chain}`;
    case 'no-route':
      return `${natText}no route to ${end.addr} in the pod: the packet cannot be delivered`;
    case 'out': {
      const role = context.interfaceRoles[end.oif];
      const gw = end.gw === null ? '' : ` via ${end.gw}`;
      return `${natText}leaves on ${end.oif}${gw} to ${end.addr}${end.port === null ? '' : `:${end.port}`}${role ? ` → ${role}` : ''}`;
    }
    case 'local': {
      const base = `${natText}delivered to the pod itself (${end.addr}${end.port === null ? '' : `:${end.port}`}), not to a guest`;
      return trace.nat.some((n) => n.action.kind === 'dnat') ? base : `${noDnatReason(trace, context)}; ${base}`;
    }
  }
}

/** Why an inbound packet to the pod was not forwarded to the guest: which listed port it missed. */
function noDnatReason(trace: PathTrace, context: TraceContext): string {
  const p = trace.packet;
  const net = context.masquerade.find((m) => m.podInterface === trace.iif) ?? (trace.locallyGenerated ? context.masquerade[0] : undefined);
  const missed = missedDnatRules(trace);
  if (net === undefined) {
    return missed.length > 0 ? `no DNAT rule matches (${missed.map((m) => `${m.chain} rule ${m.index}: ${m.why ?? ''}`).join('; ')})` : 'no rule DNATs it';
  }
  const port = p.dport === null ? p.protocol : `${p.protocol} port ${p.dport}`;
  const listed = [
    ...(net.ports ?? []).map((x) => `${x.protocol.toLowerCase()} ${x.port}`),
    ...(net.portRanges ?? []).map((r) => `${r.protocol.toLowerCase()} ${r.start}-${r.end}`),
  ];
  if (net.ports === null) return `no rule matches: network ${net.network} forwards all ports, but the packet did not reach its rules (${missed.map((m) => m.why ?? '').join('; ') || 'see above'})`;
  return `no rule matches: ${port} is not in the VMI's ports list (${net.portsField}: ${listed.join(', ') || 'empty'})`;
}
