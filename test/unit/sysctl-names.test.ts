// The fixed set of sysctls teardown may restore: every name a fixture plan produces is in it; names a forged record adds are not.
import { describe, expect, it } from 'vitest';
import { plannedSysctlNames } from '../../agent/apply/reconcile.js';
import { isPlannableSysctl } from '../../agent/plan/sysctl-names.js';
import { bridgeCases } from '../fixtures/cases-bridge.js';
import { masqueradeCases } from '../fixtures/cases-masquerade.js';
import { passtSriovPluginCases } from '../fixtures/cases-passt-sriov-plugins.js';
import { allPhaseCases } from '../fixtures/cases-phases.js';
import { runCase } from '../fixtures/plan-case.js';
import { SIDECAR_SYSCTLS } from '../../agent/cni/binding-plugin.js';

describe('plannable sysctl names', () => {
  it('holds every sysctl the fixture plans name, and the binding-plugin CNI\'s', () => {
    const names = new Set<string>(Object.keys(SIDECAR_SYSCTLS));
    for (const c of [...bridgeCases, ...masqueradeCases, ...passtSriovPluginCases, ...allPhaseCases]) for (const name of plannedSysctlNames(runCase(c))) names.add(name);
    expect(names.size).toBeGreaterThanOrEqual(6);
    for (const name of names) expect(isPlannableSysctl(name), name).toBe(true);
  });

  it.each([
    'kernel.core_pattern',
    'kernel.modprobe',
    'kernel/core_pattern',
    'net.ipv4.conf.all.route_localnet',
    'net.ipv4.conf.default.arp_ignore',
    'net.ipv4.conf.k6t-eth0.rp_filter',
    'net.ipv4.conf.a/../../../kernel/core_pattern.route_localnet',
    'net.ipv4.conf.waytoolongname123.route_localnet',
    'net.core.bpf_jit_enable',
    ' net.ipv4.ip_forward',
  ])('refuses %s', (name) => {
    expect(isPlannableSysctl(name)).toBe(false);
  });
});
