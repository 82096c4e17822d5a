// Unit tests for the DHCPv6 responder (dhcp/v6-responder.ts): the reply table per message type, server-id rules,
// the planned-client filter (DUID-LL/LLT MAC or EUI-64 link-local), rapid commit and the exact ADVERTISE bytes.
import { describe, expect, it } from 'vitest';
import type { DhcpV6Plan } from '../../agent/plan/plan-types.js';
import {
  Dhcpv6MessageType as T,
  Dhcpv6OptionCode as O,
  decodeDhcpv6Message,
  decodeIaAddress,
  decodeIaNa,
  decodeStatusCode,
  encodeIaAddress,
  encodeIaNa,
  findOption,
  findOptions,
  type Dhcpv6Message,
  type Dhcpv6Option,
} from '../../dhcp/v6-packet.js';
import { eui64InterfaceId, linkLocalFromMac, respondV6 } from '../../dhcp/v6-responder.js';

const SERVER_DUID = '00030001020000000000';
const CLIENT_MAC = '02:42:ac:11:00:02';
const DUID_LLT = Buffer.from('000100012c8f1a00' + '0242ac110002', 'hex');
const DUID_LL_OTHER = Buffer.from('00030001' + '0a0000000001', 'hex');

const plan: DhcpV6Plan = {
  interface: 'k6t-eth0',
  serverDuid: SERVER_DUID,
  clientMac: null,
  address: 'fd10:0:2::2',
  prefixLength: 120,
  preferredLifetime: 86313600,
  validLifetime: 86313600,
  dns: ['fd00:10:96::a'],
  options: { '23': 'fd00001000960000000000000000000a', '24': '07636c7573746572056c6f63616c00' },
  ra: null,
};

const clientId = (duid = DUID_LLT): Dhcpv6Option => ({ code: O.CLIENTID, data: duid });
const serverId = (hex = SERVER_DUID): Dhcpv6Option => ({ code: O.SERVERID, data: Buffer.from(hex, 'hex') });
const iaNa = (iaid: number, addresses: readonly string[] = []): Dhcpv6Option => ({
  code: O.IA_NA,
  data: encodeIaNa({ iaid, t1: 0, t2: 0, options: addresses.map((address) => ({ code: O.IAADDR, data: encodeIaAddress({ address, preferredLifetime: 0, validLifetime: 0, options: [] }) })) }),
});
const msg = (msgType: number, options: Dhcpv6Option[]): Dhcpv6Message => ({ msgType, transactionId: 0x0102ab, options });

function reply(request: Dhcpv6Message, p: DhcpV6Plan = plan, source: string | null = null) {
  const decision = respondV6(request, p, { address: source });
  if (decision.kind !== 'reply') throw new Error(`expected a reply, got ignore: ${decision.reason}`);
  // What goes on the wire decodes to what the responder says it sent.
  expect(decodeDhcpv6Message(decision.bytes)).toEqual(decision.message);
  return decision;
}

function iaAddresses(message: Dhcpv6Message): { iaid: number; addresses: { address: string; preferredLifetime: number; validLifetime: number }[] }[] {
  return findOptions(message.options, O.IA_NA).map((option) => {
    const ia = decodeIaNa(option.data);
    return { iaid: ia.iaid, addresses: findOptions(ia.options, O.IAADDR).map((a) => { const d = decodeIaAddress(a.data); return { address: d.address, preferredLifetime: d.preferredLifetime, validLifetime: d.validLifetime }; }) };
  });
}

describe('respondV6: message table', () => {
  it('SOLICIT → ADVERTISE, exact bytes: client id, server id, IA_NA, preference 255, options 23 and 24', () => {
    const d = reply(msg(T.SOLICIT, [clientId(), { code: O.ELAPSED_TIME, data: Buffer.from('0000', 'hex') }, iaNa(0x0ac11002)]));
    expect(d.replyType).toBe('ADVERTISE');
    expect(d.address).toBe('fd10:0:2::2');
    expect(d.bytes.toString('hex')).toBe(
      '02' + '0102ab' +
        '0001' + '000e' + DUID_LLT.toString('hex') +
        '0002' + '000a' + SERVER_DUID +
        '0003' + '0028' + '0ac11002' + '02928540' + '041da200' + // IA_NA: IAID, T1 = 0.5 × preferred, T2 = 0.8 × preferred
        '0005' + '0018' + 'fd100000000200000000000000000002' + '05250a80' + '05250a80' +
        '0007' + '0001' + 'ff' +
        '0017' + '0010' + 'fd00001000960000000000000000000a' +
        '0018' + '000f' + '07636c7573746572056c6f63616c00',
    );
  });

  it('SOLICIT with RAPID_COMMIT → REPLY carrying RAPID_COMMIT and the address', () => {
    const d = reply(msg(T.SOLICIT, [clientId(), { code: O.RAPID_COMMIT, data: Buffer.alloc(0) }, iaNa(7)]));
    expect(d.replyType).toBe('REPLY');
    expect(findOption(d.message.options, O.RAPID_COMMIT)).toBeDefined();
    expect(findOption(d.message.options, O.PREFERENCE)).toBeUndefined();
    expect(iaAddresses(d.message)).toEqual([{ iaid: 7, addresses: [{ address: 'fd10:0:2::2', preferredLifetime: 86313600, validLifetime: 86313600 }] }]);
  });

  it.each([
    ['REQUEST', T.REQUEST, true],
    ['RENEW', T.RENEW, true],
    ['REBIND', T.REBIND, false],
  ])('%s → REPLY with the planned address in every IA_NA', (_name, type, withServerId) => {
    const d = reply(msg(type, [clientId(), ...(withServerId ? [serverId()] : []), iaNa(1), iaNa(2)]));
    expect(d.replyType).toBe('REPLY');
    expect(iaAddresses(d.message).map((ia) => [ia.iaid, ia.addresses[0]?.address])).toEqual([[1, 'fd10:0:2::2'], [2, 'fd10:0:2::2']]);
    expect(findOption(d.message.options, O.DNS_SERVERS)?.data.toString('hex')).toBe(plan.options['23']);
  });

  it('RENEW listing another address gets it back with lifetimes 0', () => {
    const d = reply(msg(T.RENEW, [clientId(), serverId(), iaNa(1, ['fd10:0:2::2', 'fd10:0:2::99'])]));
    expect(iaAddresses(d.message)[0]?.addresses).toEqual([
      { address: 'fd10:0:2::2', preferredLifetime: 86313600, validLifetime: 86313600 },
      { address: 'fd10:0:2::99', preferredLifetime: 0, validLifetime: 0 },
    ]);
  });

  it('SOLICIT without IA_NA → ADVERTISE with NoAddrsAvail', () => {
    const d = reply(msg(T.SOLICIT, [clientId()]));
    expect(decodeStatusCode(findOption(d.message.options, O.STATUS_CODE)!.data).code).toBe(2);
    expect(d.address).toBeNull();
  });

  it('INFORMATION-REQUEST (with or without client id) → REPLY with options, no IA', () => {
    for (const options of [[clientId()], []]) {
      const d = reply(msg(T.INFORMATION_REQUEST, options));
      expect(d.replyType).toBe('REPLY');
      expect(findOption(d.message.options, O.IA_NA)).toBeUndefined();
      expect(findOption(d.message.options, O.DOMAIN_LIST)?.data.toString('hex')).toBe(plan.options['24']);
    }
  });

  it.each([
    ['RELEASE', T.RELEASE],
    ['DECLINE', T.DECLINE],
  ])('%s → REPLY Success without IA', (_name, type) => {
    const d = reply(msg(type, [clientId(), serverId(), iaNa(1, ['fd10:0:2::2'])]));
    expect(d.status).toBe('Success');
    expect(decodeStatusCode(findOption(d.message.options, O.STATUS_CODE)!.data).code).toBe(0);
    expect(findOption(d.message.options, O.IA_NA)).toBeUndefined();
  });

  it('CONFIRM: Success on link, NotOnLink off link, ignored without addresses', () => {
    expect(reply(msg(T.CONFIRM, [clientId(), iaNa(1, ['fd10:0:2::2'])])).status).toBe('Success');
    expect(reply(msg(T.CONFIRM, [clientId(), iaNa(1, ['fd10:0:3::2'])])).status).toBe('NotOnLink');
    expect(respondV6(msg(T.CONFIRM, [clientId(), iaNa(1)]), plan).kind).toBe('ignore');
  });
});

describe('respondV6: what is ignored', () => {
  it.each<[string, Dhcpv6Message]>([
    ['ADVERTISE (server message)', msg(T.ADVERTISE, [clientId(), serverId()])],
    ['REPLY (server message)', msg(T.REPLY, [clientId(), serverId()])],
    ['RECONFIGURE', msg(T.RECONFIGURE, [clientId(), serverId()])],
    ['unknown type 99', msg(99, [clientId()])],
    ['SOLICIT without client id', msg(T.SOLICIT, [iaNa(1)])],
    ['SOLICIT with a server id', msg(T.SOLICIT, [clientId(), serverId(), iaNa(1)])],
    ['REBIND with a server id', msg(T.REBIND, [clientId(), serverId(), iaNa(1)])],
    ['REQUEST without server id', msg(T.REQUEST, [clientId(), iaNa(1)])],
    ['REQUEST for another server', msg(T.REQUEST, [clientId(), serverId('00030001aabbccddeeff'), iaNa(1)])],
    ['RENEW for another server', msg(T.RENEW, [clientId(), serverId('00030001aabbccddeeff'), iaNa(1)])],
    ['INFORMATION-REQUEST for another server', msg(T.INFORMATION_REQUEST, [serverId('00030001aabbccddeeff')])],
  ])('%s', (_name, request) => {
    expect(respondV6(request, plan).kind).toBe('ignore');
  });

  it('a malformed nested IA_NA or DUID throws the typed decode error (the server drops it)', () => {
    expect(() => respondV6(msg(T.SOLICIT, [clientId(), { code: O.IA_NA, data: Buffer.from('0001', 'hex') }]), plan)).toThrow(/invalid-option/);
    expect(() => respondV6(msg(T.SOLICIT, [clientId(Buffer.from('00', 'hex')), iaNa(1)]), plan)).toThrow(/invalid-option/);
  });
});

describe('respondV6: planned client only', () => {
  const bridgePlan: DhcpV6Plan = { ...plan, clientMac: CLIENT_MAC };

  it('answers the DUID-LLT or DUID-LL carrying the planned MAC', () => {
    expect(respondV6(msg(T.SOLICIT, [clientId(DUID_LLT), iaNa(1)]), bridgePlan).kind).toBe('reply');
    expect(respondV6(msg(T.SOLICIT, [clientId(Buffer.from('00030001' + '0242ac110002', 'hex')), iaNa(1)]), bridgePlan).kind).toBe('reply');
  });

  it('answers another DUID only when the source is the EUI-64 link-local of the planned MAC', () => {
    const request = msg(T.SOLICIT, [clientId(DUID_LL_OTHER), iaNa(1)]);
    expect(respondV6(request, bridgePlan, { address: 'fe80::42:acff:fe11:2' }).kind).toBe('reply');
    expect(respondV6(request, bridgePlan, { address: 'fe80::42:acff:fe11:3' }).kind).toBe('ignore');
    expect(respondV6(request, bridgePlan, { address: null }).kind).toBe('ignore');
    expect(respondV6(request, bridgePlan, { address: 'not an address' }).kind).toBe('ignore');
  });

  it('masquerade (clientMac null) answers any client', () => {
    expect(respondV6(msg(T.SOLICIT, [clientId(DUID_LL_OTHER), iaNa(1)]), plan).kind).toBe('reply');
  });

  it('EUI-64 helpers', () => {
    expect(eui64InterfaceId('02:00:00:00:00:00')).toBe(0x0000_00ff_fe00_0000n);
    expect(linkLocalFromMac('02:00:00:00:00:00')).toBe('fe80::ff:fe00:0');
    expect(linkLocalFromMac('02:42:ac:11:00:02')).toBe('fe80::42:acff:fe11:2');
    expect(linkLocalFromMac('nope')).toBeNull();
  });
});
