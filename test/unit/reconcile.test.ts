// Unit tests of the pure reconcile/teardown steps: actions from a plan and a kernel snapshot, none when converged.
import { describe, expect, it } from 'vitest';
import type { AddressInfo, LinkInfo, NeighbourInfo } from '../../agent/drivers/kernel.js';
import type { KernelAction } from '../../agent/apply/kernel-actions.js';
import { computePlan } from '../../agent/plan/plan.js';
import { pinnedBridgeMac, reconcile, type KernelSnapshot } from '../../agent/apply/reconcile.js';
import type { AgentState } from '../../agent/apply/state-dir.js';
import { teardownActions } from '../../agent/apply/teardown-plan.js';
import { flannelPod } from '../fixtures/pods.js';

const vmi = (binding: 'bridge' | 'masquerade') => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'testvmi', namespace: 'default', uid: 'uid-1' },
  spec: {
    domain: { devices: { interfaces: [{ name: 'default', [binding]: {} }] } },
    networks: [{ name: 'default', pod: {} }],
  },
  status: { migrationTransport: 'Unix' },
});

function link(index: number, name: string, extra: Partial<LinkInfo> = {}): LinkInfo {
  return { index, name, kind: 'veth', mac: '4a:2f:9c:10:00:05', mtu: 1450, up: true, masterIndex: null, learning: null, tun: null, ...extra };
}
const addr = (index: number, cidr: string): AddressInfo => ({ index, cidr, family: cidr.includes(':') ? 6 : 4, scope: 'global' });

const freshPod: KernelSnapshot = {
  links: [link(1, 'lo', { kind: 'device', mac: '00:00:00:00:00:00', mtu: 65536 }), link(2, 'eth0')],
  addresses: [addr(1, '127.0.0.1/8'), addr(2, '10.244.0.5/24'), { index: 2, cidr: 'fe80::482f:9cff:fe10:5/64', family: 6, scope: 'link' }],
  routes: [],
  sysctls: { 'net.ipv4.conf.all.arp_ignore': '0' },
  nftUpToDate: false,
};

describe('reconcile: bridge binding on a fresh pod', () => {
  const plan = computePlan({ vmi: vmi('bridge'), pod: flannelPod, config: {}, phase: 'start', arch: 'amd64' });
  const bridgeMac = pinnedBridgeMac('k6t-eth0', '4a:2f:9c:10:00:05');

  it('creates bridge, renames and enslaves the NIC, makes the tap and the keeper, then sysctls', () => {
    const actions = reconcile(plan, freshPod, { dummySupported: false });
    expect(actions).toEqual([
      { do: 'create-bridge', link: 'k6t-eth0', mac: bridgeMac },
      { do: 'add-address', link: 'k6t-eth0', cidr: '169.254.75.10/32' },
      { do: 'set-link', link: 'k6t-eth0', up: true },
      { do: 'set-link', link: 'eth0', up: false },
      { do: 'set-link', link: 'eth0', name: 'eth0-nic' },
      { do: 'set-link', link: 'eth0-nic', mac: bridgeMac },
      { do: 'delete-address', link: 'eth0-nic', cidr: '10.244.0.5/24' },
      { do: 'set-link', link: 'eth0-nic', master: 'k6t-eth0' },
      { do: 'set-learning', link: 'eth0-nic', learning: false },
      { do: 'set-link', link: 'eth0-nic', up: true },
      { do: 'create-tap', link: 'tap0', queues: 0, owner: { uid: 107, gid: 107 } },
      { do: 'set-link', link: 'tap0', mtu: 1450 },
      { do: 'set-link', link: 'tap0', master: 'k6t-eth0' },
      { do: 'set-link', link: 'tap0', up: true },
      { do: 'create-keeper', link: 'eth0', keeperKind: 'bridge' },
      { do: 'set-link', link: 'eth0', mac: '4a:2f:9c:10:00:05' },
      { do: 'set-link', link: 'eth0', mtu: 1450 },
      { do: 'add-address', link: 'eth0', cidr: '10.244.0.5/24' },
      { do: 'write-sysctl', name: 'net.ipv4.conf.all.arp_ignore', value: '1' },
    ]);
  });

  it('uses a dummy keeper where the kernel has the dummy type', () => {
    const actions = reconcile(plan, freshPod, { dummySupported: true });
    expect(actions).toContainEqual({ do: 'create-keeper', link: 'eth0', keeperKind: 'dummy' });
  });

  it('plans nothing for a pod that already matches', () => {
    const converged: KernelSnapshot = {
      links: [
        link(1, 'lo', { kind: 'device', mac: '00:00:00:00:00:00', mtu: 65536 }),
        link(2, 'eth0-nic', { mac: bridgeMac, masterIndex: 3, learning: false }),
        link(3, 'k6t-eth0', { kind: 'bridge', mac: bridgeMac }),
        link(4, 'tap0', { kind: 'tun', mac: '7e:00:00:00:00:01', masterIndex: 3, learning: true, tun: { owner: 107, group: 107, multiQueue: false, persist: true } }),
        link(5, 'eth0', { kind: 'bridge', up: false }),
      ],
      addresses: [addr(1, '127.0.0.1/8'), addr(3, '169.254.75.10/32'), addr(5, '10.244.0.5/24')],
      routes: [],
      sysctls: { 'net.ipv4.conf.all.arp_ignore': '1' },
      nftUpToDate: false,
    };
    const rerunPod = {
      ...flannelPod,
      interfaces: [
        { name: 'eth0-nic', index: 2, kind: 'veth', mac: bridgeMac, mtu: 1450, up: true, master: 'k6t-eth0', ipv4: [], ipv6: [] },
        { name: 'eth0', index: 5, kind: 'bridge', mac: '4a:2f:9c:10:00:05', mtu: 1450, up: false, ipv4: ['10.244.0.5/24'], ipv6: [] },
      ],
      routes: [],
    };
    const identity = plan.networks[0]?.podIdentity;
    expect(identity).not.toBeNull();
    const rerun = computePlan({
      vmi: vmi('bridge'),
      pod: rerunPod,
      config: {},
      phase: 'start',
      arch: 'amd64',
      priorIdentities: { default: identity! },
    });
    expect(rerun.networks[0]?.dhcp).toEqual(plan.networks[0]?.dhcp);
    expect(reconcile(rerun, converged, { dummySupported: false })).toEqual([]);
  });
});

describe('reconcile: masquerade', () => {
  const plan = computePlan({ vmi: vmi('masquerade'), pod: flannelPod, config: {}, phase: 'start', arch: 'amd64' });
  it('creates the pinned-MAC bridge and tap, the neighbour entry once the tap is on the bridge, sysctls after links, nft last', () => {
    const actions = reconcile(plan, { ...freshPod, sysctls: {} }, { dummySupported: false });
    expect(actions.map((action) => action.do)).toEqual([
      'create-bridge', 'set-link', 'add-address', 'set-link',
      'create-tap', 'set-link', 'set-link', 'set-link', 'set-neighbour',
      'write-sysctl', 'write-sysctl', 'apply-nft',
    ]);
    expect(actions[0]).toEqual({ do: 'create-bridge', link: 'k6t-eth0', mac: '02:00:00:00:00:00' });
  });
  it('skips nft when the kernel already holds the ruleset', () => {
    const actions = reconcile(plan, { ...freshPod, nftUpToDate: true }, { dummySupported: false });
    expect(actions.some((action) => action.do === 'apply-nft')).toBe(false);
  });
  it('resolves the guest address on the bridge once it is up and its ports are in place, only when the kernel holds no usable entry (whatever its MAC), and replaces a permanent pin', () => {
    const actions = reconcile(plan, { ...freshPod, sysctls: {} }, { dummySupported: false });
    const upAt = actions.findIndex((action) => action.do === 'set-link' && action.link === 'k6t-eth0' && action.up === true);
    const neighbourAt = actions.findIndex((action) => action.do === 'set-neighbour');
    expect(actions[neighbourAt]).toEqual({ do: 'set-neighbour', link: 'k6t-eth0', ip: '10.0.2.2', mac: '4a:2f:9c:10:00:05' });
    expect(neighbourAt).toBeGreaterThan(upAt);
    // After the tap joined the bridge: that takes the bridge's carrier, and the kernel flushes entries when it goes.
    expect(neighbourAt).toBeGreaterThan(actions.findIndex((action) => action.do === 'create-tap'));
    const bridge: LinkInfo = { index: 9, name: 'k6t-eth0', kind: 'bridge', mac: '02:00:00:00:00:00', mtu: 1450, up: true, masterIndex: null, learning: null, tun: null };
    const withBridge = { ...freshPod, links: [...freshPod.links, bridge], addresses: [...freshPod.addresses, { index: 9, cidr: '10.0.2.1/24', family: 4 as const, scope: 'global' as const }] };
    const entry = (mac: string, permanent: boolean, valid = true, reachable = false): NeighbourInfo => ({ index: 9, family: 4, ip: '10.0.2.2', mac, permanent, valid, reachable });
    const neighbourActions = (neighbours: NeighbourInfo[]): KernelAction[] =>
      reconcile(plan, { ...withBridge, neighbours }, { dummySupported: false }).filter((action) => action.do === 'set-neighbour');
    // Ours (REACHABLE or aged to STALE), or one the kernel learned after the guest changed its MAC: left alone.
    expect(neighbourActions([entry('4a:2f:9c:10:00:05', false)])).toEqual([]);
    expect(neighbourActions([entry('4a:2f:9c:10:00:99', false)])).toEqual([]);
    // A permanent pin (round 2's agent) is never re-learned by the kernel: replaced, with either MAC.
    expect(neighbourActions([entry('4a:2f:9c:10:00:05', true)])).toHaveLength(1);
    expect(neighbourActions([entry('4a:2f:9c:10:00:99', true)])).toHaveLength(1);
    // Missing, or unresolved (INCOMPLETE / FAILED: no MAC to send to): set.
    expect(neighbourActions([entry('', false, false)])).toHaveLength(1);
    expect(neighbourActions([])).toHaveLength(1);
    // A migration target (no guest there yet): anything but a REACHABLE entry with the status MAC is set afresh.
    const target = { ...plan, phase: 'migration-target' as const };
    const targetActions = (neighbours: NeighbourInfo[]): KernelAction[] =>
      reconcile(target, { ...withBridge, neighbours }, { dummySupported: false }).filter((action) => action.do === 'set-neighbour');
    expect(targetActions([entry('4a:2f:9c:10:00:05', false, true, true)])).toEqual([]);
    expect(targetActions([entry('4a:2f:9c:10:00:05', false, true, false)])).toHaveLength(1); // STALE
    expect(targetActions([entry('4a:2f:9c:10:00:99', false, true, true)])).toHaveLength(1);
  });
});

describe('teardownActions', () => {
  const state: AgentState = {
    version: 1,
    vmi: { name: 'testvmi', namespace: 'default', uid: 'uid-1' },
    networks: {
      default: {
        binding: 'bridge',
        podInterface: 'eth0',
        podInterfaceIndex: 2,
        podIdentity: {
          name: 'eth0', mac: '4a:2f:9c:10:00:05', mtu: 1450, ipv4: ['10.244.0.5/24'], ipv6: [],
          routes: [{ dst: 'default', gw: '10.244.0.1' }, { dst: '10.244.0.0/24' }, { dst: '10.244.0.0/16', gw: '10.244.0.1' }],
        },
        renamedTo: 'eth0-nic',
        created: ['k6t-eth0', 'tap0', 'eth0'],
      },
    },
    sysctlsBefore: { 'net.ipv4.conf.all.arp_ignore': '0' },
    nft: null,
  };
  it('deletes what setup made and restores the NIC with its routes (device routes first)', () => {
    const snapshot: KernelSnapshot = {
      links: [link(2, 'eth0-nic', { mac: 'aa:aa:aa:aa:aa:aa', masterIndex: 3 }), link(3, 'k6t-eth0', { kind: 'bridge' }), link(4, 'tap0', { kind: 'tun' }), link(5, 'eth0', { kind: 'bridge', up: false })],
      addresses: [],
      routes: [],
      sysctls: { 'net.ipv4.conf.all.arp_ignore': '1' },
      nftUpToDate: false,
    };
    expect(teardownActions(state, snapshot)).toEqual([
      // Sysctls (and nft) before the links: after a deletion they would wait for the kernel to release rtnl.
      { do: 'write-sysctl', name: 'net.ipv4.conf.all.arp_ignore', value: '0' },
      // One kernel batch for everything setup made, before the NIC takes its name back.
      { do: 'delete-links', links: ['eth0', 'tap0', 'k6t-eth0'] },
      { do: 'set-link', link: 'eth0-nic', master: null },
      { do: 'set-link', link: 'eth0-nic', up: false },
      { do: 'set-link', link: 'eth0-nic', name: 'eth0' },
      { do: 'set-link', link: 'eth0', mac: '4a:2f:9c:10:00:05' },
      { do: 'add-address', link: 'eth0', cidr: '10.244.0.5/24' },
      { do: 'set-link', link: 'eth0', up: true },
      { do: 'add-route', link: 'eth0', dst: 'default', family: 4, gw: '10.244.0.1' },
      { do: 'add-route', link: 'eth0', dst: '10.244.0.0/16', family: 4, gw: '10.244.0.1' },
    ]);
  });
  it('never deletes the pod NIC when a crash left it unrenamed', () => {
    const snapshot: KernelSnapshot = {
      links: [link(2, 'eth0'), link(3, 'k6t-eth0', { kind: 'bridge' })],
      addresses: [addr(2, '10.244.0.5/24')],
      routes: [],
      sysctls: {},
      nftUpToDate: false,
    };
    const actions = teardownActions(state, snapshot);
    expect(actions).toContainEqual({ do: 'delete-link', link: 'k6t-eth0' });
    expect(actions).not.toContainEqual({ do: 'delete-link', link: 'eth0' });
  });
});
