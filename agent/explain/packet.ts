// Parses explain's --packet text ("tcp 10.244.1.1:5000 -> 10.244.1.5:80 [in eth0]") into the packet the evaluator follows.
import { InputError } from '../plan/errors.js';
import { ipFamily, type Family } from '../plan/ip.js';

export type L4Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6';

export interface Packet {
  readonly family: Family;
  readonly protocol: L4Protocol;
  readonly saddr: string;
  readonly daddr: string;
  /** null for ICMP. */
  readonly sport: number | null;
  readonly dport: number | null;
  /** The interface it arrives on; null: decide from the routes (or locally generated when saddr is the pod's). */
  readonly iif: string | null;
}

const FLAG = '--packet';
const USAGE = "expected 'PROTO SRC[:PORT] -> DST[:PORT] [in IFACE]', e.g. 'tcp 10.244.1.1:5000 -> 10.244.1.5:80' (IPv6: [fd10::1]:5000)";

function endpoint(text: string, what: 'source' | 'destination', needsPort: boolean): { addr: string; port: number | null } {
  let addr = text;
  let port: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed?.[1] !== undefined) {
    addr = bracketed[1];
    port = bracketed[2];
  } else if ((text.match(/:/g) ?? []).length === 1) {
    [addr = '', port] = text.split(':');
  }
  if (ipFamily(addr) === null) throw new InputError(FLAG, `${what} ${JSON.stringify(text)} is not an IP address (${USAGE})`);
  if (port === undefined) {
    if (needsPort && what === 'destination') throw new InputError(FLAG, `the destination needs a port, e.g. ${addr.includes(':') ? `[${addr}]` : addr}:80`);
    return { addr, port: null };
  }
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InputError(FLAG, `${what} port ${port} is not in 1..65535`);
  return { addr, port: n };
}

/** The packet described by the flag; a TCP/UDP source without a port gets an ephemeral 40000. */
export function parsePacket(text: string): Packet {
  const words = text.trim().split(/\s+/);
  const [proto, src, arrow, dst, ...rest] = words;
  if (proto === undefined || src === undefined || arrow !== '->' || dst === undefined) throw new InputError(FLAG, USAGE);
  const protocol = proto.toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'icmp' && protocol !== 'icmpv6') {
    throw new InputError(FLAG, `protocol ${JSON.stringify(proto)} is not one of tcp, udp, icmp, icmpv6`);
  }
  let iif: string | null = null;
  if (rest.length > 0) {
    if (rest.length !== 2 || rest[0] !== 'in' || rest[1] === undefined) throw new InputError(FLAG, `unexpected ${JSON.stringify(rest.join(' '))} (${USAGE})`);
    iif = rest[1];
  }
  const hasPorts = protocol === 'tcp' || protocol === 'udp';
  const s = endpoint(src, 'source', hasPorts);
  const d = endpoint(dst, 'destination', hasPorts);
  const family = ipFamily(s.addr);
  if (family === null || family !== ipFamily(d.addr)) throw new InputError(FLAG, 'source and destination must both be IPv4 or both IPv6');
  if (!hasPorts && (s.port !== null || d.port !== null)) throw new InputError(FLAG, `${protocol} has no ports`);
  const l4: L4Protocol = protocol === 'icmp' && family === 6 ? 'icmpv6' : protocol;
  return { family, protocol: l4, saddr: s.addr, daddr: d.addr, sport: hasPorts ? (s.port ?? 40000) : null, dport: d.port, iif };
}

export function describePacket(p: Packet): string {
  const at = (addr: string, port: number | null): string => (port === null ? addr : p.family === 6 ? `[${addr}]:${port}` : `${addr}:${port}`);
  return `${p.protocol} ${at(p.saddr, p.sport)} -> ${at(p.daddr, p.dport)}`;
}
