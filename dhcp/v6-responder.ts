// Single-client DHCPv6 decision logic: one decoded client message + the interface's DhcpV6Plan → reply or ignore. Pure.
//
// Semantics (KubeVirt §7: Solicit → Advertise, or Reply with rapid commit; anything else → Reply; this is RFC 8415-correct):
// - Server-to-client types (ADVERTISE, REPLY, RECONFIGURE) and unknown types → ignore.
// - CLIENTID is required except in INFORMATION-REQUEST. SERVERID: SOLICIT, CONFIRM and REBIND must not carry one
//   (§16.2/16.5/16.7), REQUEST, RENEW, RELEASE and DECLINE must carry ours (§16.4/16.6/16.8/16.9), INFORMATION-REQUEST
//   may carry ours. Anything else → ignore (another server's conversation).
// - plan.clientMac non-null: answered only when the client DUID is DUID-LL/DUID-LLT (Ethernet) with that MAC, or the
//   packet came from the EUI-64 link-local of that MAC. null (masquerade) answers any client.
// - SOLICIT → ADVERTISE (preference 255, so clients need not wait for other servers), or REPLY with RAPID_COMMIT when
//   the client asked for it. REQUEST/RENEW/REBIND → REPLY. Each IA_NA of the request gets the planned address with the
//   plan's lifetimes and T1/T2 = 0.5/0.8 of the preferred lifetime; addresses the client listed that are not the
//   planned one come back with lifetimes 0 so it drops them (§18.3.4). A SOLICIT/REQUEST without IA_NA gets a
//   NoAddrsAvail status. CONFIRM → REPLY Success when every address listed is in the planned prefix, else NotOnLink;
//   a CONFIRM listing no address is ignored (§18.3.3). INFORMATION-REQUEST → REPLY without IA. RELEASE/DECLINE → REPLY
//   with Success (the address is fixed: nothing to free), logged by the caller.
// - Every reply carries CLIENTID (echoed), SERVERID (plan.serverDuid) and, except RELEASE/DECLINE/CONFIRM replies,
//   the plan's options verbatim (23 DNS, 24 domain list, …), as KubeVirt sends them whatever the ORO says.
import { bigIntToIp, ipToBigInt, networkOf, parseCidr } from '../agent/plan/ip.js';
import type { DhcpV6Plan } from '../agent/plan/plan-types.js';
import { fromHex } from './options.js';
import {
  Dhcpv6MessageType,
  Dhcpv6OptionCode,
  Dhcpv6StatusCode,
  decodeDuid,
  decodeIaAddress,
  decodeIaNa,
  encodeDhcpv6Message,
  encodeIaAddress,
  encodeIaNa,
  encodeStatusCode,
  findOption,
  findOptions,
  messageTypeName,
  type Dhcpv6Message,
  type Dhcpv6Option,
} from './v6-packet.js';

/** What the responder knows of where the message came from. */
export interface Dhcpv6Source {
  /** The IPv6 source address (without zone), if known. */
  readonly address: string | null;
}

/** Fields for the one log line per exchange. */
export interface Dhcpv6ExchangeLog {
  readonly type: string;
  readonly transactionId: number;
  /** Client DUID in hex, when the message carried one. */
  readonly clientDuid: string | null;
  /** The client's link-layer address from its DUID, when it is DUID-LL/LLT. */
  readonly mac: string | null;
  readonly iaids: readonly number[];
}

export type Dhcpv6Decision =
  | {
      readonly kind: 'reply';
      readonly message: Dhcpv6Message;
      readonly bytes: Buffer;
      readonly replyType: string;
      /** The address handed out in IA_NA, or null (information-only, release, confirm). */
      readonly address: string | null;
      readonly status: string | null;
      readonly log: Dhcpv6ExchangeLog;
    }
  | { readonly kind: 'ignore'; readonly reason: string; readonly log: Dhcpv6ExchangeLog };

/** Modified EUI-64 interface identifier of a 48-bit MAC (RFC 4291 appendix A). */
export function eui64InterfaceId(mac: string): bigint | null {
  const octets = mac.split(/[:-]/);
  if (octets.length !== 6 || octets.some((octet) => !/^[0-9a-fA-F]{2}$/.test(octet))) return null;
  const bytes = octets.map((octet) => parseInt(octet, 16));
  const eui = [(bytes[0] ?? 0) ^ 0x02, bytes[1] ?? 0, bytes[2] ?? 0, 0xff, 0xfe, bytes[3] ?? 0, bytes[4] ?? 0, bytes[5] ?? 0];
  return eui.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

/** The EUI-64 link-local address of a MAC, e.g. 02:00:00:00:00:00 → fe80::ff:fe00:0. */
export function linkLocalFromMac(mac: string): string | null {
  const iid = eui64InterfaceId(mac);
  if (iid === null) return null;
  return bigIntToIp((0xfe80n << 112n) | iid, 6);
}

function isLinkLocalFrom(address: string | null, mac: string): boolean {
  if (address === null) return false;
  let value: bigint;
  try {
    value = ipToBigInt(address);
  } catch {
    return false;
  }
  const iid = eui64InterfaceId(mac);
  return iid !== null && value >> 64n === 0xfe80_0000_0000_0000n && (value & 0xffff_ffff_ffff_ffffn) === iid;
}

const T1_FRACTION = 0.5;
const T2_FRACTION = 0.8;
/** Preference 255: the client may use this server at once (RFC 8415 §18.2.1). */
const MAX_PREFERENCE = 255;

const CLIENT_MESSAGES = new Set<number>([
  Dhcpv6MessageType.SOLICIT,
  Dhcpv6MessageType.REQUEST,
  Dhcpv6MessageType.CONFIRM,
  Dhcpv6MessageType.RENEW,
  Dhcpv6MessageType.REBIND,
  Dhcpv6MessageType.RELEASE,
  Dhcpv6MessageType.DECLINE,
  Dhcpv6MessageType.INFORMATION_REQUEST,
]);

function describe(request: Dhcpv6Message): Dhcpv6ExchangeLog {
  const clientId = findOption(request.options, Dhcpv6OptionCode.CLIENTID);
  let mac: string | null = null;
  if (clientId) {
    try {
      const duid = decodeDuid(clientId.data);
      if (duid.hardwareType === 1) mac = duid.linkLayerAddress;
    } catch {
      mac = null;
    }
  }
  const iaids: number[] = [];
  for (const option of findOptions(request.options, Dhcpv6OptionCode.IA_NA)) {
    if (option.data.length >= 4) iaids.push(option.data.readUInt32BE(0));
  }
  return { type: messageTypeName(request.msgType), transactionId: request.transactionId, clientDuid: clientId ? clientId.data.toString('hex') : null, mac, iaids };
}

function ignore(reason: string, log: Dhcpv6ExchangeLog): Dhcpv6Decision {
  return { kind: 'ignore', reason, log };
}

function clientMatches(plan: DhcpV6Plan, log: Dhcpv6ExchangeLog, source: Dhcpv6Source): boolean {
  if (plan.clientMac === null) return true;
  const wanted = plan.clientMac.toLowerCase();
  if (log.mac !== null && log.mac === wanted) return true;
  return isLinkLocalFrom(source.address, wanted);
}

function statusOption(code: number, message: string): Dhcpv6Option {
  return { code: Dhcpv6OptionCode.STATUS_CODE, data: encodeStatusCode({ code, message }) };
}

function planOptions(plan: DhcpV6Plan): Dhcpv6Option[] {
  return Object.keys(plan.options)
    .map(Number)
    .filter((code) => Number.isInteger(code) && code > 0 && code <= 0xffff)
    .sort((a, b) => a - b)
    .map((code) => ({ code, data: fromHex(plan.options[String(code)] ?? '') }));
}

/** IA_NA answers: the planned address for every IA_NA of the request; other listed addresses with lifetimes 0. */
function iaNaAnswers(plan: DhcpV6Plan, request: Dhcpv6Message, withdrawOthers: boolean): Dhcpv6Option[] {
  const t1 = Math.floor(plan.preferredLifetime * T1_FRACTION);
  const t2 = Math.floor(plan.preferredLifetime * T2_FRACTION);
  const planned = ipToBigInt(plan.address);
  return findOptions(request.options, Dhcpv6OptionCode.IA_NA).map((option) => {
    const ia = decodeIaNa(option.data);
    const inner: Dhcpv6Option[] = [
      {
        code: Dhcpv6OptionCode.IAADDR,
        data: encodeIaAddress({ address: plan.address, preferredLifetime: plan.preferredLifetime, validLifetime: plan.validLifetime, options: [] }),
      },
    ];
    if (withdrawOthers) {
      for (const listed of findOptions(ia.options, Dhcpv6OptionCode.IAADDR)) {
        const address = decodeIaAddress(listed.data).address;
        if (ipToBigInt(address) !== planned) {
          inner.push({ code: Dhcpv6OptionCode.IAADDR, data: encodeIaAddress({ address, preferredLifetime: 0, validLifetime: 0, options: [] }) });
        }
      }
    }
    return { code: Dhcpv6OptionCode.IA_NA, data: encodeIaNa({ iaid: ia.iaid, t1, t2, options: inner }) };
  });
}

function onLink(plan: DhcpV6Plan, address: string): boolean {
  const prefix = parseCidr(`${plan.address}/${plan.prefixLength}`);
  const candidate = parseCidr(`${address}/${plan.prefixLength}`);
  return prefix !== null && candidate !== null && networkOf(prefix).address === networkOf(candidate).address;
}

/**
 * Decides the answer to one client message. Throws only Dhcpv6DecodeError (a malformed nested option: IA_NA,
 * IAADDR, DUID) and, for a broken plan, errors from the plan's hex options; the server treats both as "drop".
 */
export function respondV6(request: Dhcpv6Message, plan: DhcpV6Plan, source: Dhcpv6Source = { address: null }): Dhcpv6Decision {
  const log = describe(request);
  const type = request.msgType;
  if (!CLIENT_MESSAGES.has(type)) return ignore(`not a client message (${log.type})`, log);

  const clientId = findOption(request.options, Dhcpv6OptionCode.CLIENTID);
  const serverId = findOption(request.options, Dhcpv6OptionCode.SERVERID);
  const ourDuid = fromHex(plan.serverDuid);
  if (clientId === undefined && type !== Dhcpv6MessageType.INFORMATION_REQUEST) return ignore('no client identifier', log);
  if (clientId !== undefined) decodeDuid(clientId.data);

  const mustNotHaveServerId = type === Dhcpv6MessageType.SOLICIT || type === Dhcpv6MessageType.CONFIRM || type === Dhcpv6MessageType.REBIND;
  const mustHaveServerId =
    type === Dhcpv6MessageType.REQUEST || type === Dhcpv6MessageType.RENEW || type === Dhcpv6MessageType.RELEASE || type === Dhcpv6MessageType.DECLINE;
  if (mustNotHaveServerId && serverId !== undefined) return ignore('server identifier present', log);
  if (mustHaveServerId && serverId === undefined) return ignore('no server identifier', log);
  if (serverId !== undefined && !serverId.data.equals(ourDuid)) return ignore('addressed to another server', log);

  if (!clientMatches(plan, log, source)) return ignore('not the planned client', log);

  const options: Dhcpv6Option[] = [];
  if (clientId !== undefined) options.push({ code: Dhcpv6OptionCode.CLIENTID, data: clientId.data });
  options.push({ code: Dhcpv6OptionCode.SERVERID, data: ourDuid });

  let replyType: number = Dhcpv6MessageType.REPLY;
  let address: string | null = null;
  let status: string | null = null;
  switch (type) {
    case Dhcpv6MessageType.SOLICIT:
    case Dhcpv6MessageType.REQUEST:
    case Dhcpv6MessageType.RENEW:
    case Dhcpv6MessageType.REBIND: {
      const rapid = type === Dhcpv6MessageType.SOLICIT && findOption(request.options, Dhcpv6OptionCode.RAPID_COMMIT) !== undefined;
      if (type === Dhcpv6MessageType.SOLICIT && !rapid) replyType = Dhcpv6MessageType.ADVERTISE;
      if (rapid) options.push({ code: Dhcpv6OptionCode.RAPID_COMMIT, data: Buffer.alloc(0) });
      const answers = iaNaAnswers(plan, request, type === Dhcpv6MessageType.RENEW || type === Dhcpv6MessageType.REBIND);
      if (answers.length === 0) {
        options.push(statusOption(Dhcpv6StatusCode.NoAddrsAvail, 'only IA_NA is served'));
        status = 'NoAddrsAvail';
      } else {
        options.push(...answers);
        address = plan.address;
      }
      if (replyType === Dhcpv6MessageType.ADVERTISE) options.push({ code: Dhcpv6OptionCode.PREFERENCE, data: Buffer.from([MAX_PREFERENCE]) });
      options.push(...planOptions(plan));
      break;
    }
    case Dhcpv6MessageType.CONFIRM: {
      const listed = findOptions(request.options, Dhcpv6OptionCode.IA_NA).flatMap((option) =>
        findOptions(decodeIaNa(option.data).options, Dhcpv6OptionCode.IAADDR).map((inner) => decodeIaAddress(inner.data).address),
      );
      if (listed.length === 0) return ignore('CONFIRM without addresses', log);
      const ok = listed.every((candidate) => onLink(plan, candidate));
      options.push(ok ? statusOption(Dhcpv6StatusCode.Success, 'all addresses on link') : statusOption(Dhcpv6StatusCode.NotOnLink, 'address not on link'));
      status = ok ? 'Success' : 'NotOnLink';
      break;
    }
    case Dhcpv6MessageType.RELEASE:
    case Dhcpv6MessageType.DECLINE:
      options.push(statusOption(Dhcpv6StatusCode.Success, type === Dhcpv6MessageType.RELEASE ? 'released' : 'decline noted'));
      status = 'Success';
      break;
    default: // INFORMATION_REQUEST
      options.push(...planOptions(plan));
      break;
  }
  const message: Dhcpv6Message = { msgType: replyType, transactionId: request.transactionId, options };
  return { kind: 'reply', message, bytes: encodeDhcpv6Message(message), replyType: messageTypeName(replyType), address, status, log };
}
