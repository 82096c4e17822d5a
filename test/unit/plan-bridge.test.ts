// Plan tests for the bridge binding: realistic VMIs (default interface, Multus secondaries, naming schemes) on CNI pod states.
import { describe, expect, it } from 'vitest';
import { bridgeCases } from '../fixtures/cases-bridge.js';
import { describePlanCases, runCase } from '../fixtures/plan-case.js';
import { multusPod, ovnkDualStackPod } from '../fixtures/pods.js';
import { computePlan } from '../../agent/plan/plan.js';
import type { PodState } from '../../agent/plan/pod-state.js';

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

describe('bridge binding: KubeVirt parity of the keeper and the status IPs', () => {
  const vmi = (networks: string): unknown => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vmi-parity', namespace: 'default', uid: 'parity-1' },
    spec: {
      domain: { devices: { interfaces: networks === 'pod' ? [{ name: 'default', bridge: {} }] : [{ name: 'default', masquerade: {} }, { name: 'red', bridge: {} }] } },
      networks: networks === 'pod' ? [{ name: 'default', pod: {} }] : [{ name: 'default', pod: {} }, { name: 'red', multus: { networkName: 'red-net' } }],
    },
  });
  const plan = (vmiObject: unknown, pod: PodState) => computePlan({ vmi: vmiObject, pod, config: {}, phase: 'start', arch: 'amd64' });

  it('dual-stack pod NIC: status reports only the IPv4 (no DHCPv6 on bridge, so the pod IPv6 never reaches the guest)', () => {
    const network = plan(vmi('pod'), ovnkDualStackPod).networks[0];
    expect(network?.status).toMatchObject({ ipAddress: '10.244.1.5', ipAddresses: ['10.244.1.5'] });
    // The keeper still holds every address the NIC had, the IPv6 ones included.
    expect(network?.links.find((step) => step.kind === 'dummy')?.addresses).toEqual(['10.244.1.5/24', 'fd00:10:244:2::5/64', 'fe80::858:aff:fef4:105/64']);
  });

  it('IPv6-only pod NIC: no status IPs, no DHCPv4; the keeper gets the global and link-local IPv6', () => {
    const iface = ovnkDualStackPod.interfaces[1];
    if (iface === undefined) throw new Error('fixture');
    const pod: PodState = {
      ...ovnkDualStackPod,
      interfaces: [ovnkDualStackPod.interfaces[0] as PodState['interfaces'][number], { ...iface, ipv4: [] }],
      routes: ovnkDualStackPod.routes.filter((route) => route.dst.includes(':')),
    };
    const network = plan(vmi('pod'), pod).networks[0];
    expect(network?.status?.ipAddresses).toBeUndefined();
    expect(network?.dhcp).toBeNull();
    expect(network?.links.find((step) => step.kind === 'dummy')?.addresses).toEqual(['fd00:10:244:2::5/64', 'fe80::858:aff:fef4:105/64']);
  });

  it('L2-only Multus secondary (no IPv4): the keeper gets the NIC link-local IPv6, as KubeVirt\'s dummy does', () => {
    const network = plan(vmi('multus'), multusPod).networks.find((n) => n.name === 'red');
    expect(network?.links.find((step) => step.kind === 'dummy')).toMatchObject({ name: 'podb1f51a511f1', addresses: ['fe80::881d:4eff:fe00:bb02/64'] });
  });
});
