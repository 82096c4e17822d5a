// `explain --packet` across the pod's edge into OVN: where the in-pod path hands the packet to an OVN logical switch
// port, what the packet looks like there (after our NAT), and what OVN's logical flows do with it (ovn-trace).
import type { LinkInfo } from '../drivers/kernel.js';
import { describePacket, type Packet } from './packet.js';
import type { PictureNetwork } from './picture.js';
import type { PathTrace, RoutingView } from './trace.js';
import { chassisOf, findOvnTarget, macForIp, podNeighbourMac, portSecurity, runOvnTrace, type OvnTarget } from './ovn-lookup.js';
import { ovnMicroflow, parseOvnTrace, renderOvnStages, type OvnPacket } from './ovn-trace.js';

/** Where the packet leaves the pod and how it looks then, before the OVN port is known. */
export interface Crossing {
  /** The pod NIC whose other end is (maybe) an OVN port. */
  readonly nic: string;
  readonly ethSrc: string;
  readonly src: string;
  readonly dst: string;
  readonly sport: number | null;
  readonly dport: number | null;
  /** The address whose MAC is eth.dst: the route's gateway, or the destination on the link. */
  readonly nextHop: string;
  /** What the pod did to it, in words (for the crossing line). */
  readonly inPod: string;
}

/**
 * A packet from the guest of a bridge-binding (or managedTap) network: bridged to the pod NIC, never routed. (The
 * identity keeper still holds the pod address, so the source being "local" says nothing; only a packet to the bridge's
 * own address, the DHCP server's, stays in the pod.)
 */
export function bridgedNetwork(packet: Packet, networks: readonly PictureNetwork[], view: RoutingView): PictureNetwork | null {
  if (packet.iif === null) return null;
  const network = networks.find((n) => n.bridge === packet.iif && (n.binding === 'bridge' || n.binding === 'plugin') && n.nicName !== null);
  if (network === undefined) return null;
  const toBridge = view.addresses.some((a) => a.ifname === packet.iif && a.cidr.split('/')[0] === packet.daddr);
  return toBridge ? null : network;
}

export function bridgedCrossing(packet: Packet, network: PictureNetwork, links: readonly LinkInfo[]): Crossing | null {
  const nic = network.nicName;
  if (nic === null) return null;
  return {
    nic,
    ethSrc: network.guestMac ?? links.find((l) => l.name === nic)?.mac ?? '',
    src: packet.saddr,
    dst: packet.daddr,
    sport: packet.sport,
    dport: packet.dport,
    nextHop: packet.daddr,
    inPod: `bridged at layer 2 by ${network.bridge ?? '?'} from the guest to ${nic} (bridge binding: no routing, no NAT in the pod)`,
  };
}

/** The routed path left the pod on an interface: the packet with our NAT applied. */
export function routedCrossing(trace: PathTrace, view: RoutingView, links: readonly LinkInfo[]): Crossing | null {
  const end = trace.end;
  if (end.kind !== 'out') return null;
  const p = trace.packet;
  let src = p.saddr;
  let sport = p.sport;
  for (const n of trace.nat) {
    if (n.action.kind === 'masquerade') {
      src = view.addresses.find((a) => a.ifname === end.oif && (p.family === 4) === !a.cidr.includes(':') && !a.cidr.startsWith('fe80'))?.cidr.split('/')[0] ?? src;
    } else if (n.action.kind === 'snat' && n.action.addr !== null) {
      src = n.action.addr;
      if (n.action.port !== null) sport = n.action.port;
    }
  }
  const natted = trace.nat.length > 0 ? `, ${trace.nat.map((n) => n.action.kind).join(' then ')} by our ruleset` : '';
  return {
    nic: end.oif,
    ethSrc: links.find((l) => l.name === end.oif)?.mac ?? '',
    src,
    dst: end.addr,
    sport,
    dport: end.port ?? p.dport,
    nextHop: end.gw ?? end.addr,
    inPod: `routed out of ${end.oif}${end.gw ? ` via ${end.gw}` : ''}${natted}`,
  };
}

export interface OvnFlags {
  readonly ovnPort?: string;
  readonly ovnSb?: string;
  readonly ovnNb?: string;
  readonly ovsDb?: string;
}

/**
 * The OVN half of the trace, or null when nothing says OVN is there (no flag, no default OVS database): then explain
 * prints what it always did. A NIC that is not an OVN port, or a tool that fails, gives a note instead.
 */
export function explainIntoOvn(packet: Packet, crossing: Crossing, flags: OvnFlags, ovsDbExists: boolean, ourVerdict: string): string | null {
  const asked = flags.ovnPort !== undefined || flags.ovnSb !== undefined || flags.ovsDb !== undefined;
  if (!asked && !ovsDbExists) return null;
  const found = findOvnTarget(crossing.nic, flags, ovsDbExists);
  if ('problem' in found) return `\nOVN: not followed: ${found.problem}\n`;
  return renderOvnPart(packet, crossing, found, ourVerdict);
}

function renderOvnPart(packet: Packet, crossing: Crossing, target: OvnTarget, ourVerdict: string): string {
  const lines: string[] = [];
  lines.push('', `── crossing: from our ruleset to OVN's ──`);
  lines.push(`${crossing.nic} (mac ${crossing.ethSrc}) is OVN logical switch port "${target.port}": ${target.how}`);
  const ethDst = podNeighbourMac(crossing.nextHop) ?? macForIp(target.sbDb, crossing.nextHop);
  const ovnPacket: OvnPacket = {
    inport: target.port,
    ethSrc: crossing.ethSrc,
    ethDst: ethDst ?? 'ff:ff:ff:ff:ff:ff',
    family: packet.family,
    src: crossing.src,
    dst: crossing.dst,
    protocol: packet.protocol,
    sport: crossing.sport,
    dport: crossing.dport,
  };
  const port = (p: number | null): string => (p === null ? '' : `:${p}`);
  lines.push(`  the pod: ${crossing.inPod}`);
  lines.push(`  enters OVN as ${packet.protocol} ${crossing.src}${port(crossing.sport)} -> ${crossing.dst}${port(crossing.dport)}, eth ${crossing.ethSrc} -> ${ovnPacket.ethDst}` +
    (ethDst === null ? ` (next hop ${crossing.nextHop}: no MAC known in the pod or OVN, traced as broadcast)` : ` (next hop ${crossing.nextHop})`));
  if (target.nbDb !== null) {
    const security = portSecurity(target.nbDb, target.port);
    if (security !== null) lines.push(`  port security of "${target.port}" (Northbound): ${security || '(none: any source)'}`);
  }
  lines.push('', `── OVN logical flows (ovn-trace, Southbound ${target.sbDb}) ──`);
  const flow = ovnMicroflow(ovnPacket);
  lines.push(`microflow: ${flow}`);
  const run = runOvnTrace(target.sbDb, flow);
  if (!run.ok) {
    lines.push(`ovn-trace failed: ${run.err}`);
    return `${lines.join('\n')}\n`;
  }
  const trace = parseOvnTrace(run.out);
  lines.push(...renderOvnStages(trace));
  let ovnVerdict: string;
  switch (trace.verdict.kind) {
    case 'delivered': {
      const chassis = chassisOf(target.sbDb, trace.verdict.port);
      ovnVerdict = `delivered to logical port "${trace.verdict.port}"${trace.verdict.type ? ` (type ${trace.verdict.type})` : ''}${chassis ? ` bound on chassis ${chassis}` : ''}`;
      break;
    }
    case 'dropped':
      ovnVerdict = `DROPPED ${trace.verdict.stage ? `in ${trace.verdict.stage.direction} of ${trace.verdict.stage.datapath}, table ${trace.verdict.stage.table} ${trace.verdict.stage.name}: ` : ''}${trace.verdict.why}`;
      break;
    case 'unknown':
      ovnVerdict = `unknown: ${trace.verdict.why}`;
      break;
  }
  lines.push(`OVN verdict: ${ovnVerdict}`);
  lines.push('', `── whole path: ${describePacket(packet)} ──`);
  lines.push(`  our ruleset (virt-net-agent, in the pod): ${ourVerdict}`);
  lines.push(`  → crosses into OVN at ${crossing.nic} = logical port "${target.port}"`);
  lines.push(`  OVN (logical flows): ${ovnVerdict}`);
  return `${lines.join('\n')}\n`;
}
