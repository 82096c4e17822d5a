// setup/teardown for a VMI with Multus bridge-binding secondaries on a pod built like kubelet + Multus would (CNI bridge
// and macvlan, the network-status downward-API file): converges, re-runs with zero writes, restores the namespace exactly,
// and a fake guest on a secondary bridge with the secondary's IP and MAC reaches another pod on that network.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addCniPeer, downwardApiAnnotations, makeCniPod, networkStatusOf, type CniPeer, type CniPod } from '../helpers/cni.js';
import { agent, dumpNetns, setupSummary } from '../helpers/agent-run.js';
import { deleteNetns, makeNetns, netnsAvailable, type Netns } from '../helpers/netns.js';

// examples/vmi-bridge-multus.yaml: default (masquerade), blue (bridge, spec MAC 02:5e:8c:00:0b:01) on Multus network
// blue-net, red (bridge) on red-net. KubeVirt's hashed pod interface names for "blue" and "red":
const BLUE = 'pod16477688c0e';
const RED = 'podb1f51a511f1';
const VMI = join(process.cwd(), 'examples/vmi-bridge-multus.yaml');

describe.skipIf(!netnsAvailable())('setup with Multus bridge-binding secondaries (CNI bridge + macvlan)', { timeout: 600_000 }, () => {
  let cni: CniPod;
  let dir: string;
  let common: string[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-multus-'));
    cni = await makeCniPod({
      podCidr: '10.244.21.0/24',
      mtu: 1450,
      secondaries: [
        { ifname: BLUE, plugin: 'bridge', subnet: '10.10.21.0/24', network: 'blue-net' },
        { ifname: RED, plugin: 'macvlan', subnet: '10.20.21.0/24', network: 'red-net' },
      ],
    });
    // What the downward API mounts at /etc/podinfo/annotations: Multus' network-status among the pod annotations.
    const annotations = join(dir, 'annotations');
    writeFileSync(
      annotations,
      downwardApiAnnotations({
        'k8s.v1.cni.cncf.io/network-status': JSON.stringify(networkStatusOf(cni), null, 2),
        'kubevirt.io/domain': 'vmi-multi',
      }),
    );
    common = ['--vmi', VMI, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null', '--hostname', 'vmi-multi', '--network-status', annotations];
  }, 180_000);

  afterEach(async () => {
    await cni?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('converges, re-runs with zero writes, tears down to the exact pre-setup namespace', async () => {
    const before = await dumpNetns(cni.pod);
    const first = setupSummary(await agent(['setup', ...common]));
    expect(first.writes).toBeGreaterThan(10);
    expect(first.networks.map((n) => [n.name, n.binding, n.bridge, n.tap])).toEqual([
      ['default', 'masquerade', 'k6t-eth0', 'tap0'],
      ['blue', 'bridge', 'k6t-16477688c0e', 'tap16477688c0e'],
      ['red', 'bridge', 'k6t-b1f51a511f1', 'tapb1f51a511f1'],
    ]);

    const links = JSON.parse((await cni.pod.execOk(['ip', '-d', '-j', 'addr', 'show'])).stdout) as Record<string, unknown>[];
    const link = (name: string) => links.find((l) => l['ifname'] === name);
    const addressesOf = (name: string) => ((link(name)?.['addr_info'] ?? []) as { family: string; local: string; prefixlen: number }[])
      .filter((a) => a.family === 'inet')
      .map((a) => `${a.local}/${a.prefixlen}`);
    for (const [ifname, short, index] of [[BLUE, '16477688c0e', 1], [RED, 'b1f51a511f1', 2]] as const) {
      const attachment = cni.attachments[index]!;
      // The CNI's interface is renamed and enslaved; the identity keeper keeps the name, MAC and address, down.
      expect(link(`${short}-nic`)?.['master']).toBe(`k6t-${short}`);
      expect(link(`tap${short}`)?.['master']).toBe(`k6t-${short}`);
      expect(link(`${short}-nic`)?.['address']).toBe(link(`k6t-${short}`)?.['address']);
      expect(addressesOf(`${short}-nic`)).toEqual([]);
      expect(link(ifname)?.['address']).toBe(attachment.mac);
      expect(addressesOf(ifname)).toEqual(attachment.addresses);
      expect(link(ifname)?.['flags']).not.toContain('UP');
    }
    expect((link(`16477688c0e-nic`)?.['linkinfo'] as { info_kind?: string } | undefined)?.info_kind).toBe('veth');
    expect((link(`b1f51a511f1-nic`)?.['linkinfo'] as { info_kind?: string } | undefined)?.info_kind).toBe('macvlan');
    expect(first.networks.find((n) => n.name === 'blue')?.guestMac).toBe('02:5e:8c:00:0b:01');
    // red has no spec MAC: the running VMI's status MAC (the domain's) wins over the new pod interface's MAC.
    expect(first.networks.find((n) => n.name === 'red')?.guestMac).toBe('8a:1d:4e:00:bb:02');
    const converged = await dumpNetns(cni.pod);

    const second = setupSummary(await agent(['setup', ...common]));
    expect(second).toMatchObject({ writes: 0, actions: [] });
    expect(await dumpNetns(cni.pod)).toEqual(converged);

    const down = await agent(['teardown', ...common]);
    expect(down.stderr).toBe('');
    expect(down.code).toBe(0);
    expect(await dumpNetns(cni.pod)).toEqual(before);
    expect(JSON.parse((await agent(['teardown', ...common])).stdout)).toMatchObject({ hadState: false, writes: 0 });
  });

  it('a fake guest on the blue bridge with the secondary IP and the spec MAC reaches another pod on blue-net', async () => {
    let peer: CniPeer | undefined;
    let guest: Netns | undefined;
    try {
      peer = await addCniPeer(cni, 1);
      const summary = setupSummary(await agent(['setup', ...common]));
      const blue = summary.networks.find((n) => n.name === 'blue')!;
      const ip = cni.attachments[1]!.addresses[0]!;
      guest = await makeNetns('vna-guest');
      await cni.pod.execOk(['ip', 'link', 'add', 'vguest', 'type', 'veth', 'peer', 'name', 'eth1', 'netns', guest.name]);
      await cni.pod.execOk(['ip', 'link', 'set', 'vguest', 'master', blue.bridge!, 'up']);
      await guest.execOk(['ip', 'link', 'set', 'eth1', 'address', blue.guestMac!]);
      await guest.execOk(['ip', 'addr', 'add', ip, 'dev', 'eth1']);
      await guest.execOk(['ip', 'link', 'set', 'eth1', 'up']);
      const peerIp = peer.address.split('/')[0]!;
      const ping = await guest.exec(['busybox', 'ping', '-c', '3', '-W', '5', peerIp]);
      expect(ping.stdout).toContain('3 packets received');
      // The far end saw the guest's identity: the secondary's IP at the VMI's MAC.
      const neigh = (await peer.ns.execOk(['ip', 'neigh', 'show', ip.split('/')[0]!, 'dev', peer.ifname])).stdout;
      expect(neigh).toContain('lladdr 02:5e:8c:00:0b:01');
    } finally {
      if (guest) await deleteNetns(guest.name);
      await peer?.cleanup();
    }
  });
});
