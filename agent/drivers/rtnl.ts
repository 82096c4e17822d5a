// Typed rtnetlink: requests and replies through a blocking socket (netlink-sync.ts) and our own codec (rtnl-codec.ts);
// plain types out, KernelError on failure.
//
// Notes:
//   * ~10 µs per request (send + recv on the calling thread; the kernel executes the request inside sendmsg) against
//     ~180 µs through the npm `netlink` package's asynchronous socket, which this module used until it became most of
//     what a 64-network setup cost; the package's module graph (every netlink family and a native addon) was also
//     ~100 ms of a cold start. Refusals carry the errno and the kernel's extended-ack text.
//   * Bridge-port learning is set through RTM_NEWLINK on the existing port with IFLA_LINKINFO → IFLA_INFO_SLAVE_DATA →
//     IFLA_BRPORT_LEARNING (what `ip link set P type bridge_slave learning off` sends). Reading needs no AF_BRIDGE dump:
//     a plain RTM_GETLINK dump carries IFLA_INFO_SLAVE_KIND "bridge" and the IFLA_BRPORT_* attributes of every port.
//   * The socket belongs to the network namespace in which it was created (see agent/apply/netns.ts).
import { bytesToIp, ipToBigInt } from '../plan/ip.js';
import { canonicalErrno, describeErrno, errnoName, KernelError } from './kernel-error.js';
import { NetlinkRejection, SyncNetlinkSocket } from './netlink-sync.js';
import type { NetlinkWorker } from './netlink-worker.js';
import {
  AF_INET,
  AF_INET6,
  decodeAddress,
  decodeLink,
  decodeNeighbour,
  decodeRoute,
  encodeAddressRequest,
  encodeDumpRequest,
  encodeLinkRequest,
  encodeNeighbourRequest,
  encodeRouteRequest,
  NLM_F_CREATE_EXCL,
  NLM_F_CREATE_REPLACE,
  NLM_F_DUMP,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETNEIGH,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  RTM_NEWROUTE,
  RTM_SETLINK,
  NUD_REACHABLE,
  type DecodedLink,
  type DecodedTun,
  type LinkRequest,
} from './rtnl-codec.js';

const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;

/** A link as a dump reports it (rtnl-codec.ts decodes it). */
export type RtLink = DecodedLink;
export type RtTun = DecodedTun;

export interface RtAddress {
  readonly index: number;
  readonly family: 4 | 6;
  /** Text form: IFA_LOCAL for IPv4 (IFA_ADDRESS if absent), IFA_ADDRESS for IPv6. */
  readonly ip: string;
  readonly prefixLength: number;
  readonly scope: number;
}

export interface RtRoute {
  readonly family: 4 | 6;
  readonly dstLength: number;
  /** Destination network text, null for a default route (dstLength 0). */
  readonly dst: string | null;
  readonly gateway: string | null;
  readonly oif: number | null;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  /** RTA_PRIORITY (the metric), null when absent. */
  readonly priority: number | null;
}

export interface RtNeighbour {
  readonly index: number;
  readonly family: 4 | 6;
  readonly ip: string;
  /** Null while unresolved. */
  readonly lladdr: Buffer | null;
  /** ndm_state (NUD_*). */
  readonly state: number;
}

export interface RtLinkChange {
  readonly name?: string;
  readonly address?: Buffer;
  readonly mtu?: number;
  /** ifindex, or 0 to release from the master. */
  readonly master?: number;
}

/** "1.2.3.4" / "fd00::1" → network-order bytes. */
export function ipBytes(ip: string, family: 4 | 6): Buffer {
  const value = ipToBigInt(ip);
  const len = family === 4 ? 4 : 16;
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[len - 1 - i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

function familyOf(raw: number): 4 | 6 | null {
  if (raw === AF_INET) return 4;
  if (raw === AF_INET6) return 6;
  return null;
}

function parseAddress(body: Buffer): RtAddress | null {
  const a = decodeAddress(body);
  const family = a === null ? null : familyOf(a.family);
  if (a === null || family === null || a.address === null) return null;
  return { index: a.index, family, ip: bytesToIp(a.address, family), prefixLength: a.prefixLength, scope: a.scope };
}

function parseNeighbour(body: Buffer): RtNeighbour | null {
  const n = decodeNeighbour(body);
  const family = n === null ? null : familyOf(n.family);
  if (n === null || family === null || n.dst === null) return null;
  return { index: n.index, family, ip: bytesToIp(n.dst, family), lladdr: n.lladdr, state: n.state };
}

function parseRoute(body: Buffer): RtRoute | null {
  const r = decodeRoute(body);
  const family = r === null ? null : familyOf(r.family);
  if (r === null || family === null) return null;
  return {
    family,
    dstLength: r.dstLength,
    dst: r.dst !== null ? bytesToIp(r.dst, family) : r.dstLength === 0 ? null : bytesToIp(Buffer.alloc(family === 4 ? 4 : 16), family),
    gateway: r.gateway !== null ? bytesToIp(r.gateway, family) : null,
    oif: r.oif,
    table: r.table,
    protocol: r.protocol,
    scope: r.scope,
    type: r.type,
    priority: r.priority,
  };
}

/** A refusal as KernelError("netlink: <what>", ERRNO) with the kernel's text; a failed socket (closed, no reply) without errno. */
function kernelErrorOf(what: string, err: unknown): KernelError {
  if (err instanceof NetlinkRejection) {
    const code = canonicalErrno(errnoName(err.errno));
    const detail = err.kernelMessage !== null ? `: ${err.kernelMessage}` : '';
    return new KernelError(`netlink: ${what}`, code, `${describeErrno(code)}${detail}`);
  }
  return new KernelError(`netlink: ${what}`, null, err instanceof Error ? err.message : String(err));
}

/** One rtnetlink socket, bound to the namespace current when open() ran. */
export class Rtnl {
  static open(): Rtnl {
    return new Rtnl(new SyncNetlinkSocket());
  }

  private constructor(private readonly socket: SyncNetlinkSocket) {}

  close(): void {
    this.socket.close();
  }

  /**
   * Runs one request and returns the reply bodies. Async only so callers keep one shape: the work is done on return.
   * A refusal becomes KernelError("netlink: <what>", ERRNO) with the kernel's text when it gave one.
   */
  private async call(what: string, type: number, body: Buffer, flags = 0): Promise<Buffer[]> {
    try {
      return this.socket.requestSync(type, body, flags).map((message) => message.data);
    } catch (err) {
      throw kernelErrorOf(what, err);
    }
  }

  private async setLinkRequest(what: string, request: LinkRequest): Promise<void> {
    await this.call(what, RTM_SETLINK, encodeLinkRequest(request));
  }

  async links(): Promise<RtLink[]> {
    const bodies = await this.call('list links', RTM_GETLINK, encodeDumpRequest(RTM_GETLINK), NLM_F_DUMP);
    return bodies.map(decodeLink).filter((l): l is RtLink => l !== null);
  }

  /** The ifindex of a link by name (an ioctl on the socket: no link message to build and parse); null when absent. */
  indexByName(name: string): number | null {
    try {
      return this.socket.interfaceIndex(name);
    } catch (err) {
      throw new KernelError(`netlink: get link ${name}`, null, err instanceof Error ? err.message : String(err));
    }
  }

  async addresses(): Promise<RtAddress[]> {
    const bodies = await this.call('list addresses', RTM_GETADDR, encodeDumpRequest(RTM_GETADDR), NLM_F_DUMP);
    return bodies.map(parseAddress).filter((a): a is RtAddress => a !== null);
  }

  async routes(): Promise<RtRoute[]> {
    const bodies = await this.call('list routes', RTM_GETROUTE, encodeDumpRequest(RTM_GETROUTE), NLM_F_DUMP);
    return bodies.map(parseRoute).filter((r): r is RtRoute => r !== null);
  }

  /** IPv4 (ARP) and IPv6 (NDP) neighbour entries of every link; a dump with family AF_UNSPEC, which is not the bridge FDB. */
  async neighbours(): Promise<RtNeighbour[]> {
    const bodies = await this.call('list neighbours', RTM_GETNEIGH, encodeDumpRequest(RTM_GETNEIGH), NLM_F_DUMP);
    return bodies.map(parseNeighbour).filter((n): n is RtNeighbour => n !== null);
  }

  /**
   * A REACHABLE neighbour entry, replacing what the kernel holds for that address (`ip neigh replace … nud reachable`):
   * used at once, then aged, re-verified and re-learned by the kernel like an entry it resolved itself. A carrier loss
   * flushes it (only permanent entries survive one): pending carrier changes of the link and its ports are settled first.
   */
  async setReachableNeighbour(index: number, family: 4 | 6, ip: string, lladdr: Buffer, label: string): Promise<void> {
    // A carrier change the kernel has not announced yet would flush the entry once it does: settle it first, the
    // ports' before the link's (a port's carrier change is what moves a bridge's carrier).
    const links = await this.links();
    const settle = [...links.filter((link) => link.master === index), ...links.filter((link) => link.index === index)];
    try {
      for (const link of settle) this.socket.syncLinkState(link.name);
    } catch (err) {
      throw new KernelError(`netlink: set neighbour ${ip} on ${label}`, null, err instanceof Error ? err.message : String(err));
    }
    const body = encodeNeighbourRequest({ family: family === 4 ? AF_INET : AF_INET6, index, state: NUD_REACHABLE, dst: ipBytes(ip, family), lladdr });
    await this.call(`set neighbour ${ip} on ${label}`, RTM_NEWNEIGH, body, NLM_F_CREATE_REPLACE);
  }

  /** RTM_NEWLINK with CREATE|EXCL: a new link of the given kind (bridge, dummy, veth …), down. */
  async createLink(name: string, kind: string, address?: Buffer): Promise<void> {
    await this.call(`create ${kind} ${name}`, RTM_NEWLINK, encodeLinkRequest({ name, kind, ...(address !== undefined ? { address } : {}) }), NLM_F_CREATE_EXCL);
  }

  async deleteLink(index: number, label: string): Promise<void> {
    await this.call(`delete link ${label}`, RTM_DELLINK, encodeLinkRequest({ index }));
  }

  async setGroup(index: number, group: number, label: string): Promise<void> {
    await this.setLinkRequest(`set link ${label} group ${group}`, { index, group });
  }

  /** RTM_DELLINK by group: the kernel unregisters every link of the group in one batch (one RCU grace period). */
  async deleteGroup(group: number, label: string): Promise<void> {
    await this.call(`delete links ${label}`, RTM_DELLINK, encodeLinkRequest({ group }));
  }

  /**
   * deleteGroup run on `worker`'s thread over this socket (open one for it: nothing else may use the socket until the
   * promise settles). Resolves when the kernel has finished, grace periods included.
   */
  async deleteGroupInWorker(group: number, label: string, worker: NetlinkWorker): Promise<void> {
    try {
      await this.socket.requestInWorker(RTM_DELLINK, encodeLinkRequest({ group }), 0, worker);
    } catch (err) {
      throw kernelErrorOf(`delete links ${label}`, err);
    }
  }

  /** Whether the namespace still lists a link with this ifindex (see SyncNetlinkSocket.linkListed). */
  linkListed(index: number): boolean {
    try {
      return this.socket.linkListed(index);
    } catch (err) {
      throw new KernelError(`netlink: get link ifindex ${index}`, null, err instanceof Error ? err.message : String(err));
    }
  }

  async setUp(index: number, up: boolean, label: string): Promise<void> {
    await this.setLinkRequest(`set link ${label} ${up ? 'up' : 'down'}`, { index, up });
  }

  /** One RTM_SETLINK per attribute, in a fixed order, so a failure names exactly what was refused. */
  async change(index: number, change: RtLinkChange, label: string): Promise<void> {
    if (change.name !== undefined) await this.setLinkRequest(`rename link ${label} to ${change.name}`, { index, name: change.name });
    if (change.address !== undefined) await this.setLinkRequest(`set link ${label} address`, { index, address: change.address });
    if (change.mtu !== undefined) await this.setLinkRequest(`set link ${label} mtu ${change.mtu}`, { index, mtu: change.mtu });
    if (change.master !== undefined) {
      const what = change.master === 0 ? `release link ${label} from its master` : `set link ${label} master ${change.master}`;
      await this.setLinkRequest(what, { index, master: change.master });
    }
  }

  /** IFLA_BRPORT_LEARNING through RTM_NEWLINK → IFLA_LINKINFO → IFLA_INFO_SLAVE_DATA (see file comment). */
  async setBridgePortLearning(index: number, learning: boolean, label: string): Promise<void> {
    await this.call(`set bridge port ${label} learning ${learning ? 'on' : 'off'}`, RTM_NEWLINK, encodeLinkRequest({ index, bridgePortLearning: learning }));
  }

  async addAddress(index: number, family: 4 | 6, ip: string, prefixLength: number, label: string): Promise<void> {
    const body = encodeAddressRequest({ family: family === 4 ? AF_INET : AF_INET6, prefixLength, index, address: ipBytes(ip, family) });
    await this.call(`add address ${ip}/${prefixLength} to ${label}`, RTM_NEWADDR, body, NLM_F_CREATE_EXCL);
  }

  async deleteAddress(index: number, family: 4 | 6, ip: string, prefixLength: number, label: string): Promise<void> {
    const body = encodeAddressRequest({ family: family === 4 ? AF_INET : AF_INET6, prefixLength, index, address: ipBytes(ip, family) });
    await this.call(`delete address ${ip}/${prefixLength} from ${label}`, RTM_DELADDR, body);
  }

  /** A unicast route in the main table, proto boot (as `ip route add` makes it). */
  async addRoute(route: { readonly family: 4 | 6; readonly dst: string | null; readonly dstLength: number; readonly oif: number; readonly gateway: string | null }, label: string): Promise<void> {
    const body = encodeRouteRequest({
      family: route.family === 4 ? AF_INET : AF_INET6,
      dstLength: route.dstLength,
      table: RT_TABLE_MAIN,
      protocol: RTPROT_BOOT,
      scope: route.family === 4 && route.gateway === null ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
      type: RTN_UNICAST,
      oif: route.oif,
      ...(route.dst !== null && route.dstLength > 0 ? { dst: ipBytes(route.dst, route.family) } : {}),
      ...(route.gateway !== null ? { gateway: ipBytes(route.gateway, route.family) } : {}),
    });
    await this.call(`add route ${label}`, RTM_NEWROUTE, body, NLM_F_CREATE_EXCL);
  }

  /** Deletes exactly the route given (destination, gateway, device, table, protocol, type, metric); scope is a wildcard. */
  async deleteRoute(route: RtRoute, label: string): Promise<void> {
    const body = encodeRouteRequest({
      family: route.family === 4 ? AF_INET : AF_INET6,
      dstLength: route.dstLength,
      table: route.table < 256 ? route.table : 0,
      protocol: route.protocol,
      scope: RT_SCOPE_NOWHERE,
      type: route.type,
      tableAttr: route.table,
      ...(route.dst !== null && route.dstLength > 0 ? { dst: ipBytes(route.dst, route.family) } : {}),
      ...(route.gateway !== null ? { gateway: ipBytes(route.gateway, route.family) } : {}),
      ...(route.oif !== null ? { oif: route.oif } : {}),
      ...(route.priority !== null ? { priority: route.priority } : {}),
    });
    await this.call(`delete route ${label}`, RTM_DELROUTE, body);
  }
}
