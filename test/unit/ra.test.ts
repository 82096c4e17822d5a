// Unit tests for router advertisement bytes (dhcp/ra.ts): RFC 4861 header and options, RFC 8106 RDNSS/DNSSL, the RA a
// masquerade DhcpV6Plan yields, the final RA with lifetime 0, and Router Solicitation recognition.
import { describe, expect, it } from 'vitest';
import type { DhcpV6Plan } from '../../agent/plan/plan-types.js';
import { buildDhcpV6Plan } from '../../bindings/dhcp-config.js';
import { RaBuildError, buildRouterAdvertisement, isRouterSolicitation, planSearchDomains, routerAdvertisementFromPlan, type RouterAdvertisement } from '../../dhcp/ra.js';

const plan: DhcpV6Plan = buildDhcpV6Plan({
  interface: 'k6t-eth0',
  bridgeMac: '02:00:00:00:00:00',
  clientMac: null,
  address: 'fd10:0:2::2/120',
  gateway: 'fd10:0:2::1',
  resolvConf: 'search default.svc.cluster.local cluster.local\nnameserver fd00:10:96::a\n',
  mtu: 1400,
  routerAdvertisements: true,
});

describe('router advertisement bytes', () => {
  it('masquerade plan → M+O, lifetime 1800, SLLA, MTU, on-link prefix (A=0), RDNSS, DNSSL: exact bytes', () => {
    const ra = routerAdvertisementFromPlan(plan, '02:00:00:00:00:00');
    expect(ra).not.toBeNull();
    const bytes = buildRouterAdvertisement(ra!);
    expect(bytes.toString('hex')).toBe(
      '86' + '00' + '0000' + // type 134, code 0, checksum (kernel fills it)
        '40' + 'c0' + '0708' + // cur hop limit 64, M and O, router lifetime 1800
        '00000000' + '00000000' + // reachable time, retrans timer: unspecified
        '01' + '01' + '020000000000' + // source link-layer address
        '05' + '01' + '0000' + '00000578' + // MTU 1400
        '03' + '04' + '78' + '80' + '05250a80' + '05250a80' + '00000000' + 'fd100000000200000000000000000000' + // prefix /120, L
        '19' + '03' + '0000' + '00000708' + 'fd00001000960000000000000000000a' + // RDNSS, lifetime 1800
        '1f' + '07' + '0000' + '00000708' + // DNSSL, 7 × 8 bytes (8 + 42 bytes of names + 6 of padding), lifetime 1800
        '0764656661756c740373766307636c7573746572056c6f63616c00' + '07636c7573746572056c6f63616c00' + '000000000000',
    );
    expect(bytes.length % 8).toBe(0);
  });

  it('the final RA differs only in router lifetime 0', () => {
    const live = buildRouterAdvertisement(routerAdvertisementFromPlan(plan, '02:00:00:00:00:00')!);
    const bye = buildRouterAdvertisement(routerAdvertisementFromPlan(plan, '02:00:00:00:00:00', 0)!);
    expect(bye.readUInt16BE(6)).toBe(0);
    expect(Buffer.concat([bye.subarray(0, 6), bye.subarray(8)])).toEqual(Buffer.concat([live.subarray(0, 6), live.subarray(8)]));
  });

  it('no RA section → null; no DNS / search / MTU / prefix → header and SLLA only', () => {
    expect(routerAdvertisementFromPlan({ ...plan, ra: null }, null)).toBeNull();
    const bare: DhcpV6Plan = { ...plan, options: {}, ra: { prefix: '', routerLifetimeSeconds: 600, mtu: 0, dns: [], managed: false, other: false } };
    expect(buildRouterAdvertisement(routerAdvertisementFromPlan(bare, '0a:00:00:00:00:01')!).toString('hex')).toBe(
      '86000000' + '4000' + '0258' + '00000000' + '00000000' + '0101' + '0a0000000001',
    );
  });

  it('search domains come from the plan option 24; a broken option 24 yields none', () => {
    expect(planSearchDomains(plan)).toEqual(['default.svc.cluster.local', 'cluster.local']);
    expect(planSearchDomains({ ...plan, options: { '24': '05ab' } })).toEqual([]);
  });

  it('refuses values that do not fit', () => {
    const base = routerAdvertisementFromPlan(plan, '02:00:00:00:00:00')!;
    const bad: Partial<RouterAdvertisement>[] = [{ routerLifetime: 70000 }, { curHopLimit: 256 }, { sourceMac: 'zz' }, { mtu: -1 }, { searchDomains: ['a..b'] }];
    for (const change of bad) expect(() => buildRouterAdvertisement({ ...base, ...change })).toThrow(RaBuildError);
  });

  it('recognises Router Solicitations', () => {
    expect(isRouterSolicitation(Buffer.from('8500000000000000', 'hex'))).toBe(true);
    expect(isRouterSolicitation(Buffer.from('85000000000000000101020000000001', 'hex'))).toBe(true);
    expect(isRouterSolicitation(Buffer.from('850000000000', 'hex'))).toBe(false);
    expect(isRouterSolicitation(Buffer.from('8600000000000000', 'hex'))).toBe(false);
    expect(isRouterSolicitation(Buffer.from('8501000000000000', 'hex'))).toBe(false);
  });
});
