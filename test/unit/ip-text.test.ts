// The agent's own IPv4/IPv6 text checks (agent/plan/ip.ts) agree with node:net's isIPv4/isIPv6 on any input without a zone.
import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bigIntToIp, bytesToIp, ipFamily, ipToBigInt, isIPv4Address, isIPv6Address } from '../../agent/plan/ip.js';

const ALPHABET = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''), '::', 'ffff', '255', '256', '01', 'g');
const soup = fc.array(ALPHABET, { maxLength: 24 }).map((parts) => parts.join(''));
const mutated = fc
  .tuple(fc.oneof(fc.ipV6(), fc.ipV4(), fc.ipV4Extended()), fc.nat(40), fc.nat(40), fc.constantFrom('', ':', '::', '.', '0', 'f', '1.2.3.4', '00000'))
  .map(([ip, at, cut, insert]) => ip.slice(0, at % (ip.length + 1)) + insert + ip.slice((at % (ip.length + 1)) + (cut % 3)));
const candidates = fc.oneof(fc.ipV6(), fc.ipV4(), fc.ipV4Extended(), mutated, soup);

describe('IP text checks', () => {
  it('agree with node:net on valid, mutated and random text', () => {
    fc.assert(
      fc.property(candidates, (text) => {
        expect(isIPv4Address(text)).toBe(isIPv4(text));
        expect(isIPv6Address(text)).toBe(isIPv6(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it.each([
    ['::', true],
    ['::1', true],
    ['1::', true],
    ['fd10:0:2::2', true],
    ['::ffff:10.0.2.2', true],
    ['1:2:3:4:5:6:10.0.2.2', true],
    ['1:2:3:4:5:6:7::', true],
    ['1:2:3:4:5:6:7:8', true],
    ['1:2:3:4:5:6:7:8::', false],
    ['1.2.3.4::', false],
    ['1::2::3', false],
    [':1::', false],
    ['12345::', false],
    ['::1.2.3.04', false],
    ['fe80::1%eth0', false],
  ])('isIPv6Address(%s) is %s', (text, expected) => {
    expect(isIPv6Address(text)).toBe(expected);
  });

  it('refuses a zone that node:net would accept (no code path can use one)', () => {
    expect(isIPv6('fe80::1%eth0')).toBe(true);
    expect(isIPv6Address('fe80::1%eth0')).toBe(false);
    expect(ipFamily('fe80::1%eth0')).toBeNull();
  });

  it('formats bytes exactly as the BigInt path does (RFC 5952), for any 4 or 16 bytes', () => {
    const sparse = fc.uint8Array({ minLength: 16, maxLength: 16 }).chain((bytes) => fc.array(fc.nat(15), { maxLength: 16 }).map((zeros) => bytes.map((b, i) => (zeros.includes(i) ? 0 : b))));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), sparse), (bytes) => {
        const family = bytes.length === 4 ? 4 : 6;
        const value = [...bytes].reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
        expect(bytesToIp(bytes, family)).toBe(bigIntToIp(value, family));
      }),
      { numRuns: 5_000 },
    );
    expect(bytesToIp(Uint8Array.from([0xfd, 0x10, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]), 6)).toBe('fd10:0:2::2');
  });

  it('parses what it accepts', () => {
    expect(ipToBigInt('::ffff:10.0.2.2')).toBe(0xffff0a000202n);
    expect(ipToBigInt('10.0.2.2')).toBe(0x0a000202n);
    expect(() => ipToBigInt('10.0.2.256')).toThrow(/invalid IP address/);
  });
});
