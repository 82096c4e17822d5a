// End to end: a real guest (Debian kernel + busybox, TCG) started by a private libvirtd inside a CNI-built pod that the agent
// plumbed (setup), described by the agent (domain --define), leased by the agent (serve), hotplugged by the agent (hotplug/hotunplug).
// Everything is asserted from the guest's serial console ("GUEST …" lines printed by guest/init).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hashedPodInterfaceName } from '../../agent/plan/names.js';
import { connectLibvirt, type DomainHandle, type LibvirtClient } from '../../domain/libvirt/client.js';
import { cniAdd, makeCniPod, type CniConf, type CniPod } from '../helpers/cni.js';
import { baseDomainXml, guestMissing, waitForGuestLine, type GuestLine } from '../helpers/guest.js';
import { libvirtdMissing, startLibvirtd, type Libvirtd } from '../helpers/libvirtd.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');
/** TCG boots in ~4-5 s on an idle 2-core machine; shared and loaded it can take minutes. */
const BOOT_TIMEOUT_MS = Number(process.env['VNA_E2E_BOOT_TIMEOUT_MS'] ?? 900_000);
const TEST_TIMEOUT_MS = 3 * BOOT_TIMEOUT_MS;
const RESOLV_CONF = 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n';
const BLUE_POD_IFNAME = 'pod16477688c0e'; // Multus' hashed pod interface name of network "blue"
const MACVTAP_MAC = '02:6b:1e:4c:00:0b';

// Part of `npm test` (also alone: `npm run test:e2e`). A TCG boot takes ~20 s idle but minutes on a loaded shared
// machine: every wait has a generous deadline. VNA_E2E=0 skips it (e.g. for a quick local run).
const skipReason =
  process.env['VNA_E2E'] === '0' ? 'VNA_E2E=0' : !netnsAvailable() ? 'needs root and ip netns' : (guestMissing() ?? libvirtdMissing());

interface AgentRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function agent(args: readonly string[]): Promise<AgentRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function agentOk(args: readonly string[]): Promise<AgentRun> {
  const r = await agent(args);
  if (r.code !== 0) throw new Error(`virt-net-agent ${args[0] ?? ''} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r;
}

/** A long-running process (serve, a test server) that is stopped with SIGTERM and awaited. */
interface Background {
  readonly output: () => string;
  stop(): Promise<void>;
}

function background(argv: readonly string[]): { child: ChildProcess; bg: Background } {
  const [file, ...args] = argv;
  const child = spawn(file ?? 'false', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const bg: Background = {
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
  return { child, bg };
}

/** `virt-net-agent serve` for the pod, once it logged that it is serving. */
async function startServe(stateDir: string, netnsPath: string): Promise<Background> {
  const { child, bg } = background([process.execPath, CLI, 'serve', '--state-dir', stateDir, '--netns', netnsPath]);
  try {
    await waitFor(async () => child.exitCode !== null || /"msg":"serving"/.test(bg.output()), { timeoutMs: 120_000, intervalMs: 100, what: 'serve to start' });
  } catch (err) {
    await bg.stop();
    throw err;
  }
  if (child.exitCode !== null) throw new Error(`serve exited (${child.exitCode}): ${bg.output().trim()}`);
  return bg;
}

function vmiYaml(uid: string, binding: 'bridge' | 'masquerade', blue: 'none' | 'up' | 'absent' = 'none'): string {
  const blueIface = blue === 'none' ? '' : `      - name: blue\n        bridge: {}\n${blue === 'absent' ? '        state: absent\n' : ''}`;
  const blueNet = blue === 'none' ? '' : '  - name: blue\n    multus:\n      networkName: blue-net\n';
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: e2e
  namespace: default
  uid: ${uid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
${binding === 'masquerade' ? '        ports:\n        - port: 80\n' : ''}${blueIface}  networks:
  - name: default
    pod: {}
${blueNet}`;
}

/** Everything one scenario starts, torn down in reverse order whatever happened. */
class Scenario {
  readonly dir = mkdtempSync(join(tmpdir(), 'vna-e2e-'));
  readonly stateDir = join(this.dir, 'state');
  readonly consoleFile = join(this.dir, 'console.log');
  readonly resolvConf = join(this.dir, 'resolv.conf');
  readonly name = `vna-e2e-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  cni: CniPod | undefined;
  libvirtd: Libvirtd | undefined;
  client: LibvirtClient | undefined;
  domain: DomainHandle | undefined;
  serve: Background | undefined;
  readonly others: Background[] = [];

  constructor() {
    writeFileSync(this.resolvConf, RESOLV_CONF);
  }

  file(name: string, text: string): string {
    const path = join(this.dir, name);
    writeFileSync(path, text);
    return path;
  }

  podArgs(): string[] {
    if (!this.cni) throw new Error('no pod yet');
    return ['--netns', this.cni.pod.path, '--state-dir', this.stateDir, '--resolv-conf', this.resolvConf, '--hostname', 'e2e'];
  }

  /** setup → serve → libvirtd → domain --define → start; returns when the domain was started. */
  async boot(vmi: string, cmdline: string, extraArgs: readonly string[] = []): Promise<number> {
    if (!this.cni) throw new Error('no pod yet');
    await agentOk(['setup', '--vmi', vmi, ...extraArgs, ...this.podArgs()]);
    this.serve = await startServe(this.stateDir, this.cni.pod.path);
    this.libvirtd = await startLibvirtd(this.cni.pod);
    const base = this.file('base.xml', baseDomainXml({ name: this.name, consoleFile: this.consoleFile, cmdline }));
    const merged = join(this.dir, 'domain.xml');
    await agentOk(['domain', '--vmi', vmi, '--in', base, ...extraArgs, ...this.podArgs(), '--define', this.libvirtd.uri, '--out', merged]);
    const xml = readFileSync(merged, 'utf8');
    // The agent's merge kept what it does not own.
    expect(xml).toContain("<alias name=\"ua-default\"/>");
    expect(xml).toContain('<qemu:env name="VNA_E2E" value="1"/>');
    expect(xml).toContain('kept</vna:test>');
    this.client = await connectLibvirt(this.libvirtd.uri);
    this.domain = await this.client.lookup(this.name);
    const started = Date.now();
    await this.client.start(this.domain);
    return started;
  }

  async restartServe(): Promise<void> {
    if (!this.cni) throw new Error('no pod yet');
    await this.serve?.stop();
    this.serve = await startServe(this.stateDir, this.cni.pod.path);
  }

  async cleanup(): Promise<void> {
    const steps: (() => Promise<unknown>)[] = [
      async () => {
        if (this.client && this.domain && (await this.client.isActive(this.domain))) await this.client.destroy(this.domain);
      },
      async () => this.client?.close(),
      async () => this.libvirtd?.stop(),
      async () => this.serve?.stop(),
      async () => Promise.all(this.others.map((o) => o.stop())),
      async () => this.cni?.cleanup(),
    ];
    for (const step of steps) await step().catch((err: unknown) => console.error(`e2e cleanup: ${String(err)}`));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function lease(file: string, ifname: string, what: string): Promise<GuestLine> {
  return waitForGuestLine(file, (l) => l.kind === 'LEASE' && l.fields['if'] === ifname, what, BOOT_TIMEOUT_MS);
}

function report(label: string, started: number, line: GuestLine): void {
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  console.log(`[e2e] ${label}: domain start → lease ${seconds} s (guest uptime at lease ${line.fields['uptime'] ?? '?'} s)`);
}

describe.skipIf(skipReason !== null)(`tiny guest under libvirt in an agent-plumbed pod${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('masquerade: leases 10.0.2.2 from serve, pings the gateway, reaches the node, is reached on the forwarded port', { timeout: TEST_TIMEOUT_MS }, async () => {
    const s = new Scenario();
    try {
      s.cni = await makeCniPod({ podCidr: '10.244.31.0/24' });
      const podIp = (s.cni.attachments[0]?.addresses[0] ?? '').split('/')[0] ?? '';
      // A web server on the node (the far side of the pod's NAT).
      const www = join(s.dir, 'www');
      mkdirSync(www);
      writeFileSync(join(www, 'index.html'), 'hello-from-node\n');
      s.others.push(background(['ip', 'netns', 'exec', s.cni.node.name, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www]).bg);

      const vmi = s.file('vmi.yaml', vmiYaml(`masq-${process.pid}`, 'masquerade'));
      const started = await s.boot(vmi, 'vna.httpd=80 vna.fetch=http://10.244.31.1:8080/');

      const got = await lease(s.consoleFile, 'eth0', 'the masquerade lease on eth0');
      report('masquerade', started, got);
      expect(got.fields['ip']).toBe('10.0.2.2');
      expect(got.fields['router']).toBe('10.0.2.1');
      expect(got.fields['dns']).toBe('10.96.0.10');
      const ping = await waitForGuestLine(s.consoleFile, (l) => l.kind === 'PING' && l.fields['if'] === 'eth0', 'ping of the gateway', BOOT_TIMEOUT_MS);
      expect(ping.fields['gw']).toBe('10.0.2.1');
      expect(ping.words).toContain('ok');
      const fetch = await waitForGuestLine(s.consoleFile, (l) => l.kind === 'FETCH', 'the guest fetching from the node', BOOT_TIMEOUT_MS);
      expect(fetch.raw).toContain('FETCH ok'); // the whole line on failure: url, tries, wget's error
      expect(fetch.fields['body']).toBe('hello-from-node');
      // Inbound: the node reaches the guest's httpd through the pod IP's forwarded port 80.
      let body = '';
      await waitFor(async () => {
        const r = await s.cni!.node.exec(['busybox', 'timeout', '10', 'busybox', 'wget', '-q', '-O', '-', `http://${podIp}:80/`], { timeoutMs: 20_000 });
        body = r.stdout.trim();
        return body === 'hello-from-guest';
      }, { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 1000, what: `http://${podIp}:80/ answered by the guest` });
      expect(body).toBe('hello-from-guest');
    } finally {
      await s.cleanup();
    }
  });

  it('bridge: leases the pod IP with the planned routes and DNS; a hotplugged bridge NIC leases, then is hot-unplugged', { timeout: TEST_TIMEOUT_MS }, async () => {
    const s = new Scenario();
    try {
      s.cni = await makeCniPod({ podCidr: '10.244.32.0/24' });
      const pod = s.cni.attachments[0];
      const [podIp, prefix] = (pod?.addresses[0] ?? '').split('/');
      const vmi = s.file('vmi.yaml', vmiYaml(`bridge-${process.pid}`, 'bridge'));
      const started = await s.boot(vmi, '');

      const got = await lease(s.consoleFile, 'eth0', 'the bridge lease on eth0');
      report('bridge', started, got);
      expect(got.fields['ip']).toBe(podIp);
      expect(got.fields['mask']).toBe(prefix);
      expect(got.fields['dns']).toBe('10.96.0.10');
      expect(got.fields['search']?.split(',')).toEqual(expect.arrayContaining(['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local']));
      await waitForGuestLine(s.consoleFile, (l) => l.kind === 'ROUTE' && l.fields['if'] === 'eth0' && l.raw.includes('default via 10.244.32.1'), 'the default route via the pod gateway', BOOT_TIMEOUT_MS);
      const ping = await waitForGuestLine(s.consoleFile, (l) => l.kind === 'PING' && l.fields['if'] === 'eth0', 'ping of the gateway', BOOT_TIMEOUT_MS);
      expect(ping.words).toContain('ok');

      // Multus plugs "blue" into the running pod; the agent plumbs it and attaches it to the running domain.
      const blueConf: CniConf = {
        cniVersion: '1.0.0',
        name: 'blue-net',
        type: 'bridge',
        bridge: 'br-blue',
        isGateway: false,
        ipMasq: false,
        ipam: { type: 'host-local', dataDir: join(s.dir, 'ipam'), ranges: [[{ subnet: '192.168.77.0/24' }]] },
      };
      const blue = await cniAdd(s.cni.pod, blueConf, BLUE_POD_IFNAME, s.cni.containerId, s.cni.node);
      const blueIp = blue.ips?.[0]?.address.split('/')[0];
      const withBlue = s.file('vmi-blue.yaml', vmiYaml(`bridge-${process.pid}`, 'bridge', 'up'));
      const plugged = JSON.parse((await agentOk(['hotplug', '--vmi', withBlue, '--domain', s.name, '--uri', s.libvirtd!.uri, '--network', 'blue', ...s.podArgs()])).stdout) as { applied: { op: string; network: string }[] };
      expect(plugged.applied).toEqual([expect.objectContaining({ op: 'attach', network: 'blue' })]);
      await s.restartServe(); // serve reads the state dir at start: the new network's DHCP needs a restart
      const pluggedAt = Date.now();
      const blueLease = await lease(s.consoleFile, 'eth1', 'the hotplugged NIC eth1 to lease');
      console.log(`[e2e] hotplug: attach → lease on eth1 ${((Date.now() - pluggedAt) / 1000).toFixed(2)} s`);
      expect(blueLease.fields['ip']).toBe(blueIp);

      // Unplug: spec state absent → detach, wait for the guest to release it, delete bridge and tap.
      const withoutBlue = s.file('vmi-absent.yaml', vmiYaml(`bridge-${process.pid}`, 'bridge', 'absent'));
      const unplugged = JSON.parse(
        (await agentOk(['hotunplug', '--vmi', withoutBlue, '--domain', s.name, '--uri', s.libvirtd!.uri, '--network', 'blue', '--detach-timeout', String(BOOT_TIMEOUT_MS / 1000), ...s.podArgs()])).stdout,
      ) as { applied: { op: string; network: string }[]; teardownActions: unknown[] };
      expect(unplugged.applied).toEqual([expect.objectContaining({ op: 'detach', network: 'blue' })]);
      await waitForGuestLine(s.consoleFile, (l) => l.kind === 'GONE' && l.fields['if'] === 'eth1', 'eth1 to disappear from the guest', BOOT_TIMEOUT_MS);
      const links = (await s.cni.pod.execOk(['ip', '-o', 'link', 'show'])).stdout;
      expect(links).not.toContain('k6t-16477688c0e');
      expect(links).not.toContain('tap16477688c0e');
      expect((await s.client!.xmlDesc(s.domain!)).includes('ua-blue')).toBe(false);
    } finally {
      await s.cleanup();
    }
  });
  it('macvtap: a secondary whose pod interface is a macvtap carries the guest\'s frames to the lower device\'s peer', { timeout: TEST_TIMEOUT_MS }, async () => {
    const s = new Scenario();
    try {
      s.cni = await makeCniPod({ podCidr: '10.244.35.0/24' });
      // As macvtap-cni does: a macvtap on a node device (a veth here), moved into the pod under Multus' hashed name.
      const macvtap = hashedPodInterfaceName('macvtapnet');
      const node = s.cni.node;
      await node.execOk(['ip', 'link', 'add', 'mvlow', 'type', 'veth', 'peer', 'name', 'mvpeer']);
      await node.execOk(['ip', 'link', 'set', 'mvlow', 'up']);
      await node.execOk(['ip', 'link', 'set', 'mvpeer', 'up']);
      await node.execOk(['ip', 'link', 'add', 'link', 'mvlow', 'name', macvtap, 'address', MACVTAP_MAC, 'type', 'macvtap', 'mode', 'bridge']);
      await node.execOk(['ip', 'link', 'set', macvtap, 'netns', s.cni.pod.name]);
      await s.cni.pod.execOk(['ip', 'link', 'set', macvtap, 'up']);
      // Whatever the guest sends from the macvtap's MAC, seen on the far end of the lower device.
      const capture = background(['ip', 'netns', 'exec', node.name, 'tcpdump', '-l', '-n', '-e', '-i', 'mvpeer', 'ether', 'src', MACVTAP_MAC]).bg;
      s.others.push(capture);

      const vmi = s.file('vmi-macvtap.yaml', `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: e2e
  namespace: default
  uid: macvtap-${process.pid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
      - name: macvtapnet
        binding:
          name: macvtap
  networks:
  - name: default
    pod: {}
  - name: macvtapnet
    multus:
      networkName: macvtapnet
`);
      const config = s.file('kubevirt.json', JSON.stringify({ network: { binding: { macvtap: { domainAttachmentType: 'tap' } } } }));
      const started = await s.boot(vmi, '', ['--kubevirt-config', config]);
      const domainXml = readFileSync(join(s.dir, 'domain.xml'), 'utf8');
      expect(domainXml).toContain(`<target dev="${macvtap}" managed="no"/>`);
      const nic = await waitForGuestLine(s.consoleFile, (l) => l.kind === 'NIC' && l.fields['mac'] === MACVTAP_MAC, 'the macvtap NIC in the guest', BOOT_TIMEOUT_MS);
      let seen = '';
      await waitFor(async () => (seen = capture.output()).includes(MACVTAP_MAC), { timeoutMs: BOOT_TIMEOUT_MS, intervalMs: 500, what: `frames from ${MACVTAP_MAC} on the lower device's peer` });
      console.log(`[e2e] macvtap: domain start → first guest frame on the lower device's peer ${((Date.now() - started) / 1000).toFixed(2)} s (${nic.fields['if'] ?? '?'})`);
      expect(seen).toMatch(/DHCP|BOOTP|ARP|IPv6/);
    } finally {
      await s.cleanup();
    }
  });
});
