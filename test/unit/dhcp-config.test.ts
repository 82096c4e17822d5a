// Unit tests for the plan's DHCPv4/DHCPv6 sections: bridge address discovery and exact option payloads.
import { describe, expect, it } from 'vitest';
import { PlanError } from '../../agent/plan/errors.js';
import type { PodState } from '../../agent/plan/pod-state.js';
import {
  bridgeDhcpAddressing,
  buildDhcpV4Plan,
  buildDhcpV6Plan,
  dhcpSearchDomains,
  domainNameWithSubdomain,
  longestDomain,
  type DhcpV4PlanInput,
} from '../../bindings/dhcp-config.js';
import { calicoPod, flannelPod, multusPod, ovnkDualStackPod } from '../fixtures/pods.js';

/** Option 119 payload of "default.svc.cluster.local svc.cluster.local cluster.local". */
const K8S_SEARCH =
  '0764656661756c740373766307636c7573746572056c6f63616c00' + '0373766307636c7573746572056c6f63616c00' + '07636c7573746572056c6f63616c00';
const DEFAULT_SVC = '64656661756c742e7376632e636c75737465722e6c6f63616c'; // "default.svc.cluster.local"

function v4Input(overrides: Partial<DhcpV4PlanInput> = {}): DhcpV4PlanInput {
  return {
    interface: 'k6t-eth0',
    serverIdentifier: '169.254.75.10/32',
    clientMac: 'CE:6A:2B:1F:30:4E',
    address: '10.244.196.140/32',
    gateway: '169.254.1.1',
    routes: [{ dst: 'default', gw: '169.254.1.1' }, { dst: '169.254.1.1/32' }],
    mtu: 1450,
    resolvConf: calicoPod.resolvConf,
    hostname: calicoPod.hostname,
    warnings: [],
    ...overrides,
  };
}

/** An OpenShift SDN pod: a /23 from the node's slice of 10.128.0.0/14, the cluster and multicast routes on-link. */
const openshiftSdnPod: PodState = {
  hostname: 'vmi-sdn',
  interfaces: [{ name: 'eth0', index: 3, kind: 'veth', mac: '0a:58:0a:81:00:05', mtu: 1450, up: true, ipv4: ['10.129.0.5/23'], ipv6: [] }],
  routes: [
    { dst: 'default', dev: 'eth0', gw: '10.129.0.1' },
    { dst: '10.128.0.0/14', dev: 'eth0' },
    { dst: '10.129.0.0/23', dev: 'eth0' },
    { dst: '224.0.0.0/4', dev: 'eth0' },
  ],
  resolvConf: 'nameserver 172.30.0.10\n',
};

describe('bridgeDhcpAddressing (discoverbridge.go)', () => {
  it.each<[string, PodState, string, ReturnType<typeof bridgeDhcpAddressing>]>([
    [
      'Calico /32 with the 169.254.1.1 gateway',
      calicoPod,
      'eth0',
      { ipv4: '10.244.196.140/32', gateway: '169.254.1.1', routes: [{ dst: 'default', gw: '169.254.1.1' }, { dst: '169.254.1.1/32' }] },
    ],
    [
      'OVN-K dual stack: IPv6 routes skipped; only the subnet route 10.244.1.0/24 dropped, the covering 10.244.0.0/16 via the gateway kept',
      ovnkDualStackPod,
      'eth0',
      {
        ipv4: '10.244.1.5/24',
        gateway: '10.244.1.1',
        routes: [{ dst: 'default', gw: '10.244.1.1' }, { dst: '10.244.0.0/16', gw: '10.244.1.1' }, { dst: '100.64.0.0/16', gw: '10.244.1.1' }],
      },
    ],
    [
      'flannel: the local subnet is dropped, the default and the cluster /16 via the gateway kept',
      flannelPod,
      'eth0',
      { ipv4: '10.244.0.5/24', gateway: '10.244.0.1', routes: [{ dst: 'default', gw: '10.244.0.1' }, { dst: '10.244.0.0/16', gw: '10.244.0.1' }] },
    ],
    [
      'OpenShift SDN: on-link routes without a gateway (the cluster /14 covering the pod IP, multicast) kept; the /23 subnet route dropped',
      openshiftSdnPod,
      'eth0',
      {
        ipv4: '10.129.0.5/23',
        gateway: '10.129.0.1',
        routes: [{ dst: 'default', gw: '10.129.0.1' }, { dst: '10.128.0.0/14' }, { dst: '224.0.0.0/4' }],
      },
    ],
    [
      'Multus secondary whose first route has no next hop: no gateway',
      multusPod,
      'pod16477688c0e',
      { ipv4: '192.168.10.5/24', gateway: null, routes: [{ dst: '192.168.20.0/24', gw: '192.168.10.1' }] },
    ],
    ['Multus secondary without IPv4: IPAM disabled', multusPod, 'podb1f51a511f1', null],
  ])('%s', (_name, pod, iface, expected) => {
    expect(bridgeDhcpAddressing(pod, iface)).toEqual(expected);
  });

  it('skips link-local IPv4 and uses the first global address', () => {
    const pod: PodState = {
      ...flannelPod,
      interfaces: [{ name: 'eth0', index: 2, kind: 'veth', mac: '4a:2f:9c:10:00:05', mtu: 1450, up: true, ipv4: ['169.254.3.3/16', '10.244.0.5/24', '10.244.0.6/24'], ipv6: [] }],
    };
    expect(bridgeDhcpAddressing(pod, 'eth0')?.ipv4).toBe('10.244.0.5/24');
  });

  it('treats an IPv4 pod with only link-local addresses as IPAM disabled', () => {
    const pod: PodState = {
      ...flannelPod,
      interfaces: [{ name: 'eth0', index: 2, kind: 'veth', mac: '4a:2f:9c:10:00:05', mtu: 1450, up: true, ipv4: ['169.254.3.3/16'], ipv6: [] }],
    };
    expect(bridgeDhcpAddressing(pod, 'eth0')).toBeNull();
  });

  it('fails with KubeVirt\'s message when the interface has IPv4 but no IPv4 route', () => {
    const pod: PodState = { ...ovnkDualStackPod, routes: ovnkDualStackPod.routes.filter((r) => r.dst.includes(':')) };
    expect(() => bridgeDhcpAddressing(pod, 'eth0')).toThrow(PlanError);
    expect(() => bridgeDhcpAddressing(pod, 'eth0')).toThrow('no gateway address found in routes for eth0');
    try {
      bridgeDhcpAddressing(pod, 'eth0');
    } catch (error) {
      expect((error as PlanError).field).toBe('pod.routes');
    }
  });

  it('fails when the interface does not exist', () => {
    expect(() => bridgeDhcpAddressing(calicoPod, 'eth9')).toThrow(PlanError);
  });
});

describe('buildDhcpV4Plan', () => {
  it('Calico bridge: every option, exact payloads', () => {
    const warnings: string[] = [];
    const plan = buildDhcpV4Plan(v4Input({ warnings }));
    expect(plan).toEqual({
      interface: 'k6t-eth0',
      serverIdentifier: '169.254.75.10',
      clientMac: 'ce:6a:2b:1f:30:4e',
      yiaddr: '10.244.196.140',
      prefixLength: 32,
      leaseSeconds: 86313600,
      options: {
        '1': 'ffffffff',
        '3': 'a9fe0101',
        '6': '0a60000a',
        '12': '766d692d6665646f7261',
        '15': DEFAULT_SVC,
        '26': '05aa',
        '51': '05250a80',
        '54': 'a9fe4b0a',
        '119': K8S_SEARCH,
        '121': '20a9fe01010000000000a9fe0101',
      },
    });
    expect(warnings).toEqual([]);
  });

  it('bridge plan from discovered OVN-K and flannel addressing', () => {
    const ovnk = bridgeDhcpAddressing(ovnkDualStackPod, 'eth0');
    const flannel = bridgeDhcpAddressing(flannelPod, 'eth0');
    if (!ovnk || !flannel) throw new Error('expected addressing');
    const ovnkPlan = buildDhcpV4Plan(v4Input({ address: ovnk.ipv4, gateway: ovnk.gateway, routes: ovnk.routes, resolvConf: ovnkDualStackPod.resolvConf, mtu: 1400, hostname: 'vmi-alpine' }));
    expect(ovnkPlan.options).toMatchObject({ '1': 'ffffff00', '3': '0af40101', '6': '0a60000a', '26': '0578', '121': '100af40af40101' + '1064400af40101' + '000af40101' });
    expect(ovnkPlan.yiaddr).toBe('10.244.1.5');
    const flannelPlan = buildDhcpV4Plan(v4Input({ address: flannel.ipv4, gateway: flannel.gateway, routes: flannel.routes, hostname: 'testvmi' }));
    expect(flannelPlan.options).toMatchObject({ '1': 'ffffff00', '3': '0af40001', '12': '74657374766d69', '121': '100af40af40001' + '000af40001' });
  });

  it('OpenShift SDN bridge: option 121 sends the on-link routes with gateway 0.0.0.0, default last (server_test.go bytes)', () => {
    const sdn = bridgeDhcpAddressing(openshiftSdnPod, 'eth0');
    if (sdn === null) throw new Error('expected IPv4 addressing');
    const plan = buildDhcpV4Plan(v4Input({ address: sdn.ipv4, gateway: sdn.gateway, routes: sdn.routes }));
    expect(Buffer.from(plan.options['121'] ?? '', 'hex')).toEqual(Buffer.from([14, 10, 128, 0, 0, 0, 0, 4, 224, 0, 0, 0, 0, 0, 10, 129, 0, 1]));
  });

  it('no gateway → no option 3; routes still sent', () => {
    const plan = buildDhcpV4Plan(v4Input({ address: '192.168.10.5/24', gateway: null, routes: [{ dst: '192.168.20.0/24', gw: '192.168.10.1' }] }));
    expect(plan.options['3']).toBeUndefined();
    expect(plan.options['121']).toBe('18c0a814c0a80a01');
  });

  it('masquerade: no MAC filter, no option 121, gateway = server = 10.0.2.1', () => {
    const plan = buildDhcpV4Plan(
      v4Input({ serverIdentifier: '10.0.2.1', clientMac: null, address: '10.0.2.2/24', gateway: '10.0.2.1', routes: null, mtu: 1400, resolvConf: ovnkDualStackPod.resolvConf, hostname: 'vmi-alpine' }),
    );
    expect(plan.clientMac).toBeNull();
    expect(plan.yiaddr).toBe('10.0.2.2');
    expect(plan.prefixLength).toBe(24);
    expect(plan.options).toMatchObject({ '1': 'ffffff00', '3': '0a000201', '54': '0a000201', '6': '0a60000a' });
    expect(plan.options['121']).toBeUndefined();
  });

  it('empty route list sends no option 121 (KubeVirt omits an empty payload)', () => {
    expect(buildDhcpV4Plan(v4Input({ routes: [] })).options['121']).toBeUndefined();
  });

  it.each([
    ['no nameserver at all → 8.8.8.8, no search line → cluster.local', '', '08080808', '07636c7573746572056c6f63616c00', '636c75737465722e6c6f63616c'],
    ['only IPv6 nameservers → no option 6 (KubeVirt would send an empty one)', 'nameserver fd00::a\nsearch example.com\n', undefined, '076578616d706c6503636f6d00', '6578616d706c652e636f6d'],
    ['two IPv4 nameservers', 'nameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch a.b\n', '0a0000010a000002', '0161016200', '612e62'],
  ])('resolv.conf: %s', (_name, resolvConf, opt6, opt119, opt15) => {
    const plan = buildDhcpV4Plan(v4Input({ resolvConf }));
    expect(plan.options['6']).toBe(opt6);
    expect(plan.options['119']).toBe(opt119);
    expect(plan.options['15']).toBe(opt15);
  });

  it('drops an invalid search domain with a warning instead of failing (issues #4541, #12615)', () => {
    const warnings: string[] = [];
    const plan = buildDhcpV4Plan(v4Input({ warnings, resolvConf: 'nameserver 10.96.0.10\nsearch 114.114.114.114 default.svc.cluster.local svc.cluster.local cluster.local\n' }));
    expect(plan.options['119']).toBe(K8S_SEARCH);
    expect(plan.options['15']).toBe(DEFAULT_SVC);
    expect(warnings).toEqual(["dhcp k6t-eth0: resolv.conf line 2: search '114.114.114.114' dropped: Search domain is not valid"]);
  });

  it('no valid search domain at all → no options 119 and 15', () => {
    const warnings: string[] = [];
    const plan = buildDhcpV4Plan(v4Input({ warnings, resolvConf: 'nameserver 10.96.0.10\nsearch 114.114.114.114\n' }));
    expect(plan.options['119']).toBeUndefined();
    expect(plan.options['15']).toBeUndefined();
    expect(warnings).toHaveLength(1);
  });

  it('keeps the leading search domains that fit in 255 bytes and warns about the rest', () => {
    const long = [
      'pix3ob5ymm5jbsjessf0o4e84uvij588rz23iz0o.com',
      '3wg5xngig6vzfqjww4kocnky3c9dqjpwkewzlwpf.com',
      '38rfuqbyvkjg4z1f3aogul55wtgxrd9dlwzewqo0.com',
      'yza01ojnzi0tkyjeusmlg728nqdqvz3domymifvq.com',
      'm130lhs7a8yjgpn6almqggkqc222otedms6vslcd.com',
      't4lanpt7z4ix58nvxl4d.com',
    ];
    const warnings: string[] = [];
    const plan = buildDhcpV4Plan(v4Input({ warnings, resolvConf: `nameserver 10.96.0.10\nsearch ${long.join(' ')}\n` }));
    expect((plan.options['119'] ?? '').length / 2).toBe(230);
    expect(plan.options['119']?.startsWith('28706978336f6235796d6d356a62736a65737366306f346538347576696a353838727a3233697a306f03636f6d00')).toBe(true);
    expect(plan.options['15']).toBe('706978336f6235796d6d356a62736a65737366306f346538347576696a353838727a3233697a306f2e636f6d');
    expect(warnings).toEqual(["dhcp k6t-eth0: Search domains length exceeded allowable size (255 bytes); dropped 't4lanpt7z4ix58nvxl4d.com'"]);
  });

  describe('subdomain', () => {
    it('prepends <subdomain>.<longest *.svc.* domain>, which also becomes option 15', () => {
      const plan = buildDhcpV4Plan(v4Input({ subdomain: 'mysub' }));
      expect(plan.options['119']).toBe('056d797375620764656661756c740373766307636c7573746572056c6f63616c00' + K8S_SEARCH);
      expect(plan.options['15']).toBe('6d797375622e64656661756c742e7376632e636c75737465722e6c6f63616c');
    });

    it.each([
      ['longest service domain', ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], 'subdomain', 'subdomain.default.svc.cluster.local'],
      ['empty subdomain', ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], '', ''],
      ['longest service domain not first', ['svc.cluster.local', 'cluster.local', 'default.svc.cluster.local'], 'subdomain', 'subdomain.default.svc.cluster.local'],
      ['already has it', ['svc.cluster.local', 'cluster.local', 'subdomain.default.svc.cluster.local'], 'subdomain', ''],
      ['longest entry is not a service entry', ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'this.is.a.very.very.very.long.entry'], 'subdomain', 'subdomain.default.svc.cluster.local'],
      ['no service entry', ['example.com'], 'subdomain', ''],
    ])('DomainNameWithSubdomain (KubeVirt resolveconf_test.go): %s', (_name, domains, subdomain, expected) => {
      expect(domainNameWithSubdomain(domains, subdomain)).toBe(expected);
    });

    it('is not prepended twice', () => {
      expect(dhcpSearchDomains('search sub.ns.svc.cluster.local ns.svc.cluster.local\n', 'sub', [])).toEqual(['sub.ns.svc.cluster.local', 'ns.svc.cluster.local']);
    });

    it('an invalid subdomain is dropped with a warning', () => {
      const warnings: string[] = [];
      expect(dhcpSearchDomains(calicoPod.resolvConf, 'Bad_', warnings)).toEqual(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']);
      expect(warnings).toHaveLength(1);
    });

    it('longestDomain picks the first of the longest (GetDomainName)', () => {
      expect(
        longestDomain([
          'pix3ob5ymm5jbsjessf0o4e84uvij588rz23iz0o.com',
          '3wg5xngig6vzfqjww4kocnky3c9dqjpwkewzlwpf.com',
          't4lanpt7z4ix58nvxl4d.com',
          '14wg5xngig6vzfqjww4kocnky3c9dqjpwkewzlwpf.com',
          '4wg5xngig6vzfqjww4kocnky3c9dqjpwkewzlwpf.com',
        ]),
      ).toBe('14wg5xngig6vzfqjww4kocnky3c9dqjpwkewzlwpf.com');
    });
  });

  it('custom DHCP options (KubeVirt server_test.go "should contain custom options")', () => {
    const plan = buildDhcpV4Plan(
      v4Input({
        dhcpOptions: {
          bootFileName: 'config',
          tftpServerName: 'tftp.kubevirt.io',
          ntpServers: ['192.168.2.2', '192.168.2.3'],
          privateOptions: [
            { option: 240, value: 'private.options.kubevirt.io' },
            { option: 223, value: 'ignored' },
            { option: 255, value: 'ignored' },
          ],
        },
      }),
    );
    expect(plan.options).toMatchObject({
      '42': 'c0a80202c0a80203',
      '66': '746674702e6b756265766972742e696f',
      '67': '636f6e666967',
      '240': '707269766174652e6f7074696f6e732e6b756265766972742e696f',
    });
    expect(plan.options['223']).toBeUndefined();
    expect(plan.options['255']).toBeUndefined();
  });

  it('an invalid NTP server is a plan error with KubeVirt\'s message', () => {
    expect(() => buildDhcpV4Plan(v4Input({ field: 'spec.domain.devices.interfaces[0].dhcpOptions', dhcpOptions: { ntpServers: ['ntp.example.com'] } }))).toThrow(
      'Could not parse NTP server as IPv4 address: ntp.example.com',
    );
  });

  it('empty hostname → no option 12', () => {
    expect(buildDhcpV4Plan(v4Input({ hostname: '' })).options['12']).toBeUndefined();
  });

  it('rejects a non-IPv4 address and an impossible MTU', () => {
    expect(() => buildDhcpV4Plan(v4Input({ address: 'fd10:0:2::2/120' }))).toThrow(PlanError);
    expect(() => buildDhcpV4Plan(v4Input({ mtu: 70000 }))).toThrow(PlanError);
  });
});

describe('buildDhcpV6Plan', () => {
  it('masquerade on the OVN-K dual-stack pod, with router advertisements', () => {
    const plan = buildDhcpV6Plan({
      interface: 'k6t-eth0',
      bridgeMac: '02:00:00:00:00:00',
      clientMac: null,
      address: 'fd10:0:2::2/120',
      gateway: 'fd10:0:2::1',
      resolvConf: ovnkDualStackPod.resolvConf,
      mtu: 1400,
      routerAdvertisements: true,
    });
    expect(plan).toEqual({
      interface: 'k6t-eth0',
      serverDuid: '00030001020000000000',
      clientMac: null,
      address: 'fd10:0:2::2',
      prefixLength: 120,
      preferredLifetime: 86313600,
      validLifetime: 86313600,
      dns: ['fd00:10:96::a'],
      options: { '23': 'fd00001000960000000000000000000a', '24': K8S_SEARCH },
      ra: { prefix: 'fd10:0:2::/120', routerLifetimeSeconds: 1800, mtu: 1400, dns: ['fd00:10:96::a'], managed: true, other: true },
    });
  });

  it('no IPv6 nameserver → no option 23; RAs off → ra null', () => {
    const plan = buildDhcpV6Plan({
      interface: 'k6t-eth0',
      bridgeMac: '02:00:00:00:00:00',
      clientMac: 'AA:BB:CC:DD:EE:FF',
      address: 'fd10:0:2::2/120',
      gateway: 'fd10:0:2::1',
      resolvConf: calicoPod.resolvConf,
      mtu: 1450,
      routerAdvertisements: false,
    });
    expect(plan.options).toEqual({ '24': K8S_SEARCH });
    expect(plan.dns).toEqual([]);
    expect(plan.ra).toBeNull();
    expect(plan.clientMac).toBe('aa:bb:cc:dd:ee:ff');
  });

  it('rejects an IPv4 address or a bad bridge MAC', () => {
    const base = { interface: 'k6t-eth0', bridgeMac: '02:00:00:00:00:00', clientMac: null, address: 'fd10:0:2::2/120', gateway: 'fd10:0:2::1', resolvConf: '', mtu: 1500, routerAdvertisements: false };
    expect(() => buildDhcpV6Plan({ ...base, address: '10.0.2.2/24' })).toThrow(PlanError);
    expect(() => buildDhcpV6Plan({ ...base, bridgeMac: 'nope' })).toThrow(PlanError);
  });
});
