// End to end: live migration of a running tiny guest across two OVN chassis, KubeVirt + OVN-Kubernetes style.
// Real OVS/OVN (test/helpers/ovn.ts, three chassis), the VM's logical switch port keeps its MAC and IP; source pod on
// node1, target pod on node2 bound to the same port; requested-chassis names both and activation-strategy=rarp blocks
// the target until QEMU's RARP after the switchover arrives there. The agent plumbs both pods (bridge binding, `setup`
// and `setup --phase migration-target`), `serve` runs in both, `virsh migrate --live --p2p` moves the guest, and a pod
// on a third chassis probes the VM's address every 10 ms. VNA_OVN=0 or VNA_E2E=0 skips.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setupSummary } from '../helpers/agent-run.js';
import { guestMissing, parseGuestLines, readConsole, waitForGuestLine, type GuestLine } from '../helpers/guest.js';
import { libvirtdMissing } from '../helpers/libvirtd.js';
import { agentOk, migrate, startProbe, withStatus, type PodSide } from '../helpers/migration.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';
import { OvnNetwork, ovnMac, ovnMissing, POD_SUBNET } from '../helpers/ovn.js';
import { allowBoth, firstReplyAfter, ovnPodSide, targetOnly, waitTargetBound, watchRarp } from '../helpers/ovn-migration.js';

const BOOT_TIMEOUT_MS = Number(process.env['VNA_E2E_BOOT_TIMEOUT_MS'] ?? 900_000);
const RENEWAL_TIMEOUT_MS = 120_000;
/** A console tick every second, a DHCP renewal every 3 s (udhcpc's T1). */
const CMDLINE = 'vna.tick=1 vna.renew=3';
/** As test/e2e/migration.test.ts: a TCG guest sometimes dies right after a switchover (QEMU 7.2); rerun once. */
const TCG_GUEST_RETRY = 1;

const skipReason =
  process.env['VNA_E2E'] === '0' ? 'VNA_E2E=0' : !netnsAvailable() ? 'needs root and ip netns' : (ovnMissing() ?? guestMissing() ?? libvirtdMissing());

function vmiYaml(uid: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: ovnmig
  namespace: default
  uid: ${uid}
  annotations:
    kubevirt.io/allow-pod-bridge-network-live-migration: ""
spec:
  domain:
    devices:
      interfaces:
      - name: default
        bridge: {}
  networks:
  - name: default
    pod: {}
`;
}

const guestLines = (file: string, kind: string): GuestLine[] => parseGuestLines(readConsole(file)).filter((l) => l.kind === kind);

describe.skipIf(skipReason !== null)(`live migration across OVN chassis${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('bridge binding, requested-chassis on both and activation-strategy=rarp: the target is blocked until QEMU\'s RARP, the probe from a third chassis resumes without duplicates, the guest keeps address and uptime and renews with the target, the port ends on node2 alone', { timeout: 3 * BOOT_TIMEOUT_MS, retry: TCG_GUEST_RETRY }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vna-ovn-mig-'));
    const domain = `vna-ovnmig-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const vm = { lsp: `vm-${process.pid}`, ip: '10.128.0.16', mac: ovnMac('10.128.0.16') };
    let ovn: OvnNetwork | undefined;
    const sides: PodSide[] = [];
    try {
      ovn = await OvnNetwork.start({ chassis: 3 });
      const [node1, node2, node3] = ovn.chassis;
      const observer = await ovn.addPod({ chassis: node3!, ip: '10.128.0.20' });
      const { side: a } = await ovnPodSide(ovn, 'a', dir, node1!, vm, false);
      sides.push(a);
      await ovn.nbctl(['--wait=hv', 'set', 'logical_switch_port', vm.lsp, `options:requested-chassis=${node1!.name}`]);
      // The target pod exists (unbound: requested-chassis names node1 only) so that its libvirtd starts meanwhile.
      const { side: b, pod: targetPod } = await ovnPodSide(ovn, 'b', dir, node2!, vm, true);
      sides.push(b);
      const libvirtds = Promise.all([a.startLibvirtd('6c6d667a-0000-4000-8000-0000000000c1'), b.startLibvirtd('6c6d667a-0000-4000-8000-0000000000c2')]);

      const base = vmiYaml(`ovn-mig-${process.pid}`);
      const vmiA = a.file('vmi.yaml', `${base}status:\n  migrationTransport: Unix\n`);
      await agentOk(['setup', '--vmi', vmiA, ...a.podArgs()]);
      await a.startServe();
      await libvirtds;
      await a.defineAndStart(vmiA, domain, CMDLINE);
      const lease = await waitForGuestLine(a.consoleFile, (l) => l.kind === 'LEASE' && l.fields['if'] === 'eth0', 'the first lease', BOOT_TIMEOUT_MS);
      expect(lease.fields['ip']).toBe(vm.ip); // bridge binding: the guest holds the LSP's address ...
      const nic = guestLines(a.consoleFile, 'NIC').find((l) => l.fields['if'] === 'eth0');
      expect(nic?.fields['mac']).toBe(vm.mac); // ... and MAC: OVN's port security lets it through

      // The probe from a pod on a third chassis, to the VM's address.
      const probeLog = join(dir, 'probe.log');
      const probe = await startProbe(observer.ns, probeLog, [vm.ip], 0.01);
      await waitFor(async () => probe.replies() >= 20, { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 50, what: 'the guest to answer the probe through OVN' });

      // Migration starts: the port on both chassis; the target's copy is installed but blocked.
      await allowBoth(ovn, vm.lsp, node1!, node2!);
      await waitTargetBound(ovn, targetPod);
      expect(await node2!.datapathActions(`in_port=${targetPod.hostIf},icmp,dl_src=${vm.mac},dl_dst=${POD_SUBNET.routerMac},nw_src=${vm.ip},nw_dst=${POD_SUBNET.gateway},nw_ttl=64`)).toBe('drop');
      const vmiB = b.file('vmi.yaml', withStatus(base, { mac: vm.mac, migrationTransport: 'Unix', podIps: [vm.ip] }));
      const setupB = setupSummary(await agentOk(['setup', '--vmi', vmiB, '--phase', 'migration-target', ...b.podArgs()]));
      expect(setupB.networks[0]?.guestMac).toBe(vm.mac);
      await b.startServe();
      const rarps = await watchRarp(b.pod, 'k6t-eth0', join(dir, 'rarp.log'));
      // Plumbed and serving, the target pod has sent nothing that activates the port: it is still blocked on node2.
      expect((await ovn.binding(vm.lsp)).options).not.toContain('additional-chassis-activated');
      expect(await node2!.datapathActions(`in_port=${targetPod.hostIf},icmp,dl_src=${vm.mac},dl_dst=${POD_SUBNET.routerMac},nw_src=${vm.ip},nw_dst=${POD_SUBNET.gateway},nw_ttl=64`)).toBe('drop');

      const aConsole = a.consoleFile;
      const mig = await migrate({ domain, from: a, to: b, node: node1!.ns, transport: 'unix' });
      expect(mig.ok, mig.output).toBe(true);
      // QEMU's RARP on the target activated the port there.
      await waitFor(async () => (await ovn!.binding(vm.lsp)).options.includes(`additional-chassis-activated=${node2!.name}`), { timeoutMs: 30_000, intervalMs: 50, what: 'the RARP to activate the port on node2' });
      const after = probe.replies();
      await waitFor(async () => probe.replies() >= after + 100, { timeoutMs: RENEWAL_TIMEOUT_MS, intervalMs: 50, what: 'the probe to resume on the target' });
      const result = await probe.stop();
      await rarps.stop();
      const firstRarp = rarps.times()[0];
      const rarpToReply = firstRarp === undefined ? null : (firstReplyAfter(probeLog, firstRarp) ?? Number.NaN) - firstRarp;
      console.log(`[e2e ovn migration] virsh migrate ${(mig.wallMs / 1000).toFixed(2)} s, qemu downtime ${mig.qemuDowntimeMs ?? '?'} ms, longest probe gap ${result.longestGapMs.toFixed(0)} ms, ` +
        `RARP → first reply ${rarpToReply === null ? '?' : (rarpToReply * 1000).toFixed(0)} ms, ${result.replies} replies of ${result.sent} sent, ${result.duplicates} duplicates`);
      expect(firstRarp).toBeDefined();
      expect(result.duplicates).toBe(0);
      expect(result.longestGapMs).toBeLessThan(10_000);
      expect(await a.domainActive(domain)).toBe(false);

      // Migration done: the port on node2 alone; the guest kept running (no boot, uptime on), address and MAC.
      await targetOnly(ovn, vm.lsp, node2!);
      const binding = await ovn.binding(vm.lsp);
      expect(binding.chassis).toEqual([node2!.name]);
      expect(binding.additional).toEqual([]);
      const before = guestLines(aConsole, 'TICK').at(-1);
      const first = await waitForGuestLine(b.consoleFile, (l) => l.kind === 'TICK', 'a tick on the target', BOOT_TIMEOUT_MS);
      expect(guestLines(b.consoleFile, 'BOOT')).toEqual([]);
      expect(Number(first.fields['uptime'])).toBeGreaterThanOrEqual(Number(before?.fields['uptime']));
      expect(first.fields['mac']).toBe(vm.mac);
      expect(first.fields['ip']).toBe(`${vm.ip}/24`);
      // Its DHCP renewal is answered by the target's serve (the unicast one goes to the gateway and is lost, as with
      // KubeVirt's bridge binding; the broadcast rebinding is ACKed with the same address).
      const requests = (): string[] => (b.serve?.output() ?? '').split('\n').filter((l) => l.includes('"msgType":"DHCPREQUEST"') && l.includes(`"mac":"${vm.mac}"`));
      await waitFor(async () => requests().length > 0, { timeoutMs: RENEWAL_TIMEOUT_MS, intervalMs: 100, what: 'a DHCPREQUEST in the target\'s serve log' });
      expect(requests()[0]).toContain('"reply":"DHCPACK"');
      expect(requests()[0]).toContain(`"address":"${vm.ip}"`);

      // The source pod is torn down; the VM still answers through node2.
      await a.stopServe();
      await agentOk(['teardown', '--vmi', vmiA, '--netns', a.pod.path, '--state-dir', a.stateDir]);
      await a.cleanup(domain);
      sides.splice(sides.indexOf(a), 1);
      expect((await observer.ns.exec(['ping', '-c3', '-i0.2', '-W2', vm.ip])).code).toBe(0);
    } finally {
      for (const side of sides) await side.cleanup(domain).catch((err: unknown) => console.error(`ovn migration cleanup ${side.label}: ${String(err)}`));
      await ovn?.stop().catch((err: unknown) => console.error(`ovn migration cleanup: ${String(err)}`));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

