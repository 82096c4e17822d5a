// The container image built and run for real: scripts/build-image.sh builds it (mmdebstrap base + npm's Node, buildah),
// podman runs its sidecar and serve as uid 107 with only NET_BIND_SERVICE in a CNI pod that `setup` plumbed from the
// host; a gRPC client outside calls OnDefineDomain on the hook socket and udhcpc in a fake guest gets its lease. And as a
// binding plugin: the CNI shim plumbs the pod, one container runs `sidecar --serve` (hook + DHCP in one process).
// VNA_IMAGE=0 skips it (the cold build takes minutes; docs/image.md).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHookClients, type OnDefineDomainResult } from '../../agent/sidecar/protos.js';
import { listDomainInterfaces } from '../../domain/domain-xml.js';
import { dumpNetns } from '../helpers/agent-run.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { agent, attachGuest, isServing, spawnServe, udhcpc, type ServeProcess } from '../helpers/dhcp-guest.js';
import { deleteNetns, netnsAvailable, run, waitFor, type Netns } from '../helpers/netns.js';

const IMAGE = 'localhost/virt-net-agent:test';
const enabled = process.env['VNA_IMAGE'] !== '0' && netnsAvailable();

/** The private store and run flags scripts/image-env.sh sets up (the same files the build wrote). */
function imageEnv(): { env: NodeJS.ProcessEnv; runFlags: string[] } {
  const out = spawnSync('bash', ['-c', '. scripts/image-env.sh && printf "%s\\n%s\\n%s" "$CONTAINERS_STORAGE_CONF" "$CONTAINERS_CONF" "$VNA_PODMAN_RUN_FLAGS"'], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`scripts/image-env.sh failed: ${out.stderr}`);
  const [storage = '', conf = '', flags = ''] = out.stdout.split('\n');
  return { env: { ...process.env, CONTAINERS_STORAGE_CONF: storage, CONTAINERS_CONF: conf }, runFlags: flags.split(' ').filter((f) => f !== '') };
}

const VMI_UID = `image-${process.pid}-${Math.random().toString(16).slice(2)}`;
const VMI = {
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'testvmi', namespace: 'default', uid: VMI_UID },
  spec: {
    domain: { devices: { interfaces: [{ name: 'default', masquerade: {}, ports: [{ port: 80 }] }] } },
    networks: [{ name: 'default', pod: {} }],
  },
};

/** What virt-launcher's converter hands the hook before phase 2. */
const DOMAIN = `<domain type="kvm">
  <name>default_testvmi</name>
  <memory unit="b">268435456</memory>
  <os><type arch="x86_64" machine="q35">hvm</type></os>
  <devices>
    <interface type="ethernet"><source></source><model type="virtio-non-transitional"></model><alias name="ua-default"></alias></interface>
  </devices>
</domain>`;

/** KubeVirt's hook call over the shared socket: OnDefineDomain (v1alpha3) with the VMI and DOMAIN. */
async function onDefineDomain(socket: string, vmi: unknown): Promise<OnDefineDomainResult> {
  const client = new (loadHookClients().CallbacksV1alpha3)(`unix:${socket}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<OnDefineDomainResult>((resolve, reject) => {
      const method = (client as unknown as Record<string, (req: object, cb: (err: grpc.ServiceError | null, res?: OnDefineDomainResult) => void) => void>)['OnDefineDomain'];
      if (method === undefined) throw new Error('no OnDefineDomain');
      method.call(client, { domainXML: Buffer.from(DOMAIN), vmi: Buffer.from(JSON.stringify(vmi)) }, (err, res) => (err || !res ? reject(err ?? new Error('no result')) : resolve(res)));
    });
  } finally {
    client.close();
  }
}

/**
 * ISC dhclient -6 in the fake guest (before udhcpc, whose script flushes eth0's addresses, the link-local one too);
 * returns the variables its script saw for the bound lease. `clientDir` is created.
 */
async function dhcpv6Address(guest: Netns, clientDir: string): Promise<string> {
  mkdirSync(clientDir, { recursive: true });
  await waitFor(async () => {
    const out = (await guest.execOk(['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout;
    return out.includes('fe80::') && !out.includes('tentative');
  }, { timeoutMs: 30_000, intervalMs: 100, what: 'the guest link-local address (DAD)' });
  const script = join(clientDir, 'dhclient6-script');
  writeFileSync(script, '#!/bin/sh\nenv | grep -E "^(reason|new_)" | sort > "$(dirname "$0")/env6.$reason"\n');
  chmodSync(script, 0o755);
  const dhclient6 = await guest.exec(['dhclient', '-6', '-1', '-v', '-sf', script, '-lf', join(clientDir, 'dhclient6.leases'), '-pf', join(clientDir, 'dhclient6.pid'), 'eth0'], { timeoutMs: 60_000 });
  try {
    process.kill(Number(readFileSync(join(clientDir, 'dhclient6.pid'), 'utf8').trim()), 'SIGTERM');
  } catch {
    // dhclient -1 may already have exited
  }
  expect(dhclient6.code, dhclient6.stderr).toBe(0);
  return readFileSync(join(clientDir, 'env6.BOUND6'), 'utf8');
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe.skipIf(!enabled)('the image (scripts/build-image.sh), run by podman as the launcher runs it', { timeout: 900_000 }, () => {
  let env: NodeJS.ProcessEnv = {};
  let runFlags: string[] = [];
  let buildOutput = '';
  let workDir = '';
  const containers: string[] = [];

  /** podman with the private store; never throws for a non-zero exit. */
  function podman(args: readonly string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string; code: number }> {
    return run(['env', `CONTAINERS_STORAGE_CONF=${env['CONTAINERS_STORAGE_CONF'] ?? ''}`, `CONTAINERS_CONF=${env['CONTAINERS_CONF'] ?? ''}`, 'podman', ...args], { timeoutMs });
  }

  /**
   * `podman run` (foreground, signals proxied) of the image in the pod's netns: uid/gid 107, every capability dropped
   * but NET_BIND_SERVICE, no new privileges, a read-only root file system; `mounts` are host:container[:options].
   */
  function runArgs(name: string, pod: Netns, mounts: readonly string[], flags: readonly string[] = []): string[] {
    containers.push(name);
    return [
      'podman', 'run', '--rm', '--name', name, ...runFlags,
      '--network', `ns:${pod.path}`,
      '--user', '107:107', '--cap-drop', 'all', '--cap-add', 'NET_BIND_SERVICE', '--security-opt', 'no-new-privileges',
      '--read-only',
      ...mounts.flatMap((mount) => ['-v', mount]),
      ...flags,
      IMAGE,
    ];
  }

  async function statusOf(name: string): Promise<string> {
    let pid = 0;
    await waitFor(async () => {
      const inspect = await podman(['inspect', '--format', '{{.State.Pid}}', name]);
      pid = Number(inspect.stdout.trim());
      return inspect.code === 0 && pid > 0;
    }, { timeoutMs: 60_000, intervalMs: 100, what: `the pid of container ${name}` });
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  }

  beforeAll(async () => {
    ({ env, runFlags } = imageEnv());
    workDir = mkdtempSync(join(tmpdir(), 'vna-image-'));
    chmodSync(workDir, 0o755);
    const started = performance.now();
    // dist/ is current (npm test builds first); the script's own build would race other test files reading dist/.
    const build = await run(['env', 'VNA_SKIP_BUILD=1', `VNA_IMAGE_NAME=${IMAGE}`, 'scripts/build-image.sh'], { timeoutMs: 1_200_000 });
    buildOutput = build.stdout;
    if (build.code !== 0) throw new Error(`scripts/build-image.sh failed (${build.code}):\n${build.stderr.slice(-4000)}`);
    process.stdout.write(`image build: ${((performance.now() - started) / 1000).toFixed(1)} s\n${build.stdout}`);
  }, 1_300_000);

  afterAll(async () => {
    for (const name of containers) await podman(['rm', '--force', '--ignore', name]);
    if (workDir !== '') rmSync(workDir, { recursive: true, force: true });
  });

  it('build-image.sh prints the image id and size; the image runs as 107 with the bundle as its entrypoint', async () => {
    const id = /^image \S+ id ([0-9a-f]{64})$/m.exec(buildOutput)?.[1];
    expect(id).toBeDefined();
    expect(buildOutput).toMatch(/^size \d+ bytes \(\d+ MiB\)$/m);
    const inspect = await podman(['image', 'inspect', '--format', '{{.Id}} {{.Config.User}} {{json .Config.Entrypoint}}', IMAGE]);
    expect(inspect.stdout.trim()).toBe(`${id} 107:107 ["node","/opt/virt-net-agent/dist/virt-net-agent.mjs"]`);
    const version = await podman(['run', '--rm', ...runFlags, '--network', 'none', '--cap-drop', 'all', '--cap-add', 'NET_BIND_SERVICE', IMAGE, '--version']);
    expect(version.stderr).toBe('');
    expect(version.stdout.trim()).toMatch(/^virt-net-agent \d+\.\d+\.\d+/);
  });

  it('without NET_BIND_SERVICE in its bounding set the container cannot even start node (its file capability): docs/image.md', async () => {
    const denied = await podman(['run', '--rm', ...runFlags, '--network', 'none', '--cap-drop', 'all', IMAGE, '--version']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/exec \/usr\/local\/bin\/node: operation not permitted/);
  });

  it("node's file capability is in the image: dropped from root to 107 with nothing inherited (setpriv), node still has NET_BIND_SERVICE", async () => {
    // podman hands an added capability to a non-root process itself; runtimes that leave it only in the bounding set
    // rely on the file capability, as here: setuid(107) clears the permitted set, exec of node raises it again.
    const status = await podman([
      'run', '--rm', ...runFlags, '--network', 'none', '--user', '0:0', '--cap-drop', 'all', '--cap-add', 'NET_BIND_SERVICE,SETUID,SETGID,SETPCAP',
      '--entrypoint', 'setpriv', IMAGE, '--reuid=107', '--regid=107', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all,+net_bind_service',
      'node', '-e', "process.stdout.write(require('fs').readFileSync('/proc/self/status', 'utf8'))",
    ]);
    expect(status.stderr).toBe('');
    expect(/^Uid:\s+(\d+)/m.exec(status.stdout)?.[1]).toBe('107');
    expect(/^CapInh:\s+(\w+)/m.exec(status.stdout)?.[1]).toBe('0000000000000000');
    expect(/^CapEff:\s+(\w+)/m.exec(status.stdout)?.[1]).toBe('0000000000000400');
  });

  it('a second build-image.sh run is a no-op: same image id', async () => {
    const again = await run(['env', 'VNA_SKIP_BUILD=1', `VNA_IMAGE_NAME=${IMAGE}`, 'scripts/build-image.sh'], { timeoutMs: 600_000 });
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/base localhost\/virt-net-agent-base:[0-9a-f]{16} is cached/);
    expect(/^image .*$/m.exec(again.stdout)?.[0]).toBe(/^image .*$/m.exec(buildOutput)?.[0]);
  });

  it('setup (root, host) plumbs a dual-stack pod; the container sidecar answers OnDefineDomain, its serve leases to udhcpc and dhclient -6 (RAs skipped)', async () => {
    const cni: CniPod = await makeCniPod({ podCidr: '10.244.71.0/24', podCidr6: 'fd00:10:244:71::/64' });
    const dir = mkdtempSync(join(workDir, 'pod-'));
    chmodSync(dir, 0o755);
    let sidecar: ChildProcess | undefined;
    let serve: ServeProcess | undefined;
    let guest: Netns | undefined;
    try {
      // Phase 1 as virt-handler does it: root, from the host, into the pod's netns.
      const vmiFile = join(dir, 'vmi.json');
      writeFileSync(vmiFile, JSON.stringify(VMI));
      const stateRoot = join(dir, 'state');
      const setup = await agent(['setup', '--vmi', vmiFile, '--netns', cni.pod.path, '--state-dir', stateRoot]);
      expect(setup.stderr).toBe('');
      expect(setup.code).toBe(0);

      // The hook socket's folder, shared with the host like /var/run/kubevirt-hooks; the sidecar (107) creates the socket.
      const hooks = join(dir, 'hooks');
      mkdirSync(hooks);
      chownSync(hooks, 107, 107);
      const tag = Math.random().toString(16).slice(2, 10);
      const [file = 'podman', ...args] = runArgs(`vna-sidecar-${tag}`, cni.pod, [`${hooks}:/var/run/kubevirt-hooks`]);
      let sidecarErr = '';
      sidecar = spawn(file, [...args, 'sidecar', '--socket', '/var/run/kubevirt-hooks/virt-net-agent.sock'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      sidecar.stderr?.on('data', (chunk: Buffer) => (sidecarErr += chunk.toString()));
      const socket = join(hooks, 'virt-net-agent.sock');
      await waitFor(async () => existsSync(socket) || sidecar?.exitCode !== null, { timeoutMs: 120_000, intervalMs: 100, what: 'the hook socket' });
      if (!existsSync(socket)) throw new Error(`sidecar container exited: ${sidecarErr}`);

      const sidecarStatus = await statusOf(`vna-sidecar-${tag}`);
      expect(/^Uid:\s+(\d+)/m.exec(sidecarStatus)?.[1]).toBe('107');
      expect(/^CapEff:\s+(\w+)/m.exec(sidecarStatus)?.[1]).toBe('0000000000000400'); // CAP_NET_BIND_SERVICE only
      expect(/^CapBnd:\s+(\w+)/m.exec(sidecarStatus)?.[1]).toBe('0000000000000400');

      // From outside: KubeVirt's hook API over the shared socket.
      const result = await onDefineDomain(socket, VMI);
      const ifaces = listDomainInterfaces(result.domainXML.toString('utf8'));
      expect(ifaces).toHaveLength(1);
      expect(ifaces[0]).toMatchObject({ alias: 'ua-default', type: 'ethernet', targetDev: 'tap0' });

      // serve in a second container of the image, reading what setup recorded (mounted read-only).
      const store = { CONTAINERS_STORAGE_CONF: env['CONTAINERS_STORAGE_CONF'] ?? '', CONTAINERS_CONF: env['CONTAINERS_CONF'] ?? '' };
      serve = spawnServe([], store, { command: runArgs(`vna-serve-${tag}`, cni.pod, [`${stateRoot}:/var/run/kubevirt-private/virt-net-agent:ro`]) });
      await serve.waitForLog(isServing, 'serving');
      const serveStatus = await statusOf(`vna-serve-${tag}`);
      expect(/^Uid:\s+(\d+)/m.exec(serveStatus)?.[1]).toBe('107');
      expect(/^CapEff:\s+(\w+)/m.exec(serveStatus)?.[1]).toBe('0000000000000400');
      // Dual stack: DHCPv4 and DHCPv6 listen (ports 67/547 through NET_BIND_SERVICE); router advertisements need
      // CAP_NET_RAW, which the container does not have: skipped with a warning.
      expect(serve.logs.some((line) => line['msg'] === 'dhcpv4 server listening')).toBe(true);
      expect(serve.logs.some((line) => line['msg'] === 'dhcpv6 server listening')).toBe(true);
      expect(serve.logs.find((line) => String(line['msg']).startsWith('router advertisements not sent'))).toMatchObject({ level: 'warn', network: 'default' });

      // A fake guest on the bridge with the MAC the sidecar put into <interface>.
      guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', ifaces[0]?.mac ?? undefined);
      const clientDir = join(dir, 'udhcpc');
      expect(await dhcpv6Address(guest, clientDir)).toContain('new_ip6_address=fd10:0:2::2');
      const lease = await udhcpc(guest, clientDir);
      expect(lease.lease.addresses).toEqual(['10.0.2.2/24']);
      process.stdout.write(`udhcpc lease from the container's serve: ${lease.elapsedMs.toFixed(0)} ms\n`);
      expect(serve.logs.some((line) => line['reply'] === 'DHCPACK' && line['mac'] === ifaces[0]?.mac)).toBe(true);


      // Both stop cleanly on SIGTERM (podman proxies it): serve exits 0, the sidecar exits 0 and removes its socket.
      const served = serve;
      serve = undefined;
      expect(await served.stop()).toEqual({ code: 0, signal: null });
      sidecar.kill('SIGTERM');
      expect((await exited(sidecar)).code).toBe(0);
      sidecar = undefined;
      expect(existsSync(socket)).toBe(false);
    } finally {
      if (guest) {
        await cni.pod.exec(['ip', 'link', 'del', 'vguest']);
        await deleteNetns(guest.name);
      }
      await serve?.stop('SIGKILL');
      if (sidecar) {
        sidecar.kill('SIGKILL');
        await exited(sidecar);
      }
      await cni.cleanup();
    }
  });

  it('binding plugin (domainAttachmentType tap): the CNI shim (no node) plumbs the pod; ONE container, sidecar --serve, answers OnDefineDomain and leases to udhcpc and dhclient -6; DEL restores the pod', async () => {
    const cni: CniPod = await makeCniPod({ podCidr: '10.244.72.0/24', podCidr6: 'fd00:10:244:72::/64' });
    const dir = mkdtempSync(join(workDir, 'bp-'));
    chmodSync(dir, 0o755);
    let sidecar: ServeProcess | undefined;
    let guest: Netns | undefined;
    const bindingVmi = { ...VMI, spec: { ...VMI.spec, domain: { devices: { interfaces: [{ name: 'default', binding: { name: 'vna' }, ports: [{ port: 80 }] }] } } } };
    try {
      const before = await dumpNetns(cni.pod);
      // Phase 1 as Multus runs the binding's NAD: the /opt/cni/bin shim, with no node on PATH.
      // The node's agent configuration (the admin's) says where state and VMI files are; the NAD names neither.
      const vmiDir = join(dir, 'vmis');
      mkdirSync(join(vmiDir, 'default'), { recursive: true });
      writeFileSync(join(vmiDir, 'default', 'virt-launcher-testvmi-abcde.yaml'), JSON.stringify(bindingVmi));
      const config = writeAgentConfig(dir, { stateRoot: join(dir, 'cni-state'), vmiDir });
      const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'vna-binding', type: 'virt-net-agent', args: { cni: { logicNetworkName: 'default' } } });
      const cniEnv = (command: string): string[] => [
        'env', '-i', 'PATH=/usr/bin:/bin', `CNI_COMMAND=${command}`, `CNI_CONTAINERID=${cni.containerId}`, `CNI_NETNS=${cni.pod.path}`, 'CNI_IFNAME=net1', 'CNI_PATH=/usr/lib/cni',
        'CNI_ARGS=K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-testvmi-abcde', `VIRT_NET_AGENT_CONFIG=${config}`, `VIRT_NET_AGENT_CNI_SOCKET=${join(dir, 'no-daemon.sock')}`,
        join(process.cwd(), 'dist/cni/virt-net-agent'),
      ];
      const add = await cni.node.exec(cniEnv('ADD'), { input: conf, timeoutMs: 120_000 });
      expect(add.code, add.stdout + add.stderr).toBe(0);
      expect((JSON.parse(add.stdout) as { interfaces: { name: string }[] }).interfaces.map((i) => i.name)).toEqual(['k6t-eth0', 'tap0']);

      const hooks = join(dir, 'hooks');
      mkdirSync(hooks);
      chownSync(hooks, 107, 107);
      const tag = Math.random().toString(16).slice(2, 10);
      const store = { CONTAINERS_STORAGE_CONF: env['CONTAINERS_STORAGE_CONF'] ?? '', CONTAINERS_CONF: env['CONTAINERS_CONF'] ?? '' };
      // KubeVirt names the plugin in the sidecar's environment; the one container answers the hook and serves DHCP.
      sidecar = spawnServe(['--socket', '/var/run/kubevirt-hooks/vna.sock', '--serve'], store, {
        command: runArgs(`vna-bp-${tag}`, cni.pod, [`${hooks}:/var/run/kubevirt-hooks`], ['-e', 'NETWORK_BINDING_PLUGIN_NAME=vna']),
        subcommand: ['sidecar'],
      });
      const socket = join(hooks, 'vna.sock');
      const running = sidecar;
      await waitFor(async () => existsSync(socket) || running.logs.some((line) => line['level'] === 'error'), { timeoutMs: 120_000, intervalMs: 100, what: 'the hook socket' });
      if (!existsSync(socket)) throw new Error(`sidecar container failed: ${sidecar.stderr()}`);
      const result = await onDefineDomain(socket, bindingVmi);
      const ifaces = listDomainInterfaces(result.domainXML.toString('utf8'));
      expect(ifaces).toHaveLength(1);
      expect(ifaces[0]).toMatchObject({ alias: 'ua-default', type: 'ethernet', targetDev: 'tap0', mac: cni.attachments[0]?.mac });
      await sidecar.waitForLog(isServing, 'serving');
      expect(sidecar.logs.some((line) => line['msg'] === 'dhcpv6 server listening')).toBe(true);

      guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', ifaces[0]?.mac ?? undefined);
      const clientDir = join(dir, 'clients');
      expect(await dhcpv6Address(guest, clientDir)).toContain('new_ip6_address=fd10:0:2::2');
      const lease = await udhcpc(guest, clientDir);
      expect(lease.lease.addresses).toEqual(['10.0.2.2/24']);
      process.stdout.write(`udhcpc lease from the binding-plugin sidecar container: ${lease.elapsedMs.toFixed(0)} ms\n`);
      await sidecar.waitForLog((line) => line['reply'] === 'DHCPACK' && line['mac'] === ifaces[0]?.mac, 'the DHCPACK');

      const stopped = sidecar;
      sidecar = undefined;
      expect(await stopped.stop()).toEqual({ code: 0, signal: null });
      expect(existsSync(socket)).toBe(false);
      await cni.pod.exec(['ip', 'link', 'del', 'vguest']);
      await deleteNetns(guest.name);
      guest = undefined;
      const del = await cni.node.exec(cniEnv('DEL'), { input: conf, timeoutMs: 120_000 });
      expect(del.code, del.stdout + del.stderr).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
    } finally {
      if (guest) {
        await cni.pod.exec(['ip', 'link', 'del', 'vguest']);
        await deleteNetns(guest.name);
      }
      await sidecar?.stop('SIGKILL');
      await cni.cleanup();
    }
  });
});
