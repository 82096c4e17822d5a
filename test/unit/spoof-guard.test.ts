// Anti-spoofing guards in the plan: opt-in by annotation or flag, what each binding's guard allows, and the rendered table.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { computePlan } from '../../agent/plan/plan.js';
import type { Phase, Plan } from '../../agent/plan/plan-types.js';
import type { PodState } from '../../agent/plan/pod-state.js';
import { SPOOF_PROTECTION_ANNOTATION } from '../../agent/plan/spoof-guard.js';
import { renderSpoofNft, renderSpoofNftTeardown } from '../../bindings/spoof-nft.js';
import { flannelPod, multusPod, ovnkDualStackPod, sriovPod } from '../fixtures/pods.js';

function vmiYaml(interfaces: string, networks: string, annotation?: string): string {
  const annotations = annotation === undefined ? '' : `  annotations:\n    ${SPOOF_PROTECTION_ANNOTATION}: "${annotation}"\n`;
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: guarded
  namespace: default
${annotations}spec:
  domain:
    devices:
      interfaces:
${interfaces}
  networks:
${networks}
`;
}

const MASQUERADE = vmiYaml('      - name: default\n        masquerade: {}', '  - name: default\n    pod: {}');
const BRIDGE = vmiYaml('      - name: default\n        bridge: {}', '  - name: default\n    pod: {}');

function plan(vmi: string, pod: PodState, options: { flag?: boolean; phase?: Phase } = {}): Plan {
  return computePlan({
    vmi: parse(vmi) as unknown,
    pod,
    config: {},
    phase: options.phase ?? 'start',
    arch: 'amd64',
    ...(options.flag !== undefined ? { spoofProtection: options.flag } : {}),
  });
}

/** The `add rule` lines of the guard table. */
function guardRules(p: Plan): string[] {
  return (p.nftables ?? '').split('\n').filter((line) => line.startsWith('add rule bridge virt_net_agent '));
}

describe('spoof protection: opt-in', () => {
  it('is off by default: no bridge table in the plan', () => {
    expect(plan(MASQUERADE, ovnkDualStackPod).nftables).not.toContain('bridge');
  });

  it('the agent flag turns it on; the annotation "false" turns it off again for that VMI', () => {
    expect(guardRules(plan(MASQUERADE, ovnkDualStackPod, { flag: true })).length).toBeGreaterThan(0);
    const optedOut = vmiYaml('      - name: default\n        masquerade: {}', '  - name: default\n    pod: {}', 'false');
    expect(plan(optedOut, ovnkDualStackPod, { flag: true }).nftables).not.toContain('bridge');
  });

  it('the annotation "true" turns it on without the flag', () => {
    const optedIn = vmiYaml('      - name: default\n        bridge: {}', '  - name: default\n    pod: {}', 'true');
    expect(guardRules(plan(optedIn, flannelPod)).length).toBeGreaterThan(0);
  });

  it('any other annotation value is a validation error naming the annotation; nothing is planned', () => {
    const bad = vmiYaml('      - name: default\n        bridge: {}', '  - name: default\n    pod: {}', 'yes');
    const p = plan(bad, flannelPod);
    expect(p.errors).toEqual([{ field: `metadata.annotations.${SPOOF_PROTECTION_ANNOTATION}`, message: 'must be "true" or "false", got "yes"' }]);
    expect(p.networks).toEqual([]);
    expect(p.nftables).toBeNull();
  });

  it('phases that plan only some networks (hotplug, hotunplug) never render the table, which is replaced whole', () => {
    for (const phase of ['hotplug', 'hotunplug'] as const) expect(plan(MASQUERADE, ovnkDualStackPod, { flag: true, phase }).nftables ?? '').not.toContain('bridge');
    expect(plan(MASQUERADE, ovnkDualStackPod, { flag: true, phase: 'migration-target' }).nftables).toContain('add table bridge virt_net_agent');
  });
});

describe('spoof protection: what each guard allows', () => {
  it('masquerade (dual stack): the guest MAC, 10.0.2.2 and fd10:0:2::2; DHCP from 0.0.0.0; link-local and :: for ND', () => {
    const p = plan(MASQUERADE, ovnkDualStackPod, { flag: true });
    const mac = p.networks[0]?.guestMac;
    expect(mac).toBe('0a:58:0a:f4:01:05');
    expect(guardRules(p).map((rule) => rule.replace('add rule bridge virt_net_agent guest-spoof ', ''))).toEqual([
      `iifname "tap0" ether saddr != ${mac} counter name "drops" counter drop comment "spoof default: source MAC"`,
      `iifname "tap0" ether type arp arp saddr ether != ${mac} counter name "drops" counter drop comment "spoof default: ARP sender MAC"`,
      'iifname "tap0" ether type arp arp saddr ip != { 0.0.0.0, 10.0.2.2 } counter name "drops" counter drop comment "spoof default: ARP sender IPv4"',
      'iifname "tap0" ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept',
      'iifname "tap0" ether type ip ip saddr != 10.0.2.2 counter name "drops" counter drop comment "spoof default: source IPv4"',
      'iifname "tap0" ether type ip6 ip6 saddr != { ::, fe80::/10, fd10:0:2::2 } counter name "drops" counter drop comment "spoof default: source IPv6"',
      'iifname "tap0" ether type != { arp, ip, ip6, 0x8035 } counter name "drops" counter drop comment "spoof default: EtherType"',
    ]);
  });

  it('the masquerade NAT rules come first and the guard table follows in the same transaction text', () => {
    const text = plan(MASQUERADE, ovnkDualStackPod, { flag: true }).nftables ?? '';
    expect(text.indexOf('add table ip nat')).toBeLessThan(text.indexOf('add table bridge virt_net_agent'));
  });

  it('bridge binding: the guest carries the pod IP (IPv4 only pod: IPv6 limited to link-local)', () => {
    const rules = guardRules(plan(BRIDGE, flannelPod, { flag: true }));
    expect(rules).toContain('add rule bridge virt_net_agent guest-spoof iifname "tap0" ether type ip ip saddr != 10.244.0.5 counter name "drops" counter drop comment "spoof default: source IPv4"');
    expect(rules).toContain('add rule bridge virt_net_agent guest-spoof iifname "tap0" ether type ip6 ip6 saddr != { ::, fe80::/10 } counter name "drops" counter drop comment "spoof default: source IPv6"');
  });

  it('a secondary without IPAM is guarded by MAC only; one with IPAM by MAC and IP', () => {
    const vmi = vmiYaml(
      '      - name: default\n        masquerade: {}\n      - name: blue\n        bridge: {}\n      - name: red\n        bridge: {}',
      '  - name: default\n    pod: {}\n  - name: blue\n    multus:\n      networkName: blue-net\n  - name: red\n    multus:\n      networkName: red-net',
    );
    const rules = guardRules(plan(vmi, multusPod, { flag: true }));
    const ofTap = (tap: string): string[] => rules.filter((rule) => rule.includes(`iifname "${tap}" `));
    expect(ofTap('tapb1f51a511f1')).toEqual([
      'add rule bridge virt_net_agent guest-spoof iifname "tapb1f51a511f1" ether saddr != 8a:1d:4e:00:bb:02 counter name "drops" counter drop comment "spoof red: source MAC"',
    ]);
    expect(ofTap('tap16477688c0e')).toContain(
      'add rule bridge virt_net_agent guest-spoof iifname "tap16477688c0e" ether type ip ip saddr != 192.168.10.5 counter name "drops" counter drop comment "spoof blue: source IPv4"',
    );
  });

  it('networks without a bridge port (SR-IOV) get a warning, not a guard', () => {
    const vmi = vmiYaml(
      '      - name: default\n        masquerade: {}\n      - name: sriov\n        sriov: {}',
      '  - name: default\n    pod: {}\n  - name: sriov\n    multus:\n      networkName: sriov-net',
    );
    const p = plan(vmi, sriovPod, { flag: true });
    expect(p.errors).toEqual([]);
    expect(p.warnings).toContain('spoof protection: network "sriov" (sriov) has no bridge port to guard; it is not protected');
    expect(guardRules(p).every((rule) => rule.includes('"tap0"'))).toBe(true);
  });
});

describe('spoof protection: the rendered table', () => {
  it('replaces the whole table atomically (add, delete, add) and an empty guard list leaves an empty chain', () => {
    expect(renderSpoofNft([])).toBe(
      [
        'add table bridge virt_net_agent',
        'delete table bridge virt_net_agent',
        'add table bridge virt_net_agent',
        'add counter bridge virt_net_agent drops',
        'add chain bridge virt_net_agent guest-spoof { type filter hook prerouting priority -200; policy accept; }',
        '',
      ].join('\n'),
    );
    expect(renderSpoofNftTeardown()).toBe('add table bridge virt_net_agent\ndelete table bridge virt_net_agent\n');
  });

  it('refuses values that could inject nft syntax', () => {
    expect(() => renderSpoofNft([{ network: 'n', tap: 'tap0"; flush ruleset', mac: '02:00:00:00:00:01', ips: null }])).toThrow(/not a valid interface name/);
    expect(() => renderSpoofNft([{ network: 'n', tap: 'tap0', mac: '02:00:00:00:00:01 accept', ips: null }])).toThrow(/not a lower-case MAC/);
    expect(() => renderSpoofNft([{ network: 'n', tap: 'tap0', mac: '02:00:00:00:00:01', ips: { ipv4: ['10.0.0.1 accept'], ipv6: [] } }])).toThrow(/IPv4/);
    expect(renderSpoofNft([{ network: 'a"b c', tap: 'tap0', mac: '02:00:00:00:00:01', ips: null }])).toContain('comment "spoof a_b_c: source MAC"');
  });

  it.skipIf(process.getuid?.() !== 0)('nft itself accepts the text (nft --check, nothing is committed)', () => {
    const text = plan(MASQUERADE, ovnkDualStackPod, { flag: true }).nftables ?? '';
    expect(() => execFileSync('nft', ['--check', '-f', '-'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] })).not.toThrow();
  });
});
