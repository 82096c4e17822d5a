// Unit tests for the DHCPv4 codec (dhcp/packet.ts): a udhcpc-style DISCOVER, each decode error, overload, RFC 3396, round trips.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DHCP_MAGIC_COOKIE,
  DhcpDecodeError,
  DhcpEncodeError,
  DhcpOption,
  decodeDhcpPacket,
  encodeDhcpPacket,
  isBroadcast,
  messageTypeName,
  tryEncodeDhcpPacket,
  type DhcpDecodeReason,
  type DhcpPacket,
} from '../../dhcp/packet.js';

const ascii = (s: string): number[] => [...Buffer.from(s, 'latin1')];

/** A 240-byte header (op 1, Ethernet, the given chaddr) followed by `options` bytes, padded to `minLength`. */
function raw(options: readonly number[], opts: { minLength?: number; mac?: string; edit?: (b: Buffer) => void } = {}): Buffer {
  const len = Math.max(opts.minLength ?? 300, 240 + options.length);
  const b = Buffer.alloc(len);
  b[0] = 1;
  b[1] = 1;
  b[2] = 6;
  b.writeUInt32BE(0x3903f326, 4);
  Buffer.from((opts.mac ?? '02:42:ac:11:00:02').replace(/:/g, ''), 'hex').copy(b, 28);
  b.writeUInt32BE(DHCP_MAGIC_COOKIE, 236);
  Buffer.from(options).copy(b, 240);
  opts.edit?.(b);
  return b;
}

/** DHCPDISCOVER as busybox 1.36 `udhcpc -x hostname:fedora` sends it (option order, 576 max size, 300-byte frame). */
function udhcpcDiscover(): Buffer {
  return raw([
    53, 1, 1,
    61, 7, 1, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02,
    57, 2, 0x02, 0x40,
    55, 8, 1, 3, 6, 12, 15, 28, 42, 121,
    12, 6, ...ascii('fedora'),
    60, 12, ...ascii('udhcp 1.36.1'),
    255,
  ]);
}

function decodeReason(buf: Buffer): DhcpDecodeReason | 'ok' {
  try {
    decodeDhcpPacket(buf);
    return 'ok';
  } catch (e) {
    if (e instanceof DhcpDecodeError) return e.reason;
    throw e;
  }
}

/** Options as sorted [code, hex] pairs: comparable with toEqual regardless of Map order. */
function norm(p: DhcpPacket): object {
  const { options, ...rest } = p;
  const all = new Map(options);
  if (p.messageType !== null) all.set(53, Buffer.from([p.messageType]));
  return { ...rest, options: [...all].map(([c, v]) => [c, v.toString('hex')]).sort((a, b) => Number(a[0]) - Number(b[0])) };
}

/** The option codes of the options field, in wire order. */
function wireCodes(buf: Buffer, start = 240, end = buf.length): number[] {
  const out: number[] = [];
  let i = start;
  while (i < end && buf[i] !== 255) {
    if (buf[i] === 0) {
      i++;
      continue;
    }
    out.push(buf[i]!);
    i += 2 + buf[i + 1]!;
  }
  return out;
}

const basePacket: DhcpPacket = {
  op: 2,
  htype: 1,
  hlen: 6,
  hops: 0,
  xid: 0xdeadbeef,
  secs: 0,
  flags: 0x8000,
  ciaddr: '0.0.0.0',
  yiaddr: '10.244.1.5',
  siaddr: '0.0.0.0',
  giaddr: '0.0.0.0',
  chaddr: '02:42:ac:11:00:02',
  sname: '',
  file: '',
  options: new Map([
    [54, Buffer.from([169, 254, 75, 10])],
    [1, Buffer.from([255, 255, 255, 0])],
    [51, Buffer.from([0x05, 0x25, 0x0c, 0x00])],
  ]),
  messageType: 2,
};

describe('decodeDhcpPacket: a udhcpc DISCOVER', () => {
  it('decodes every field and option', () => {
    const p = decodeDhcpPacket(udhcpcDiscover());
    expect(p.op).toBe(1);
    expect(p.htype).toBe(1);
    expect(p.hlen).toBe(6);
    expect(p.xid).toBe(0x3903f326);
    expect(p.chaddr).toBe('02:42:ac:11:00:02');
    expect(p.ciaddr).toBe('0.0.0.0');
    expect(isBroadcast(p)).toBe(false);
    expect(p.messageType).toBe(1);
    expect(messageTypeName(p.messageType)).toBe('DHCPDISCOVER');
    expect([...p.options.keys()]).toEqual([53, 61, 57, 55, 12, 60]);
    expect(p.options.get(57)!.readUInt16BE(0)).toBe(576);
    expect([...p.options.get(55)!]).toEqual([1, 3, 6, 12, 15, 28, 42, 121]);
    expect(p.options.get(12)!.toString()).toBe('fedora');
    expect(p.sname).toBe('');
    expect(p.file).toBe('');
  });

  it('copies option payloads out of the input buffer', () => {
    const buf = udhcpcDiscover();
    const p = decodeDhcpPacket(buf);
    buf.fill(0xee, 240);
    expect(p.options.get(12)!.toString()).toBe('fedora');
  });

  it('reads sname and file as NUL-terminated strings', () => {
    const p = decodeDhcpPacket(
      raw([53, 1, 1, 255], {
        edit: (b) => {
          b.write('boot-server', 44, 'latin1');
          b.write('pxelinux.0', 108, 'latin1');
        },
      }),
    );
    expect(p.sname).toBe('boot-server');
    expect(p.file).toBe('pxelinux.0');
  });

  it('formats hlen bytes of chaddr only, and an empty chaddr for hlen 0', () => {
    expect(decodeDhcpPacket(raw([255], { edit: (b) => (b[2] = 3) })).chaddr).toBe('02:42:ac');
    expect(decodeDhcpPacket(raw([255], { edit: (b) => (b[2] = 0) })).chaddr).toBe('');
    expect(decodeDhcpPacket(raw([255], { edit: (b) => (b[2] = 16) })).chaddr.split(':')).toHaveLength(16);
  });

  it('has messageType null for BOOTP (no 53) and for a malformed 53', () => {
    expect(decodeDhcpPacket(raw([255])).messageType).toBeNull();
    const p = decodeDhcpPacket(raw([53, 2, 1, 1, 255]));
    expect(p.messageType).toBeNull();
    expect(p.options.get(53)!.toString('hex')).toBe('0101');
  });
});

describe('decodeDhcpPacket: malformed input', () => {
  const cases: Array<[string, Buffer, DhcpDecodeReason]> = [
    ['empty', Buffer.alloc(0), 'too-short'],
    ['239 bytes', udhcpcDiscover().subarray(0, 239), 'too-short'],
    ['236-byte header without cookie', udhcpcDiscover().subarray(0, 236), 'too-short'],
    ['65536 bytes', raw([255], { minLength: 65536 }), 'too-large'],
    ['op 0', raw([255], { edit: (b) => (b[0] = 0) }), 'bad-op'],
    ['op 3', raw([255], { edit: (b) => (b[0] = 3) }), 'bad-op'],
    ['bad magic cookie', raw([255], { edit: (b) => b.writeUInt32BE(0x63825364, 236) }), 'bad-magic-cookie'],
    ['hlen 17', raw([255], { edit: (b) => (b[2] = 17) }), 'bad-hlen'],
    ['hlen 255', raw([255], { edit: (b) => (b[2] = 255) }), 'bad-hlen'],
    ['code without length byte at the end', raw([53, 1, 1, 12], { minLength: 0 }), 'option-truncated'],
    ['length past the end', raw([53, 1, 1, 12, 10, 0x61, 0x62], { minLength: 0 }), 'option-overrun'],
    ['length 255 past the end of a 300-byte frame', raw([53, 1, 1, 60, 255]), 'option-overrun'],
    ['overload 0', raw([52, 1, 0, 255]), 'bad-overload'],
    ['overload 4', raw([52, 1, 4, 255]), 'bad-overload'],
    ['overload of length 2', raw([52, 2, 1, 1, 255]), 'bad-overload'],
    ['overload of length 0', raw([52, 0, 255]), 'bad-overload'],
    ['repeated overload (concatenated to 2 bytes)', raw([52, 1, 1, 52, 1, 1, 255]), 'bad-overload'],
    [
      'overrun inside file',
      raw([52, 1, 1, 255], { edit: (b) => Buffer.from([53, 1, 1, 60, 200]).copy(b, 108) }),
      'option-overrun',
    ],
    [
      'overrun across the file/sname boundary is not allowed',
      raw([52, 1, 3, 255], { edit: (b) => Buffer.from([60, 10, 1, 2, 3]).copy(b, 108 + 123) }),
      'option-overrun',
    ],
    [
      'truncated at the end of sname',
      raw([52, 1, 2, 255], { edit: (b) => b.fill(0, 44, 108).writeUInt8(12, 107) }),
      'option-truncated',
    ],
  ];
  it.each(cases)('%s → %s', (_name, buf, reason) => {
    expect(decodeReason(buf)).toBe(reason);
  });

  it('errors carry a reason, an offset and a one-line message', () => {
    try {
      decodeDhcpPacket(raw([53, 1, 1, 12, 10, 0x61], { minLength: 0 }));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DhcpDecodeError);
      const err = e as DhcpDecodeError;
      expect(err.reason).toBe('option-overrun');
      expect(err.offset).toBe(243);
      expect(err.message).toMatch(/^option-overrun: option 12 in options claims 10 bytes, only 1 left$/);
    }
  });
});

describe('decodeDhcpPacket: tolerated irregularities', () => {
  it('accepts a missing END when the options end on an option boundary', () => {
    const p = decodeDhcpPacket(raw([53, 1, 3, 50, 4, 10, 244, 1, 5], { minLength: 0 }));
    expect(p.messageType).toBe(3);
    expect([...p.options.get(50)!]).toEqual([10, 244, 1, 5]);
  });

  it('accepts a missing END followed only by PAD bytes', () => {
    expect(decodeDhcpPacket(raw([53, 1, 1])).messageType).toBe(1);
  });

  it('accepts options with no option area at all (240 bytes)', () => {
    expect(decodeDhcpPacket(raw([], { minLength: 240 })).options.size).toBe(0);
  });

  it('ignores anything after END, even bytes that would overrun', () => {
    const p = decodeDhcpPacket(raw([53, 1, 1, 255, 60, 255, 1]));
    expect([...p.options.keys()]).toEqual([53]);
  });

  it('accepts zero-length options', () => {
    expect(decodeDhcpPacket(raw([53, 1, 3, 80, 0, 255])).options.get(80)!.length).toBe(0);
  });

  it('concatenates repeated options in order (RFC 3396)', () => {
    const p = decodeDhcpPacket(raw([53, 1, 1, 119, 2, 1, 2, 12, 1, 0x41, 119, 3, 3, 4, 5, 255]));
    expect([...p.options.get(119)!]).toEqual([1, 2, 3, 4, 5]);
  });
});

describe('decodeDhcpPacket: option overload (52)', () => {
  it('parses file (1) as options, keeps sname as a string, and drops 52 from the map', () => {
    const p = decodeDhcpPacket(
      raw([53, 1, 5, 52, 1, 1, 255], {
        edit: (b) => {
          b.write('srv', 44, 'latin1');
          Buffer.from([15, 3, ...ascii('lan'), 255]).copy(b, 108);
        },
      }),
    );
    expect(p.options.get(15)!.toString()).toBe('lan');
    expect(p.options.has(52)).toBe(false);
    expect(p.file).toBe('');
    expect(p.sname).toBe('srv');
  });

  it('parses sname (2) as options and keeps file', () => {
    const p = decodeDhcpPacket(
      raw([53, 1, 5, 52, 1, 2, 255], {
        edit: (b) => {
          Buffer.from([12, 2, ...ascii('vm'), 255]).copy(b, 44);
          b.write('boot.efi', 108, 'latin1');
        },
      }),
    );
    expect(p.options.get(12)!.toString()).toBe('vm');
    expect(p.sname).toBe('');
    expect(p.file).toBe('boot.efi');
  });

  it('concatenates a split option in the order options → file → sname (3)', () => {
    const p = decodeDhcpPacket(
      raw([53, 1, 5, 119, 1, 0xa1, 52, 1, 3, 255], {
        edit: (b) => {
          Buffer.from([119, 2, 0xb1, 0xb2, 255]).copy(b, 108);
          Buffer.from([119, 1, 0xc1]).copy(b, 44); // no END in sname: tolerated
        },
      }),
    );
    expect(p.options.get(119)!.toString('hex')).toBe('a1b1b2c1');
  });

  it('ignores a 52 found inside file', () => {
    const p = decodeDhcpPacket(raw([53, 1, 5, 52, 1, 1, 255], { edit: (b) => Buffer.from([52, 1, 2, 6, 4, 8, 8, 8, 8, 255]).copy(b, 108) }));
    expect(p.options.has(52)).toBe(false);
    expect([...p.options.get(6)!]).toEqual([8, 8, 8, 8]);
  });

  it('does not read sname/file as options without 52', () => {
    const p = decodeDhcpPacket(raw([53, 1, 1, 255], { edit: (b) => Buffer.from([60, 200]).copy(b, 108) }));
    expect(p.file).toBe('<\u00c8');
  });
});

describe('encodeDhcpPacket', () => {
  it('pads to 300 bytes, writes 53 first, then options by code, then END', () => {
    const buf = encodeDhcpPacket(basePacket);
    expect(buf.length).toBe(300);
    expect(buf.readUInt32BE(236)).toBe(DHCP_MAGIC_COOKIE);
    expect(wireCodes(buf)).toEqual([53, 1, 51, 54]);
    expect(buf[240 + 3 + 6 + 6 + 6]).toBe(255);
    expect(norm(decodeDhcpPacket(buf))).toEqual(norm(basePacket));
  });

  it('puts codes from `order` after 53 and before the rest', () => {
    const buf = encodeDhcpPacket(basePacket, { order: [54, 99, 1] });
    expect(wireCodes(buf)).toEqual([53, 54, 1, 51]);
  });

  it('writes a zero-length option', () => {
    const buf = encodeDhcpPacket({ ...basePacket, options: new Map([[80, Buffer.alloc(0)]]) });
    expect([...buf.subarray(240, 246)]).toEqual([53, 1, 2, 80, 0, 255]);
  });

  it('splits payloads longer than 255 bytes into consecutive instances (RFC 3396)', () => {
    const long = Buffer.alloc(600, 7);
    const buf = encodeDhcpPacket({ ...basePacket, options: new Map([[224, long]]) }, { maxSize: 1500 });
    expect(wireCodes(buf)).toEqual([53, 224, 224, 224]);
    expect(decodeDhcpPacket(buf).options.get(224)!.equals(long)).toBe(true);
  });

  it('overloads into file then sname when the options field is full, staying within maxSize', () => {
    const options = new Map(basePacket.options);
    options.set(119, Buffer.alloc(250, 1));
    options.set(121, Buffer.alloc(100, 2));
    options.set(224, Buffer.alloc(60, 3));
    const buf = encodeDhcpPacket({ ...basePacket, options });
    expect(buf.length).toBeLessThanOrEqual(548);
    expect(wireCodes(buf).slice(0, 2)).toEqual([53, 52]);
    const decoded = decodeDhcpPacket(buf);
    expect(norm(decoded)).toEqual(norm({ ...basePacket, options }));
    expect(wireCodes(buf, 108, 236)).toEqual([121]);
    expect(wireCodes(buf, 44, 108)).toEqual([224]);
  });

  it('uses sname too when file is not enough', () => {
    const options = new Map(basePacket.options);
    options.set(119, Buffer.alloc(250, 1));
    options.set(224, Buffer.alloc(100, 2));
    options.set(225, Buffer.alloc(50, 3));
    const buf = encodeDhcpPacket({ ...basePacket, options });
    expect(buf[240 + 3 + 2]).toBe(3);
    expect(norm(decodeDhcpPacket(buf))).toEqual(norm({ ...basePacket, options }));
  });

  it('falls back to packing by decreasing size when wire order does not fit', () => {
    const options = new Map([
      [224, Buffer.alloc(100, 1)],
      [225, Buffer.alloc(90, 2)],
      [226, Buffer.alloc(200, 3)],
    ]);
    const buf = encodeDhcpPacket({ ...basePacket, options });
    expect(buf.length).toBeLessThanOrEqual(548);
    expect(wireCodes(buf)).toEqual([53, 52, 225, 226]);
    expect(wireCodes(buf, 108, 236)).toEqual([224]);
    expect(norm(decodeDhcpPacket(buf))).toEqual(norm({ ...basePacket, options }));
  });

  it('does not overload fields that carry a server name or boot file', () => {
    const options = new Map([[224, Buffer.alloc(200)], [225, Buffer.alloc(150)]]);
    expect(() => encodeDhcpPacket({ ...basePacket, file: 'pxelinux.0', sname: 's', options })).toThrow(DhcpEncodeError);
    expect(tryEncodeDhcpPacket({ ...basePacket, file: 'pxelinux.0', sname: 's', options })).toBeNull();
  });

  it('throws too-large when even overload cannot fit', () => {
    try {
      encodeDhcpPacket({ ...basePacket, options: new Map([[224, Buffer.alloc(2000)]]) });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(DhcpEncodeError);
      expect((e as DhcpEncodeError).reason).toBe('too-large');
    }
  });

  it.each<[string, Partial<DhcpPacket>]>([
    ['a bad address', { yiaddr: '10.244.1' }],
    ['a non-canonical address', { ciaddr: '010.0.0.1' }],
    ['chaddr shorter than hlen', { chaddr: '02:42' }],
    ['hlen 17', { hlen: 17 }],
    ['xid out of range', { xid: 2 ** 32 }],
    ['sname of 65 bytes', { sname: 'x'.repeat(65) }],
    ['sname with a NUL', { sname: 'a\u0000b' }],
    ['file with a non-latin1 character', { file: 'boot\u2603' }],
    ['option 52 in the map', { options: new Map([[52, Buffer.from([1])]]) }],
    ['option 255 in the map', { options: new Map([[255, Buffer.alloc(0)]]) }],
  ])('rejects %s with DhcpEncodeError', (_name, patch) => {
    expect(() => encodeDhcpPacket({ ...basePacket, ...patch })).toThrow(DhcpEncodeError);
  });

  it('lets messageType override an option 53 in the map', () => {
    const buf = encodeDhcpPacket({ ...basePacket, messageType: 5, options: new Map([[53, Buffer.from([2])]]) });
    expect(decodeDhcpPacket(buf).messageType).toBe(5);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties

const byte = fc.integer({ min: 0, max: 255 });
const ipArb = fc.tuple(byte, byte, byte, byte).map((q) => q.join('.'));
const latin1Arb = (max: number): fc.Arbitrary<string> =>
  fc.array(fc.integer({ min: 1, max: 255 }), { maxLength: max }).map((cs) => String.fromCharCode(...cs));
const codeArb = fc.integer({ min: 1, max: 254 }).filter((c) => c !== 52 && c !== 53);

/** Valid packets, normalized the way decode returns them (53 only via messageType). */
const packetArb = (maxOptionLength: number): fc.Arbitrary<DhcpPacket> =>
  fc
    .record({
      op: fc.constantFrom(1, 2),
      htype: byte,
      hops: byte,
      xid: fc.integer({ min: 0, max: 0xffffffff }),
      secs: fc.integer({ min: 0, max: 0xffff }),
      flags: fc.integer({ min: 0, max: 0xffff }),
      ciaddr: ipArb,
      yiaddr: ipArb,
      siaddr: ipArb,
      giaddr: ipArb,
      mac: fc.uint8Array({ maxLength: 16 }),
      sname: latin1Arb(64),
      file: latin1Arb(128),
      opts: fc.array(fc.tuple(codeArb, fc.uint8Array({ maxLength: maxOptionLength, size: 'max' })), { maxLength: 12 }),
      messageType: fc.option(fc.integer({ min: 1, max: 18 }), { nil: null }),
    })
    .map(({ mac, opts, messageType, ...rest }) => {
      const options = new Map<number, Buffer>(opts.map(([c, v]) => [c, Buffer.from(v)]));
      if (messageType !== null) options.set(53, Buffer.from([messageType]));
      return {
        ...rest,
        hlen: mac.length,
        chaddr: [...mac].map((x) => x.toString(16).padStart(2, '0')).join(':'),
        options,
        messageType,
      };
    });

describe('codec properties', () => {
  it('decode(encode(p)) = p for valid packets (roomy maxSize)', () => {
    fc.assert(
      fc.property(packetArb(700), (p) => {
        const buf = encodeDhcpPacket(p, { maxSize: 65535 });
        expect(norm(decodeDhcpPacket(buf))).toEqual(norm(p));
      }),
      { numRuns: 300, seed: 4242 },
    );
  });

  it('with the default 548 bytes: either fits (overloading as needed) and round-trips, or reports null', () => {
    let overloaded = 0;
    fc.assert(
      fc.property(packetArb(120), fc.boolean(), (generated, emptyFields) => {
        const p = emptyFields ? { ...generated, sname: '', file: '' } : generated;
        const buf = tryEncodeDhcpPacket(p);
        if (buf === null) return;
        expect(buf.length).toBeLessThanOrEqual(548);
        if (wireCodes(buf).includes(52)) overloaded++;
        expect(norm(decodeDhcpPacket(buf))).toEqual(norm(p));
      }),
      { numRuns: 1000, seed: 99 },
    );
    expect(overloaded).toBeGreaterThan(0);
  });

  it('encode(decode(x)) is stable for any decodable x, including mutated ones', () => {
    const mutated = fc
      .tuple(packetArb(300), fc.array(fc.tuple(fc.nat(), byte), { maxLength: 6 }), fc.option(fc.nat(), { nil: null }))
      .map(([p, edits, cut]) => {
        const buf = Buffer.from(encodeDhcpPacket(p, { maxSize: 65535 }));
        for (const [at, v] of edits) buf[at % buf.length] = v;
        return cut === null ? buf : buf.subarray(0, cut % (buf.length + 1));
      });
    let decoded = 0;
    fc.assert(
      fc.property(mutated, (x) => {
        let p: DhcpPacket;
        try {
          p = decodeDhcpPacket(x);
        } catch (e) {
          expect(e).toBeInstanceOf(DhcpDecodeError);
          return;
        }
        decoded++;
        const once = encodeDhcpPacket(p, { maxSize: 65535 });
        const p2 = decodeDhcpPacket(once);
        expect(norm(p2)).toEqual(norm(p));
        expect(encodeDhcpPacket(p2, { maxSize: 65535 }).equals(once)).toBe(true);
      }),
      { numRuns: 2000, seed: 7 },
    );
    expect(decoded).toBeGreaterThan(100);
  });

  it('the option area of any decodable packet re-encodes no larger than it came in', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (tail) => {
        const x = Buffer.concat([raw([], { minLength: 240 }), Buffer.from(tail)]);
        let p: DhcpPacket;
        try {
          p = decodeDhcpPacket(x);
        } catch (e) {
          expect(e).toBeInstanceOf(DhcpDecodeError);
          return;
        }
        const out = encodeDhcpPacket(p, { maxSize: 65535 });
        expect(out.length).toBeLessThanOrEqual(Math.max(300, x.length + 1));
      }),
      { numRuns: 3000, seed: 11 },
    );
  });
});

it('exposes named option codes', () => {
  expect(DhcpOption.OVERLOAD).toBe(52);
  expect(messageTypeName(99)).toBe('DHCP(99)');
  expect(messageTypeName(null)).toBe('BOOTP');
});
