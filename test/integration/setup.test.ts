// setup/teardown on real CNI-built pods: converges, re-runs with zero writes, survives a crash after any write,
// restores the namespace exactly, refuses bad input without changing anything, and carries guest traffic.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { attachGuest } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, waitFor, type Netns } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');

interface AgentRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

function agent(args: readonly string[], env: Record<string, string> = {}): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

function vmiYaml(binding: 'bridge' | 'masquerade', extra = ''): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: ${binding}-${process.pid}-${Math.random().toString(16).slice(2)}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
${binding === 'masquerade' ? '        ports:\n        - port: 80\n' : ''}${extra}  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;
}

/** The namespace as `ip -j` and `nft` print it, minus what the kernel varies on its own. */
async function dump(pod: Netns, options: { ignoreMacOf?: readonly string[] } = {}): Promise<unknown> {
  const links = JSON.parse((await pod.execOk(['ip', '-j', 'link', 'show'])).stdout) as Record<string, unknown>[];
  const addrs = JSON.parse((await pod.execOk(['ip', '-j', 'addr', 'show'])).stdout) as { ifname: string; addr_info: Record<string, unknown>[] }[];
  const routes = JSON.parse((await pod.execOk(['ip', '-j', 'route', 'show', 'table', 'all'])).stdout) as Record<string, unknown>[];
  const nft = (await pod.execOk(['nft', 'list', 'ruleset'])).stdout.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/^(\s*)packets \d+ bytes \d+$/gm, '$1packets bytes');
  const sysctls = await Promise.all(
    ['net.ipv4.conf.all.arp_ignore', 'net.ipv4.ip_forward'].map(async (name) => (await pod.execOk(['sysctl', '-n', name])).stdout.trim()),
  );
  return {
    links: links
      .map((link) => ({
        name: link['ifname'],
        mac: options.ignoreMacOf?.includes(String(link['ifname'])) ? '(random)' : link['address'],
        mtu: link['mtu'],
        master: link['master'] ?? null,
        up: (link['flags'] as string[]).includes('UP'),
      }))
      .sort((a, b) => String(a.name).localeCompare(String(b.name))),
    addresses: addrs
      .flatMap((link) =>
        link.addr_info
          .filter((info) => !(info['family'] === 'inet6' && String(info['local']).startsWith('fe80')))
          .map((info) => `${link.ifname} ${String(info['local'])}/${String(info['prefixlen'])}`),
      )
      .sort(),
    routes: routes
      .filter((route) => !(String(route['dst']).startsWith('fe80') || String(route['dst']).startsWith('ff00') || route['type'] === 'multicast'))
      .map((route) => `${String(route['table'] ?? 'main')} ${String(route['type'] ?? '')} ${String(route['dst'])} via ${String(route['gateway'] ?? '-')} dev ${String(route['dev'])}`)
      .sort(),
    nft,
    sysctls,
  };
}

describe.skipIf(!netnsAvailable())('setup and teardown on a CNI-built pod', { timeout: 1_800_000 }, () => {
  let workDir: string;
  beforeAll(() => {
    workDir = mkdtempSync(join(tmpdir(), 'vna-setup-'));
  });
  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  function files(binding: 'bridge' | 'masquerade', extra = ''): { vmi: string; stateDir: string } {
    const dir = mkdtempSync(join(workDir, `${binding}-`));
    const vmi = join(dir, 'vmi.yaml');
    writeFileSync(vmi, vmiYaml(binding, extra));
    return { vmi, stateDir: join(dir, 'state') };
  }

  async function withPod(fn: (pod: CniPod) => Promise<void>): Promise<void> {
    const pod = await makeCniPod({ podCidr: '10.244.7.0/24', mtu: 1450 });
    try {
      await fn(pod);
    } finally {
      await pod.cleanup();
    }
  }

  for (const binding of ['bridge', 'masquerade'] as const) {
    it(`${binding}: converges, re-runs with zero writes, tears down to the exact pre-setup namespace`, async () => {
      await withPod(async (cni) => {
        const { vmi, stateDir } = files(binding);
        const common = ['--vmi', vmi, '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', '/dev/null', '--hostname', 'testvmi'];
        const before = await dump(cni.pod);
        const podNicLinkLocal = (await cni.pod.execOk(['ip', '-o', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])).stdout;

        const first = await agent(['setup', ...common]);
        expect(first.stderr).toBe('');
        expect(first.code).toBe(0);
        const firstSummary = JSON.parse(first.stdout) as { writes: number };
        expect(firstSummary.writes).toBeGreaterThan(5);

        const links = JSON.parse((await cni.pod.execOk(['ip', '-d', '-j', 'link', 'show'])).stdout) as Record<string, unknown>[];
        const byName = (name: string) => links.find((link) => link['ifname'] === name);
        expect(byName('k6t-eth0')).toBeDefined();
        expect(byName('tap0')?.['master']).toBe('k6t-eth0');
        if (binding === 'bridge') {
          expect(byName('eth0-nic')?.['master']).toBe('k6t-eth0');
          expect(byName('eth0-nic')?.['address']).toBe(byName('k6t-eth0')?.['address']);
          expect(byName('eth0')?.['address']).toBe(cni.attachments[0]?.mac); // the identity keeper
          // The keeper holds the pod NIC's addresses, its IPv6 link-local one included (KubeVirt's dummy does).
          const linkLocalBefore = /inet6 (fe80::[0-9a-f:]+\/64)/.exec(podNicLinkLocal)?.[1];
          expect(linkLocalBefore).toBeDefined();
          const keeperAddresses = (await cni.pod.execOk(['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
          expect(keeperAddresses).toContain(`inet6 ${linkLocalBefore ?? ''}`);
        } else {
          expect(byName('k6t-eth0')?.['address']).toBe('02:00:00:00:00:00');
          // The guest address resolves to the guest MAC (the pod NIC's, as the domain gets it): no ARP through the guest;
          // an entry the kernel re-verifies (REACHABLE, later STALE), not a permanent one.
          // The tap has no carrier until QEMU opens it, so the bridge loses its carrier; the kernel announces that up
          // to a second late and then flushes every entry that is not permanent. Once it has (operstate DOWN), the
          // entry must still be there (setup settles the carrier before it writes the entry).
          await waitFor(
            async () => (JSON.parse((await cni.pod.execOk(['ip', '-j', 'link', 'show', 'k6t-eth0'])).stdout) as { operstate: string }[])[0]?.operstate === 'DOWN',
            { timeoutMs: 30_000, intervalMs: 50, what: 'the kernel to announce that k6t-eth0 has no carrier' },
          );
          const neighbours = (await cni.pod.execOk(['ip', 'neigh', 'show', 'dev', 'k6t-eth0'])).stdout;
          expect(neighbours).toMatch(new RegExp(`10\\.0\\.2\\.2 lladdr ${cni.attachments[0]?.mac ?? '?'} (REACHABLE|STALE)`));
          expect((await cni.pod.execOk(['nft', '-s', 'list', 'chain', 'ip', 'nat', 'KUBEVIRT_PREINBOUND'])).stdout).toContain('tcp dport 80 counter dnat to 10.0.2.2');
        }
        const converged = await dump(cni.pod);

        const second = await agent(['setup', ...common]);
        expect(second.code).toBe(0);
        expect((JSON.parse(second.stdout) as { writes: number; actions: string[] })).toMatchObject({ writes: 0, actions: [] });
        expect(await dump(cni.pod)).toEqual(converged);

        const down = await agent(['teardown', ...common]);
        expect(down.stderr).toBe('');
        expect(down.code).toBe(0);
        expect(await dump(cni.pod)).toEqual(before);
        // The VMI's state folder (state, lock) goes with the plumbing.
        expect(readdirSync(stateDir)).toEqual([]);

        const again = await agent(['teardown', ...common]);
        expect(again.code).toBe(0);
        expect(JSON.parse(again.stdout)).toMatchObject({ hadState: false, writes: 0 });
        expect(readdirSync(stateDir)).toEqual([]);
      });
    });

    it(`${binding}: a crash after any kernel write converges on re-run to the clean run's state`, async () => {
      await withPod(async (cni) => {
        const { vmi, stateDir } = files(binding);
        const common = ['--vmi', vmi, '--netns', cni.pod.path, '--state-dir', stateDir, '--resolv-conf', '/dev/null', '--hostname', 'testvmi'];
        const before = await dump(cni.pod);
        const clean = await agent(['setup', ...common]);
        expect(clean.code).toBe(0);
        const total = (JSON.parse(clean.stdout) as { writes: number }).writes;
        const cleanState = await dump(cni.pod, { ignoreMacOf: ['tap0'] });
        expect((await agent(['teardown', ...common])).code).toBe(0);

        for (let crashAfter = 1; crashAfter < total; crashAfter++) {
          const crashed = await agent(['setup', ...common], { VIRT_NET_AGENT_CRASH_AFTER_WRITES: String(crashAfter) });
          expect(crashed.signal, `crash after write ${crashAfter}`).toBe('SIGKILL');
          const rerun = await agent(['setup', ...common]);
          expect(rerun.stderr, `re-run after crash at write ${crashAfter}`).toBe('');
          expect(rerun.code).toBe(0);
          expect(await dump(cni.pod, { ignoreMacOf: ['tap0'] }), `state after crash at write ${crashAfter}`).toEqual(cleanState);
          const down = await agent(['teardown', ...common]);
          expect(down.code).toBe(0);
          expect(await dump(cni.pod), `teardown after crash at write ${crashAfter}`).toEqual(before);
        }
      });
    });
  }

  it('bad input changes nothing: missing netns, invalid VMI, missing pod interface', async () => {
    await withPod(async (cni) => {
      const before = await dump(cni.pod);
      const { vmi, stateDir } = files('bridge');
      const noNetns = await agent(['setup', '--vmi', vmi, '--netns', '/run/netns/does-not-exist', '--state-dir', stateDir]);
      expect(noNetns.code).toBe(2);
      expect(noNetns.stderr.trim()).toBe('virt-net-agent: --netns: no such network namespace /run/netns/does-not-exist');

      const invalid = files('masquerade', '        macAddress: "02:00:00:00:00:00"\n');
      const rejected = await agent(['setup', '--vmi', invalid.vmi, '--netns', cni.pod.path, '--state-dir', invalid.stateDir]);
      expect(rejected.code).toBe(2);
      expect(rejected.stderr).toContain('The requested MAC address is reserved for the in-pod bridge. Please choose another one.');
      expect(rejected.stderr.trim().split('\n')).toHaveLength(1);

      const missingDir = mkdtempSync(join(workDir, 'missing-'));
      const missingVmi = join(missingDir, 'vmi.yaml');
      writeFileSync(
        missingVmi,
        vmiYaml('masquerade')
          .replace('  networks:\n', '  networks:\n  - name: blue\n    multus:\n      networkName: blue-net\n')
          .replace('      interfaces:\n', '      interfaces:\n      - name: blue\n        bridge: {}\n'),
      );
      const missing = await agent(['setup', '--vmi', missingVmi, '--netns', cni.pod.path, '--state-dir', join(missingDir, 'state')]);
      expect(missing.code).toBe(3);
      expect(missing.stderr.trim()).toMatch(/^virt-net-agent: pod\.interfaces: .*pod16477688c0e/);
      expect(missing.stderr.trim().split('\n')).toHaveLength(1);
      expect(await dump(cni.pod)).toEqual(before);
    });
  });
});

describe.skipIf(!netnsAvailable())('data path through a fake guest', { timeout: 300_000 }, () => {
  it('bridge: the guest with the pod IP and MAC reaches the node through the bridge', async () => {
    const cni = await makeCniPod({ podCidr: '10.244.9.0/24' });
    let guest: Netns | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'vna-dp-'));
    try {
      const vmi = join(dir, 'vmi.yaml');
      writeFileSync(vmi, vmiYaml('bridge'));
      const setup = await agent(['setup', '--vmi', vmi, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null']);
      expect(setup.stderr).toBe('');
      const pod = cni.attachments[0];
      expect(pod).toBeDefined();
      // The fake guest takes the pod's identity (DHCP gives it this lease; statically configured here).
      guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', pod!.mac);
      await guest.execOk(['ip', 'addr', 'add', pod!.addresses[0]!, 'dev', 'eth0']);
      await guest.execOk(['ip', 'route', 'add', 'default', 'via', '10.244.9.1']);
      const ping = await guest.exec(['busybox', 'ping', '-c', '3', '-W', '5', '10.244.9.1']);
      expect(ping.stdout).toContain('3 packets received');
    } finally {
      if (guest) await deleteNetns(guest.name);
      await cni.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('masquerade: the guest at 10.0.2.2 reaches the node (only possible NATed to the pod IP) and is reached on listed port 80, not on 81', async () => {
    const cni = await makeCniPod({ podCidr: '10.244.8.0/24' });
    let guest: Netns | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'vna-dp-'));
    try {
      const vmi = join(dir, 'vmi.yaml');
      writeFileSync(vmi, vmiYaml('masquerade'));
      const setup = await agent(['setup', '--vmi', vmi, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null']);
      expect(setup.code).toBe(0);
      // The fake guest: a veth enslaved to the bridge in place of the tap, configured as the DHCP lease would.
      // It has the MAC the plan gave the domain (the pod's eth0 MAC): the bridge resolves 10.0.2.2 to it.
      guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', cni.attachments[0]?.mac);
      await guest.execOk(['ip', 'addr', 'add', '10.0.2.2/24', 'dev', 'eth0']);
      await guest.execOk(['ip', 'route', 'add', 'default', 'via', '10.0.2.1']);
      const ping = await guest.exec(['busybox', 'ping', '-c', '3', '-W', '5', '10.244.8.1']);
      expect(ping.stdout).toContain('3 packets received');

      // Inbound: the listed port 80 is DNATed to the guest; the unlisted 81 is not (the pod itself refuses it).
      const server = spawn('ip', ['netns', 'exec', guest.name, process.execPath, '-e',
        "const net=require('net');for(const p of [80,81])net.createServer(s=>s.end('guest:'+p)).listen(p,()=>console.log('ready '+p));"]);
      try {
        await new Promise<void>((resolve, reject) => {
          let ready = 0;
          server.stdout.on('data', (chunk: Buffer) => {
            ready += chunk.toString().split('ready').length - 1;
            if (ready >= 2) resolve();
          });
          server.on('exit', (code) => reject(new Error(`guest server exited ${String(code)}`)));
        });
        const podIp = cni.attachments[0]?.addresses[0]?.split('/')[0] ?? '';
        const connect = (port: number) =>
          cni.node.exec([process.execPath, '-e',
            `const s=require('net').connect(${port},'${podIp}');let d='';s.on('data',c=>d+=c);s.on('end',()=>{console.log(d);process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(0)});setTimeout(()=>{console.log('TIMEOUT');process.exit(0)},20000);`]);
        expect((await connect(80)).stdout.trim()).toBe('guest:80');
        expect((await connect(81)).stdout.trim()).toBe('ECONNREFUSED');
      } finally {
        server.kill('SIGKILL');
      }
    } finally {
      if (guest) await deleteNetns(guest.name);
      await cni.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

