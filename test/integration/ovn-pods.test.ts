// The agent on OVN-Kubernetes-style pods (test/helpers/ovn.ts: real OVS + OVN, userspace datapath, two chassis):
// masquerade and bridge binding on the primary network, bridge binding on a layer2 secondary (second logical switch),
// and a managedTap plugin where OVN's native DHCP, not the agent, gives the guest its lease. A fake guest (a netns on
// the agent's bridge with the planned MAC) leases with udhcpc and reaches the OVN router, a pod on the same chassis and
// a pod on the other chassis; OVN's port security accepts it and drops a forged source. VNA_OVN=0 skips.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { agent, dumpNetns, setupSummary } from '../helpers/agent-run.js';
import { attachGuest, spawnServe, isServing, udhcpc, type ServeProcess } from '../helpers/dhcp-guest.js';
import { deleteNetns, type Netns } from '../helpers/netns.js';
import { L2_SUBNET, OvnNetwork, ovnMissing, POD_SUBNET, type OvnPod } from '../helpers/ovn.js';
import { probeUntil, startServer } from '../helpers/tcp.js';
import { hashedPodInterfaceName } from '../../agent/plan/names.js';

const skipReason = ovnMissing();
const KUBEVIRT_CONFIG = join(process.cwd(), 'examples/kubevirt-config.yaml'); // registers the "managedtap" plugin

function vmi(uid: string, interfaces: string, networks: string, annotations = ''): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: ovnvm
  namespace: default
  uid: ${uid}-${process.pid}
${annotations}spec:
  domain:
    devices:
      interfaces:
${interfaces}  networks:
${networks}status:
  migrationTransport: Unix
`;
}

const POD_NETWORK = '  - name: default\n    pod: {}\n';

async function ping(ns: Netns, target: string, extra: readonly string[] = []): Promise<boolean> {
  // A fresh path can take a moment (ARP through OVN, flows just installed): a few tries, 1 s each.
  for (let i = 0; i < 5; i++) {
    if ((await ns.exec(['ping', '-c1', '-W1', ...extra, target])).code === 0) return true;
  }
  return false;
}

describe.skipIf(skipReason !== null)(`the agent on OVN pods${skipReason ? ` (skipped: ${skipReason})` : ''}`, { timeout: 300_000 }, () => {
  let ovn: OvnNetwork;
  let dir: string;
  /** Peers: same switch and chassis as the VM pods (node1), and on the other chassis (node2); l2net peer on node2. */
  let near: OvnPod;
  let far: OvnPod;
  let l2far: OvnPod;
  const servers: ChildProcessWithoutNullStreams[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-ovn-pods-'));
    ovn = await OvnNetwork.start({ chassis: 2 });
    const [node1, node2] = ovn.chassis;
    near = await ovn.addPod({ chassis: node1!, ip: '10.128.0.6' });
    far = await ovn.addPod({ chassis: node2!, ip: '10.128.0.8' });
    l2far = await ovn.addPod({ chassis: node2!, network: 'l2net', ip: '10.129.0.8' });
    servers.push(await startServer(far.ns, 'far', [8080]));
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) server.kill('SIGKILL');
    await ovn?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  /** The VMI file and the agent's common flags for one VM pod. */
  function agentArgs(label: string, vmiText: string, pod: OvnPod, extra: readonly string[] = []): string[] {
    const vmiFile = join(dir, `${label}.yaml`);
    writeFileSync(vmiFile, vmiText);
    return ['--vmi', vmiFile, '--netns', pod.ns.path, '--state-dir', join(dir, label, 'state'), '--resolv-conf', '/dev/null', '--hostname', 'ovnvm', ...extra];
  }

  it('masquerade: the guest leases 10.0.2.2 from the agent, reaches the router, a pod on its chassis and one on the other (source NAT to the pod IP)', async () => {
    const pod = await ovn.addPod({ chassis: ovn.chassis[0]!, ip: '10.128.0.5' });
    const args = agentArgs('masq', vmi('ovn-masq', '      - name: default\n        masquerade: {}\n', POD_NETWORK), pod);
    let guest: Netns | undefined;
    let serve: ServeProcess | undefined;
    try {
      const before = await dumpNetns(pod.ns);
      const summary = setupSummary(await agent(['setup', ...args]));
      expect(summary.networks[0]).toMatchObject({ binding: 'masquerade', bridge: 'k6t-eth0', guestMac: pod.mac });
      serve = spawnServe(['--state-dir', join(dir, 'masq', 'state'), '--netns', pod.ns.path]);
      await serve.waitForLog(isServing, 'serving');
      guest = await attachGuest(pod.ns, 'k6t-eth0', 'vguest', pod.mac);
      const lease = await udhcpc(guest, mkdtempSync(join(dir, 'masq-guest-')));
      expect(lease.lease.addresses).toEqual(['10.0.2.2/24']);
      expect(lease.lease.mtu).toBe(1400); // the OVN pod's MTU
      expect(lease.lease.routes).toContain('default via 10.0.2.1');
      expect(await ping(guest, POD_SUBNET.gateway)).toBe(true);
      expect(await ping(guest, near.ip)).toBe(true);
      expect(await ping(guest, far.ip)).toBe(true);
      // TCP across the geneve tunnel: the far pod sees the pod's address (NAT), checksums intact through OVS.
      expect(await probeUntil(guest, far.ip, 8080, `far:8080 from ${pod.ip}`)).toBe(`far:8080 from ${pod.ip}`);
      // Inbound: the pod IP is DNATed to the guest.
      expect(await ping(far.ns, pod.ip)).toBe(true);
      const guestServer = await startServer(guest, 'guest', [8081]);
      expect(await probeUntil(far.ns, pod.ip, 8081, `guest:8081 from ${far.ip}`)).toBe(`guest:8081 from ${far.ip}`);
      // Gone before the guest netns is: a live process there would keep its veth (and the pod's end) alive.
      await new Promise((resolve) => {
        guestServer.once('exit', resolve);
        guestServer.kill('SIGKILL');
      });
      await serve.stop();
      serve = undefined;
      const down = await agent(['teardown', ...args]);
      expect(down.code, down.stderr).toBe(0);
      // The guest's veth goes with its pod end at once; a deleted netns takes its links down only when the kernel's
      // asynchronous namespace cleanup runs (seconds late under load).
      await pod.ns.execOk(['ip', 'link', 'del', 'vguest']);
      await deleteNetns(guest.name);
      guest = undefined;
      expect(await dumpNetns(pod.ns)).toEqual(before);
    } finally {
      await serve?.stop();
      if (guest) await deleteNetns(guest.name);
      await ovn.removePod(pod, { deleteLsp: true });
    }
  });

  it('bridge binding: the guest leases the pod IP and MAC from the agent, reaches router and both pods; port security drops a forged source', async () => {
    const pod = await ovn.addPod({ chassis: ovn.chassis[0]!, ip: '10.128.0.9' });
    const args = agentArgs('bridge', vmi('ovn-bridge', '      - name: default\n        bridge: {}\n', POD_NETWORK), pod);
    let guest: Netns | undefined;
    let serve: ServeProcess | undefined;
    try {
      const before = await dumpNetns(pod.ns);
      const summary = setupSummary(await agent(['setup', ...args]));
      expect(summary.networks[0]).toMatchObject({ binding: 'bridge', bridge: 'k6t-eth0', guestMac: pod.mac });
      serve = spawnServe(['--state-dir', join(dir, 'bridge', 'state'), '--netns', pod.ns.path]);
      await serve.waitForLog(isServing, 'serving');
      guest = await attachGuest(pod.ns, 'k6t-eth0', 'vguest', pod.mac);
      const lease = await udhcpc(guest, mkdtempSync(join(dir, 'bridge-guest-')));
      expect(lease.lease.addresses).toEqual([pod.cidr]);
      expect(lease.lease.mtu).toBe(1400);
      expect(lease.lease.routes).toContain(`default via ${POD_SUBNET.gateway}`);
      expect(await ping(guest, POD_SUBNET.gateway)).toBe(true);
      expect(await ping(guest, near.ip)).toBe(true);
      expect(await ping(guest, far.ip)).toBe(true);
      expect(await probeUntil(guest, far.ip, 8080, `far:8080 from ${pod.ip}`)).toBe(`far:8080 from ${pod.ip}`);
      expect(await ping(far.ns, pod.ip)).toBe(true); // the guest itself answers: it holds the pod IP
      // OVN's port security (the LSP's MAC and IP): a source address the LSP does not list never leaves the port ...
      await guest.execOk(['ip', 'addr', 'add', '10.128.0.99/24', 'dev', 'eth0']);
      expect((await guest.exec(['ping', '-c2', '-W1', '-I', '10.128.0.99', far.ip])).code).not.toBe(0);
      await guest.execOk(['ip', 'addr', 'del', '10.128.0.99/24', 'dev', 'eth0']);
      // ... and neither does another MAC: the datapath on node1 drops it (ofproto/trace from the pod's port).
      const forged = await pod.chassis.datapathActions(`in_port=${pod.hostIf},icmp,dl_src=0a:58:0a:80:00:63,dl_dst=${POD_SUBNET.routerMac},nw_src=${pod.ip},nw_dst=${POD_SUBNET.gateway},nw_ttl=64`);
      expect(forged).toBe('drop');
      expect(await ping(guest, far.ip)).toBe(true);
      await serve.stop();
      serve = undefined;
      const down = await agent(['teardown', ...args]);
      expect(down.code, down.stderr).toBe(0);
      // The guest's veth goes with its pod end at once; a deleted netns takes its links down only when the kernel's
      // asynchronous namespace cleanup runs (seconds late under load).
      await pod.ns.execOk(['ip', 'link', 'del', 'vguest']);
      await deleteNetns(guest.name);
      guest = undefined;
      expect(await dumpNetns(pod.ns)).toEqual(before);
    } finally {
      await serve?.stop();
      if (guest) await deleteNetns(guest.name);
      await ovn.removePod(pod, { deleteLsp: true });
    }
  });

  it('bridge binding on a layer2 secondary (second logical switch, Multus network-status): the guest leases from the agent and reaches a pod on the other chassis', async () => {
    const pod = await ovn.addPod({ chassis: ovn.chassis[0]!, ip: '10.128.0.10' });
    const secondaryIf = hashedPodInterfaceName('l2');
    const secondary = await ovn.addPod({ chassis: ovn.chassis[0]!, network: 'l2net', ip: '10.129.0.10', into: pod.ns, ifname: secondaryIf });
    const annotations = join(dir, 'l2-annotations.json');
    writeFileSync(annotations, JSON.stringify([
      { name: 'ovn-kubernetes', interface: 'eth0', ips: [pod.ip], mac: pod.mac, default: true, dns: {} },
      { name: `default/${L2_SUBNET.switch}`, interface: secondaryIf, ips: [secondary.ip], mac: secondary.mac, dns: {} },
    ]));
    const args = agentArgs('l2', vmi('ovn-l2', '      - name: default\n        masquerade: {}\n      - name: l2\n        bridge: {}\n',
      `${POD_NETWORK}  - name: l2\n    multus:\n      networkName: ${L2_SUBNET.switch}\n`), pod, ['--network-status', annotations]);
    let guest: Netns | undefined;
    let serve: ServeProcess | undefined;
    try {
      const summary = setupSummary(await agent(['setup', ...args]));
      const bridge = `k6t-${secondaryIf.slice(3)}`;
      expect(summary.networks[1]).toMatchObject({ name: 'l2', binding: 'bridge', bridge, guestMac: secondary.mac });
      serve = spawnServe(['--state-dir', join(dir, 'l2', 'state'), '--netns', pod.ns.path]);
      await serve.waitForLog(isServing, 'serving');
      guest = await attachGuest(pod.ns, bridge, 'vguest2', secondary.mac);
      const lease = await udhcpc(guest, mkdtempSync(join(dir, 'l2-guest-')));
      expect(lease.lease.addresses).toEqual([secondary.cidr]);
      expect(lease.lease.mtu).toBe(1400);
      expect(await ping(guest, l2far.ip)).toBe(true);
      expect(await ping(l2far.ns, secondary.ip)).toBe(true);
      await serve.stop();
      serve = undefined;
      expect((await agent(['teardown', ...args])).code).toBe(0);
    } finally {
      await serve?.stop();
      if (guest) await deleteNetns(guest.name);
      await ovn.removePod(secondary, { deleteLsp: true });
      await ovn.removePod(pod, { deleteLsp: true });
    }
  });

  it('managedTap plugin (l2bridge style): the agent plumbs bridge and tap and serves nothing; the guest leases its address from OVN\'s DHCP', async () => {
    const pod = await ovn.addPod({ chassis: ovn.chassis[0]!, ip: '10.128.0.11' });
    await ovn.enableDhcp(pod.lsp);
    const args = agentArgs('mtap', vmi('ovn-mtap', '      - name: default\n        binding:\n          name: managedtap\n', POD_NETWORK), pod, ['--kubevirt-config', KUBEVIRT_CONFIG]);
    let guest: Netns | undefined;
    try {
      // Nothing for the agent to serve: the plan for this pod carries no DHCP (nor DHCPv6/RA) for the network.
      const podState = join(dir, 'mtap-pod.json');
      writeFileSync(podState, (await agent(['discover', '--netns', pod.ns.path, '--resolv-conf', '/dev/null'])).stdout);
      const plan = JSON.parse((await agent(['plan', '--vmi', args[1]!, '--pod', podState, '--kubevirt-config', KUBEVIRT_CONFIG])).stdout) as { networks: { dhcp: unknown; dhcpv6: unknown }[] };
      expect(plan.networks[0]).toMatchObject({ dhcp: null, dhcpv6: null });
      const summary = setupSummary(await agent(['setup', ...args]));
      expect(summary.networks[0]).toMatchObject({ binding: 'plugin', bridge: 'k6t-eth0', tap: 'tap0', guestMac: pod.mac });
      guest = await attachGuest(pod.ns, 'k6t-eth0', 'vguest', pod.mac);
      const lease = await udhcpc(guest, mkdtempSync(join(dir, 'mtap-guest-')));
      expect(lease.lease.addresses).toEqual([pod.cidr]);
      expect(lease.lease.env['serverid']).toBe(POD_SUBNET.gateway); // OVN's DHCP (server_id = the router port)
      expect(lease.lease.mtu).toBe(1400);
      expect(lease.lease.routes).toContain(`default via ${POD_SUBNET.gateway}`);
      expect(await ping(guest, POD_SUBNET.gateway)).toBe(true);
      expect(await ping(guest, far.ip)).toBe(true);
      expect((await agent(['teardown', ...args])).code).toBe(0);
    } finally {
      if (guest) await deleteNetns(guest.name);
      await ovn.removePod(pod, { deleteLsp: true });
    }
  });
});
