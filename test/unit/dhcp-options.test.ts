// Unit tests for the DHCP option encoders/decoders, the resolv.conf parser and the guest hostname helpers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { guestHostname, sanitizeHostname } from '../../dhcp/hostname.js';
import {
  DhcpOptionError,
  decodeClasslessRoutes,
  decodeDomainSearch,
  decodeIPv4List,
  decodeIPv6List,
  decodeString,
  decodeUInt,
  encodeClasslessRoutes,
  encodeDomainSearch,
  encodeDuidLL,
  encodeIPv4List,
  encodeIPv6List,
  encodeString,
  encodeSubnetMask,
  encodeU16,
  encodeU32,
  encodeU8,
  isValidSearchDomain,
  sortRoutesDefaultLast,
  toHex,
  type ClasslessRoute,
} from '../../dhcp/options.js';
import { dhcpV4Nameservers, parseResolvConf, searchDomainsWithDefault } from '../../dhcp/resolv-conf.js';

const bytes = (buf: Uint8Array): number[] => [...buf];

describe('integer, address and string encoders', () => {
  it.each([
    ['u8 0', encodeU8(0), '00'],
    ['u8 255', encodeU8(255), 'ff'],
    ['u16 1450 (MTU)', encodeU16(1450), '05aa'],
    ['u16 65535', encodeU16(65535), 'ffff'],
    ['u32 86313600 (lease)', encodeU32(86313600), '05250a80'],
    ['mask /32', encodeSubnetMask(32), 'ffffffff'],
    ['mask /24', encodeSubnetMask(24), 'ffffff00'],
    ['mask /14', encodeSubnetMask(14), 'fffc0000'],
    ['mask /0', encodeSubnetMask(0), '00000000'],
    ['IPv4 list', encodeIPv4List(['10.96.0.10', '8.8.8.8']), '0a60000a08080808'],
    ['empty IPv4 list', encodeIPv4List([]), ''],
    ['IPv6 list', encodeIPv6List(['fd00:10:96::a']), 'fd00001000960000000000000000000a'],
    ['string', encodeString('vmi-fedora'), '766d692d6665646f7261'],
    ['DUID-LL of the masquerade bridge MAC', encodeDuidLL('02:00:00:00:00:00'), '00030001020000000000'],
  ])('%s', (_name, payload, hex) => {
    expect(toHex(payload)).toBe(hex);
  });

  it.each([
    () => encodeU8(256),
    () => encodeU16(-1),
    () => encodeU16(65536),
    () => encodeU32(2 ** 32),
    () => encodeU16(1.5),
    () => encodeIPv4List(['fd00::1']),
    () => encodeIPv4List(['10.0.0.256']),
    () => encodeIPv6List(['10.0.0.1']),
    () => encodeDuidLL('02:00:00:00:00'),
  ])('rejects bad input %#', (fn) => {
    expect(fn).toThrow(DhcpOptionError);
  });

  it('decodes what it encodes', () => {
    expect(decodeIPv4List(encodeIPv4List(['1.2.3.4', '255.255.255.255']))).toEqual(['1.2.3.4', '255.255.255.255']);
    expect(decodeIPv6List(encodeIPv6List(['2001:db8::1', '::1']))).toEqual(['2001:db8::1', '::1']);
    expect(decodeUInt(encodeU32(86313600))).toBe(86313600);
    expect(decodeUInt(encodeU16(1400))).toBe(1400);
    expect(decodeString(encodeString('private.options.kubevirt.io'))).toBe('private.options.kubevirt.io');
    expect(() => decodeIPv4List(Buffer.from([1, 2, 3]))).toThrow(DhcpOptionError);
  });

  it('round-trips IPv4 address lists (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.ipV4(), { maxLength: 20 }), (ips) => {
        expect(decodeIPv4List(encodeIPv4List(ips))).toEqual(ips);
      }),
    );
  });
});

describe('option 121: classless static routes (KubeVirt server_test.go)', () => {
  it.each<[string, ClasslessRoute[] | null, number[]]>([
    [
      'verify should form correctly',
      [{ dst: '224.0.0.0/4' }, { dst: '192.168.1.0/24', gw: '192.168.2.1' }],
      [4, 224, 0, 0, 0, 0, 24, 192, 168, 1, 192, 168, 2, 1],
    ],
    ['nil routes', null, []],
    ['empty routes', [], []],
    [
      'OpenShift',
      [{ dst: 'default', gw: '10.129.0.1' }, { dst: '10.128.0.0/14' }, { dst: '224.0.0.0/4' }],
      [14, 10, 128, 0, 0, 0, 0, 4, 224, 0, 0, 0, 0, 0, 10, 129, 0, 1],
    ],
    ['Calico', [{ dst: 'default', gw: '169.254.1.1' }, { dst: '169.254.1.1/32' }], [32, 169, 254, 1, 1, 0, 0, 0, 0, 0, 169, 254, 1, 1]],
    ['0.0.0.0/0 is a default route too', [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }, { dst: '10.1.0.0/16', gw: '10.0.0.1' }], [16, 10, 1, 10, 0, 0, 1, 0, 10, 0, 0, 1]],
    ['host bits are masked (10.1.2.3/9 → 10.0.0.0/9)', [{ dst: '10.1.2.3/9', gw: '10.0.0.1' }], [9, 10, 0, 10, 0, 0, 1]],
    ['width 25 needs four octets', [{ dst: '192.168.1.128/25', gw: '192.168.1.1' }], [25, 192, 168, 1, 128, 192, 168, 1, 1]],
    [
      'two default routes keep their order, after the others',
      [{ dst: 'default', gw: '10.0.0.1' }, { dst: 'default', gw: '10.0.0.2' }, { dst: '10.2.0.0/16' }],
      [16, 10, 2, 0, 0, 0, 0, 0, 10, 0, 0, 1, 0, 10, 0, 0, 2],
    ],
  ])('%s', (_name, routes, expected) => {
    expect(bytes(encodeClasslessRoutes(routes))).toEqual(expected);
  });

  it('rejects IPv6 routes and bad gateways', () => {
    expect(() => encodeClasslessRoutes([{ dst: 'fd00::/64' }])).toThrow(DhcpOptionError);
    expect(() => encodeClasslessRoutes([{ dst: '10.0.0.0/8', gw: 'fd00::1' }])).toThrow(DhcpOptionError);
  });

  it('decodes the Calico and OpenShift payloads', () => {
    expect(decodeClasslessRoutes(Buffer.from([32, 169, 254, 1, 1, 0, 0, 0, 0, 0, 169, 254, 1, 1]))).toEqual([
      { dst: '169.254.1.1/32', gw: '0.0.0.0' },
      { dst: '0.0.0.0/0', gw: '169.254.1.1' },
    ]);
    expect(decodeClasslessRoutes(Buffer.from([14, 10, 128, 0, 0, 0, 0, 4, 224, 0, 0, 0, 0, 0, 10, 129, 0, 1]))).toEqual([
      { dst: '10.128.0.0/14', gw: '0.0.0.0' },
      { dst: '224.0.0.0/4', gw: '0.0.0.0' },
      { dst: '0.0.0.0/0', gw: '10.129.0.1' },
    ]);
  });

  it('rejects truncated or malformed payloads', () => {
    expect(() => decodeClasslessRoutes(Buffer.from([24, 10, 0]))).toThrow(DhcpOptionError);
    expect(() => decodeClasslessRoutes(Buffer.from([33, 1, 2, 3, 4, 5, 0, 0, 0, 0]))).toThrow(DhcpOptionError);
  });

  it('round-trips: decode(encode(routes)) = routes with default last (property)', () => {
    const route = fc.record({
      width: fc.integer({ min: 0, max: 32 }),
      dst: fc.ipV4(),
      gw: fc.option(fc.ipV4(), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(route, { maxLength: 12 }), (generated) => {
        const routes: ClasslessRoute[] = generated.map(({ width, dst, gw }) => {
          const r = { dst: width === 0 ? 'default' : `${dst}/${width}` };
          return gw === undefined ? r : { ...r, gw };
        });
        const decoded = decodeClasslessRoutes(encodeClasslessRoutes(routes));
        const expected = sortRoutesDefaultLast(routes).map((r) => {
          if (r.dst === 'default') return { dst: '0.0.0.0/0', gw: r.gw ?? '0.0.0.0' };
          const [ip = '', width = '0'] = r.dst.split('/');
          const w = Number(width);
          const value = ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
          const network = w === 0 ? 0 : Math.floor(value / 2 ** (32 - w)) * 2 ** (32 - w);
          const text = [24, 16, 8, 0].map((s) => Math.floor(network / 2 ** s) % 256).join('.');
          return { dst: `${text}/${w}`, gw: r.gw ?? '0.0.0.0' };
        });
        expect(decoded).toEqual(expected);
      }),
    );
  });
});

describe('option 119: domain search', () => {
  it('encodes RFC 3397 data like KubeVirt ("foo.com", "foo.local")', () => {
    expect(bytes(encodeDomainSearch(['foo.com', 'foo.local']))).toEqual([
      3, 102, 111, 111, 3, 99, 111, 109, 0, 3, 102, 111, 111, 5, 108, 111, 99, 97, 108, 0,
    ]);
  });

  it('encodes the Kubernetes search list', () => {
    expect(toHex(encodeDomainSearch(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']))).toBe(
      '0764656661756c740373766307636c7573746572056c6f63616c00' + '0373766307636c7573746572056c6f63616c00' + '07636c7573746572056c6f63616c00',
    );
  });

  it('encodes a trailing-dot FQDN as one name (KubeVirt would add an extra root name)', () => {
    expect(bytes(encodeDomainSearch(['local.']))).toEqual([5, 108, 111, 99, 97, 108, 0]);
  });

  it('rejects invalid domains with KubeVirt\'s message', () => {
    expect(() => encodeDomainSearch(['foo,com'])).toThrow(/^Search domain is not valid: 'foo,com'$/);
    expect(() => encodeDomainSearch(['114.114.114.114'])).toThrow(DhcpOptionError);
  });

  it('rejects more than 255 bytes with KubeVirt\'s message (the server_test.go list: 256 bytes)', () => {
    const domains = [
      'pix3ob5ymm5jbsjessf0o4e84uvij588rz23iz0o.com',
      '3wg5xngig6vzfqjww4kocnky3c9dqjpwkewzlwpf.com',
      '38rfuqbyvkjg4z1f3aogul55wtgxrd9dlwzewqo0.com',
      'yza01ojnzi0tkyjeusmlg728nqdqvz3domymifvq.com',
      'm130lhs7a8yjgpn6almqggkqc222otedms6vslcd.com',
      't4lanpt7z4ix58nvxl4d.com',
    ];
    expect(() => encodeDomainSearch(domains)).toThrow(/^Search domains length exceeded allowable size: was 256 long$/);
    expect(encodeDomainSearch(domains.slice(0, 5)).length).toBe(230);
  });

  const a = (n: number): string => 'a'.repeat(n);
  it.each([
    ['starts with -', '-foo.com', false],
    ['ends with -', 'foo.com-', false],
    ['longer than 253', `${a(250)}.com`, false],
    ['label longer than 63', `${a(64)}.com`, false],
    ['invalid characters', 'foo\n.com', false],
    ['an IPv4 address (issue #12615)', '114.114.114.114', false],
    ['upper case', 'Example.com', false],
    ['empty', '', false],
    ['63-character label', `${a(63)}.com`, true],
    ['valid domain', 'example.default.svc.cluster.local', true],
    ['FQDN', 'example.default.svc.cluster.local.', true],
    ['partial domain', 'local', true],
    ['underscore label', '_tcp.example.com', true],
  ])('isValidSearchDomain: %s', (_name, domain, valid) => {
    expect(isValidSearchDomain(domain)).toBe(valid);
  });

  it('decodes compression pointers (RFC 1035 §4.1.4)', () => {
    // "foo.example.com", then "bar" + pointer to "example.com" at offset 4.
    const payload = Buffer.from([3, 102, 111, 111, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0, 3, 98, 97, 114, 0xc0, 4]);
    expect(decodeDomainSearch(payload)).toEqual(['foo.example.com', 'bar.example.com']);
  });

  it('rejects pointer loops and truncated names', () => {
    expect(() => decodeDomainSearch(Buffer.from([0xc0, 0]))).toThrow(DhcpOptionError);
    expect(() => decodeDomainSearch(Buffer.from([3, 102, 111]))).toThrow(DhcpOptionError);
    expect(() => decodeDomainSearch(Buffer.from([3, 102, 111, 111]))).toThrow(DhcpOptionError);
    expect(() => decodeDomainSearch(Buffer.from([0x40, 0]))).toThrow(DhcpOptionError);
  });

  it('decodes the root name as "."', () => {
    expect(decodeDomainSearch(Buffer.from([0, 5, 108, 111, 99, 97, 108, 0]))).toEqual(['.', 'local']);
  });

  it('round-trips: decode(encode(domains)) = domains (property)', () => {
    const domains = fc
      .array(
        fc.domain().filter((d) => isValidSearchDomain(d)),
        { maxLength: 8 },
      )
      .filter((list) => list.reduce((sum, d) => sum + d.length + 2, 0) <= 255);
    fc.assert(
      fc.property(domains, (list) => {
        expect(decodeDomainSearch(encodeDomainSearch(list))).toEqual(list);
      }),
    );
  });
});

describe('resolv.conf', () => {
  it('parses a Kubernetes resolv.conf', () => {
    const conf = parseResolvConf('search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\nnameserver fd00:10:96::a\noptions ndots:5\n');
    expect(conf).toEqual({
      nameservers4: ['10.96.0.10'],
      nameservers6: ['fd00:10:96::a'],
      searchDomains: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      noSearchLine: false,
      dropped: [],
    });
  });

  it.each([
    ['KubeVirt: two nameservers', 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n', ['8.8.8.8', '8.8.4.4'], []],
    ['KubeVirt: IPv6 nameservers', 'nameserver 2001:db8::1\nnameserver ::1\n', [], ['2001:db8::1', '::1']],
    ['KubeVirt: mixed', 'nameserver 8.8.8.8\nnameserver 2001:db8::1\n', ['8.8.8.8'], ['2001:db8::1']],
    ['KubeVirt: malformed lines ignored', 'search example.com\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver mynameserver\n', ['8.8.8.8', '8.8.4.4'], []],
    ['CRLF line ends', 'nameserver 1.1.1.1\r\n', ['1.1.1.1'], []],
    ['IPv4-mapped IPv6 counts as IPv4 (Go To4)', 'nameserver ::ffff:1.2.3.4\n', ['1.2.3.4'], []],
    ['indented and commented lines are ignored', ' nameserver 1.1.1.1\n#nameserver 2.2.2.2\n', [], []],
    ['two values on a line are dropped', 'nameserver 1.1.1.1 2.2.2.2\n', [], []],
  ])('nameservers: %s', (_name, text, v4, v6) => {
    const conf = parseResolvConf(text);
    expect(conf.nameservers4).toEqual(v4);
    expect(conf.nameservers6).toEqual(v6);
  });

  it('records dropped nameserver entries', () => {
    expect(parseResolvConf('nameserver mynameserver\nnameserver 1.1.1.1 # x\n').dropped).toEqual([
      { line: 1, keyword: 'nameserver', value: 'mynameserver', reason: 'not an IP address' },
      { line: 2, keyword: 'nameserver', value: '1.1.1.1 # x', reason: 'nameserver line should have only one value per line' },
    ]);
  });

  it('applies 8.8.8.8 only when there is no nameserver of either family (KubeVirt)', () => {
    expect(dhcpV4Nameservers(parseResolvConf(''))).toEqual(['8.8.8.8']);
    expect(dhcpV4Nameservers(parseResolvConf('nameserver fd00::a\n'))).toEqual([]);
    expect(dhcpV4Nameservers(parseResolvConf('nameserver 10.0.0.1\n'))).toEqual(['10.0.0.1']);
  });

  it.each([
    ['KubeVirt: one line', 'search cluster.local svc.cluster.local example.com\nnameserver 8.8.8.8\n', ['cluster.local', 'svc.cluster.local', 'example.com']],
    ['KubeVirt: multi-line', 'search cluster.local\nsearch svc.cluster.local example.com\n', ['cluster.local', 'svc.cluster.local', 'example.com']],
    ['KubeVirt: extra whitespace', 'search cluster.local\tsvc.cluster.local    example.com\n', ['cluster.local', 'svc.cluster.local', 'example.com']],
    ['KubeVirt: default', 'nameserver 8.8.8.8\n', ['cluster.local']],
    ['KubeVirt: partial domain', 'search local\n', ['local']],
    ['KubeVirt: lower-cased', 'search LoCaL\n', ['local']],
    ['an invalid domain is dropped (issue #12615)', 'search 114.114.114.114 example.com\n', ['example.com']],
    ['only invalid domains: no default', 'search 114.114.114.114\n', []],
  ])('search: %s', (_name, text, expected) => {
    expect(searchDomainsWithDefault(parseResolvConf(text))).toEqual(expected);
  });

  it('records dropped search domains with KubeVirt\'s reason', () => {
    expect(parseResolvConf('search ok.example.com 114.114.114.114 foo,com\n').dropped).toEqual([
      { line: 1, keyword: 'search', value: '114.114.114.114', reason: 'Search domain is not valid' },
      { line: 1, keyword: 'search', value: 'foo,com', reason: 'Search domain is not valid' },
    ]);
  });
});

describe('guest hostname (option 12)', () => {
  it.each([
    ['spec.hostname wins', { metadata: { name: 'vmi.fedora' }, spec: { hostname: 'myhost' } }, 'myhost'],
    ['name up to the first dot', { metadata: { name: 'vmi.fedora.example' }, spec: {} }, 'vmi'],
    ['name cut to 63', { metadata: { name: 'x'.repeat(70) }, spec: {} }, 'x'.repeat(63)],
    ['empty spec.hostname falls back to the name', { metadata: { name: 'testvmi' }, spec: { hostname: '' } }, 'testvmi'],
  ])('sanitizeHostname: %s', (_name, vmi, expected) => {
    expect(sanitizeHostname(vmi)).toBe(expected);
  });

  it('prefers the pod hostname as given', () => {
    expect(guestHostname('vmi-fedora', { metadata: { name: 'other' }, spec: {} })).toBe('vmi-fedora');
    expect(guestHostname('', { metadata: { name: 'a.b' }, spec: {} })).toBe('a');
    expect(guestHostname('')).toBe('');
  });
});
