// `explain` into OVN: finds the logical switch port behind a pod NIC and asks OVN's own tools (ovs-vsctl, ovn-sbctl,
// ovn-nbctl, ovn-trace) about it. The databases are the operator's flags (or the node's OVS configuration), never
// anything read from the pod; the tools are spawned from the main thread, so they run in the pod's netns (unix sockets
// are reached by path) and change nothing.
import { spawnSync } from 'node:child_process';
import { InputError } from '../plan/errors.js';
import { ipFamily } from '../plan/ip.js';

/** The node's OVS database when the operator names none and it exists (Debian's and OVN-K's default). */
export const DEFAULT_OVS_DB = 'unix:/var/run/openvswitch/db.sock';

export interface OvnTarget {
  /** The logical switch port (external_ids:iface-id of the OVS interface, or --ovn-port). */
  readonly port: string;
  /** The Southbound database ovn-trace reads. */
  readonly sbDb: string;
  readonly nbDb: string | null;
  /** How the port was found, for the trace's crossing line. */
  readonly how: string;
}

function tool(argv: readonly string[]): { ok: boolean; out: string; err: string } {
  const [file, ...args] = argv;
  const r = spawnSync(file ?? 'false', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) return { ok: false, out: '', err: r.error.message };
  return { ok: r.status === 0, out: r.stdout ?? '', err: (r.stderr ?? '').trim().split('\n')[0] ?? '' };
}

/** A database address as OVS tools take it: unix:PATH, ssl:HOST:PORT or tcp:HOST:PORT (one-line error otherwise). */
export function checkDbAddress(field: string, value: string): string {
  if (!/^(unix:\/\S+|ssl:\S+:\d+|tcp:\S+:\d+)(,(unix:\/\S+|ssl:\S+:\d+|tcp:\S+:\d+))*$/.test(value)) {
    throw new InputError(field, `expected unix:/PATH, tcp:HOST:PORT or ssl:HOST:PORT, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The ifindex of a veth's peer (`ip -j link` link_index), from inside the pod's netns; null for other links. */
export function vethPeerIndex(ifname: string): number | null {
  const r = tool(['ip', '-j', '-d', 'link', 'show', 'dev', ifname]);
  if (!r.ok) return null;
  try {
    const [link] = JSON.parse(r.out) as { link_index?: number; linkinfo?: { info_kind?: string } }[];
    return link?.linkinfo?.info_kind === 'veth' && typeof link.link_index === 'number' ? link.link_index : null;
  } catch {
    return null;
  }
}

/**
 * The OVN port behind `nic`: --ovn-port/--ovn-sb when given; else the node's OVS database: the Interface whose
 * ifindex is the NIC's veth peer, its external_ids:iface-id, and the chassis' ovn-remote as the Southbound database.
 * Null with the reason when the NIC is not an OVN port (or nothing says where OVN is).
 */
export function findOvnTarget(nic: string, flags: { ovnPort?: string; ovnSb?: string; ovnNb?: string; ovsDb?: string }, ovsDbExists: boolean): OvnTarget | { readonly problem: string } {
  const nbDb = flags.ovnNb ?? null;
  if (flags.ovnPort !== undefined) {
    if (flags.ovnSb === undefined) return { problem: '--ovn-port needs --ovn-sb (the Southbound database ovn-trace reads)' };
    return { port: flags.ovnPort, sbDb: flags.ovnSb, nbDb, how: `named by --ovn-port` };
  }
  const ovsDb = flags.ovsDb ?? (ovsDbExists ? DEFAULT_OVS_DB : undefined);
  if (ovsDb === undefined) return { problem: `no OVS database (${DEFAULT_OVS_DB} is absent; pass --ovs-db, or --ovn-port with --ovn-sb) to tell whether ${nic} is an OVN port` };
  const peer = vethPeerIndex(nic);
  if (peer === null) return { problem: `${nic} is not a veth, so no OVS port on the node is its other end` };
  const found = tool(['ovs-vsctl', `--db=${ovsDb}`, '--bare', '--columns=name,external_ids', 'find', 'Interface', `ifindex=${peer}`]);
  if (!found.ok) return { problem: `ovs-vsctl --db=${ovsDb}: ${found.err}` };
  const words = found.out.trim().split(/\s+/).filter(Boolean);
  const ifaceName = words[0];
  const ifaceId = /(?:^|\s|\{|,)iface-id="?([^",}\s]+)"?/.exec(found.out)?.[1];
  if (ifaceName === undefined || ifaceId === undefined) return { problem: `${nic}'s other end (ifindex ${peer} on the node) is no OVS interface with external_ids:iface-id in ${ovsDb}` };
  let sbDb = flags.ovnSb;
  if (sbDb === undefined) {
    const remote = tool(['ovs-vsctl', `--db=${ovsDb}`, 'get', 'Open_vSwitch', '.', 'external_ids:ovn-remote']);
    if (!remote.ok) return { problem: `${nic} is OVN port ${ifaceId}, but ${ovsDb} names no ovn-remote: pass --ovn-sb` };
    sbDb = remote.out.trim().replace(/^"|"$/g, '');
  }
  return { port: ifaceId, sbDb, nbDb, how: `its node end ${ifaceName} on the integration bridge carries external_ids:iface-id=${ifaceId} (${ovsDb})` };
}

/** The MAC OVN knows for an IP: a Port_Binding's mac column ("MAC IP…", router ports "MAC IP/PREFIX"). */
export function macForIp(sbDb: string, ip: string): string | null {
  const r = tool(['ovn-sbctl', `--db=${sbDb}`, '--bare', '--columns=mac', 'list', 'Port_Binding']);
  if (!r.ok) return null;
  for (const line of r.out.split('\n')) {
    const words = line.trim().replace(/^"|"$/g, '').split(/\s+/);
    const mac = words[0];
    if (mac !== undefined && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac) && words.slice(1).some((w) => w.split('/')[0] === ip)) return mac.toLowerCase();
  }
  return null;
}

/** The pod kernel's neighbour entry for ip (the next hop's MAC as the pod would send to it). */
export function podNeighbourMac(ip: string): string | null {
  if (ipFamily(ip) === null) return null;
  const r = tool(['ip', '-j', 'neigh', 'show', 'to', ip]);
  if (!r.ok) return null;
  try {
    const entries = JSON.parse(r.out) as { lladdr?: string }[];
    return entries.find((e) => typeof e.lladdr === 'string')?.lladdr ?? null;
  } catch {
    return null;
  }
}

/** The chassis a logical port is bound to (its Port_Binding), or null. */
export function chassisOf(sbDb: string, port: string): string | null {
  const binding = tool(['ovn-sbctl', `--db=${sbDb}`, '--bare', '--columns=chassis', 'find', 'Port_Binding', `logical_port=${port}`]);
  const uuid = binding.ok ? binding.out.trim().split(/\s+/)[0] : undefined;
  if (!uuid) return null;
  const name = tool(['ovn-sbctl', `--db=${sbDb}`, '--bare', '--columns=name', 'list', 'Chassis', uuid]);
  return name.ok ? name.out.trim() || null : null;
}

/** The LSP's port security from the Northbound database (when --ovn-nb is given). */
export function portSecurity(nbDb: string, port: string): string | null {
  const r = tool(['ovn-nbctl', `--db=${nbDb}`, 'lsp-get-port-security', port]);
  return r.ok ? r.out.trim().split('\n').join(', ') : null;
}

/** `ovn-trace --detailed` of the microflow; the output or the error. */
export function runOvnTrace(sbDb: string, flow: string): { ok: boolean; out: string; err: string } {
  return tool(['ovn-trace', `--db=${sbDb}`, '--detailed', flow]);
}
