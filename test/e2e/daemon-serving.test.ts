// End to end, the cni-daemon as the guests' DHCP server (issue 27), with the tiny guest under qemu on tap0:
// - role 2, KubeVirt's network binding plugin without a sidecar: Multus-style CNI ADD of the binding plugin's NAD
//   (cni-args.logicNetworkName, the VMI from the admin's vmiDir) through the shim to the daemon, which plumbs the pod
//   for `domainAttachmentType: tap` and serves its DHCP; the domain gets the <interface> KubeVirt itself emits for a
//   tap attachment (virt-launcher's converter + phase 2, no hook sidecar);
// - role 1, chained after bridge + host-local: the runtime's ADD alone.
// In both the guest leases from the daemon: no per-VM process of ours runs at all.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectLibvirt, type DomainHandle, type LibvirtClient } from '../../domain/libvirt/client.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { daemonLogLines, runWithEnv, SHIM, startDaemonProcess, type DaemonProcess } from '../helpers/cni-shim.js';
import { baseDomainXml, guestMissing, waitForGuestLine } from '../helpers/guest.js';
import { libvirtdMissing, startLibvirtd, type Libvirtd } from '../helpers/libvirtd.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

const BOOT_TIMEOUT_MS = Number(process.env['VNA_E2E_BOOT_TIMEOUT_MS'] ?? 900_000);
const POD = 'virt-launcher-vmi-tap-q8x2m';

const skipReason =
  process.env['VNA_E2E'] === '0' ? 'VNA_E2E=0' : !netnsAvailable() ? 'needs root and ip netns' : (guestMissing() ?? libvirtdMissing());

/** The user's VMI: the pod network bound by the plugin "vna" (registered with domainAttachmentType: tap, no sidecarImage). */
function vmi(): Record<string, unknown> {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vmi-tap', namespace: 'default', uid: `uid-tap-${process.pid}` },
    spec: { domain: { devices: { interfaces: [{ name: 'default', binding: { name: 'vna' } }] } }, networks: [{ name: 'default', pod: {} }] },
  };
}

/**
 * The <interface> virt-launcher puts in the domain for an interface whose binding plugin has domainAttachmentType: tap
 * and no sidecar (pkg/virt-launcher/virtwrap/converter/network: type ethernet, the model, alias ua-<name>, ROM off
 * without a boot order; then phase 2, pkg/network/domainspec TapLibvirtSpecGenerator: target tap0 (the primary
 * network's tap, when that link exists, else the pod interface) managed='no', the MAC of the spec or else of the pod
 * interface (eth0), the pod interface's MTU).
 */
function kubevirtTapInterface(mac: string, mtu: number): string {
  return `<interface type='ethernet'>
      <source/>
      <target dev='tap0' managed='no'/>
      <model type='virtio-non-transitional'/>
      <mac address='${mac}'/>
      <mtu size='${mtu}'/>
      <alias name='ua-default'/>
      <rom enabled='no'/>
    </interface>`;
}

describe.skipIf(skipReason !== null)(`the cni-daemon serves the tiny guest on the tap: no per-VM process${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  /**
   * One pod, one daemon, one CNI attachment made through the shim (role 1: chained after bridge + host-local; role 2:
   * Multus' call of the binding plugin's NAD), the guest booted on tap0 with `mac`; resolves once it leased, pinged
   * its gateway, and the DEL stopped the serving.
   */
  async function leaseFromDaemon(role: 'chained' | 'binding-plugin', podCidr: string): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'vna-e2e-daemon-'));
    const name = `vna-e2e-${role}-${process.pid}`;
    const consoleFile = join(dir, 'console.log');
    let cni: CniPod | undefined;
    let daemon: DaemonProcess | undefined;
    let libvirtd: Libvirtd | undefined;
    let client: LibvirtClient | undefined;
    let domain: DomainHandle | undefined;
    try {
      cni = await makeCniPod({ podCidr, mtu: 1450 });
      const vmiDir = join(dir, 'vmis');
      mkdirSync(join(vmiDir, 'default'), { recursive: true });
      writeFileSync(join(vmiDir, 'default', `${POD}.yaml`), JSON.stringify(vmi()));
      const config = writeAgentConfig(dir, { vmiDir });
      daemon = await startDaemonProcess(join(dir, 'cni.sock'), { config });

      // Role 2: Multus calls the binding plugin's NAD for the launcher pod (its own ifname, the pod in CNI_ARGS, the
      // logical network in cni-args). Role 1: the runtime calls the conflist, ours after bridge + host-local.
      const env = (command: string): Record<string, string> => ({
        CNI_COMMAND: command,
        CNI_CONTAINERID: cni!.containerId,
        CNI_NETNS: cni!.pod.path,
        CNI_IFNAME: role === 'chained' ? 'eth0' : 'net1',
        CNI_PATH: '/usr/lib/cni',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${POD};K8S_POD_INFRA_CONTAINER_ID=${cni!.containerId}`,
        VIRT_NET_AGENT_CNI_SOCKET: daemon!.socket,
        PATH: process.env['PATH'] ?? '',
      });
      const conf =
        role === 'chained'
          ? JSON.stringify({ cniVersion: '1.0.0', name: 'podnet', type: 'virt-net-agent', binding: 'masquerade', prevResult: cni.attachments[0]!.result })
          : JSON.stringify({ cniVersion: '1.0.0', name: 'vna-binding', type: 'virt-net-agent', args: { cni: { logicNetworkName: 'default' } } });
      const add = await runWithEnv(SHIM, env('ADD'), conf);
      expect(add.code, add.stdout + add.stderr).toBe(0);
      // Served before the answer left the daemon; its log line may reach us a moment after the answer.
      await waitFor(async () => daemonLogLines(daemon!).some((line) => line['msg'] === 'attachment served' && JSON.stringify(line['services']) === '["dhcpv4 k6t-eth0"]'), { timeoutMs: 10_000, intervalMs: 50, what: 'the attachment served' });

      // The guest's MAC: role 1, the guest interface of our CNI result; role 2, what KubeVirt puts in the domain
      // (no spec MAC: the pod interface's).
      const eth0 = JSON.parse((await cni.pod.execOk(['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { address: string; mtu: number }[];
      const result = JSON.parse(add.stdout) as { interfaces: { name: string; mac?: string; sandbox?: string }[] };
      const mac = role === 'chained' ? (result.interfaces.find((i) => i.sandbox === cni!.containerId)?.mac ?? '') : eth0[0]!.address;
      libvirtd = await startLibvirtd(cni.pod);
      const xml = baseDomainXml({ name, consoleFile }).replace('    <memballoon', `    ${kubevirtTapInterface(mac, eth0[0]!.mtu)}\n    <memballoon`);
      client = await connectLibvirt(libvirtd.uri);
      domain = await client.defineXml(xml);
      const started = Date.now();
      await client.start(domain);

      const lease = await waitForGuestLine(consoleFile, (line) => line.kind === 'LEASE' && line.fields['if'] === 'eth0', 'the guest lease from the daemon', BOOT_TIMEOUT_MS);
      console.log(`[e2e] ${role}, served by the cni-daemon: domain start → lease ${((Date.now() - started) / 1000).toFixed(2)} s`);
      expect(lease.fields['ip']).toBe('10.0.2.2');
      expect(lease.fields['router']).toBe('10.0.2.1');
      const ping = await waitForGuestLine(consoleFile, (line) => line.kind === 'PING' && line.fields['if'] === 'eth0', 'ping of the gateway', BOOT_TIMEOUT_MS);
      expect(ping.words).toContain('ok');
      // The daemon answered it, for this attachment, with the MAC the domain has.
      const acks = daemonLogLines(daemon).filter((line) => line['reply'] === 'DHCPACK');
      expect(acks.some((line) => line['mac'] === mac && line['address'] === '10.0.2.2' && String(line['attachment']).startsWith(role === 'chained' ? 'podnet.' : 'vna-binding.'))).toBe(true);

      await client.destroy(domain);
      const del = await runWithEnv(SHIM, env('DEL'), conf);
      expect(del.code, del.stdout + del.stderr).toBe(0);
      await waitFor(async () => daemonLogLines(daemon!).some((line) => line['msg'] === 'attachment no longer served' && line['why'] === 'DEL'), { timeoutMs: 10_000, intervalMs: 50, what: 'the serving stopped' });
    } finally {
      if (client && domain && (await client.isActive(domain).catch(() => false))) await client.destroy(domain).catch(() => undefined);
      await client?.close().catch(() => undefined);
      await libvirtd?.stop().catch(() => undefined);
      await daemon?.stop().catch(() => undefined);
      await cni?.cleanup().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('role 2, binding plugin (domainAttachmentType: tap) without a sidecar: Multus ADD through the shim, the domain <interface> as KubeVirt emits it, the guest leases 10.0.2.2 from the daemon; DEL stops the serving', { timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
    await leaseFromDaemon('binding-plugin', '10.244.61.0/24');
  });

  it('role 1, chained after bridge + host-local: the guest on the tap leases with no command beyond the runtime\'s', { timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
    await leaseFromDaemon('chained', '10.244.62.0/24');
  });
});
