// rtnetlink message bodies (ifinfomsg, ifaddrmsg, rtmsg, ndmsg and their attributes): encode requests, decode replies. Pure.
//
// Only what the agent sends and reads: links (name, MAC, MTU, master, flags, IFLA_LINKINFO with the kind, bridge-port
// learning and tun data), addresses, routes and neighbour entries. Layouts are the kernel's uapi (linux/rtnetlink.h, if_link.h,
// if_addr.h). Attribute types are read with the NLA_F_NESTED / NLA_F_NET_BYTEORDER bits masked off, as the kernel
// sets NLA_F_NESTED on some nests and not on others.

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_GETNEIGH = 30;

export const NLM_F_DUMP = 0x300;
export const NLM_F_CREATE_EXCL = 0x400 | 0x200;
/** NLM_F_CREATE | NLM_F_REPLACE: create, or overwrite what is there (`ip neigh replace`). */
export const NLM_F_CREATE_REPLACE = 0x400 | 0x100;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

const IFF_UP = 0x1;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_GROUP = 27;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const IFLA_INFO_SLAVE_KIND = 4;
const IFLA_INFO_SLAVE_DATA = 5;
const IFLA_BRPORT_LEARNING = 8;
const IFLA_TUN_OWNER = 1;
const IFLA_TUN_GROUP = 2;
const IFLA_TUN_PI = 4;
const IFLA_TUN_VNET_HDR = 5;
const IFLA_TUN_PERSIST = 6;
const IFLA_TUN_MULTI_QUEUE = 7;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_TABLE = 15;

const NDA_DST = 1;
const NDA_LLADDR = 2;

const NLA_TYPE_MASK = 0x3fff;

// ---------------------------------------------------------------------------------------------------------------------
// Attributes

/** One attribute: type and payload (padding is added on encode). */
export interface Attr {
  readonly type: number;
  readonly payload: Buffer;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

export function encodeAttrs(attrs: readonly Attr[]): Buffer {
  const out = Buffer.alloc(attrs.reduce((sum, a) => sum + align4(4 + a.payload.length), 0));
  let offset = 0;
  for (const a of attrs) {
    out.writeUInt16LE(4 + a.payload.length, offset);
    out.writeUInt16LE(a.type, offset + 2);
    a.payload.copy(out, offset + 4);
    offset += align4(4 + a.payload.length);
  }
  return out;
}

/** type → payload (the last one wins); stops quietly at a truncated attribute, as the kernel's nla_parse does. */
export function decodeAttrs(buf: Buffer): Map<number, Buffer> {
  const attrs = new Map<number, Buffer>();
  let offset = 0;
  while (offset + 4 <= buf.length) {
    const length = buf.readUInt16LE(offset);
    if (length < 4 || offset + length > buf.length) break;
    attrs.set(buf.readUInt16LE(offset + 2) & NLA_TYPE_MASK, buf.subarray(offset + 4, offset + length));
    offset += align4(length);
  }
  return attrs;
}

function u8(value: number): Buffer {
  return Buffer.from([value & 0xff]);
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
}

function cString(text: string): Buffer {
  return Buffer.concat([Buffer.from(text, 'utf8'), Buffer.alloc(1)]);
}

function readU32(buf: Buffer | undefined): number | null {
  return buf !== undefined && buf.length >= 4 ? buf.readUInt32LE(0) : null;
}

function readFlag(buf: Buffer | undefined): boolean {
  return buf !== undefined && buf.length >= 1 && buf[0] !== 0;
}

function readString(buf: Buffer | undefined): string | null {
  if (buf === undefined) return null;
  const end = buf.indexOf(0);
  return buf.subarray(0, end === -1 ? buf.length : end).toString('utf8');
}

// ---------------------------------------------------------------------------------------------------------------------
// Links

/** ifinfomsg: family, type, index, flags, change. */
function ifinfomsg(fields: { readonly index?: number; readonly flags?: number; readonly change?: number }): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(fields.index ?? 0, 4);
  b.writeUInt32LE((fields.flags ?? 0) >>> 0, 8);
  b.writeUInt32LE((fields.change ?? 0) >>> 0, 12);
  return b;
}

export interface LinkRequest {
  readonly index?: number;
  /** IFF_UP wanted on (true) or off (false); undefined leaves the flag alone. */
  readonly up?: boolean;
  readonly name?: string;
  readonly address?: Buffer;
  readonly mtu?: number;
  /** ifindex of the master, 0 to release. */
  readonly master?: number;
  /** IFLA_LINKINFO → IFLA_INFO_KIND (creating a link). */
  readonly kind?: string;
  /** IFLA_GROUP: the link's group (RTM_SETLINK), or with no index every link of that group (RTM_DELLINK). */
  readonly group?: number;
  /** IFLA_LINKINFO → IFLA_INFO_SLAVE_KIND "bridge" → IFLA_INFO_SLAVE_DATA → IFLA_BRPORT_LEARNING. */
  readonly bridgePortLearning?: boolean;
}

/** The body of an RTM_NEWLINK / RTM_SETLINK / RTM_DELLINK / RTM_GETLINK request. */
export function encodeLinkRequest(request: LinkRequest): Buffer {
  const attrs: Attr[] = [];
  if (request.name !== undefined) attrs.push({ type: IFLA_IFNAME, payload: cString(request.name) });
  if (request.address !== undefined) attrs.push({ type: IFLA_ADDRESS, payload: request.address });
  if (request.mtu !== undefined) attrs.push({ type: IFLA_MTU, payload: u32(request.mtu) });
  if (request.master !== undefined) attrs.push({ type: IFLA_MASTER, payload: u32(request.master) });
  if (request.group !== undefined) attrs.push({ type: IFLA_GROUP, payload: u32(request.group) });
  const info: Attr[] = [];
  if (request.kind !== undefined) info.push({ type: IFLA_INFO_KIND, payload: cString(request.kind) });
  if (request.bridgePortLearning !== undefined) {
    info.push({ type: IFLA_INFO_SLAVE_KIND, payload: cString('bridge') });
    info.push({ type: IFLA_INFO_SLAVE_DATA, payload: encodeAttrs([{ type: IFLA_BRPORT_LEARNING, payload: u8(request.bridgePortLearning ? 1 : 0) }]) });
  }
  if (info.length > 0) attrs.push({ type: IFLA_LINKINFO, payload: encodeAttrs(info) });
  const header = ifinfomsg({
    ...(request.index !== undefined ? { index: request.index } : {}),
    ...(request.up !== undefined ? { flags: request.up ? IFF_UP : 0, change: IFF_UP } : {}),
  });
  return Buffer.concat([header, encodeAttrs(attrs)]);
}

export interface DecodedTun {
  readonly owner: number | null;
  readonly group: number | null;
  readonly multiQueue: boolean;
  readonly persist: boolean;
  readonly vnetHdr: boolean;
  readonly pi: boolean;
}

export interface DecodedLink {
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
  readonly tun: DecodedTun | null;
}

/** An RTM_NEWLINK body; null when it lacks an index or a name. */
export function decodeLink(body: Buffer): DecodedLink | null {
  if (body.length < 16) return null;
  const index = body.readInt32LE(4);
  const flags = body.readUInt32LE(8);
  const attrs = decodeAttrs(body.subarray(16));
  const name = readString(attrs.get(IFLA_IFNAME));
  if (index <= 0 || name === null) return null;
  let kind: string | null = null;
  let learning: boolean | null = null;
  let tun: DecodedTun | null = null;
  const linkinfo = attrs.get(IFLA_LINKINFO);
  if (linkinfo !== undefined) {
    const info = decodeAttrs(linkinfo);
    kind = readString(info.get(IFLA_INFO_KIND));
    const slaveData = info.get(IFLA_INFO_SLAVE_DATA);
    if (readString(info.get(IFLA_INFO_SLAVE_KIND)) === 'bridge' && slaveData !== undefined) {
      const port = decodeAttrs(slaveData).get(IFLA_BRPORT_LEARNING);
      if (port !== undefined) learning = readFlag(port);
    }
    const data = info.get(IFLA_INFO_DATA);
    if (kind === 'tun' && data !== undefined) {
      const t = decodeAttrs(data);
      tun = {
        owner: readU32(t.get(IFLA_TUN_OWNER)),
        group: readU32(t.get(IFLA_TUN_GROUP)),
        multiQueue: readFlag(t.get(IFLA_TUN_MULTI_QUEUE)),
        persist: readFlag(t.get(IFLA_TUN_PERSIST)),
        vnetHdr: readFlag(t.get(IFLA_TUN_VNET_HDR)),
        pi: readFlag(t.get(IFLA_TUN_PI)),
      };
    }
  }
  const master = readU32(attrs.get(IFLA_MASTER));
  return {
    index,
    name,
    kind,
    address: attrs.has(IFLA_ADDRESS) ? Buffer.from(attrs.get(IFLA_ADDRESS) ?? []) : null,
    mtu: readU32(attrs.get(IFLA_MTU)) ?? 0,
    up: (flags & IFF_UP) !== 0,
    master: master !== null && master !== 0 ? master : null,
    learning,
    tun,
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Addresses

export interface AddressRequest {
  readonly family: number;
  readonly prefixLength: number;
  readonly index: number;
  /** Network-order address bytes; IPv4 goes in IFA_LOCAL and IFA_ADDRESS (as ip does), IPv6 in IFA_ADDRESS. */
  readonly address: Buffer;
}

/** The body of an RTM_NEWADDR / RTM_DELADDR request. */
export function encodeAddressRequest(request: AddressRequest): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(request.family, 0);
  header.writeUInt8(request.prefixLength, 1);
  header.writeUInt32LE(request.index, 4);
  const attrs: Attr[] =
    request.family === AF_INET
      ? [
          { type: IFA_LOCAL, payload: request.address },
          { type: IFA_ADDRESS, payload: request.address },
        ]
      : [{ type: IFA_ADDRESS, payload: request.address }];
  return Buffer.concat([header, encodeAttrs(attrs)]);
}

/** The body of a dump request: an all-zero family header (ifinfomsg 16, ifaddrmsg 8, rtmsg and ndmsg 12 bytes). */
export function encodeDumpRequest(type: typeof RTM_GETLINK | typeof RTM_GETADDR | typeof RTM_GETROUTE | typeof RTM_GETNEIGH): Buffer {
  return Buffer.alloc(type === RTM_GETLINK ? 16 : type === RTM_GETADDR ? 8 : 12);
}

export interface DecodedAddress {
  readonly family: number;
  readonly prefixLength: number;
  readonly scope: number;
  readonly index: number;
  /** IFA_LOCAL for IPv4 (IFA_ADDRESS when absent), IFA_ADDRESS for IPv6. */
  readonly address: Buffer | null;
}

export function decodeAddress(body: Buffer): DecodedAddress | null {
  if (body.length < 8) return null;
  const family = body.readUInt8(0);
  const attrs = decodeAttrs(body.subarray(8));
  const address = family === AF_INET ? (attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS)) : attrs.get(IFA_ADDRESS);
  return {
    family,
    prefixLength: body.readUInt8(1),
    scope: body.readUInt8(3),
    index: body.readUInt32LE(4),
    address: address !== undefined ? Buffer.from(address) : null,
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Routes

export interface RouteRequest {
  readonly family: number;
  readonly dstLength: number;
  /** rtm_table: the table id when below 256, else 0 with RTA_TABLE carrying it. */
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  readonly dst?: Buffer;
  readonly gateway?: Buffer;
  readonly oif?: number;
  readonly priority?: number;
  /** RTA_TABLE (full 32-bit table id). */
  readonly tableAttr?: number;
}

/** The body of an RTM_NEWROUTE / RTM_DELROUTE request. */
export function encodeRouteRequest(request: RouteRequest): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt8(request.family, 0);
  header.writeUInt8(request.dstLength, 1);
  header.writeUInt8(request.table & 0xff, 4);
  header.writeUInt8(request.protocol, 5);
  header.writeUInt8(request.scope, 6);
  header.writeUInt8(request.type, 7);
  const attrs: Attr[] = [];
  if (request.tableAttr !== undefined) attrs.push({ type: RTA_TABLE, payload: u32(request.tableAttr) });
  if (request.dst !== undefined) attrs.push({ type: RTA_DST, payload: request.dst });
  if (request.oif !== undefined) attrs.push({ type: RTA_OIF, payload: u32(request.oif) });
  if (request.gateway !== undefined) attrs.push({ type: RTA_GATEWAY, payload: request.gateway });
  if (request.priority !== undefined) attrs.push({ type: RTA_PRIORITY, payload: u32(request.priority) });
  return Buffer.concat([header, encodeAttrs(attrs)]);
}

export interface DecodedRoute {
  readonly family: number;
  readonly dstLength: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  readonly type: number;
  readonly dst: Buffer | null;
  readonly gateway: Buffer | null;
  readonly oif: number | null;
  readonly priority: number | null;
}

export function decodeRoute(body: Buffer): DecodedRoute | null {
  if (body.length < 12) return null;
  const attrs = decodeAttrs(body.subarray(12));
  const dst = attrs.get(RTA_DST);
  const gateway = attrs.get(RTA_GATEWAY);
  return {
    family: body.readUInt8(0),
    dstLength: body.readUInt8(1),
    table: readU32(attrs.get(RTA_TABLE)) ?? body.readUInt8(4),
    protocol: body.readUInt8(5),
    scope: body.readUInt8(6),
    type: body.readUInt8(7),
    dst: dst !== undefined ? Buffer.from(dst) : null,
    gateway: gateway !== undefined ? Buffer.from(gateway) : null,
    oif: readU32(attrs.get(RTA_OIF)),
    priority: readU32(attrs.get(RTA_PRIORITY)),
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Neighbour entries (ARP / NDP)

export const NUD_INCOMPLETE = 0x01;
export const NUD_REACHABLE = 0x02;
export const NUD_STALE = 0x04;
export const NUD_DELAY = 0x08;
export const NUD_PROBE = 0x10;
export const NUD_FAILED = 0x20;
export const NUD_NOARP = 0x40;
export const NUD_PERMANENT = 0x80;
/** States in which the entry holds a link-layer address the kernel sends to (NUD_VALID in include/net/neighbour.h). */
export const NUD_VALID = NUD_PERMANENT | NUD_NOARP | NUD_REACHABLE | NUD_PROBE | NUD_STALE | NUD_DELAY;

export interface NeighbourRequest {
  readonly family: number;
  readonly index: number;
  /** ndm_state, e.g. NUD_REACHABLE. */
  readonly state: number;
  /** Network-order IP bytes (NDA_DST). */
  readonly dst: Buffer;
  /** The link-layer address (NDA_LLADDR). */
  readonly lladdr: Buffer;
}

/** ndmsg: family, pad, pad, ifindex, state, flags, type (12 bytes). */
function ndmsg(family: number, index: number, state: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt16LE(state, 8);
  return b;
}

/** The body of an RTM_NEWNEIGH request. */
export function encodeNeighbourRequest(request: NeighbourRequest): Buffer {
  return Buffer.concat([
    ndmsg(request.family, request.index, request.state),
    encodeAttrs([
      { type: NDA_DST, payload: request.dst },
      { type: NDA_LLADDR, payload: request.lladdr },
    ]),
  ]);
}

export interface DecodedNeighbour {
  readonly family: number;
  readonly index: number;
  readonly state: number;
  readonly dst: Buffer | null;
  /** Absent while the entry is unresolved (INCOMPLETE, FAILED). */
  readonly lladdr: Buffer | null;
}

export function decodeNeighbour(body: Buffer): DecodedNeighbour | null {
  if (body.length < 12) return null;
  const attrs = decodeAttrs(body.subarray(12));
  const dst = attrs.get(NDA_DST);
  const lladdr = attrs.get(NDA_LLADDR);
  return {
    family: body.readUInt8(0),
    index: body.readInt32LE(4),
    state: body.readUInt16LE(8),
    dst: dst !== undefined ? Buffer.from(dst) : null,
    lladdr: lladdr !== undefined ? Buffer.from(lladdr) : null,
  };
}
