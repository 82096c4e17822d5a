// serve --metrics-address: a launcher pod's own DHCP server (when the daemon does not serve) exposes the DHCP and router-advertisement counters.
//
// A pod made by the reference CNI plugins (test/helpers/cni.ts), setup for a masquerade VMI, `serve --metrics-address
// 127.0.0.1:0` (a free loopback port, read from its log), a fake guest leasing with udhcpc; then GET /metrics.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCniPod } from '../helpers/cni.js';
import { agent, attachGuest, isServing, spawnServe, udhcpc } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable } from '../helpers/netns.js';

const VMI = `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: metrics-serve-${process.pid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod: {}
`;

describe.skipIf(!netnsAvailable())('serve --metrics-address', { timeout: 300_000 }, () => {
  it('counts the guest DHCP exchange and answers GET /metrics only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vna-serve-metrics-'));
    const cni = await makeCniPod({ podCidr: '10.244.37.0/24' });
    const serves: { stop(signal?: NodeJS.Signals): Promise<unknown> }[] = [];
    try {
      writeFileSync(join(dir, 'vmi.yaml'), VMI);
      const resolv = join(dir, 'resolv.conf');
      writeFileSync(resolv, 'nameserver 10.96.0.10\n');
      const stateDir = join(dir, 'state');
      const setup = await agent(['setup', '--vmi', join(dir, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', resolv, '--hostname', 'testvmi']);
      expect(setup.code, setup.stderr).toBe(0);
      const serve = spawnServe(['--state-dir', stateDir, '--netns', cni.pod.path, '--metrics-address', '127.0.0.1:0']);
      serves.push(serve);
      await serve.waitForLog(isServing, 'serving');
      const listening = await serve.waitForLog((l) => l['msg'] === 'metrics listening', 'metrics listening');
      const port = Number(String(listening['address']).split(':').pop());
      expect(port).toBeGreaterThan(0);
      // Masquerade's guest takes the pod NIC's MAC (KubeVirt's rule), which the DHCP server answers.
      const guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', cni.attachments[0]!.mac);
      try {
        const clientDir = join(dir, 'udhcpc');
        mkdirSync(clientDir);
        const lease = await udhcpc(guest, clientDir);
        expect(lease.lease.addresses).toEqual(['10.0.2.2/24']);
      } finally {
        await cni.pod.exec(['ip', 'link', 'del', 'vguest']);
        await deleteNetns(guest.name);
      }
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('virt_net_agent_dhcp_messages_total{family="v4",type="DHCPDISCOVER",result="replied"} 1');
      expect(text).toContain('virt_net_agent_dhcp_messages_total{family="v4",type="DHCPREQUEST",result="replied"} 1');
      expect(text).toContain('virt_net_agent_router_advertisements_total 0');
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
      expect(text).not.toContain('virt_net_agent_cni_requests_total');
    } finally {
      for (const s of serves) await s.stop('SIGTERM');
      await cni.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
