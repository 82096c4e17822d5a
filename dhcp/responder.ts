// Single-client DHCPv4 decision logic: one decoded request + the interface's DhcpV4Plan → reply, ignore or log. Pure.
//
// Semantics (KubeVirt §7 answers DISCOVER/REQUEST only and always ACKs; this is stricter and RFC 2131-correct):
// - op ≠ BOOTREQUEST, no option 53 (plain BOOTP) or a server-side message type → ignore.
// - plan.clientMac non-null and chaddr differs (case- and separator-insensitive) → ignore. null answers any chaddr.
// - DISCOVER → OFFER of plan.yiaddr. REQUEST → ACK when the requested address (option 50, else ciaddr when
//   renewing/rebinding) is plan.yiaddr or absent, else NAK. A REQUEST or RELEASE/DECLINE naming another server
//   (option 54) → ignore (the client chose someone else). INFORM → ACK with yiaddr 0 and no lease times
//   (51/58/59, RFC 2131 §3.4/§4.3.5). RELEASE/DECLINE → a log record, never a reply (the address is fixed).
// - Reply options: 53; 54 from plan.serverIdentifier (always, so the REQUEST check and the wire agree); the plan's
//   options verbatim (hex → bytes), with 51 from plan.leaseSeconds and 1 from plan.prefixLength added when the plan
//   omits them; the client identifier (61) echoed (RFC 6842) and relay agent information (82) echoed (RFC 3046).
//   NAK carries 53, 54 and the 61/82 echoes only (RFC 2131 table 3, RFC 6842). siaddr is 0 (no next server).
// - Option 55: every option is still sent (as KubeVirt does), but the requested ones go first, in the client's
//   order, then the rest by code.
// - Size: replies fit the client's option 57 (a datagram size, minus 28 bytes of IP/UDP, never below the RFC
//   minimum of 576) or 548 bytes without it. The codec first overloads (52) into file/sname; if that is not
//   enough, options are dropped lowest priority first: unrequested plan options (highest code first), then
//   requested ones (last requested first), then the 82/61 echoes, then 3, 1, 51. 53 and 54 are never dropped.
//   Echoes longer than 255 bytes (pathological; real ones are ≤ 131) are never sent, so a hostile client cannot
//   push the plan's options out. Dropped codes are reported so the server can log them.
// - Destination (RFC 2131 §4.1): giaddr ≠ 0 → giaddr:67 (relay; perfdhcp relies on it; a NAK also gets the
//   broadcast bit so the relay broadcasts it); else NAK → 255.255.255.255:68; else ciaddr ≠ 0 → ciaddr:68;
//   else 255.255.255.255:68, whatever the broadcast flag says: a unicast to yiaddr would need an ARP entry
//   injected for an address the client does not yet answer for, which we do not do.
import type { DhcpV4Plan } from '../agent/plan/plan-types.js';
import {
  BOOTREPLY,
  BOOTREQUEST,
  BROADCAST_FLAG,
  DEFAULT_MAX_MESSAGE_SIZE,
  DhcpMessageType,
  DhcpOption,
  IP_UDP_HEADER_LENGTH,
  MAX_PACKET_LENGTH,
  formatIPv4,
  messageTypeName,
  normalizeHardwareAddress,
  parseIPv4,
  tryEncodeDhcpPacket,
  type DhcpPacket,
} from './packet.js';

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const LIMITED_BROADCAST = '255.255.255.255';
const ZERO = '0.0.0.0';
/** RFC 2132 §9.10: the smallest legal option 57 value. */
const MIN_MAX_MESSAGE_SIZE = 576;
/** Longest client identifier (61) or relay agent information (82) we echo. */
const MAX_ECHO_LENGTH = 255;

export interface DhcpDestination {
  readonly address: string;
  readonly port: number;
  /** True when sent to 255.255.255.255 (the socket needs SO_BROADCAST and must egress the bridge). */
  readonly broadcast: boolean;
}

export interface DhcpReplyDecision {
  readonly kind: 'reply';
  readonly reply: DhcpPacket;
  /** `reply` encoded, ready to send. */
  readonly wire: Buffer;
  readonly destination: DhcpDestination;
  /** Why this reply (notably the NAK reason), for the exchange log line. */
  readonly note: string;
  /** Option codes left out to fit the client's maximum message size. */
  readonly dropped: readonly number[];
  /** Plan entries that could not be used (bad code or hex). */
  readonly warnings: readonly string[];
}

export interface DhcpIgnoreDecision {
  readonly kind: 'ignore';
  readonly ignore: string;
}

export interface DhcpLogDecision {
  readonly kind: 'log';
  readonly log: 'release' | 'decline';
  readonly mac: string;
  /** RELEASE: ciaddr; DECLINE: option 50. null when absent or malformed. */
  readonly address: string | null;
  /** Option 56 text from the client, if any (latin1, control characters replaced). */
  readonly message: string | null;
}

export type DhcpDecision = DhcpReplyDecision | DhcpIgnoreDecision | DhcpLogDecision;

interface CompiledPlan {
  readonly mac: string | null;
  readonly serverId: Buffer | null;
  readonly yiaddr: Buffer | null;
  /** Options the plan contributes (51 and 1 defaulted), without 53/54. */
  readonly options: ReadonlyMap<number, Buffer>;
  readonly warnings: readonly string[];
}

const compiled = new WeakMap<DhcpV4Plan, CompiledPlan>();

function prefixToMask(prefix: number): Buffer {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(mask);
  return b;
}

function compilePlan(plan: DhcpV4Plan): CompiledPlan {
  const cached = compiled.get(plan);
  if (cached !== undefined) return cached;
  const warnings: string[] = [];
  const options = new Map<number, Buffer>();
  for (const [key, hex] of Object.entries(plan.options)) {
    const code = /^[0-9]{1,3}$/.test(key) ? Number(key) : NaN;
    if (!(code >= 1 && code <= 254) || code === DhcpOption.OVERLOAD || code === DhcpOption.MESSAGE_TYPE) {
      warnings.push(`plan option ${JSON.stringify(key)} is not a code the plan may set; skipped`);
      continue;
    }
    if (code === DhcpOption.SERVER_IDENTIFIER) continue; // always from plan.serverIdentifier
    if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex) || hex.length > 2 * MAX_PACKET_LENGTH) {
      warnings.push(`plan option ${code} payload is not hex; skipped`);
      continue;
    }
    options.set(code, Buffer.from(hex, 'hex'));
  }
  if (!options.has(DhcpOption.LEASE_TIME)) {
    if (Number.isInteger(plan.leaseSeconds) && plan.leaseSeconds >= 0 && plan.leaseSeconds <= 0xffffffff) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(plan.leaseSeconds);
      options.set(DhcpOption.LEASE_TIME, b);
    } else {
      warnings.push(`plan leaseSeconds ${plan.leaseSeconds} is not a uint32; option 51 omitted`);
    }
  }
  if (!options.has(DhcpOption.SUBNET_MASK)) {
    if (Number.isInteger(plan.prefixLength) && plan.prefixLength >= 0 && plan.prefixLength <= 32) {
      options.set(DhcpOption.SUBNET_MASK, prefixToMask(plan.prefixLength));
    } else {
      warnings.push(`plan prefixLength ${plan.prefixLength} is not 0..32; option 1 omitted`);
    }
  }
  let mac: string | null = null;
  if (plan.clientMac !== null) {
    mac = normalizeHardwareAddress(plan.clientMac);
    // An unparsable MAC must not turn into "answer anyone": keep a value no chaddr can match.
    if (mac === null) {
      warnings.push(`plan clientMac ${JSON.stringify(plan.clientMac)} is not a MAC; nothing will be answered`);
      mac = '!';
    }
  }
  const serverId = parseIPv4(plan.serverIdentifier);
  if (serverId === null) warnings.push(`plan serverIdentifier ${JSON.stringify(plan.serverIdentifier)} is not IPv4`);
  const yiaddr = parseIPv4(plan.yiaddr);
  if (yiaddr === null) warnings.push(`plan yiaddr ${JSON.stringify(plan.yiaddr)} is not IPv4`);
  const result: CompiledPlan = { mac, serverId, yiaddr, options, warnings };
  compiled.set(plan, result);
  return result;
}

function ipv4Option(p: DhcpPacket, code: number): string | null | 'malformed' {
  const v = p.options.get(code);
  if (v === undefined) return null;
  if (v.length !== 4) return 'malformed';
  return formatIPv4(v);
}

/** Codes the client asked for (option 55), in its order, without duplicates or framing codes. */
function requestedCodes(p: DhcpPacket): number[] {
  const list = p.options.get(DhcpOption.PARAMETER_REQUEST_LIST);
  if (list === undefined) return [];
  const out: number[] = [];
  const seen = new Set<number>();
  for (const code of list) {
    if (code === 0 || code === 255 || code === DhcpOption.OVERLOAD || code === DhcpOption.MESSAGE_TYPE || seen.has(code)) continue;
    seen.add(code);
    out.push(code);
  }
  return out;
}

/** The DHCP message size the reply must fit (option 57 is a datagram size). */
function replyBudget(p: DhcpPacket): number {
  const v = p.options.get(DhcpOption.MAX_MESSAGE_SIZE);
  if (v === undefined || v.length !== 2) return DEFAULT_MAX_MESSAGE_SIZE;
  const datagram = Math.max(v.readUInt16BE(0), MIN_MAX_MESSAGE_SIZE);
  return Math.min(datagram - IP_UDP_HEADER_LENGTH, MAX_PACKET_LENGTH);
}

function printable(b: Buffer): string {
  return b.toString('latin1').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?').slice(0, 255);
}

function ignore(reason: string): DhcpIgnoreDecision {
  return { kind: 'ignore', ignore: reason };
}

type ReplyKind = 'offer' | 'ack' | 'inform-ack' | 'nak';

function buildReply(
  request: DhcpPacket,
  cp: CompiledPlan,
  serverId: Buffer,
  yiaddr: Buffer,
  kind: ReplyKind,
  note: string,
): DhcpReplyDecision {
  const requested = requestedCodes(request);
  const requestedSet = new Set(requested);
  const options = new Map<number, Buffer>();
  options.set(DhcpOption.SERVER_IDENTIFIER, serverId);
  const clientId = request.options.get(DhcpOption.CLIENT_IDENTIFIER);
  const relayInfo = request.options.get(DhcpOption.RELAY_AGENT_INFORMATION);
  let planCodes: number[] = [];
  if (kind !== 'nak') {
    for (const [code, data] of cp.options) {
      if (kind === 'inform-ack' && (code === DhcpOption.LEASE_TIME || code === DhcpOption.RENEWAL_TIME || code === DhcpOption.REBINDING_TIME)) {
        continue;
      }
      options.set(code, data);
    }
    planCodes = [...options.keys()].filter((c) => c !== DhcpOption.SERVER_IDENTIFIER);
  }
  // Echoes longer than one option instance are pathological (real ones are ≤ 131 bytes): never echoed.
  const dropped: number[] = [];
  for (const [code, value] of [[DhcpOption.CLIENT_IDENTIFIER, clientId], [DhcpOption.RELAY_AGENT_INFORMATION, relayInfo]] as const) {
    if (value === undefined) continue;
    if (value.length > MAX_ECHO_LENGTH) dropped.push(code);
    else options.set(code, value);
  }

  // Drop order, first dropped first (see the header).
  const essential = [DhcpOption.LEASE_TIME, DhcpOption.SUBNET_MASK, DhcpOption.ROUTER];
  const echoes = [DhcpOption.CLIENT_IDENTIFIER, DhcpOption.RELAY_AGENT_INFORMATION];
  const protectedCodes = new Set<number>([...essential, ...echoes, DhcpOption.SERVER_IDENTIFIER]);
  const dropOrder: number[] = [
    ...planCodes.filter((c) => !requestedSet.has(c) && !protectedCodes.has(c)).sort((a, b) => b - a),
    ...requested.filter((c) => options.has(c) && !protectedCodes.has(c)).reverse(),
    DhcpOption.RELAY_AGENT_INFORMATION,
    DhcpOption.CLIENT_IDENTIFIER,
    DhcpOption.ROUTER,
    DhcpOption.SUBNET_MASK,
    DhcpOption.LEASE_TIME,
  ].filter((c) => options.has(c));

  const messageType = kind === 'offer' ? DhcpMessageType.OFFER : kind === 'nak' ? DhcpMessageType.NAK : DhcpMessageType.ACK;
  const viaRelay = request.giaddr !== ZERO;
  let flags = request.flags;
  if (kind === 'nak' && viaRelay) flags |= BROADCAST_FLAG;
  // One reply object: the drop loop below shrinks `options` in place (a `{ ...base, options }` per attempt would be
  // garbage V8 promotes; see server-v4.ts).
  const reply: DhcpPacket = {
    op: BOOTREPLY,
    htype: request.htype,
    hlen: request.hlen,
    hops: 0,
    xid: request.xid,
    secs: 0,
    flags,
    ciaddr: kind === 'ack' || kind === 'inform-ack' ? request.ciaddr : ZERO,
    yiaddr: kind === 'offer' || kind === 'ack' ? formatIPv4(yiaddr) : ZERO,
    siaddr: ZERO,
    giaddr: request.giaddr,
    chaddr: request.chaddr,
    sname: '',
    file: '',
    messageType,
    options,
  };
  const maxSize = replyBudget(request);
  const order = requested;
  let wire = tryEncodeDhcpPacket(reply, { maxSize, order });
  while (wire === null) {
    const code = dropOrder.shift();
    // 53 + 54 alone always fit 548 bytes, so this cannot run dry; keep the guard for totality.
    if (code === undefined) throw new Error('unreachable: a reply with only 53 and 54 does not fit');
    options.delete(code);
    dropped.push(code);
    wire = tryEncodeDhcpPacket(reply, { maxSize, order });
  }

  let destination: DhcpDestination;
  if (viaRelay) destination = { address: request.giaddr, port: DHCP_SERVER_PORT, broadcast: false };
  else if (kind === 'nak') destination = { address: LIMITED_BROADCAST, port: DHCP_CLIENT_PORT, broadcast: true };
  else if (request.ciaddr !== ZERO) destination = { address: request.ciaddr, port: DHCP_CLIENT_PORT, broadcast: false };
  else destination = { address: LIMITED_BROADCAST, port: DHCP_CLIENT_PORT, broadcast: true };

  return { kind: 'reply', reply, wire, destination, note, dropped, warnings: cp.warnings };
}

/**
 * Decides what to do with one request for the interface described by `plan`. Never throws for a packet that
 * `decodeDhcpPacket` produced (a hand-built packet with invalid fields can make the encoder throw DhcpEncodeError).
 */
export function respond(request: DhcpPacket, plan: DhcpV4Plan): DhcpDecision {
  if (request.op !== BOOTREQUEST) return ignore(`op ${request.op} is not BOOTREQUEST`);
  const type = request.messageType;
  if (type === null) return ignore('no DHCP message type (plain BOOTP is not served)');
  const cp = compilePlan(plan);
  if (cp.mac !== null && normalizeHardwareAddress(request.chaddr) !== cp.mac) {
    return ignore(`chaddr ${request.chaddr || '(empty)'} is not the planned client ${plan.clientMac ?? ''}`);
  }
  if (cp.serverId === null || cp.yiaddr === null) return ignore(`unusable plan: ${cp.warnings.join('; ')}`);
  const serverId = cp.serverId;
  const ours = formatIPv4(serverId);
  const planned = formatIPv4(cp.yiaddr);
  const name = messageTypeName(type);

  const otherServer = (): string | null => {
    const sid = ipv4Option(request, DhcpOption.SERVER_IDENTIFIER);
    if (sid === null || sid === ours) return null;
    return sid === 'malformed' ? 'a malformed server identifier' : `server ${sid}`;
  };

  switch (type) {
    case DhcpMessageType.DISCOVER:
      return buildReply(request, cp, serverId, cp.yiaddr, 'offer', `offer ${planned}`);

    case DhcpMessageType.REQUEST: {
      const other = otherServer();
      if (other !== null) return ignore(`DHCPREQUEST for ${other}, not us (${ours})`);
      const opt50 = ipv4Option(request, DhcpOption.REQUESTED_ADDRESS);
      const wanted = opt50 ?? (request.ciaddr !== ZERO ? request.ciaddr : null);
      if (wanted === null || wanted === planned) {
        return buildReply(request, cp, serverId, cp.yiaddr, 'ack', `ack ${planned}`);
      }
      const what = wanted === 'malformed' ? 'a malformed requested address (option 50)' : wanted;
      return buildReply(request, cp, serverId, cp.yiaddr, 'nak', `nak: client requested ${what}, planned ${planned}`);
    }

    case DhcpMessageType.INFORM:
      return buildReply(request, cp, serverId, cp.yiaddr, 'inform-ack', `inform ack for ${request.ciaddr}`);

    case DhcpMessageType.RELEASE:
    case DhcpMessageType.DECLINE: {
      const other = otherServer();
      if (other !== null) return ignore(`${name} for ${other}, not us (${ours})`);
      const msg = request.options.get(DhcpOption.MESSAGE);
      let address: string | null;
      if (type === DhcpMessageType.RELEASE) address = request.ciaddr === ZERO ? null : request.ciaddr;
      else {
        const a = ipv4Option(request, DhcpOption.REQUESTED_ADDRESS);
        address = a === 'malformed' ? null : a;
      }
      return {
        kind: 'log',
        log: type === DhcpMessageType.RELEASE ? 'release' : 'decline',
        mac: request.chaddr,
        address,
        message: msg === undefined ? null : printable(msg),
      };
    }

    case DhcpMessageType.OFFER:
    case DhcpMessageType.ACK:
    case DhcpMessageType.NAK:
      return ignore(`${name} is a server message`);

    default:
      return ignore(`unsupported message type ${name}`);
  }
}
