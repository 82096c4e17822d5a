// setup/teardown for passtBinding (two pod sysctls, no links) and a managedTap plugin secondary (plumbed like bridge,
// no DHCP) on CNI-built pods: what setup does per the plan, zero writes on re-run, exact teardown (sysctls restored).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downwardApiAnnotations, makeCniPod, networkStatusOf, type CniPod } from '../helpers/cni.js';
import { agent, dumpNetns, setupSummary } from '../helpers/agent-run.js';
import { netnsAvailable, run, type Netns } from '../helpers/netns.js';

const KUBEVIRT_CONFIG = join(process.cwd(), 'examples/kubevirt-config.yaml'); // gate PasstBinding, binding "managedtap"
/** KubeVirt's hashed pod interface name of Multus network "flatnet". */
const FLATNET = 'pod91494e4a822';

function vmiYaml(interfaces: string, networks: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: bindings-${process.pid}-${Math.random().toString(16).slice(2)}
spec:
  domain:
    devices:
      interfaces:
${interfaces}  networks:
${networks}status:
  migrationTransport: Unix
`;
}

async function sysctl(ns: Netns, name: string): Promise<string> {
  return (await ns.execOk(['sysctl', '-n', name])).stdout.trim().replace(/\s+/g, ' ');
}

/** How `ip -d link` prints a tap owner: the host's name for the id, else the number. */
async function ownerName(database: 'passwd' | 'group', id: number): Promise<string | number> {
  const entry = await run(['getent', database, String(id)]);
  return entry.code === 0 ? (entry.stdout.split(':')[0] ?? id) : id;
}

describe.skipIf(!netnsAvailable())('setup for passtBinding and managedTap', { timeout: 600_000 }, () => {
  let cni: CniPod | undefined;
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vna-bindings-'));
  });
  afterEach(async () => {
    await cni?.cleanup();
    cni = undefined;
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('passtBinding: sets ping_group_range and ip_unprivileged_port_start only, zero writes on re-run, restores them', async () => {
    cni = await makeCniPod({ podCidr: '10.244.31.0/24' });
    const vmi = join(dir, 'vmi.yaml');
    writeFileSync(vmi, vmiYaml('      - name: default\n        passtBinding: {}\n', '  - name: default\n    pod: {}\n'));
    const common = ['--vmi', vmi, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--kubevirt-config', KUBEVIRT_CONFIG, '--resolv-conf', '/dev/null'];
    const before = await dumpNetns(cni.pod);
    const beforeValues = [await sysctl(cni.pod, 'net.ipv4.ping_group_range'), await sysctl(cni.pod, 'net.ipv4.ip_unprivileged_port_start')];
    expect(beforeValues).not.toEqual(['107 107', '0']); // a fresh netns has the kernel defaults ("1 0", 1024)

    const first = setupSummary(await agent(['setup', ...common]));
    expect(first.writes).toBe(2);
    expect(first.networks).toEqual([{ name: 'default', binding: 'passtBinding', bridge: null, tap: null, guestMac: null }]);
    expect(await sysctl(cni.pod, 'net.ipv4.ping_group_range')).toBe('107 107');
    expect(await sysctl(cni.pod, 'net.ipv4.ip_unprivileged_port_start')).toBe('0');
    // No links, addresses, routes or nftables: passt does its own plumbing in user space.
    const converged = (await dumpNetns(cni.pod)) as Record<string, unknown>;
    const beforeRecord = before as Record<string, unknown>;
    for (const key of ['links', 'addresses', 'routes', 'nft']) expect(converged[key]).toEqual(beforeRecord[key]);

    expect(setupSummary(await agent(['setup', ...common]))).toMatchObject({ writes: 0, actions: [] });
    expect(await dumpNetns(cni.pod)).toEqual(converged);

    const down = await agent(['teardown', ...common]);
    expect(down.stderr).toBe('');
    expect(JSON.parse(down.stdout)).toMatchObject({ hadState: true, writes: 2 });
    expect(await dumpNetns(cni.pod)).toEqual(before);
    expect(JSON.parse((await agent(['teardown', ...common])).stdout)).toMatchObject({ hadState: false, writes: 0 });
  });

  it('managedTap plugin on a Multus secondary: bridge + tap + identity keeper, no DHCP, zero writes on re-run, exact teardown', async () => {
    cni = await makeCniPod({ podCidr: '10.244.32.0/24', secondaries: [{ ifname: FLATNET, plugin: 'bridge', subnet: '10.32.0.0/24', network: 'flatnet' }] });
    const vmi = join(dir, 'vmi.yaml');
    writeFileSync(
      vmi,
      vmiYaml(
        '      - name: default\n        masquerade: {}\n      - name: flatnet\n        binding:\n          name: managedtap\n',
        '  - name: default\n    pod: {}\n  - name: flatnet\n    multus:\n      networkName: flatnet\n',
      ),
    );
    const annotations = join(dir, 'annotations');
    writeFileSync(annotations, downwardApiAnnotations({ 'k8s.v1.cni.cncf.io/network-status': JSON.stringify(networkStatusOf(cni)) }));
    const common = ['--vmi', vmi, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--kubevirt-config', KUBEVIRT_CONFIG,
      '--resolv-conf', '/dev/null', '--network-status', annotations];
    const before = await dumpNetns(cni.pod);
    const secondary = cni.attachments[1]!;

    const first = setupSummary(await agent(['setup', ...common]));
    expect(first.networks.find((n) => n.name === 'flatnet')).toEqual({
      name: 'flatnet', binding: 'plugin', bridge: 'k6t-91494e4a822', tap: 'tap91494e4a822', guestMac: secondary.mac,
    });
    const links = JSON.parse((await cni.pod.execOk(['ip', '-d', '-j', 'addr', 'show'])).stdout) as Record<string, unknown>[];
    const link = (name: string) => links.find((l) => l['ifname'] === name);
    const ipv4 = (name: string) => ((link(name)?.['addr_info'] ?? []) as { family: string; local: string; prefixlen: number }[])
      .filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    expect(link('91494e4a822-nic')?.['master']).toBe('k6t-91494e4a822');
    expect(link('tap91494e4a822')?.['master']).toBe('k6t-91494e4a822');
    const tapInfo = (link('tap91494e4a822')?.['linkinfo'] as { info_data?: Record<string, unknown> } | undefined)?.info_data;
    // qemu's uid/gid 107 own the tap; `ip` prints a name where this host's passwd/group files have one.
    expect(tapInfo).toMatchObject({ type: 'tap', user: await ownerName('passwd', 107), group: await ownerName('group', 107) });
    // The bridge gets no address (managedTap has no DHCP server, so no fake IP); the keeper holds the pod's identity.
    expect(ipv4('k6t-91494e4a822')).toEqual([]);
    expect(link(FLATNET)?.['address']).toBe(secondary.mac);
    expect(ipv4(FLATNET)).toEqual(secondary.addresses);
    expect(await sysctl(cni.pod, 'net.ipv4.conf.all.arp_ignore')).toBe('1');
    const converged = await dumpNetns(cni.pod);

    expect(setupSummary(await agent(['setup', ...common]))).toMatchObject({ writes: 0, actions: [] });
    expect(await dumpNetns(cni.pod)).toEqual(converged);

    const down = await agent(['teardown', ...common]);
    expect(down.stderr).toBe('');
    expect(down.code).toBe(0);
    expect(await dumpNetns(cni.pod)).toEqual(before);
  });
});
