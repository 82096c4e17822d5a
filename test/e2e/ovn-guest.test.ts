// End to end: the tiny guest under QEMU (TCG) on OVN-Kubernetes-style pods (test/helpers/ovn.ts, two chassis), with
// the agent's masquerade and bridge bindings on the primary network (each guest leases from the agent's serve) and a
// managedTap plugin (the agent plumbs and serves nothing; the guest leases from OVN's native DHCP). Each guest pings
// the OVN router, a pod on its chassis and a pod on the other chassis (vna.ping); a pod on the other chassis fetches the
// guest's web page through OVN (TCP from a virtio guest through the userspace datapath). VNA_OVN=0 or VNA_E2E=0 skips.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guestMissing, parseGuestLines, readConsole, waitForGuestLine } from '../helpers/guest.js';
import { libvirtdMissing } from '../helpers/libvirtd.js';
import { agentOk, type PodSide } from '../helpers/migration.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';
import { OvnNetwork, ovnMac, ovnMissing, POD_SUBNET, type OvnPod } from '../helpers/ovn.js';
import { ovnPodSide } from '../helpers/ovn-migration.js';

const BOOT_TIMEOUT_MS = Number(process.env['VNA_E2E_BOOT_TIMEOUT_MS'] ?? 900_000);
const skipReason =
  process.env['VNA_E2E'] === '0' ? 'VNA_E2E=0' : !netnsAvailable() ? 'needs root and ip netns' : (ovnMissing() ?? guestMissing() ?? libvirtdMissing());

/** The far pod's HTTP client (busybox wget segfaults when run from the host in a netns). */
const FETCH = 'import sys, urllib.request\ntry:\n  print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())\nexcept Exception as e:\n  print(repr(e))';

const KUBEVIRT_CONFIG = join(process.cwd(), 'examples/kubevirt-config.yaml'); // registers the "managedtap" plugin

function interfaceOf(binding: 'masquerade' | 'bridge' | 'managedtap'): string {
  return binding === 'managedtap' ? 'binding:\n          name: managedtap' : `${binding}: {}`;
}

function vmiYaml(binding: 'masquerade' | 'bridge' | 'managedtap'): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: ovn-${binding}
  namespace: default
  uid: ovn-guest-${binding}-${process.pid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${interfaceOf(binding)}
  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;
}

describe.skipIf(skipReason !== null)(`the tiny guest on OVN pods${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('masquerade and bridge binding (leases from the agent) and managedTap (leases from OVN\'s DHCP): each guest pings the OVN router, a pod on its chassis and one on the other; a pod on the other chassis fetches its page', { timeout: 3 * BOOT_TIMEOUT_MS }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vna-ovn-guest-'));
    const sides: { side: PodSide; domain: string }[] = [];
    let ovn: OvnNetwork | undefined;
    try {
      ovn = await OvnNetwork.start({ chassis: 2 });
      const [node1, node2] = ovn.chassis;
      const near: OvnPod = await ovn.addPod({ chassis: node1!, ip: '10.128.0.6' });
      const far: OvnPod = await ovn.addPod({ chassis: node2!, ip: '10.128.0.8' });
      // managedtap (KubeVirt's l2bridge style): the agent plumbs bridge and tap and serves nothing; OVN's DHCP answers.
      const cases = [
        { binding: 'masquerade' as const, ip: '10.128.0.5', guestIp: '10.0.2.2', router: '10.0.2.1' },
        { binding: 'bridge' as const, ip: '10.128.0.9', guestIp: '10.128.0.9', router: POD_SUBNET.gateway },
        { binding: 'managedtap' as const, ip: '10.128.0.11', guestIp: '10.128.0.11', router: POD_SUBNET.gateway },
      ];
      const runs = cases.map((c, i) => ({ ...c, domain: `vna-ovnguest-${c.binding}-${process.pid}`, uuid: `6c6d667a-0000-4000-8000-0000000000d${i}` }));
      const ready = await Promise.all(
        runs.map(async (r) => {
          const { side, pod } = await ovnPodSide(ovn!, r.binding, dir, node1!, { lsp: `vm-${r.binding}-${process.pid}`, ip: r.ip, mac: ovnMac(r.ip) }, false);
          sides.push({ side, domain: r.domain });
          await side.startLibvirtd(r.uuid);
          const vmi = side.file('vmi.yaml', vmiYaml(r.binding));
          // (that configuration also refuses bridge on the pod network: only the plugin's case takes it)
          const config = r.binding === 'managedtap' ? ['--kubevirt-config', KUBEVIRT_CONFIG] : [];
          await agentOk(['setup', '--vmi', vmi, ...config, ...side.podArgs()]);
          if (r.binding === 'managedtap') await ovn!.enableDhcp(pod.lsp);
          else await side.startServe();
          await side.defineAndStart(vmi, r.domain, `vna.httpd=8080 vna.ping=${POD_SUBNET.gateway},${near.ip},${far.ip}`, config);
          return { ...r, side, pod };
        }),
      );
      for (const r of ready) {
        const lease = await waitForGuestLine(r.side.consoleFile, (l) => l.kind === 'LEASE' && l.fields['if'] === 'eth0', `the ${r.binding} guest's lease`, BOOT_TIMEOUT_MS);
        expect(lease.fields['ip']).toBe(r.guestIp);
        expect(lease.fields['router']).toBe(r.router);
        expect(lease.fields['mtu']).toBe('1400');
        for (const dst of [POD_SUBNET.gateway, near.ip, far.ip]) {
          const ping = await waitForGuestLine(r.side.consoleFile, (l) => l.kind === 'PING' && l.fields['dst'] === dst, `the ${r.binding} guest's ping to ${dst}`, BOOT_TIMEOUT_MS);
          expect(ping.fields['ok'], `${r.binding} guest → ${dst}: ${ping.raw}`).toBe('1');
        }
        // Inbound through OVN and (masquerade) the pod's DNAT: the other chassis' pod reads the guest's page.
        let body = '';
        await waitFor(async () => (body = (await far.ns.exec(['python3', '-c', FETCH, `http://${r.ip}:8080/`])).stdout.trim()) === 'hello-from-guest', {
          timeoutMs: 120_000, intervalMs: 1000, what: `the ${r.binding} guest's page from the far pod`,
        }).catch(() => undefined);
        expect(body, `${r.binding}: ${parseGuestLines(readConsole(r.side.consoleFile)).map((l) => l.raw).join(' | ')}`).toBe('hello-from-guest');
      }
    } finally {
      for (const { side, domain } of sides) await side.cleanup(domain).catch((err: unknown) => console.error(`ovn guest cleanup ${side.label}: ${String(err)}`));
      await ovn?.stop().catch((err: unknown) => console.error(`ovn guest cleanup: ${String(err)}`));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
