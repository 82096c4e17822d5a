// Exact-text tests of the masquerade nft ruleset against KubeVirt's masquerade_test.go expectations.
import { describe, expect, it } from 'vitest';
import type { MasqueradeNftInput } from '../../bindings/binding.js';
import {
  MASQUERADE_NFT_TABLES,
  renderMasqueradeNft,
  renderMasqueradeNftTeardown,
} from '../../bindings/masquerade-nft.js';

const V4 = { guest: '10.0.2.2', gateway: '10.0.2.1', podIp: '10.222.222.1' } as const;
const V6 = { guest: 'fd10:0:2::2', gateway: 'fd10:0:2::1' } as const;

function input(over: Partial<MasqueradeNftInput> = {}): MasqueradeNftInput {
  return {
    podInterface: 'eth0',
    bridge: 'k6t-eth0',
    ipv4: V4,
    ipv6: null,
    ports: [],
    portRanges: [],
    istio: false,
    legacyMigrationPorts: false,
    ...over,
  };
}

/** Table, chains and flushes: identical for every input of a family. */
function prelude(f: 'ip' | 'ip6'): string[] {
  return [
    `add table ${f} nat`,
    `add chain ${f} nat prerouting { type nat hook prerouting priority -100; }`,
    `add chain ${f} nat input { type nat hook input priority 100; }`,
    `add chain ${f} nat output { type nat hook output priority -100; }`,
    `add chain ${f} nat postrouting { type nat hook postrouting priority 100; }`,
    `add chain ${f} nat KUBEVIRT_PREINBOUND`,
    `add chain ${f} nat KUBEVIRT_POSTINBOUND`,
    `flush chain ${f} nat prerouting`,
    `flush chain ${f} nat input`,
    `flush chain ${f} nat output`,
    `flush chain ${f} nat postrouting`,
    `flush chain ${f} nat KUBEVIRT_PREINBOUND`,
    `flush chain ${f} nat KUBEVIRT_POSTINBOUND`,
  ];
}

const text = (...lines: string[]): string => `${lines.join('\n')}\n`;

const V4_HEAD = [
  'add rule ip nat postrouting ip saddr 10.0.2.2 counter masquerade',
  'add rule ip nat prerouting iifname "eth0" counter jump KUBEVIRT_PREINBOUND',
  'add rule ip nat postrouting oifname "k6t-eth0" counter jump KUBEVIRT_POSTINBOUND',
];
const V6_HEAD = [
  'add rule ip6 nat postrouting ip6 saddr fd10:0:2::2 counter masquerade',
  'add rule ip6 nat prerouting iifname "eth0" counter jump KUBEVIRT_PREINBOUND',
  'add rule ip6 nat postrouting oifname "k6t-eth0" counter jump KUBEVIRT_POSTINBOUND',
];
const V4_CATCH_ALL = [
  'add rule ip nat KUBEVIRT_PREINBOUND counter dnat to 10.0.2.2',
  'add rule ip nat KUBEVIRT_POSTINBOUND ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
  'add rule ip nat output ip daddr { 127.0.0.1 } counter dnat to 10.0.2.2',
];
const V6_CATCH_ALL = [
  'add rule ip6 nat KUBEVIRT_PREINBOUND counter dnat to fd10:0:2::2',
  'add rule ip6 nat KUBEVIRT_POSTINBOUND ip6 saddr { ::1 } counter snat to fd10:0:2::1',
  'add rule ip6 nat output ip6 daddr { ::1 } counter dnat to fd10:0:2::2',
];
const ISTIO_SKIP =
  '{ 15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090 }';

describe('renderMasqueradeNft', () => {
  it('default: IPv4, no ports (fully literal)', () => {
    expect(renderMasqueradeNft(input())).toBe(`add table ip nat
add chain ip nat prerouting { type nat hook prerouting priority -100; }
add chain ip nat input { type nat hook input priority 100; }
add chain ip nat output { type nat hook output priority -100; }
add chain ip nat postrouting { type nat hook postrouting priority 100; }
add chain ip nat KUBEVIRT_PREINBOUND
add chain ip nat KUBEVIRT_POSTINBOUND
flush chain ip nat prerouting
flush chain ip nat input
flush chain ip nat output
flush chain ip nat postrouting
flush chain ip nat KUBEVIRT_PREINBOUND
flush chain ip nat KUBEVIRT_POSTINBOUND
add rule ip nat postrouting ip saddr 10.0.2.2 counter masquerade
add rule ip nat prerouting iifname "eth0" counter jump KUBEVIRT_PREINBOUND
add rule ip nat postrouting oifname "k6t-eth0" counter jump KUBEVIRT_POSTINBOUND
add rule ip nat KUBEVIRT_PREINBOUND counter dnat to 10.0.2.2
add rule ip nat KUBEVIRT_POSTINBOUND ip saddr { 127.0.0.1 } counter snat to 10.0.2.1
add rule ip nat output ip daddr { 127.0.0.1 } counter dnat to 10.0.2.2
`);
  });

  it('IPv4-only emits no ip6 statement', () => {
    const out = renderMasqueradeNft(input());
    expect(out).not.toMatch(/ip6/);
    expect(out).toBe(text(...prelude('ip'), ...V4_HEAD, ...V4_CATCH_ALL));
  });

  it('IPv6-only, no ports', () => {
    expect(renderMasqueradeNft(input({ ipv4: null, ipv6: V6 }))).toBe(
      text(...prelude('ip6'), ...V6_HEAD, ...V6_CATCH_ALL),
    );
  });

  it('dual stack, no ports: ip first, then ip6', () => {
    expect(renderMasqueradeNft(input({ ipv6: V6 }))).toBe(
      text(...prelude('ip'), ...V4_HEAD, ...V4_CATCH_ALL, ...prelude('ip6'), ...V6_HEAD, ...V6_CATCH_ALL),
    );
  });

  it('ports tcp/udp: per port PREINBOUND (brace set), POSTINBOUND SNAT, output DNAT; no catch-all', () => {
    const out = renderMasqueradeNft(
      input({ ipv6: V6, ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 8080 }] }),
    );
    expect(out).toBe(
      text(
        ...prelude('ip'),
        ...V4_HEAD,
        'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 80 } counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 80 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } tcp dport 80 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_PREINBOUND udp dport { 8080 } counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND udp dport 8080 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } udp dport 8080 counter dnat to 10.0.2.2',
        ...prelude('ip6'),
        ...V6_HEAD,
        'add rule ip6 nat KUBEVIRT_PREINBOUND tcp dport { 80 } counter dnat to fd10:0:2::2',
        'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport 80 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
        'add rule ip6 nat output ip6 daddr { ::1 } tcp dport 80 counter dnat to fd10:0:2::2',
        'add rule ip6 nat KUBEVIRT_PREINBOUND udp dport { 8080 } counter dnat to fd10:0:2::2',
        'add rule ip6 nat KUBEVIRT_POSTINBOUND udp dport 8080 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
        'add rule ip6 nat output ip6 daddr { ::1 } udp dport 8080 counter dnat to fd10:0:2::2',
      ),
    );
  });

  it('protocol is lower-cased and defaults to tcp (KubeVirt strings.ToLower, "" → tcp)', () => {
    // The planner should already normalise; the renderer tolerates raw API values too.
    const raw = [
      { protocol: 'UDP', port: 53 },
      { protocol: '', port: 443 },
    ] as unknown as MasqueradeNftInput['ports'];
    expect(renderMasqueradeNft(input({ ports: raw }))).toBe(
      text(
        ...prelude('ip'),
        ...V4_HEAD,
        'add rule ip nat KUBEVIRT_PREINBOUND udp dport { 53 } counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND udp dport 53 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } udp dport 53 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 443 } counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 443 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } tcp dport 443 counter dnat to 10.0.2.2',
      ),
    );
  });

  it('portRanges: "S-E" without braces, also in PREINBOUND; no catch-all', () => {
    const out = renderMasqueradeNft(
      input({
        ipv6: V6,
        portRanges: [
          { protocol: 'tcp', start: 1000, end: 2000 },
          { protocol: 'udp', start: 1500, end: 2500 },
        ],
      }),
    );
    expect(out).toBe(
      text(
        ...prelude('ip'),
        ...V4_HEAD,
        'add rule ip nat KUBEVIRT_PREINBOUND tcp dport 1000-2000 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 1000-2000 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } tcp dport 1000-2000 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_PREINBOUND udp dport 1500-2500 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND udp dport 1500-2500 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } udp dport 1500-2500 counter dnat to 10.0.2.2',
        ...prelude('ip6'),
        ...V6_HEAD,
        'add rule ip6 nat KUBEVIRT_PREINBOUND tcp dport 1000-2000 counter dnat to fd10:0:2::2',
        'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport 1000-2000 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
        'add rule ip6 nat output ip6 daddr { ::1 } tcp dport 1000-2000 counter dnat to fd10:0:2::2',
        'add rule ip6 nat KUBEVIRT_PREINBOUND udp dport 1500-2500 counter dnat to fd10:0:2::2',
        'add rule ip6 nat KUBEVIRT_POSTINBOUND udp dport 1500-2500 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
        'add rule ip6 nat output ip6 daddr { ::1 } udp dport 1500-2500 counter dnat to fd10:0:2::2',
      ),
    );
  });

  it('ports come before portRanges when both are given', () => {
    const out = renderMasqueradeNft(
      input({ ports: [{ protocol: 'tcp', port: 80 }], portRanges: [{ protocol: 'tcp', start: 90, end: 99 }] }),
    );
    expect(out).toBe(
      text(
        ...prelude('ip'),
        ...V4_HEAD,
        'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 80 } counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 80 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } tcp dport 80 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_PREINBOUND tcp dport 90-99 counter dnat to 10.0.2.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 90-99 ip saddr { 127.0.0.1 } counter snat to 10.0.2.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } tcp dport 90-99 counter dnat to 10.0.2.2',
      ),
    );
  });

  it('legacy migration ports: output + POSTINBOUND returns right after the jump rules', () => {
    const out = renderMasqueradeNft(input({ ipv6: V6, legacyMigrationPorts: true }));
    expect(out).toBe(
      text(
        ...prelude('ip'),
        ...V4_HEAD,
        'add rule ip nat output tcp dport { 49152, 49153 } ip saddr 127.0.0.1 counter return',
        'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport { 49152, 49153 } ip saddr 127.0.0.1 counter return',
        ...V4_CATCH_ALL,
        ...prelude('ip6'),
        ...V6_HEAD,
        'add rule ip6 nat output tcp dport { 49152, 49153 } ip6 saddr ::1 counter return',
        'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport { 49152, 49153 } ip6 saddr ::1 counter return',
        ...V6_CATCH_ALL,
      ),
    );
  });

  it('custom vmNetworkCIDR 10.11.12.0/24: guest .2, gateway .1', () => {
    const out = renderMasqueradeNft(
      input({ ipv4: { guest: '10.11.12.2', gateway: '10.11.12.1', podIp: '10.244.0.7' } }),
    );
    expect(out).toBe(
      text(
        ...prelude('ip'),
        'add rule ip nat postrouting ip saddr 10.11.12.2 counter masquerade',
        'add rule ip nat prerouting iifname "eth0" counter jump KUBEVIRT_PREINBOUND',
        'add rule ip nat postrouting oifname "k6t-eth0" counter jump KUBEVIRT_POSTINBOUND',
        'add rule ip nat KUBEVIRT_PREINBOUND counter dnat to 10.11.12.2',
        'add rule ip nat KUBEVIRT_POSTINBOUND ip saddr { 127.0.0.1 } counter snat to 10.11.12.1',
        'add rule ip nat output ip daddr { 127.0.0.1 } counter dnat to 10.11.12.2',
      ),
    );
  });

  it('secondary / custom pod interface and bridge names', () => {
    const out = renderMasqueradeNft(input({ podInterface: 'pod16477688c0e', bridge: 'k6t-16477688c0e' }));
    expect(out).toBe(
      text(
        ...prelude('ip'),
        'add rule ip nat postrouting ip saddr 10.0.2.2 counter masquerade',
        'add rule ip nat prerouting iifname "pod16477688c0e" counter jump KUBEVIRT_PREINBOUND',
        'add rule ip nat postrouting oifname "k6t-16477688c0e" counter jump KUBEVIRT_POSTINBOUND',
        ...V4_CATCH_ALL,
      ),
    );
  });

  describe('Istio', () => {
    it('no ports: envoy port returns, only tcp 22 in PREINBOUND, SNAT {127.0.0.1, 127.0.0.6}, DNAT {127.0.0.1, podIP}', () => {
      const out = renderMasqueradeNft(input({ ipv6: V6, istio: true }));
      expect(out).toBe(
        text(
          ...prelude('ip'),
          ...V4_HEAD,
          `add rule ip nat output tcp dport ${ISTIO_SKIP} ip saddr 127.0.0.1 counter return`,
          `add rule ip nat KUBEVIRT_POSTINBOUND tcp dport ${ISTIO_SKIP} ip saddr 127.0.0.1 counter return`,
          'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 22 } counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } counter dnat to 10.0.2.2',
          ...prelude('ip6'),
          ...V6_HEAD,
          `add rule ip6 nat output tcp dport ${ISTIO_SKIP} ip6 saddr ::1 counter return`,
          `add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport ${ISTIO_SKIP} ip6 saddr ::1 counter return`,
          'add rule ip6 nat KUBEVIRT_PREINBOUND tcp dport { 22 } counter dnat to fd10:0:2::2',
          'add rule ip6 nat KUBEVIRT_POSTINBOUND ip6 saddr { ::1 } counter snat to fd10:0:2::1',
          'add rule ip6 nat output ip6 daddr { ::1 } counter dnat to fd10:0:2::2',
        ),
      );
    });

    it('ports 22 and 8080 (udp): PREINBOUND only for 22 and always tcp; POSTINBOUND/output for every port', () => {
      const out = renderMasqueradeNft(
        input({ ipv6: V6, istio: true, ports: [{ protocol: 'tcp', port: 22 }, { protocol: 'udp', port: 8080 }] }),
      );
      expect(out).toBe(
        text(
          ...prelude('ip'),
          ...V4_HEAD,
          'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 22 } counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 22 ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } tcp dport 22 counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND udp dport 8080 ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } udp dport 8080 counter dnat to 10.0.2.2',
          ...prelude('ip6'),
          ...V6_HEAD,
          'add rule ip6 nat KUBEVIRT_PREINBOUND tcp dport { 22 } counter dnat to fd10:0:2::2',
          'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport 22 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
          'add rule ip6 nat output ip6 daddr { ::1 } tcp dport 22 counter dnat to fd10:0:2::2',
          'add rule ip6 nat KUBEVIRT_POSTINBOUND udp dport 8080 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
          'add rule ip6 nat output ip6 daddr { ::1 } udp dport 8080 counter dnat to fd10:0:2::2',
        ),
      );
    });

    it('ports 80/8080 with legacy migration (KubeVirt "including ports and legacy migration set")', () => {
      const out = renderMasqueradeNft(
        input({
          ipv6: V6,
          istio: true,
          legacyMigrationPorts: true,
          ports: [{ protocol: 'tcp', port: 80 }, { protocol: 'tcp', port: 8080 }],
        }),
      );
      expect(out).toBe(
        text(
          ...prelude('ip'),
          ...V4_HEAD,
          'add rule ip nat output tcp dport { 49152, 49153 } ip saddr 127.0.0.1 counter return',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport { 49152, 49153 } ip saddr 127.0.0.1 counter return',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 80 ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } tcp dport 80 counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 8080 ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } tcp dport 8080 counter dnat to 10.0.2.2',
          ...prelude('ip6'),
          ...V6_HEAD,
          'add rule ip6 nat output tcp dport { 49152, 49153 } ip6 saddr ::1 counter return',
          'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport { 49152, 49153 } ip6 saddr ::1 counter return',
          'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport 80 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
          'add rule ip6 nat output ip6 daddr { ::1 } tcp dport 80 counter dnat to fd10:0:2::2',
          'add rule ip6 nat KUBEVIRT_POSTINBOUND tcp dport 8080 ip6 saddr { ::1 } counter snat to fd10:0:2::1',
          'add rule ip6 nat output ip6 daddr { ::1 } tcp dport 8080 counter dnat to fd10:0:2::2',
        ),
      );
    });

    it('no ports + legacy migration: migration returns, then envoy returns', () => {
      const out = renderMasqueradeNft(input({ istio: true, legacyMigrationPorts: true }));
      expect(out).toBe(
        text(
          ...prelude('ip'),
          ...V4_HEAD,
          'add rule ip nat output tcp dport { 49152, 49153 } ip saddr 127.0.0.1 counter return',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport { 49152, 49153 } ip saddr 127.0.0.1 counter return',
          `add rule ip nat output tcp dport ${ISTIO_SKIP} ip saddr 127.0.0.1 counter return`,
          `add rule ip nat KUBEVIRT_POSTINBOUND tcp dport ${ISTIO_SKIP} ip saddr 127.0.0.1 counter return`,
          'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 22 } counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } counter dnat to 10.0.2.2',
        ),
      );
    });

    it('port ranges: PREINBOUND tcp { 22 } only when the range contains 22; no envoy returns', () => {
      const out = renderMasqueradeNft(
        input({
          istio: true,
          portRanges: [
            { protocol: 'tcp', start: 20, end: 25 },
            { protocol: 'tcp', start: 14000, end: 16000 },
          ],
        }),
      );
      expect(out).toBe(
        text(
          ...prelude('ip'),
          ...V4_HEAD,
          'add rule ip nat KUBEVIRT_PREINBOUND tcp dport { 22 } counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 20-25 ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } tcp dport 20-25 counter dnat to 10.0.2.2',
          'add rule ip nat KUBEVIRT_POSTINBOUND tcp dport 14000-16000 ip saddr { 127.0.0.1, 127.0.0.6 } counter snat to 10.0.2.1',
          'add rule ip nat output ip daddr { 127.0.0.1, 10.222.222.1 } tcp dport 14000-16000 counter dnat to 10.0.2.2',
        ),
      );
    });

    it('IPv4 without a known pod IP: DNAT set falls back to loopback only', () => {
      const out = renderMasqueradeNft(input({ istio: true, ipv4: { ...V4, podIp: null } }));
      expect(out).toContain('add rule ip nat output ip daddr { 127.0.0.1 } counter dnat to 10.0.2.2\n');
    });
  });

  it('no family at all renders nothing', () => {
    expect(renderMasqueradeNft(input({ ipv4: null, ipv6: null }))).toBe('');
    expect(renderMasqueradeNftTeardown({ ipv4: null, ipv6: null })).toBe('');
  });

  it('rejects inputs that could inject nft syntax or are out of range', () => {
    expect(() => renderMasqueradeNft(input({ podInterface: 'eth0" accept' }))).toThrow(/interface name/);
    expect(() => renderMasqueradeNft(input({ bridge: 'a-name-way-too-long' }))).toThrow(/interface name/);
    expect(() => renderMasqueradeNft(input({ ipv4: { ...V4, guest: '10.0.2.2; flush ruleset' } }))).toThrow(/IPv4/);
    expect(() => renderMasqueradeNft(input({ ipv6: { ...V6, gateway: '10.0.2.1' } }))).toThrow(/IPv6/);
    expect(() => renderMasqueradeNft(input({ ports: [{ protocol: 'tcp', port: 0 }] }))).toThrow(/1\.\.65535/);
    expect(() => renderMasqueradeNft(input({ portRanges: [{ protocol: 'tcp', start: 90, end: 80 }] }))).toThrow(/start > end/);
    const sctp = [{ protocol: 'SCTP', port: 9 }] as unknown as MasqueradeNftInput['ports'];
    expect(() => renderMasqueradeNft(input({ ports: sctp }))).toThrow(/protocol/);
  });
});

describe('renderMasqueradeNftTeardown', () => {
  it('ensures, flushes, then deletes exactly our chains; never the table', () => {
    const chains = ['prerouting', 'input', 'output', 'postrouting', 'KUBEVIRT_PREINBOUND', 'KUBEVIRT_POSTINBOUND'];
    const fam = (f: 'ip' | 'ip6'): string[] => [
      ...prelude(f).filter((l) => !l.startsWith('flush')),
      ...chains.map((c) => `flush chain ${f} nat ${c}`),
      ...chains.map((c) => `delete chain ${f} nat ${c}`),
    ];
    expect(renderMasqueradeNftTeardown(input({ ipv6: V6 }))).toBe(text(...fam('ip'), ...fam('ip6')));
    expect(renderMasqueradeNftTeardown(input({ ipv4: null, ipv6: V6 }))).toBe(text(...fam('ip6')));
    expect(renderMasqueradeNftTeardown(input())).not.toMatch(/delete table|flush table|flush ruleset/);
  });
});

describe('MASQUERADE_NFT_TABLES', () => {
  it('describes table nat with our six chains for ip and ip6', () => {
    expect(MASQUERADE_NFT_TABLES.map((t) => `${t.family} ${t.table}`)).toEqual(['ip nat', 'ip6 nat']);
    for (const t of MASQUERADE_NFT_TABLES) {
      expect(t.chains.map((c) => (c.base === null ? c.name : `${c.name}:${c.base.hook}:${c.base.priority}`))).toEqual([
        'prerouting:prerouting:-100',
        'input:input:100',
        'output:output:-100',
        'postrouting:postrouting:100',
        'KUBEVIRT_PREINBOUND',
        'KUBEVIRT_POSTINBOUND',
      ]);
    }
  });

  it('the rendered ruleset only references owned chains', () => {
    const owned = new Set(MASQUERADE_NFT_TABLES.flatMap((t) => t.chains.map((c) => `${t.family} ${t.table} ${c.name}`)));
    const out = renderMasqueradeNft(input({ ipv6: V6, istio: true, legacyMigrationPorts: true, ports: [{ protocol: 'tcp', port: 22 }] }));
    for (const line of out.trimEnd().split('\n')) {
      const m = /^(?:add|flush) (?:chain|rule) (ip6?) (\w+) (\S+)/.exec(line);
      if (line.startsWith('add table')) continue;
      expect(m, line).not.toBeNull();
      if (m !== null) expect(owned.has(`${m[1]} ${m[2]} ${m[3]}`), line).toBe(true);
    }
  });
});
