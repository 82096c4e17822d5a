// Builds explain's view of the pod's networks (pure): from the plan when a VMI is given, else from the state dir and the live ruleset.
import type { LinkInfo, AddressInfo } from '../drivers/kernel.js';
import type { Plan } from '../plan/plan-types.js';
import type { AgentState } from '../apply/state-dir.js';
import type { Vmi } from '../plan/vmi-types.js';
import type { NftRuleset } from './nft-json.js';
import type { PictureNetwork } from './picture.js';
import type { TraceContext } from './render-trace.js';

function bridgeAddressPrefix(bridge: string | null, links: readonly LinkInfo[], addresses: readonly AddressInfo[]): number | null {
  const link = links.find((l) => l.name === bridge);
  const addr = addresses.find((a) => a.index === link?.index && a.family === 4);
  return addr === undefined ? null : Number(addr.cidr.split('/')[1]);
}

/** The masquerade guest address from the ruleset: the source of `ip saddr X … masquerade`. */
function masqueradeGuest(ruleset: NftRuleset | null): string | null {
  for (const chain of ruleset?.chains ?? []) {
    if (chain.family !== 'ip' || chain.table !== 'nat') continue;
    for (const rule of chain.rules) {
      if (!rule.expr.some((e) => 'masquerade' in e)) continue;
      for (const e of rule.expr) {
        const m = e['match'] as { left?: { payload?: { field?: string } }; right?: unknown } | undefined;
        if (m?.left?.payload?.field === 'saddr' && typeof m.right === 'string') return m.right;
      }
    }
  }
  return null;
}

export function networksFromPlan(plan: Plan, state: AgentState | null): PictureNetwork[] {
  return plan.networks
    .filter((n) => n.bridge !== null || n.tap !== null)
    .map((n) => {
      const nic = n.links.find((s) => s.kind === 'pod-nic');
      const nicName = state?.networks[n.name]?.renamedTo ?? nic?.renameTo ?? n.podInterface;
      return {
        name: n.name,
        binding: n.binding,
        podInterface: n.podInterface,
        nicName,
        bridge: n.bridge,
        tap: n.tap,
        guestMac: n.guestMac,
        guestAddress: n.dhcp === null ? null : `${n.dhcp.yiaddr}/${n.dhcp.prefixLength}`,
        dhcp: n.dhcp,
      };
    });
}

export function networksFromState(state: AgentState, links: readonly LinkInfo[], addresses: readonly AddressInfo[], ruleset: NftRuleset | null): PictureNetwork[] {
  return Object.entries(state.networks).map(([name, n]) => {
    const bridge = n.bridge ?? n.created.find((c) => c.startsWith('k6t-')) ?? null;
    const tap = n.created.find((c) => links.find((l) => l.name === c)?.kind === 'tun' || c.startsWith('tap')) ?? null;
    let guestAddress: string | null = null;
    if (n.binding === 'masquerade') {
      const guest = masqueradeGuest(ruleset);
      const prefix = bridgeAddressPrefix(bridge, links, addresses);
      guestAddress = guest === null ? null : `${guest}/${prefix ?? 32}`;
    } else if (n.binding === 'bridge') {
      guestAddress = n.podIdentity?.ipv4[0] ?? null;
    }
    return {
      name,
      binding: n.binding,
      podInterface: n.podInterface,
      nicName: n.renamedTo ?? n.podInterface,
      bridge,
      tap,
      guestMac: n.podIdentity?.mac ?? null,
      guestAddress: n.dhcp ? `${n.dhcp.yiaddr}/${n.dhcp.prefixLength}` : guestAddress,
      dhcp: n.dhcp ?? null,
    };
  });
}

/** No state and no VMI: every k6t-* bridge is a network; masquerade when the ruleset routes to it. */
export function networksFromLinks(links: readonly LinkInfo[], ruleset: NftRuleset | null): PictureNetwork[] {
  return links
    .filter((l) => l.kind === 'bridge' && l.name.startsWith('k6t-'))
    .map((bridge) => {
      const port = links.find((l) => l.masterIndex === bridge.index && l.kind === 'tun') ?? null;
      const nic = links.find((l) => l.masterIndex === bridge.index && l.kind !== 'tun') ?? null;
      const masquerade = (ruleset?.chains ?? []).some((c) => c.rules.some((r) => JSON.stringify(r.expr).includes(`"${bridge.name}"`)));
      const podInterface = nic?.name.replace(/-nic$/, '') ?? bridge.name.slice('k6t-'.length);
      return {
        name: `(${bridge.name})`,
        binding: masquerade ? 'masquerade' : 'bridge',
        podInterface: masquerade ? podInterface : nic?.name.replace(/-nic$/, '') ?? null,
        nicName: nic?.name ?? null,
        bridge: bridge.name,
        tap: port?.name ?? null,
        guestMac: null,
        guestAddress: masquerade ? masqueradeGuest(ruleset) : null,
        dhcp: null,
      };
    });
}

/** dport values of the DNAT rules in KUBEVIRT_PREINBOUND; null when one DNATs every port. */
function portsFromRuleset(ruleset: NftRuleset | null): { protocol: string; port: number }[] | null {
  const ports: { protocol: string; port: number }[] = [];
  for (const chain of ruleset?.chains ?? []) {
    if (chain.name !== 'KUBEVIRT_PREINBOUND' || chain.family !== 'ip') continue;
    for (const rule of chain.rules) {
      if (!rule.expr.some((e) => 'dnat' in e)) continue;
      let found = false;
      for (const e of rule.expr) {
        const m = e['match'] as { left?: { payload?: { protocol?: string; field?: string } }; right?: unknown } | undefined;
        const payload = m?.left?.payload;
        if (payload?.field !== 'dport' || payload.protocol === undefined) continue;
        found = true;
        const right = m?.right;
        const values = typeof right === 'number' ? [right] : Array.isArray((right as { set?: unknown })?.set) ? ((right as { set: unknown[] }).set) : [];
        for (const v of values) if (typeof v === 'number') ports.push({ protocol: payload.protocol, port: v });
      }
      if (!found) return null;
    }
  }
  return ports;
}

export function traceContext(networks: readonly PictureNetwork[], vmi: Vmi | null, ruleset: NftRuleset | null): TraceContext {
  const interfaceRoles: Record<string, string> = {};
  for (const n of networks) {
    if (n.bridge === null) continue;
    const guest = n.guestAddress?.split('/')[0];
    interfaceRoles[n.bridge] = `guest of network ${n.name} (via ${n.tap ?? 'its tap'}${guest ? `, guest ${guest}` : ''})`;
  }
  const interfaces = vmi?.spec.domain?.devices?.interfaces ?? [];
  const masquerade = networks
    .filter((n) => n.binding === 'masquerade' && n.podInterface !== null)
    .map((n) => {
      const index = interfaces.findIndex((i) => i.name === n.name);
      const iface = interfaces[index];
      const portsField = index >= 0 ? `spec.domain.devices.interfaces[${index}].ports` : `spec.domain.devices.interfaces[name=${n.name}].ports`;
      let ports: { protocol: string; port: number }[] | null;
      if (iface !== undefined) {
        const listed = (iface.ports ?? []).flatMap((p) => (p.port === undefined ? [] : [{ protocol: (p.protocol ?? 'TCP').toLowerCase(), port: p.port }]));
        ports = listed.length === 0 && (iface.portRanges ?? []).length === 0 ? null : listed;
      } else {
        ports = portsFromRuleset(ruleset);
      }
      const portRanges = (iface?.portRanges ?? []).flatMap((r) =>
        r.start === undefined || r.end === undefined ? [] : [{ protocol: (r.protocol ?? 'TCP').toLowerCase(), start: r.start, end: r.end }],
      );
      return { network: n.name, podInterface: n.podInterface ?? '', portsField, ports, portRanges };
    });
  return { interfaceRoles, masquerade };
}
