// Typed rtnetlink over the npm `netlink` package (0.3.0): the only module that touches its API; plain types out, KernelError on failure.
//
// The package formats and parses the messages; its asynchronous socket is replaced by a blocking one (netlink-sync.ts,
// ~10 µs per request instead of ~180 µs), whose refusals carry the errno and the kernel's extended-ack text.
// Limitations of the library and how this module works around them:
//   * ifla.formatInfo()/formatBridgePort() return StreamData (a function), not bytes: serialised with an AttrStream.
//   * AttrStream.push() masks attribute types to 14 bits, so NLA_F_NESTED can never be set. The kernel's AF_BRIDGE
//     RTM_SETLINK path needs IFLA_PROTINFO with NLA_F_NESTED (without it the payload is read as a bare STP state byte).
//     Learning is therefore set through RTM_NEWLINK on the existing port with IFLA_LINKINFO → IFLA_INFO_SLAVE_DATA →
//     IFLA_BRPORT_LEARNING (what `ip link set P type bridge_slave learning off` sends; those nests are parsed leniently).
//     Reading needs no AF_BRIDGE dump either: a plain RTM_GETLINK dump carries IFLA_INFO_SLAVE_KIND "bridge" and the
//     same IFLA_BRPORT_* attributes in IFLA_INFO_SLAVE_DATA for every bridge port.
//   * Parsed enums come back as names ("BOOT", "LINK") or as numbers for unknown values: mapped back to numbers.
//   * The socket belongs to the network namespace in which it was created (see agent/netns.ts).
import * as nl from 'netlink';
import { bigIntToIp, ipToBigInt } from '../ip.js';
import { canonicalErrno, describeErrno, errnoName, KernelError } from './kernel-error.js';
import { NetlinkRejection, SyncNetlinkSocket } from './netlink-sync.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTPROT_BOOT = 3;
const RTN_UNICAST = 1;

export interface RtTun {
  readonly owner: number | null;
  readonly group: number | null;
  readonly multiQueue: boolean;
  readonly persist: boolean;
  readonly vnetHdr: boolean;
  readonly pi: boolean;
}

export interface RtLink {
  readonly index: number;
  readonly name: string;
  /** IFLA_INFO_KIND, null when the link has none (lo, physical NICs). */
  readonly kind: string | null;
  /** IFLA_ADDRESS bytes; null when absent (L3 devices). */
  readonly address: Buffer | null;
  readonly mtu: number;
  readonly up: boolean;
  /** IFLA_MASTER, null when not enslaved. */
  readonly master: number | null;
  /** IFLA_BRPORT_LEARNING for bridge ports, else null. */
  readonly learning: boolean | null;
  readonly tun: RtTun | null;
}

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

/** Network-order bytes → text ("10.0.2.1", "fd10:0:2::1"). */
export function bytesIp(bytes: Buffer, family: 4 | 6): string {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return bigIntToIp(value, family);
}

function toBytes(data: nl.StreamData): Buffer {
  const stream = new nl.AttrStream();
  stream.emit(data);
  return Buffer.concat(stream.bufs);
}

function enumNumber(value: unknown, table: Readonly<Record<string, unknown>>, fallback: number): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const n = table[value];
    if (typeof n === 'number') return n;
  }
  return fallback;
}

function u32(buf: Buffer | undefined): number | null {
  return buf !== undefined && buf.length >= 4 ? buf.readUInt32LE(0) : null;
}

function u8flag(buf: Buffer | undefined): boolean {
  return buf !== undefined && buf.length >= 1 && buf[0] !== 0;
}

function familyOf(raw: number | undefined): 4 | 6 | null {
  if (raw === AF_INET) return 4;
  if (raw === AF_INET6) return 6;
  return null;
}

function parseLink(msg: nl.rt.LinkMessage): RtLink | null {
  const { data, attrs } = msg;
  if (data.index === undefined || attrs.ifname === undefined) return null;
  let kind: string | null = null;
  let learning: boolean | null = null;
  let tun: RtTun | null = null;
  if (attrs.linkinfo !== undefined) {
    const info = nl.ifla.parseInfo(attrs.linkinfo);
    kind = info.kind ?? null;
    if (info.slaveKind === 'bridge' && info.slaveData !== undefined) {
      const port = nl.ifla.parseBridgePort(info.slaveData);
      if (port.learning !== undefined) learning = port.learning !== 0;
    }
    if (kind === 'tun' && info.data !== undefined) {
      const t = nl.ifla.parseTun(info.data);
      tun = {
        owner: u32(t.owner),
        group: u32(t.group),
        multiQueue: u8flag(t.multiQueue),
        persist: u8flag(t.persist),
        vnetHdr: u8flag(t.vnetHdr),
        pi: u8flag(t.pi),
      };
    }
  }
  return {
    index: data.index,
    name: attrs.ifname,
    kind,
    address: attrs.address ?? null,
    mtu: attrs.mtu ?? 0,
    up: data.flags?.up === true,
    master: attrs.master !== undefined && attrs.master !== 0 ? attrs.master : null,
    learning,
    tun,
  };
}

function parseAddress(msg: nl.rt.AddressMessage): RtAddress | null {
  const family = familyOf(msg.data.family);
  if (family === null || msg.data.index === undefined) return null;
  const bytes = family === 4 ? (msg.attrs.local ?? msg.attrs.address) : msg.attrs.address;
  if (bytes === undefined) return null;
  return { index: msg.data.index, family, ip: bytesIp(bytes, family), prefixLength: msg.data.prefixlen ?? 0, scope: msg.data.scope ?? 0 };
}

function parseRoute(msg: nl.rt.RouteMessage): RtRoute | null {
  const { data, attrs } = msg;
  const family = familyOf(data.family);
  if (family === null) return null;
  const dstLength = data.dstLen ?? 0;
  return {
    family,
    dstLength,
    dst: attrs.dst !== undefined ? bytesIp(attrs.dst, family) : dstLength === 0 ? null : bytesIp(Buffer.alloc(family === 4 ? 4 : 16), family),
    gateway: attrs.gateway !== undefined ? bytesIp(attrs.gateway, family) : null,
    oif: attrs.oif ?? null,
    table: attrs.table ?? data.table ?? 0,
    protocol: enumNumber(data.protocol, nl.rt.RouteProtocol as unknown as Record<string, unknown>, 0),
    scope: enumNumber(data.scope, nl.rt.RouteScope as unknown as Record<string, unknown>, 0),
    type: enumNumber(data.type, nl.rt.RouteType as unknown as Record<string, unknown>, 0),
    priority: attrs.priority ?? null,
  };
}

const CREATE_EXCL = { flags: nl.FlagsNew.CREATE | nl.FlagsNew.EXCL };

/** One rtnetlink socket, bound to the namespace current when open() ran. */
export class Rtnl {
  static open(): Rtnl {
    // The package's RtNetlinkSocket formats and parses; the blocking socket under it moves the bytes (netlink-sync.ts).
    const transport = new SyncNetlinkSocket();
    return new Rtnl(new nl.RtNetlinkSocket(transport as unknown as nl.NetlinkSocket), transport);
  }

  private constructor(
    private readonly socket: nl.RtNetlinkSocket,
    private readonly transport: SyncNetlinkSocket,
  ) {}

  close(): void {
    this.transport.close();
  }

  /** Runs one request; a refusal becomes KernelError("netlink: <what>", ERRNO) with the kernel's text when it gave one. */
  private async call<T>(what: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (err instanceof NetlinkRejection) {
        const code = canonicalErrno(errnoName(err.errno));
        const detail = err.kernelMessage !== null ? `: ${err.kernelMessage}` : '';
        throw new KernelError(`netlink: ${what}`, code, `${describeErrno(code)}${detail}`);
      }
      // The socket itself failed (closed, no reply, a malformed reply): no errno from the kernel.
      throw new KernelError(`netlink: ${what}`, null, err instanceof Error ? err.message : String(err));
    }
  }

  async links(): Promise<RtLink[]> {
    const msgs = await this.call('list links', () => this.socket.getLinks());
    return msgs.map(parseLink).filter((l): l is RtLink => l !== null);
  }

  /** The ifindex of a link by name (an ioctl on the socket: no link message to build and parse); null when absent. */
  indexByName(name: string): number | null {
    try {
      return this.transport.interfaceIndex(name);
    } catch (err) {
      throw new KernelError(`netlink: get link ${name}`, null, err instanceof Error ? err.message : String(err));
    }
  }

  async addresses(): Promise<RtAddress[]> {
    const msgs = await this.call('list addresses', () => this.socket.getAddresses());
    return msgs.map(parseAddress).filter((a): a is RtAddress => a !== null);
  }

  async routes(): Promise<RtRoute[]> {
    const msgs = await this.call('list routes', () => this.socket.getRoutes());
    return msgs.map(parseRoute).filter((r): r is RtRoute => r !== null);
  }

  /** RTM_NEWLINK with CREATE|EXCL: a new link of the given kind (bridge, dummy, veth …), down. */
  async createLink(name: string, kind: string, address?: Buffer): Promise<void> {
    const attrs: nl.ifla.LinkAttrs = { ifname: name, linkinfo: toBytes(nl.ifla.formatInfo({ kind })) };
    if (address !== undefined) attrs.address = address;
    await this.call(`create ${kind} ${name}`, () => this.socket.newLink({}, attrs, CREATE_EXCL));
  }

  async deleteLink(index: number, label: string): Promise<void> {
    await this.call(`delete link ${label}`, () => this.socket.delLink({ index }));
  }

  async setUp(index: number, up: boolean, label: string): Promise<void> {
    await this.call(`set link ${label} ${up ? 'up' : 'down'}`, () =>
      this.socket.setLink({ index, flags: up ? { up: true } : {}, change: { up: true } }),
    );
  }

  /** One RTM_SETLINK per attribute, in a fixed order, so a failure names exactly what was refused. */
  async change(index: number, change: RtLinkChange, label: string): Promise<void> {
    if (change.name !== undefined) {
      const name = change.name;
      await this.call(`rename link ${label} to ${name}`, () => this.socket.setLink({ index }, { ifname: name }));
    }
    if (change.address !== undefined) {
      const address = change.address;
      await this.call(`set link ${label} address`, () => this.socket.setLink({ index }, { address }));
    }
    if (change.mtu !== undefined) {
      const mtu = change.mtu;
      await this.call(`set link ${label} mtu ${mtu}`, () => this.socket.setLink({ index }, { mtu }));
    }
    if (change.master !== undefined) {
      const master = change.master;
      await this.call(master === 0 ? `release link ${label} from its master` : `set link ${label} master ${master}`, () =>
        this.socket.setLink({ index }, { master }),
      );
    }
  }

  /** IFLA_BRPORT_LEARNING through RTM_NEWLINK → IFLA_LINKINFO → IFLA_INFO_SLAVE_DATA (see file comment). */
  async setBridgePortLearning(index: number, learning: boolean, label: string): Promise<void> {
    const slaveData = toBytes(nl.ifla.formatBridgePort({ learning: learning ? 1 : 0 }));
    const linkinfo = toBytes(nl.ifla.formatInfo({ slaveKind: 'bridge', slaveData }));
    await this.call(`set bridge port ${label} learning ${learning ? 'on' : 'off'}`, () => this.socket.newLink({ index }, { linkinfo }));
  }

  async addAddress(index: number, family: 4 | 6, ip: string, prefixLength: number, label: string): Promise<void> {
    const bytes = ipBytes(ip, family);
    const attrs: nl.rt.AddressAttrs = family === 4 ? { local: bytes, address: bytes } : { address: bytes };
    await this.call(`add address ${ip}/${prefixLength} to ${label}`, () =>
      this.socket.newAddress({ family: family === 4 ? AF_INET : AF_INET6, prefixlen: prefixLength, index }, attrs, CREATE_EXCL),
    );
  }

  async deleteAddress(index: number, family: 4 | 6, ip: string, prefixLength: number, label: string): Promise<void> {
    const bytes = ipBytes(ip, family);
    const attrs: nl.rt.AddressAttrs = family === 4 ? { local: bytes, address: bytes } : { address: bytes };
    await this.call(`delete address ${ip}/${prefixLength} from ${label}`, () =>
      this.socket.delAddress({ family: family === 4 ? AF_INET : AF_INET6, prefixlen: prefixLength, index }, attrs),
    );
  }

  /** A unicast route in the main table, proto boot (as `ip route add` makes it). */
  async addRoute(route: { readonly family: 4 | 6; readonly dst: string | null; readonly dstLength: number; readonly oif: number; readonly gateway: string | null }, label: string): Promise<void> {
    const attrs: nl.rt.RouteAttrs = { oif: route.oif };
    if (route.dst !== null && route.dstLength > 0) attrs.dst = ipBytes(route.dst, route.family);
    if (route.gateway !== null) attrs.gateway = ipBytes(route.gateway, route.family);
    const scope = route.family === 4 && route.gateway === null ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    await this.call(`add route ${label}`, () =>
      this.socket.newRoute(
        { family: route.family === 4 ? AF_INET : AF_INET6, dstLen: route.dstLength, table: RT_TABLE_MAIN, protocol: RTPROT_BOOT, scope, type: RTN_UNICAST },
        attrs,
        CREATE_EXCL,
      ),
    );
  }

  /** Deletes exactly the route given (destination, gateway, device, table, protocol, type, metric); scope is a wildcard. */
  async deleteRoute(route: RtRoute, label: string): Promise<void> {
    const attrs: nl.rt.RouteAttrs = { table: route.table };
    if (route.dst !== null && route.dstLength > 0) attrs.dst = ipBytes(route.dst, route.family);
    if (route.gateway !== null) attrs.gateway = ipBytes(route.gateway, route.family);
    if (route.oif !== null) attrs.oif = route.oif;
    if (route.priority !== null) attrs.priority = route.priority;
    await this.call(`delete route ${label}`, () =>
      this.socket.delRoute(
        {
          family: route.family === 4 ? AF_INET : AF_INET6,
          dstLen: route.dstLength,
          table: route.table < 256 ? route.table : 0,
          protocol: route.protocol,
          scope: RT_SCOPE_NOWHERE,
          type: route.type,
        },
        attrs,
      ),
    );
  }
}
