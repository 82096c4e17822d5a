// The OVN side of `explain --packet` (pure): the ovn-trace microflow for the packet as it leaves the pod, and the
// parsing of ovn-trace's detailed output into pipelines, stages and one verdict (delivered to a port, or dropped where).

/** The packet as it crosses from the pod NIC into OVN's logical switch port. */
export interface OvnPacket {
  readonly inport: string;
  readonly ethSrc: string;
  readonly ethDst: string;
  readonly family: 4 | 6;
  readonly src: string;
  readonly dst: string;
  readonly protocol: 'tcp' | 'udp' | 'icmp' | 'icmpv6';
  readonly sport: number | null;
  readonly dport: number | null;
}

/** OVN's expression language quotes port names; a name with a quote or backslash cannot be one of OVN-K's. */
function quoted(name: string): string {
  return `"${name.replace(/["\\]/g, '')}"`;
}

/** The microflow ovn-trace evaluates: `inport == "lsp" && eth.src == … && ip4.src == … && tcp.dst == 80`. */
export function ovnMicroflow(p: OvnPacket): string {
  const ip = p.family === 4 ? 'ip4' : 'ip6';
  const parts = [`inport == ${quoted(p.inport)}`, `eth.src == ${p.ethSrc}`, `eth.dst == ${p.ethDst}`, `${ip}.src == ${p.src}`, `${ip}.dst == ${p.dst}`, 'ip.ttl == 64'];
  switch (p.protocol) {
    case 'tcp':
    case 'udp':
      parts.push(p.protocol);
      if (p.sport !== null) parts.push(`${p.protocol}.src == ${p.sport}`);
      if (p.dport !== null) parts.push(`${p.protocol}.dst == ${p.dport}`);
      break;
    case 'icmp':
      parts.push('icmp4.type == 8', 'icmp4.code == 0');
      break;
    case 'icmpv6':
      parts.push('icmp6.type == 128', 'icmp6.code == 0');
      break;
  }
  return parts.join(' && ');
}

export interface OvnStage {
  /** "ingress" or "egress". */
  readonly direction: string;
  /** The logical datapath (switch or router). */
  readonly datapath: string;
  readonly table: number;
  /** e.g. ls_in_acl, lr_in_ip_routing. */
  readonly name: string;
  readonly match: string;
  readonly priority: number | null;
  readonly actions: readonly string[];
}

export interface OvnPipeline {
  /** `ingress(dp="pods", inport="pod1")` as printed. */
  readonly title: string;
  readonly direction: string;
  readonly datapath: string;
  readonly stages: readonly OvnStage[];
}

export type OvnVerdict =
  | { readonly kind: 'delivered'; readonly port: string; readonly type: string }
  | { readonly kind: 'dropped'; readonly stage: OvnStage | null; readonly why: string }
  | { readonly kind: 'unknown'; readonly why: string };

export interface OvnTrace {
  readonly flow: string;
  readonly pipelines: readonly OvnPipeline[];
  readonly verdict: OvnVerdict;
}

const PIPELINE = /^(ingress|egress)\(dp="([^"]*)"(.*)\)$/;
const STAGE = /^\s*(\d+)\.\s+(\S+)\s+\([^)]*\):\s+(.*?)(?:,\s+priority\s+(\d+))?(?:,\s+uuid\s+\S+)?$/;
const OUTPUT = /\/\*\s*output to "([^"]+)", type "([^"]*)"\s*\*\//;

/** Parses `ovn-trace --detailed` output. */
export function parseOvnTrace(text: string): OvnTrace {
  const lines = text.split('\n');
  const flow = (lines.find((l) => l.trimStart().startsWith('#')) ?? '').trim().replace(/^#\s*/, '');
  const pipelines: { title: string; direction: string; datapath: string; stages: { direction: string; datapath: string; table: number; name: string; match: string; priority: number | null; actions: string[] }[] }[] = [];
  const outputs: { port: string; type: string }[] = [];
  let dropped: { stage: OvnStage | null; why: string } | null = null;
  for (const raw of lines) {
    const line = raw.trimEnd();
    const pipeline = PIPELINE.exec(line.trim());
    if (pipeline) {
      pipelines.push({ title: line.trim(), direction: pipeline[1] ?? '', datapath: pipeline[2] ?? '', stages: [] });
      continue;
    }
    const current = pipelines[pipelines.length - 1];
    if (current === undefined) continue;
    const stage = STAGE.exec(line);
    if (stage && /^\s{0,3}\d+\./.test(line)) {
      current.stages.push({
        direction: current.direction,
        datapath: current.datapath,
        table: Number(stage[1]),
        name: stage[2] ?? '',
        match: stage[3] ?? '',
        priority: stage[4] === undefined ? null : Number(stage[4]),
        actions: [],
      });
      continue;
    }
    const text = line.trim();
    if (text === '' || /^-+$/.test(text)) continue;
    const last = current.stages[current.stages.length - 1];
    const out = OUTPUT.exec(text);
    if (out) outputs.push({ port: out[1] ?? '', type: out[2] ?? '' });
    if (last !== undefined) {
      last.actions.push(text);
      if (/^drop;/.test(text) && dropped === null) {
        const portSecurity = /_port_sec/.test(last.name) ? ": port security (the LSP's port_security does not list this source MAC/IP)" : '';
        dropped = { stage: last, why: `${last.name} matched \`${last.match}\` (priority ${last.priority ?? '?'}) and drops${portSecurity}` };
      }
    }
  }
  const finalOut = [...outputs].reverse().find((o) => o.type !== 'patch');
  let verdict: OvnVerdict;
  if (dropped !== null) verdict = { kind: 'dropped', ...dropped };
  else if (finalOut !== undefined) verdict = { kind: 'delivered', port: finalOut.port, type: finalOut.type };
  else if (pipelines.length === 0) {
    verdict = {
      kind: 'dropped',
      stage: null,
      why: "before the first logical stage: the inport's port security (the LSP's port_security addresses) does not allow this eth.src/ip source",
    };
  } else {
    const lastStage = pipelines.flatMap((p) => p.stages).at(-1) ?? null;
    verdict = { kind: 'dropped', stage: lastStage, why: lastStage ? `no stage output it after ${lastStage.name} (implicit drop)` : 'no stage output it' };
  }
  return { flow, pipelines, verdict };
}

/** One line per stage: `   25. ls_in_l2_lkup: eth.dst == … → outport = "stor-pods"; output;` under each pipeline title. */
export function renderOvnStages(trace: OvnTrace): string[] {
  const out: string[] = [];
  for (const p of trace.pipelines) {
    out.push(`  ${p.title}:`);
    for (const s of p.stages) {
      const actions = s.actions.filter((a) => !a.startsWith('/*') && a !== 'next;').join(' ');
      const comment = s.actions.find((a) => a.startsWith('/*'));
      out.push(`    ${String(s.table).padStart(2)}. ${s.name}: ${s.match}${actions ? ` → ${actions}` : ' → next'}${comment ? ` ${comment}` : ''}`);
    }
  }
  return out;
}
