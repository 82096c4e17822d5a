// Unit tests for the DHCPv6 codec (dhcp/v6-packet.ts): a dhclient-style SOLICIT as bytes, IA_NA/IAADDR/DUID/status
// accessors, every decode error, and encode/decode round trips of random messages.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Dhcpv6DecodeError,
  Dhcpv6EncodeError,
  Dhcpv6MessageType,
  Dhcpv6OptionCode,
  decodeDhcpv6Message,
  decodeDuid,
  decodeElapsedTime,
  decodeIaAddress,
  decodeIaNa,
  decodeOptionRequest,
  decodeStatusCode,
  encodeDhcpv6Message,
  encodeIaAddress,
  encodeIaNa,
  encodeOptionRequest,
  encodeStatusCode,
  findOption,
  type Dhcpv6DecodeReason,
  type Dhcpv6Message,
} from '../../dhcp/v6-packet.js';

/** SOLICIT as ISC dhclient 4.4 sends it: DUID-LLT client id, elapsed time 0, one empty IA_NA, ORO 23+24. */
const SOLICIT_HEX =
  '01' + 'a1b2c3' + // SOLICIT, transaction id 0xa1b2c3
  '0001' + '000e' + '0001' + '0001' + '2c8f1a00' + '0242ac110002' + // CLIENTID: DUID-LLT, Ethernet, time, MAC
  '0008' + '0002' + '0000' + // ELAPSED_TIME 0
  '0003' + '000c' + '0ac11002' + '00000000' + '00000000' + // IA_NA IAID 0x0ac11002, T1 0, T2 0
  '0006' + '0004' + '0017' + '0018'; // ORO: DNS servers, domain list

function expectDecodeError(bytes: Buffer, reason: Dhcpv6DecodeReason, decode: (b: Buffer) => unknown = decodeDhcpv6Message): void {
  try {
    decode(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(Dhcpv6DecodeError);
    expect((error as Dhcpv6DecodeError).reason).toBe(reason);
    return;
  }
  throw new Error(`expected a ${reason} decode error`);
}

describe('DHCPv6 message framing', () => {
  it('decodes a dhclient SOLICIT byte for byte and re-encodes it identically', () => {
    const bytes = Buffer.from(SOLICIT_HEX, 'hex');
    const message = decodeDhcpv6Message(bytes);
    expect(message.msgType).toBe(Dhcpv6MessageType.SOLICIT);
    expect(message.transactionId).toBe(0xa1b2c3);
    expect(message.options.map((o) => o.code)).toEqual([1, 8, 3, 6]);
    const duid = decodeDuid(findOption(message.options, Dhcpv6OptionCode.CLIENTID)!.data);
    expect(duid).toEqual({ type: 1, hardwareType: 1, linkLayerAddress: '02:42:ac:11:00:02' });
    expect(decodeElapsedTime(findOption(message.options, Dhcpv6OptionCode.ELAPSED_TIME)!.data)).toBe(0);
    expect(decodeIaNa(findOption(message.options, Dhcpv6OptionCode.IA_NA)!.data)).toEqual({ iaid: 0x0ac11002, t1: 0, t2: 0, options: [] });
    expect(decodeOptionRequest(findOption(message.options, Dhcpv6OptionCode.ORO)!.data)).toEqual([23, 24]);
    expect(encodeDhcpv6Message(message).toString('hex')).toBe(SOLICIT_HEX);
  });

  it('encodes IA_NA with IAADDR and a status code to known bytes', () => {
    const iaaddr = encodeIaAddress({
      address: 'fd10:0:2::2',
      preferredLifetime: 86313600,
      validLifetime: 86313600,
      options: [{ code: Dhcpv6OptionCode.STATUS_CODE, data: encodeStatusCode({ code: 0, message: 'ok' }) }],
    });
    expect(iaaddr.toString('hex')).toBe('fd100000000200000000000000000002' + '05250a80' + '05250a80' + '000d' + '0004' + '0000' + '6f6b');
    const iana = encodeIaNa({ iaid: 1, t1: 43156800, t2: 69050880, options: [{ code: Dhcpv6OptionCode.IAADDR, data: iaaddr }] });
    expect(iana.toString('hex')).toBe('00000001' + '02928540' + '041da200' + '0005' + (iaaddr.length).toString(16).padStart(4, '0') + iaaddr.toString('hex'));
    const back = decodeIaNa(iana);
    expect(back.iaid).toBe(1);
    const addr = decodeIaAddress(back.options[0]!.data);
    expect(addr).toMatchObject({ address: 'fd10:0:2::2', preferredLifetime: 86313600, validLifetime: 86313600 });
    expect(decodeStatusCode(addr.options[0]!.data)).toEqual({ code: 0, message: 'ok' });
  });

  it.each<[string, string, Dhcpv6DecodeReason]>([
    ['empty', '', 'too-short'],
    ['three bytes', '01a1b2', 'too-short'],
    ['RELAY-FORW', '0c00' + '00'.repeat(32), 'unsupported'],
    ['RELAY-REPL', '0d00' + '00'.repeat(32), 'unsupported'],
    ['half an option header', '01a1b2c3' + '0001', 'truncated-option'],
    ['option length past the end', '01a1b2c3' + '0001' + '000e' + '0003', 'truncated-option'],
    ['second option overruns', '01a1b2c3' + '0008' + '0002' + '0000' + '0003' + 'ffff', 'truncated-option'],
  ])('%s → %s', (_name, hex, reason) => {
    expectDecodeError(Buffer.from(hex, 'hex'), reason);
  });

  it('rejects a message larger than a UDP payload', () => {
    expectDecodeError(Buffer.alloc(65536, 1), 'too-large');
  });

  it('accepts a bare header and zero-length options', () => {
    expect(decodeDhcpv6Message(Buffer.from('0b000001', 'hex'))).toEqual({ msgType: 11, transactionId: 1, options: [] });
    const rapid = decodeDhcpv6Message(Buffer.from('01000001000e0000', 'hex'));
    expect(rapid.options).toEqual([{ code: Dhcpv6OptionCode.RAPID_COMMIT, data: Buffer.alloc(0) }]);
  });

  it.each<[string, string, (b: Buffer) => unknown]>([
    ['IA_NA shorter than 12 bytes', '0000000100000000', decodeIaNa],
    ['IA_NA with a truncated nested option', '000000010000000000000000' + '0005' + '0018' + '00', decodeIaNa],
    ['IAADDR shorter than 24 bytes', 'fd10' + '00'.repeat(14) + '0000', decodeIaAddress],
    ['DUID of 2 bytes', '0003', decodeDuid],
    ['DUID longer than 130 bytes', '0002' + '00'.repeat(129), decodeDuid],
    ['DUID-LLT without a link-layer address', '00010001' + '00000000', decodeDuid],
    ['odd ORO', '001700', decodeOptionRequest],
    ['ELAPSED_TIME of 3 bytes', '000000', decodeElapsedTime],
    ['STATUS_CODE of 1 byte', '00', decodeStatusCode],
  ])('%s → invalid-option or truncated-option', (_name, hex, decode) => {
    const bytes = Buffer.from(hex, 'hex');
    try {
      decode(bytes);
      throw new Error('expected a decode error');
    } catch (error) {
      expect(error).toBeInstanceOf(Dhcpv6DecodeError);
      expect(['invalid-option', 'truncated-option']).toContain((error as Dhcpv6DecodeError).reason);
    }
  });

  it('decodes DUID-LL and leaves other DUID types opaque', () => {
    expect(decodeDuid(Buffer.from('00030001020000000000', 'hex'))).toEqual({ type: 3, hardwareType: 1, linkLayerAddress: '02:00:00:00:00:00' });
    expect(decodeDuid(Buffer.from('0004' + '11'.repeat(16), 'hex'))).toEqual({ type: 4, hardwareType: null, linkLayerAddress: null });
  });

  it('refuses values that do not fit their fields', () => {
    expect(() => encodeDhcpv6Message({ msgType: 1, transactionId: 0x1000000, options: [] })).toThrow(Dhcpv6EncodeError);
    expect(() => encodeDhcpv6Message({ msgType: 256, transactionId: 0, options: [] })).toThrow(Dhcpv6EncodeError);
    expect(() => encodeDhcpv6Message({ msgType: 1, transactionId: 0, options: [{ code: 1, data: Buffer.alloc(65536) }] })).toThrow(Dhcpv6EncodeError);
    expect(() => encodeIaNa({ iaid: -1, t1: 0, t2: 0, options: [] })).toThrow(Dhcpv6EncodeError);
    expect(() => encodeIaAddress({ address: '10.0.2.2', preferredLifetime: 0, validLifetime: 0, options: [] })).toThrow(Dhcpv6EncodeError);
    expect(() => encodeOptionRequest([70000])).toThrow(Dhcpv6EncodeError);
  });
});

describe('DHCPv6 codec properties', () => {
  const message = fc.record({
    msgType: fc.integer({ min: 1, max: 11 }),
    transactionId: fc.integer({ min: 0, max: 0xffffff }),
    options: fc.array(fc.record({ code: fc.integer({ min: 0, max: 0xffff }), data: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) }), { maxLength: 12 }),
  });

  it('encode → decode is the identity', () => {
    fc.assert(
      fc.property(message, (m: Dhcpv6Message) => {
        expect(decodeDhcpv6Message(encodeDhcpv6Message(m))).toEqual(m);
      }),
      { numRuns: 200 },
    );
  });

  it('random bytes decode or fail with Dhcpv6DecodeError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const m = decodeDhcpv6Message(Buffer.from(bytes));
          for (const o of m.options) {
            if (o.code === Dhcpv6OptionCode.IA_NA) decodeIaNa(o.data);
            if (o.code === Dhcpv6OptionCode.CLIENTID) decodeDuid(o.data);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(Dhcpv6DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
