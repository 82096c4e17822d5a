// Reads nftables packet counters over nf_tables netlink, without libnftables: a named counter object (NFT_MSG_GETOBJ),
// or the drop rules of one chain (NFT_MSG_GETRULE dump).
//
// Why not libnftables: `list chain` through it builds a context and fetches the whole ruleset cache, ~1 ms per
// namespace here. On a netlink socket that stays open in the pod's namespace, one GETOBJ of a counter is ~10 µs;
// dumping the guard chain's 7 rules and walking their expressions ~70 µs (the kernel serialises every expression and
// set reference), which is what a table made before the named counter existed still costs.
import { NetlinkRejection, SyncNetlinkSocket, type RawNetlinkMessage } from './netlink-sync.js';

export const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETRULE = 7;
const NFT_MSG_GETOBJ = 19;
const NLM_F_DUMP = 0x300;
const NFNETLINK_V0 = 0;
export const NFPROTO_BRIDGE = 7;
const ENOENT = 2;

const NFTA_RULE_TABLE = 1;
const NFTA_RULE_CHAIN = 2;
const NFTA_RULE_EXPRESSIONS = 4;
const NFTA_LIST_ELEM = 1;
const NFTA_EXPR_NAME = 1;
const NFTA_EXPR_DATA = 2;
const NFTA_COUNTER_PACKETS = 2;
const NFTA_IMMEDIATE_DREG = 1;
const NFTA_IMMEDIATE_DATA = 2;
const NFTA_DATA_VERDICT = 2;
const NFTA_VERDICT_CODE = 1;
const NFT_REG_VERDICT = 0;
const NF_DROP = 0;
const NLA_TYPE_MASK = 0x3fff;
const NFTA_OBJ_TABLE = 1;
const NFTA_OBJ_NAME = 2;
const NFTA_OBJ_TYPE = 3;
const NFTA_OBJ_DATA = 4;
const NFT_OBJECT_COUNTER = 1;

function attr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

/** The NFT_MSG_GETRULE dump request body for one chain of one table. */
export function encodeRuleDump(family: number, table: string, chain: string): Buffer {
  const nfgen = Buffer.from([family, NFNETLINK_V0, 0, 0]);
  return Buffer.concat([nfgen, attr(NFTA_RULE_TABLE, Buffer.from(`${table}\0`)), attr(NFTA_RULE_CHAIN, Buffer.from(`${chain}\0`))]);
}

/** The NFT_MSG_GETOBJ request body for one named counter of one table (not a dump: one reply, then the ACK). */
export function encodeCounterGet(family: number, table: string, name: string): Buffer {
  const nfgen = Buffer.from([family, NFNETLINK_V0, 0, 0]);
  const type = Buffer.alloc(4);
  type.writeUInt32BE(NFT_OBJECT_COUNTER, 0);
  return Buffer.concat([nfgen, attr(NFTA_OBJ_TABLE, Buffer.from(`${table}\0`)), attr(NFTA_OBJ_NAME, Buffer.from(`${name}\0`)), attr(NFTA_OBJ_TYPE, type)]);
}

const COUNTER = Buffer.from('counter\0');
const IMMEDIATE = Buffer.from('immediate\0');

/** Calls fn(type, start, end) for each attribute of buf[from, to) (payload bounds); stops at a truncated one. */
function eachAttr(buf: Buffer, from: number, to: number, fn: (type: number, start: number, end: number) => void): void {
  let offset = from;
  while (offset + 4 <= to) {
    const length = buf.readUInt16LE(offset);
    if (length < 4 || offset + length > to) return;
    fn(buf.readUInt16LE(offset + 2) & NLA_TYPE_MASK, offset + 4, offset + length);
    offset += (length + 3) & ~3;
  }
}

/** The payload bounds of the first attribute of `type` in buf[from, to), or null. */
function find(buf: Buffer, from: number, to: number, type: number): [number, number] | null {
  let found: [number, number] | null = null;
  eachAttr(buf, from, to, (t, start, end) => {
    if (found === null && t === type) found = [start, end];
  });
  return found;
}

/**
 * Packets counted by one rule (a NFT_MSG_NEWRULE message body: nfgenmsg, then attributes) when it ends in a drop
 * verdict, else 0. Walks the buffer in place (a scrape reads hundreds of these).
 */
export function droppedPacketsOfRule(body: Buffer): number {
  const expressions = find(body, 4, body.length, NFTA_RULE_EXPRESSIONS);
  if (expressions === null) return 0;
  let packets = 0;
  let drops = false;
  eachAttr(body, expressions[0], expressions[1], (type, start, end) => {
    if (type !== NFTA_LIST_ELEM) return;
    const name = find(body, start, end, NFTA_EXPR_NAME);
    const data = find(body, start, end, NFTA_EXPR_DATA);
    if (name === null || data === null) return;
    const nameBytes = body.subarray(name[0], name[1]);
    if (nameBytes.equals(COUNTER)) {
      const p = find(body, data[0], data[1], NFTA_COUNTER_PACKETS);
      if (p !== null && p[1] - p[0] >= 8) packets += Number(body.readBigUInt64BE(p[0]));
    } else if (nameBytes.equals(IMMEDIATE)) {
      const dreg = find(body, data[0], data[1], NFTA_IMMEDIATE_DREG);
      if (dreg === null || body.readUInt32BE(dreg[0]) !== NFT_REG_VERDICT) return;
      const value = find(body, data[0], data[1], NFTA_IMMEDIATE_DATA);
      const verdict = value === null ? null : find(body, value[0], value[1], NFTA_DATA_VERDICT);
      const code = verdict === null ? null : find(body, verdict[0], verdict[1], NFTA_VERDICT_CODE);
      if (code !== null && body.readInt32BE(code[0]) === NF_DROP) drops = true;
    }
  });
  return drops ? packets : 0;
}

/** The packets of a counter object (a NFT_MSG_NEWOBJ message body: nfgenmsg, then attributes), or null if it is not one. */
export function counterObjectPackets(body: Buffer): number | null {
  const type = find(body, 4, body.length, NFTA_OBJ_TYPE);
  if (type === null || type[1] - type[0] < 4 || body.readUInt32BE(type[0]) !== NFT_OBJECT_COUNTER) return null;
  const data = find(body, 4, body.length, NFTA_OBJ_DATA);
  const packets = data === null ? null : find(body, data[0], data[1], NFTA_COUNTER_PACKETS);
  if (packets === null || packets[1] - packets[0] < 8) return null;
  return Number(body.readBigUInt64BE(packets[0]));
}

/** Request bodies by what they ask for: a scrape asks every namespace the same question. */
const requests = new Map<string, Buffer>();

/**
 * Sends one nf_tables request (its body built once by `encode`, then reused) and returns the replies; null when the
 * kernel answers ENOENT (no such table, chain or object).
 */
function nftablesRequest(socket: SyncNetlinkSocket, message: number, key: string, encode: () => Buffer, dump: boolean): RawNetlinkMessage[] | null {
  let request = requests.get(key);
  if (request === undefined) {
    request = encode();
    requests.set(key, request);
  }
  try {
    // A dump asks for no ACK: it ends with NLMSG_DONE (an error still comes as NLMSG_ERROR), and an ACK after it would
    // wait in the socket for the next scrape's read. A plain request is answered by its reply, then the ACK.
    return socket.requestSync((NFNL_SUBSYS_NFTABLES << 8) | message, request, dump ? NLM_F_DUMP : 0, !dump);
  } catch (err) {
    if (err instanceof NetlinkRejection && err.errno === ENOENT) return null;
    throw err;
  }
}

/**
 * The packets of the named counter `name` of `table`, through `socket` (a NETLINK_NETFILTER SyncNetlinkSocket opened
 * in the namespace to read); null when the table or the counter does not exist there.
 */
export function namedCounterPackets(socket: SyncNetlinkSocket, family: number, table: string, name: string): number | null {
  const replies = nftablesRequest(socket, NFT_MSG_GETOBJ, `obj ${family} ${table} ${name}`, () => encodeCounterGet(family, table, name), false);
  for (const reply of replies ?? []) {
    const packets = counterObjectPackets(reply.data);
    if (packets !== null) return packets;
  }
  return null;
}

/**
 * The sum of the counters of the chain's drop rules, through `socket` (a NETLINK_NETFILTER SyncNetlinkSocket opened
 * in the namespace to read); null when the table or chain does not exist there or holds no rules (a dump filtered by
 * table and chain answers an empty list, not ENOENT, for a table that is not there).
 */
export function chainDroppedPackets(socket: SyncNetlinkSocket, family: number, table: string, chain: string): number | null {
  const replies = nftablesRequest(socket, NFT_MSG_GETRULE, `rules ${family} ${table} ${chain}`, () => encodeRuleDump(family, table, chain), true);
  if (replies === null || replies.length === 0) return null;
  let total = 0;
  for (const reply of replies) total += droppedPacketsOfRule(reply.data);
  return total;
}
