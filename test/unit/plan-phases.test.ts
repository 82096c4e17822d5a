// Plan tests for the migration-target, hotplug and hot-unplug phases (libvirt device operations from the running domain XML).
import { describe, expect, it } from 'vitest';
import { allPhaseCases } from '../fixtures/cases-phases.js';
import { bridgeCases } from '../fixtures/cases-bridge.js';
import { describePlanCases, runCase } from '../fixtures/plan-case.js';

describePlanCases('phases', allPhaseCases);

describe('phases: cross-case properties', () => {
  it('a rerun plans the same DHCP as the first run (identity from the state dir)', () => {
    const rerun = runCase(allPhaseCases[allPhaseCases.length - 1]!);
    const first = runCase(bridgeCases.find((c) => c.name.startsWith('masquerade primary plus two Multus'))!);
    expect(rerun.networks[1]?.dhcp).toEqual(first.networks[1]?.dhcp);
  });

  it('every libvirt operation uses VIR_DOMAIN_AFFECT_LIVE|VIR_DOMAIN_AFFECT_CONFIG (3)', () => {
    const ops = allPhaseCases.flatMap((c) => runCase(c).domain.operations);
    expect(ops.length).toBeGreaterThan(0);
    for (const op of ops) expect(op.flagsValue).toBe(3);
  });

  it('the start and migration-target phases never produce device operations', () => {
    for (const c of allPhaseCases.filter((x) => x.phase === undefined || x.phase === 'migration-target')) {
      expect(runCase(c).domain.operations).toEqual([]);
    }
  });
});
