// Plan tests for the masquerade binding: realistic VMIs (ports, ranges, Istio, dual stack, custom CIDRs, arches) on CNI pods.
import { describe, expect, it } from 'vitest';
import { masqueradeCases } from '../fixtures/cases-masquerade.js';
import { describePlanCases, runCase } from '../fixtures/plan-case.js';

describePlanCases('masquerade binding', masqueradeCases);

describe('masquerade binding: invariants across the table', () => {
  const plans = masqueradeCases.map((c) => [c.name, runCase(c)] as const);

  it.each(plans)('%s: the bridge MAC is pinned to 02:00:00:00:00:00 and the pod eth0 is left alone', (_name, plan) => {
    const links = plan.networks[0]?.links ?? [];
    expect(links[0]).toMatchObject({ kind: 'bridge', mac: '02:00:00:00:00:00' });
    expect(links.some((step) => step.name === 'eth0' || step.kind === 'pod-nic')).toBe(false);
  });

  it.each(plans)('%s: the DHCP servers answer any client MAC', (_name, plan) => {
    expect(plan.networks[0]?.dhcp?.clientMac ?? null).toBeNull();
    expect(plan.networks[0]?.dhcpv6?.clientMac ?? null).toBeNull();
  });
});
