// Plan tests for passtBinding, SR-IOV and binding plugins (macvtap tap, managedTap, sidecar-only) with realistic VMIs and pods.
import { describe, expect, it } from 'vitest';
import { passtSriovPluginCases } from '../fixtures/cases-passt-sriov-plugins.js';
import { describePlanCases, runCase } from '../fixtures/plan-case.js';

describePlanCases('passtBinding, SR-IOV and binding plugins', passtSriovPluginCases);

describe('passtBinding: what the vhost-user interface never carries', () => {
  const passt = passtSriovPluginCases.filter((c) => c.vmi.includes('passtBinding')).map((c) => [c.name, runCase(c)] as const);

  it.each(passt)('%s: no target, mtu, rom, boot order or link state', (_name, plan) => {
    expect(plan.domain.interfaces).toHaveLength(1);
    expect(plan.domain.interfaces[0]).not.toMatch(/<(target|mtu|rom|boot|link)\b/);
  });
});
