// The kubelet's path: containerd 1.6's CRI runs pod sandboxes on bridge + host-local + virt-net-agent + portmap, and the kernel shows what each call did.
//
// A private containerd (test/helpers/containerd.ts) in a test "node" netns; a CRI client (test/helpers/cri-client.ts)
// calls RunPodSandbox / PodSandboxStatus / StopPodSandbox / RemovePodSandbox with what a kubelet puts in them
// (metadata, hostname, DNS config, every container port with and without hostPort, labels, annotations). Our plugin
// is installed in the instance's CNI bin dir by scripts/install-cni.sh and reached through the shim and a cni-daemon;
// a recording wrapper ("vna-logged", a shell script that saves env + stdin and execs our shim) shows what containerd
// passed. Asserted: after Run, the sandbox's plumbing and a fake guest reachable on every container port (also those
// without a host port, and through portmap's hostPort); after Stop (DEL with prevResult), nothing of ours, no lease,
// no veth, no hostPort rule; after Remove (DEL with an empty CNI_NETNS), the sandbox gone; a failed ADD and
// containerd's clean-up DEL leave nothing. Skipped (saying why) without root, containerd, runc, ... or with VNA_CRI=0.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentPlugin, bridgeChain, containerdUnavailable, portmapPlugin, startContainerd, type Containerd, type LoggedInvocation } from '../helpers/containerd.js';
import type { PortMapping } from '../helpers/cri-client.js';
import { attachGuest } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAt, run, type Netns } from '../helpers/netns.js';
import { probeUntil, startServer } from '../helpers/tcp.js';

const unavailable = containerdUnavailable();
const SPOOF = 'virt-net-agent.kubevirt.io/spoof-protection';

/** A kubelet's port list for a pod of three containers: web (80 → hostPort 8080), dns (53/udp → 5353, 53/tcp), metrics (9090). */
const KUBELET_PORTS: readonly PortMapping[] = [
  { protocol: 'TCP', container_port: 80, host_port: 8080 },
  { protocol: 'TCP', container_port: 443 },
  { protocol: 'UDP', container_port: 53, host_port: 5353 },
  { protocol: 'TCP', container_port: 53 },
  { protocol: 'TCP', container_port: 9090 },
];

function ours(c: Containerd, from: number, command?: string): LoggedInvocation[] {
  return c.invocations().slice(from).filter((i) => command === undefined || i.env['CNI_COMMAND'] === command);
}

function cniArgs(inv: LoggedInvocation): Record<string, string> {
  return Object.fromEntries((inv.env['CNI_ARGS'] ?? '').split(';').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
}

async function natRules(c: Containerd): Promise<string> {
  return (await c.node.execOk(['iptables-save', '-t', 'nat'])).stdout;
}

describe.skipIf(unavailable !== null)(`containerd's CRI (kubelet path)${unavailable !== null ? ` (skipped: ${unavailable})` : ''}`, { timeout: 300_000 }, () => {
  let c: Containerd;

  beforeAll(async () => {
    c = await startContainerd({
      tag: 'crit',
      logInvocations: true,
      plugins: (self) => [...bridgeChain(self), agentPlugin(self, 'masquerade', 'vna-logged'), portmapPlugin()],
    });
  }, 180_000);

  afterAll(async () => {
    await c?.cleanup();
  }, 180_000);

  it('a pod as a kubelet makes it: Run plumbs the sandbox (every container port reaches the guest), Stop undoes it all, Remove leaves nothing', async () => {
    const from = c.invocations().length;
    const config = c.podConfig('virt-launcher-vm1-abcde', {
      namespace: 'vms',
      ports: KUBELET_PORTS,
      labels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': 'vm1' },
      annotations: { [SPOOF]: 'true', 'kubevirt.io/domain': 'vm1', 'k8s.v1.cni.cncf.io/networks': '[]' },
    });
    const id = await c.cri.runPodSandbox(config);
    let removed = false;
    let guest: Netns | undefined;
    let server: ReturnType<typeof startServer> extends Promise<infer T> ? T : never;
    try {
      // PodSandboxStatus: ready, an address of the network, labels and annotations as sent.
      const status = (await c.cri.podSandboxStatus(id)).status;
      expect(status.state).toBe('SANDBOX_READY');
      const podIp = status.network?.ip ?? '';
      expect(podIp.startsWith(c.subnet.split('.').slice(0, 3).join('.') + '.'), podIp).toBe(true);
      expect(status.labels).toEqual(config.labels);
      expect(status.annotations).toEqual(config.annotations);
      const netnsPath = await c.sandboxNetns(id);

      // What containerd passed to our plugin.
      const [add] = ours(c, from, 'ADD');
      expect(add, 'our ADD was invoked').toBeDefined();
      expect(add!.env['CNI_CONTAINERID']).toBe(id);
      expect(add!.env['CNI_NETNS']).toBe(netnsPath);
      expect(add!.env['CNI_IFNAME']).toBe('eth0');
      expect(cniArgs(add!)).toMatchObject({ IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'vms', K8S_POD_NAME: config.metadata.name, K8S_POD_INFRA_CONTAINER_ID: id, K8S_POD_UID: config.metadata.uid });
      const rc = add!.conf['runtimeConfig'] as { portMappings: Record<string, unknown>[]; 'io.kubernetes.cri.pod-annotations': Record<string, string> };
      // Only the mappings with a host port, in go-cni's untagged field names.
      expect(rc.portMappings).toEqual([
        { HostPort: 8080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' },
        { HostPort: 5353, ContainerPort: 53, Protocol: 'udp', HostIP: '' },
      ]);
      expect(rc['io.kubernetes.cri.pod-annotations']).toEqual(config.annotations);

      // The sandbox: the pod NIC keeps its address, the in-pod bridge and tap exist, NAT to the guest, the guard on.
      const pod = netnsAt(netnsPath);
      const links = JSON.parse((await pod.execOk(['ip', '-j', 'addr', 'show'])).stdout) as { ifname: string; addr_info: { local: string }[] }[];
      expect(links.find((l) => l.ifname === 'eth0')?.addr_info.map((a) => a.local)).toContain(podIp);
      expect(links.map((l) => l.ifname)).toEqual(expect.arrayContaining(['k6t-eth0', 'tap0']));
      const entry = c.cacheEntries();
      expect(entry).toHaveLength(1);
      const cached = JSON.parse((await import('node:fs')).readFileSync(`/var/lib/cni/results/${entry[0]}`, 'utf8')) as { result: { interfaces: { name: string; mac: string; sandbox?: string }[] } };
      const guestMac = cached.result.interfaces.find((i) => i.sandbox === id)?.mac ?? '';
      expect(guestMac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
      const nft = (await pod.execOk(['nft', 'list', 'ruleset'])).stdout;
      expect(nft).toMatch(/dnat to 10\.0\.2\.2/);
      expect(nft).toMatch(new RegExp(`table bridge \\S+ \\{[^]*${guestMac}`));
      expect(c.attachments()).toHaveLength(1);
      expect(c.leases()).toEqual([podIp]);
      expect(await c.nodeVeths()).toHaveLength(1);
      // portmap's hostPort rules in the node.
      expect(await natRules(c)).toMatch(/--dport 8080 .*-j DNAT --to-destination [\d.]+:80/);

      // A fake guest on the in-pod bridge (the planned address and MAC) answers on every container port: those
      // without a host port too (the kubelet never passes them to CNI; a Service reaches them on the pod IP).
      guest = await attachGuest(pod, 'k6t-eth0', 'gst0', guestMac);
      await guest.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
      await guest.execOk(['ip', 'route', 'add', 'default', 'via', '10.0.2.1']);
      server = await startServer(guest, 'guest', [80, 443, 9090]);
      // (inbound connections keep their source address, as with KubeVirt's masquerade)
      const gateway = c.subnet.replace(/\.0\/24$/, '.1');
      for (const port of [80, 443, 9090]) expect(await probeUntil(c.node, podIp, port, `guest:${port} from ${gateway}`)).toBe(`guest:${port} from ${gateway}`);
      // and through the host port: portmap's DNAT on the node's own address (with its SNAT), then ours in the pod
      expect(await probeUntil(c.node, gateway, 8080, `guest:80 from ${gateway}`)).toBe(`guest:80 from ${gateway}`);
      server.kill();
      await deleteNetns(guest.name);
      guest = undefined;

      // StopPodSandbox: DEL of the chain (reverse order) with the same netns and our result as prevResult.
      const beforeStop = c.invocations().length;
      await c.cri.stopPodSandbox(id);
      const [stopDel] = ours(c, beforeStop, 'DEL');
      expect(stopDel?.env['CNI_NETNS']).toBe(netnsPath);
      const prev = stopDel?.conf['prevResult'] as { interfaces: { name: string; sandbox?: string }[] } | undefined;
      expect(prev?.interfaces.map((i) => i.name)).toEqual(expect.arrayContaining(['eth0', 'k6t-eth0', 'tap0']));
      expect((await c.cri.podSandboxStatus(id)).status.state).toBe('SANDBOX_NOTREADY');
      expect(existsSync(netnsPath), 'the sandbox netns after Stop').toBe(false);
      expect(c.attachments()).toEqual([]);
      expect(c.leases()).toEqual([]);
      expect(await c.nodeVeths()).toEqual([]);
      expect(c.cacheEntries()).toEqual([]);
      expect(await natRules(c)).not.toMatch(/--dport 8080/);

      // RemovePodSandbox: one more DEL, with an empty CNI_NETNS (the netns is gone), which must succeed.
      const beforeRemove = c.invocations().length;
      await c.cri.removePodSandbox(id);
      const removeDels = ours(c, beforeRemove, 'DEL');
      expect(removeDels.map((i) => i.env['CNI_NETNS'])).toEqual(['']);
      expect(removeDels[0]?.conf['prevResult']).toBeUndefined();
      expect((await c.cri.listPodSandbox()).map((s) => s.id)).not.toContain(id);
      removed = true;
      expect(c.attachments()).toEqual([]);
      expect(c.leases()).toEqual([]);
    } finally {
      if (guest !== undefined) await deleteNetns(guest.name);
      if (!removed) {
        await c.cri.stopPodSandbox(id).catch(() => undefined);
        await c.cri.removePodSandbox(id).catch(() => undefined);
      }
    }
  });

  it("a failed ADD (our plugin refuses the pod's annotation) and containerd's clean-up DEL leave nothing: no veth, no lease, no state", async () => {
    const from = c.invocations().length;
    const config = c.podConfig('bad-annotation', { ports: [{ protocol: 'TCP', container_port: 80, host_port: 8081 }], annotations: { [SPOOF]: 'maybe' } });
    await expect(c.cri.runPodSandbox(config)).rejects.toThrow(new RegExp(`metadata\\.annotations\\.${SPOOF.replace(/\./g, '\\.')}: must be "true" or "false"`));
    const calls = ours(c, from);
    expect(calls.map((i) => i.env['CNI_COMMAND'])).toEqual(['ADD', 'DEL']);
    // The clean-up DEL has no prevResult (the ADD did not finish) and the same netns.
    expect(calls[1]?.conf['prevResult']).toBeUndefined();
    expect(calls[1]?.env['CNI_NETNS']).toBe(calls[0]?.env['CNI_NETNS']);
    expect((await c.cri.listPodSandbox()).filter((s) => s.metadata.name === 'bad-annotation')).toEqual([]);
    expect(await c.nodeVeths()).toEqual([]);
    expect(c.leases()).toEqual([]);
    expect(c.attachments()).toEqual([]);
    expect(c.cacheEntries()).toEqual([]);
    expect(await natRules(c)).not.toMatch(/--dport 8081/);
  });

  it('six pods run at once get six addresses and six attachments; stopping and removing them all leaves nothing', async () => {
    const configs = Array.from({ length: 6 }, (_, i) => c.podConfig(`par-${i}`, { ports: [{ protocol: 'TCP', container_port: 80 }] }));
    const ids = await Promise.all(configs.map((cfg) => c.cri.runPodSandbox(cfg)));
    try {
      const ips = await Promise.all(ids.map(async (id) => (await c.cri.podSandboxStatus(id)).status.network?.ip ?? ''));
      expect(new Set(ips).size).toBe(6);
      expect(c.attachments()).toHaveLength(6);
      expect([...c.leases()].sort()).toEqual([...ips].sort());
    } finally {
      await Promise.all(ids.map((id) => c.cri.stopPodSandbox(id)));
      await Promise.all(ids.map((id) => c.cri.removePodSandbox(id)));
    }
    expect(c.attachments()).toEqual([]);
    expect(c.leases()).toEqual([]);
    expect(await c.nodeVeths()).toEqual([]);
    expect(c.cacheEntries()).toEqual([]);
  });
});
