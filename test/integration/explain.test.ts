// `explain` on real CNI-built pods plumbed by `setup`: the picture shows live link state and nft counters, and --packet
// answers listed vs unlisted ports the way the kernel actually treats them (checked with real connections).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { attachGuest } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, type Netns } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');

function agent(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function vmiYaml(binding: 'bridge' | 'masquerade'): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: explainvmi
  namespace: default
  uid: explain-${binding}-${process.pid}-${Math.random().toString(16).slice(2)}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
${binding === 'masquerade' ? '        ports:\n        - port: 80\n        - port: 53\n          protocol: UDP\n' : ''}  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;
}

describe.skipIf(!netnsAvailable())('explain on a plumbed pod', { timeout: 900_000 }, () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vna-explain-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('masquerade: picture with live counters; listed port 80 → DNAT to the guest, unlisted 81 → "not in the ports list"; both confirmed by real connections', async () => {
    const cni: CniPod = await makeCniPod({ podCidr: '10.244.11.0/24' });
    let guest: Netns | undefined;
    const server = { kill: (): void => undefined } as { kill: () => void };
    try {
      const vmi = join(dir, 'masq.yaml');
      const stateDir = join(dir, 'masq-state');
      writeFileSync(vmi, vmiYaml('masquerade'));
      const setup = await agent(['setup', '--vmi', vmi, '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', '/dev/null', '--hostname', 'x']);
      expect(setup.stderr).toBe('');
      expect(setup.code).toBe(0);
      const podIp = cni.attachments[0]?.addresses[0]?.split('/')[0] ?? '';
      const nodeIp = cni.attachments[0]?.gateways[0] ?? '';
      expect(podIp).toMatch(/^10\.244\.11\./);

      // Fake guest with servers on 80 and 81, and one real connection to each from the node.
      // It has the MAC the plan gave the domain (the pod's eth0 MAC): the bridge resolves 10.0.2.2 to it.
      guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', cni.attachments[0]?.mac);
      await guest.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
      await guest.execOk(['ip', 'route', 'add', 'default', 'via', '10.0.2.1']);
      const child = spawn('ip', ['netns', 'exec', guest.name, process.execPath, '-e',
        "const net=require('net');for(const p of [80,81])net.createServer(s=>s.end('guest:'+p)).listen(p,()=>console.log('ready '+p));"]);
      server.kill = () => child.kill('SIGKILL');
      await new Promise<void>((resolve, reject) => {
        let ready = 0;
        child.stdout.on('data', (c: Buffer) => {
          ready += c.toString().split('ready').length - 1;
          if (ready >= 2) resolve();
        });
        child.on('exit', (code) => reject(new Error(`guest server exited ${String(code)}`)));
      });
      const connect = async (port: number): Promise<string> =>
        (await cni.node.exec([process.execPath, '-e',
          `const s=require('net').connect(${port},'${podIp}');let d='';s.on('data',c=>d+=c);s.on('end',()=>{console.log(d);process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},60000);`], { timeoutMs: 180_000 })).stdout.trim();
      expect(await connect(80)).toBe('guest:80');
      expect(await connect(81)).toBe('ECONNREFUSED');

      const common = ['explain', '--netns', cni.pod.path, '--state-dir', stateDir];
      const picture = await agent(common);
      expect(picture.stderr).toBe('');
      expect(picture.code).toBe(0);
      expect(picture.stdout).toContain('network default (masquerade)');
      expect(picture.stdout).toMatch(/tap0 +tun +up +master k6t-eth0/);
      expect(picture.stdout).toMatch(/k6t-eth0 +bridge up .*10\.0\.2\.1\/24/);
      expect(picture.stdout).toMatch(new RegExp(`eth0 +veth +up .*${podIp.replace(/\./g, '\\.')}/24`));
      // The one connection to port 80 went through the DNAT rule: its live counter is 1 (the first packet of the connection).
      expect(picture.stdout).toMatch(/ip KUBEVIRT_PREINBOUND +tcp dport 80 dnat to 10\.0\.2\.2 +\[1 pkts\]/);
      expect(picture.stdout).toMatch(/ip KUBEVIRT_PREINBOUND +udp dport 53 dnat to 10\.0\.2\.2 +\[0 pkts\]/);

      const listed = await agent([...common, '--packet', `tcp ${nodeIp}:5000 -> ${podIp}:80`]);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toContain('ip nat KUBEVIRT_PREINBOUND: rule 1 `tcp dport 80 dnat to 10.0.2.2` [1 pkts] → DNAT to 10.0.2.2');
      expect(listed.stdout).toMatch(/verdict: DNAT to 10\.0\.2\.2 .*→ leaves on k6t-eth0 to 10\.0\.2\.2:80 → guest of network default/);

      const unlisted = await agent([...common, '--vmi', vmi, '--resolv-conf', '/dev/null', '--hostname', 'x', '--packet', `tcp ${nodeIp}:5000 -> ${podIp}:81`]);
      expect(unlisted.stderr).toBe('');
      expect(unlisted.stdout).toContain(
        `verdict: no rule matches: tcp port 81 is not in the VMI's ports list (spec.domain.devices.interfaces[0].ports: tcp 80, udp 53); delivered to the pod itself (${podIp}:81), not to a guest`,
      );
      // The picture carries the DHCP lease plan (recorded by setup; recomputed from the VMI with --vmi).
      expect(picture.stdout).toMatch(/DHCP offers 10\.0\.2\.2\/24 router 10\.0\.2\.1 /);
      expect(unlisted.stdout).toMatch(/DHCP offers 10\.0\.2\.2\/24 router 10\.0\.2\.1 .*mtu 1500 lease 999d from 10\.0\.2\.1 on k6t-eth0/);

      const bad = await agent([...common, '--packet', `tcp ${nodeIp}:1 -> ${podIp}:80 in nosuch0`]);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim()).toBe('virt-net-agent: --packet: no interface nosuch0 in the pod');
    } finally {
      server.kill();
      if (guest) await deleteNetns(guest.name);
      await cni.cleanup();
    }
  });

  it('bridge: the picture shows the renamed pod NIC enslaved with learning off and the guest taking the pod IP and MAC', async () => {
    const cni = await makeCniPod({ podCidr: '10.244.12.0/24' });
    try {
      const vmi = join(dir, 'bridge.yaml');
      const stateDir = join(dir, 'bridge-state');
      writeFileSync(vmi, vmiYaml('bridge'));
      const setup = await agent(['setup', '--vmi', vmi, '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', '/dev/null', '--hostname', 'x']);
      expect(setup.code).toBe(0);
      const out = await agent(['explain', '--netns', cni.pod.path, '--state-dir', stateDir]);
      expect(out.code).toBe(0);
      const mac = cni.attachments[0]?.mac ?? '';
      const address = cni.attachments[0]?.addresses[0] ?? '';
      // The lease plan comes from the state dir (setup records what serve will hand out): the pod's own IP, to the pod's MAC only.
      expect(out.stdout).toContain(`guest           mac ${mac}  DHCP offers ${address}`);
      expect(out.stdout).toContain(`to ${mac} only`);
      expect(out.stdout).toMatch(/eth0-nic +veth +up +master k6t-eth0 learning off/);
      expect(out.stdout).toMatch(/eth0 +bridge DOWN .*identity keeper/);
    } finally {
      await cni.cleanup();
    }
  });
});
