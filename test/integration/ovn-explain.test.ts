// `explain --packet` on OVN pods (test/helpers/ovn.ts): the in-pod trace goes on with ovn-trace from the pod NIC's
// logical switch port, found through the node's OVS database (external_ids:iface-id of the NIC's node end) or named with
// --ovn-port/--ovn-sb/--ovn-nb; one combined trace says where it crosses and what each side decided. Each verdict is
// checked against a real connection or ping. VNA_OVN=0 skips.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agent, setupSummary } from '../helpers/agent-run.js';
import { attachGuest } from '../helpers/dhcp-guest.js';
import { deleteNetns, type Netns } from '../helpers/netns.js';
import { OvnNetwork, ovnMissing, POD_SUBNET, type OvnPod } from '../helpers/ovn.js';
import { probe, probeUntil, startServer } from '../helpers/tcp.js';

const skipReason = ovnMissing();

function vmi(binding: 'masquerade' | 'bridge'): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: ovn-explain-${binding}
  namespace: default
  uid: ovn-explain-${binding}-${process.pid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;
}

describe.skipIf(skipReason !== null)(`explain into OVN${skipReason ? ` (skipped: ${skipReason})` : ''}`, { timeout: 300_000 }, () => {
  let ovn: OvnNetwork;
  let dir: string;
  let far: OvnPod;
  let masq: OvnPod;
  let bridge: OvnPod;
  const guests: Netns[] = [];
  const servers: ChildProcessWithoutNullStreams[] = [];
  let masqGuest: Netns;
  let bridgeGuest: Netns;
  const args = (pod: OvnPod, binding: string): string[] => ['--netns', pod.ns.path, '--state-dir', join(dir, binding, 'state')];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-ovn-explain-'));
    ovn = await OvnNetwork.start({ chassis: 2 });
    const [node1, node2] = ovn.chassis;
    far = await ovn.addPod({ chassis: node2!, ip: '10.128.0.8' });
    servers.push(await startServer(far.ns, 'far', [8080, 9999]));
    // An ACL of the cluster (a NetworkPolicy, as OVN-K writes them): the pods switch drops TCP to port 9999.
    await ovn.nbctl(['acl-add', POD_SUBNET.switch, 'from-lport', '1001', 'tcp.dst == 9999', 'drop']);
    masq = await ovn.addPod({ chassis: node1!, ip: '10.128.0.5' });
    bridge = await ovn.addPod({ chassis: node1!, ip: '10.128.0.9' });
    for (const [pod, binding] of [[masq, 'masquerade'], [bridge, 'bridge']] as const) {
      writeFileSync(join(dir, `${binding}.yaml`), vmi(binding));
      setupSummary(await agent(['setup', '--vmi', join(dir, `${binding}.yaml`), ...args(pod, binding), '--resolv-conf', '/dev/null']));
    }
    masqGuest = await attachGuest(masq.ns, 'k6t-eth0', 'vguest', masq.mac);
    bridgeGuest = await attachGuest(bridge.ns, 'k6t-eth0', 'vguest', bridge.mac);
    guests.push(masqGuest, bridgeGuest);
    await masqGuest.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
    await masqGuest.execOk(['ip', 'route', 'add', 'default', 'via', '10.0.2.1']);
    await bridgeGuest.execOk(['ip', 'addr', 'add', bridge.cidr, 'dev', 'eth0']);
    await bridgeGuest.execOk(['ip', 'route', 'add', 'default', 'via', POD_SUBNET.gateway]);
  }, 180_000);

  afterAll(async () => {
    for (const server of servers) server.kill('SIGKILL');
    for (const guest of guests) await deleteNetns(guest.name);
    await ovn?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  const explain = async (pod: OvnPod, binding: string, packet: string, extra: readonly string[]): Promise<string> => {
    const r = await agent(['explain', ...args(pod, binding), '--packet', packet, ...extra]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('masquerade, found through the node\'s OVS database: our ruleset masquerades to the pod IP, OVN switches it to the pod on node2 (and a real connection gets there)', async () => {
    const out = await explain(masq, 'masquerade', 'tcp 10.0.2.2:40000 -> 10.128.0.8:8080 in k6t-eth0', ['--ovs-db', `unix:${join(masq.chassis.dir, 'db.sock')}`]);
    expect(out).toContain("── in the pod: virt-net-agent's ruleset and routing ──");
    expect(out).toContain('verdict: masquerade to 10.128.0.5 (eth0) → leaves on eth0 to 10.128.0.8:8080');
    expect(out).toContain("── crossing: from our ruleset to OVN's ──");
    expect(out).toContain(`eth0 (mac ${masq.mac}) is OVN logical switch port "${masq.lsp}": its node end ${masq.hostIf} on the integration bridge carries external_ids:iface-id=${masq.lsp}`);
    // Same subnet: the next hop is the pod itself (its MAC from OVN's port bindings), switched by ls_in_l2_lkup.
    expect(out).toContain(`enters OVN as tcp 10.128.0.5:40000 -> 10.128.0.8:8080, eth ${masq.mac} -> ${far.mac} (next hop 10.128.0.8)`);
    expect(out).toContain(`ingress(dp="${POD_SUBNET.switch}", inport="${masq.lsp}")`);
    expect(out).toContain(`ls_in_l2_lkup: eth.dst == ${far.mac} → outport = "${far.lsp}"`);
    expect(out).toContain(`OVN verdict: delivered to logical port "${far.lsp}" bound on chassis node2`);
    expect(out).toMatch(/── whole path: [^\n]*──\n  our ruleset \(virt-net-agent, in the pod\): masquerade to 10\.128\.0\.5[^\n]*\n  → crosses into OVN at eth0 = logical port "[^"]+"\n  OVN \(logical flows\): delivered/);
    expect(await probeUntil(masqGuest, far.ip, 8080, `far:8080 from ${masq.ip}`)).toBe(`far:8080 from ${masq.ip}`);
  });

  it('masquerade to the OVN router\'s address: routed via the pod\'s gateway, OVN\'s router answers the ping itself', async () => {
    const out = await explain(masq, 'masquerade', `icmp 10.0.2.2 -> ${POD_SUBNET.gateway} in k6t-eth0`, ['--ovs-db', `unix:${join(masq.chassis.dir, 'db.sock')}`]);
    expect(out).toContain(`enters OVN as icmp 10.128.0.5 -> ${POD_SUBNET.gateway}, eth ${masq.mac} -> ${POD_SUBNET.routerMac}`);
    expect(out).toContain('ingress(dp="ovn_cluster_router", inport="rtos-pods")');
    expect(out).toContain('lr_in_ip_input');
    // The echo reply goes back out of the port the request came in on.
    expect(out).toContain(`OVN verdict: delivered to logical port "${masq.lsp}" bound on chassis node1`);
    expect((await masqGuest.exec(['ping', '-c1', '-W2', POD_SUBNET.gateway])).code).toBe(0);
  });

  it('masquerade, port named with --ovn-port/--ovn-sb/--ovn-nb: OVN\'s ACL drops port 9999, said with its stage; the connection indeed times out', async () => {
    const out = await explain(masq, 'masquerade', 'tcp 10.0.2.2:40000 -> 10.128.0.8:9999 in k6t-eth0', ['--ovn-port', masq.lsp, '--ovn-sb', ovn.sbDb, '--ovn-nb', ovn.nbDb]);
    expect(out).toContain(`is OVN logical switch port "${masq.lsp}": named by --ovn-port`);
    expect(out).toContain(`port security of "${masq.lsp}" (Northbound): ${masq.mac} ${masq.ip}`);
    expect(out).toMatch(/OVN verdict: DROPPED in ingress of pods, table \d+ ls_in_acl: ls_in_acl matched `[^`]*tcp\.dst == 9999[^`]*` \(priority \d+\) and drops/);
    expect(await probe(masqGuest, far.ip, 9999, { timeoutMs: 3000 })).toBe('TIMEOUT');
  });

  it('bridge binding: the guest\'s packet is bridged to eth0-nic untouched, OVN delivers it; a forged source is dropped by the port\'s port security (as a real ping shows)', async () => {
    const ovsDb = ['--ovs-db', `unix:${join(bridge.chassis.dir, 'db.sock')}`];
    const out = await explain(bridge, 'bridge', `icmp ${bridge.ip} -> ${far.ip} in k6t-eth0`, ovsDb);
    expect(out).toContain(`verdict: bridged out of eth0-nic unchanged (source ${bridge.ip}, guest MAC ${bridge.mac})`);
    expect(out).toContain(`eth0-nic (mac ${bridge.mac}) is OVN logical switch port "${bridge.lsp}"`);
    expect(out).toContain(`OVN verdict: delivered to logical port "${far.lsp}" bound on chassis node2`);
    expect((await bridgeGuest.exec(['ping', '-c1', '-W2', far.ip])).code).toBe(0);

    const forged = await explain(bridge, 'bridge', `icmp 10.128.0.99 -> ${far.ip} in k6t-eth0`, ovsDb);
    expect(forged).toMatch(/OVN verdict: DROPPED in ingress of pods, table \d+ ls_in_apply_port_sec: [^\n]*port security \(the LSP's port_security does not list this source MAC\/IP\)/);
    await bridgeGuest.execOk(['ip', 'addr', 'add', '10.128.0.99/24', 'dev', 'eth0']);
    expect((await bridgeGuest.exec(['ping', '-c2', '-W1', '-I', '10.128.0.99', far.ip])).code).not.toBe(0);
    await bridgeGuest.execOk(['ip', 'addr', 'del', '10.128.0.99/24', 'dev', 'eth0']);
  });

  it('bad OVN flags are one-line errors naming the flag; without any OVN flag or node database the trace is the in-pod one alone', async () => {
    const bad = await agent(['explain', ...args(masq, 'masquerade'), '--packet', 'tcp 10.0.2.2:1 -> 10.128.0.8:80 in k6t-eth0', '--ovn-sb', 'file:/etc/passwd']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('--ovn-sb');
    const lonely = await agent(['explain', ...args(masq, 'masquerade'), '--packet', 'tcp 10.0.2.2:1 -> 10.128.0.8:80 in k6t-eth0', '--ovn-port', masq.lsp]);
    expect(lonely.code).toBe(2);
    expect(lonely.stderr).toContain('--ovn-sb');
    const plain = await explain(masq, 'masquerade', 'tcp 10.0.2.2:40000 -> 10.128.0.8:8080 in k6t-eth0', []);
    expect(plain).not.toContain('OVN');
    expect(plain).toContain('verdict: masquerade to 10.128.0.5');
  });
});
