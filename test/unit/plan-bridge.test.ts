// Plan tests for the bridge binding: realistic VMIs (default interface, Multus secondaries, naming schemes) on CNI pod states.
import { describe, expect, it } from 'vitest';
import { bridgeCases } from '../fixtures/cases-bridge.js';
import { describePlanCases, runCase } from '../fixtures/plan-case.js';

describePlanCases('bridge binding', bridgeCases);

describe('bridge binding: cross-case properties', () => {
  const stable = bridgeCases.filter((c) => c.macPolicy === 'stable').map(runCase);

  it('macPolicy stable: the DHCP server expects the derived MAC in both pods, the keeper keeps each pod MAC', () => {
    expect(stable).toHaveLength(2);
    expect(stable.map((p) => p.networks[0]?.dhcp?.clientMac)).toEqual(['42:0b:94:a7:dd:c3', '42:0b:94:a7:dd:c3']);
    expect(stable.map((p) => p.networks[0]?.links[3]?.mac)).toEqual(['ce:6a:2b:1f:30:4e', '7e:11:90:ab:cd:01']);
  });

  it('every bridge-plumbed name fits IFNAMSIZ (15 characters)', () => {
    for (const plan of bridgeCases.map(runCase)) {
      for (const step of plan.networks.flatMap((n) => n.links)) {
        expect(step.name.length).toBeLessThanOrEqual(15);
        if (step.renameTo !== undefined) expect(step.renameTo.length).toBeLessThanOrEqual(15);
      }
    }
  });
});
