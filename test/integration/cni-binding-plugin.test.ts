// CNI role 2, the KubeVirt network binding plugin: Multus-style ADD (cni-args.logicNetworkName, no prevResult) reads the VMI from a stand-in Kubernetes API over TLS, plumbs what
// `domainAttachmentType: tap` expects; the hook sidecar as uid 107 without capabilities answers OnDefineDomain and, in
// the same process, leases to a DHCP client; DEL restores the pod exactly. The API is a stand-in (no cluster here):
// a node HTTPS server in the node netns answering the launcher pod and its VMI, as the real API would.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadHookClients, type OnDefineDomainResult } from '../../agent/sidecar/protos.js';
import { listDomainInterfaces } from '../../domain/domain-xml.js';
import { CLI, dumpNetns } from '../helpers/agent-run.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { expectSpecError, plugin } from '../helpers/cni-plugin.js';
import { attachGuest, udhcpc } from '../helpers/dhcp-guest.js';
import { startFakeApi, makeApiCertificate, writeKubeconfig, type FakeApi } from '../helpers/kube-api.js';
import { deleteNetns, netnsAvailable, waitFor, type Netns } from '../helpers/netns.js';

const POD = 'virt-launcher-vmi-a-x7k2q';
const SPEC_MAC = '02:00:00:0a:0b:0c';
const TOKEN = 'test-token-0123';
const SPOOF = 'virt-net-agent.kubevirt.io/spoof-protection';

function vmi(overrides: { network?: Record<string, unknown>; status?: Record<string, unknown>; mac?: string | null } = {}): Record<string, unknown> {
  const iface: Record<string, unknown> = { name: 'default', binding: { name: 'vna' }, ports: [{ port: 80 }] };
  if (overrides.mac !== null) iface['macAddress'] = overrides.mac ?? SPEC_MAC;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vmi-a', namespace: 'default', uid: 'uid-a', annotations: { [SPOOF]: 'true' } },
    spec: {
      domain: { devices: { interfaces: [iface, { name: 'other', bridge: {} }] } },
      networks: [overrides.network ?? { name: 'default', pod: {} }, { name: 'other', multus: { networkName: 'other-net' } }],
    },
    status: overrides.status ?? {},
  };
}

const launcherPod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: POD, namespace: 'default', ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vmi-a', uid: 'uid-a', controller: true }] } };
const PATHS = { pod: `/api/v1/namespaces/default/pods/${POD}`, vmi: '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/vmi-a' };

/** virt-launcher's domain for the tap attachment: an ethernet interface on tap0 that the sidecar replaces. */
const DOMAIN = `<domain type="qemu"><name>default_vmi-a</name><memory unit="MiB">64</memory><os><type arch="x86_64" machine="q35">hvm</type></os>
<devices><interface type="ethernet"><alias name="ua-default"/><target dev="tap0" managed="no"/><mac address="${SPEC_MAC}"/><model type="virtio-non-transitional"/></interface></devices></domain>`;

function kubeconfig(dir: string, port: number, token = TOKEN): string {
  return writeKubeconfig(dir, port, { token });
}

describe.skipIf(!netnsAvailable())('CNI binding-plugin role (KubeVirt network binding plugin, domainAttachmentType: tap)', () => {
  let dir: string;
  let stateDir: string;
  /** The agent configuration without a VMI source (no kubeconfig, no vmiDir). */
  let bare: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-cni-bp-'));
    chmodSync(dir, 0o755); // the sidecar (107) reaches its socket folder and resolv.conf through it
    stateDir = join(dir, 'state');
    mkdirSync(stateDir);
    bare = agentConfig();
    await makeApiCertificate(dir);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: '1.0.0', name: 'vna-binding', type: 'virt-net-agent', args: { cni: { logicNetworkName: 'default' } }, ...extra };
  }
  /** The admin's side: where the VMI comes from (kubeconfig, vmiDir) is the agent configuration's, never the NAD's. */
  function agentConfig(settings: Record<string, unknown> = {}): string {
    return writeAgentConfig(dir, { stateRoot: stateDir, ...settings });
  }
  /** As Multus calls a binding plugin's NAD: its own interface name, the pod's name and namespace in CNI_ARGS. */
  function env(cni: CniPod, command: string, more: Record<string, string> = {}): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: cni.containerId,
      CNI_NETNS: cni.pod.path,
      CNI_IFNAME: 'net1',
      CNI_PATH: '/usr/lib/cni',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${POD};K8S_POD_INFRA_CONTAINER_ID=${cni.containerId}`,
      ...more,
    };
  }

  async function withPod(cidr: string, fn: (cni: CniPod) => Promise<void>): Promise<void> {
    const cni = await makeCniPod({ podCidr: cidr });
    try {
      await fn(cni);
    } finally {
      await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(conf()), bare);
      await cni.cleanup();
    }
  }

  it('ADD reads the VMI through the API (TLS, token), plumbs k6t-eth0 + tap0 for the tap attachment; the sidecar (107, no capabilities) answers OnDefineDomain and leases to udhcpc; CHECK passes; DEL restores the pod', { timeout: 180_000 }, async () => {
    await withPod('10.244.81.0/24', async (cni) => {
      const api: FakeApi = await startFakeApi(cni.node, dir, { [PATHS.pod]: launcherPod, [PATHS.vmi]: vmi() }, TOKEN);
      let sidecar: ChildProcess | undefined;
      let guest: Netns | undefined;
      try {
        const before = await dumpNetns(cni.pod);
        const eth0Before = (await cni.pod.execOk(['ip', '-o', 'addr', 'show', 'eth0'])).stdout;
        const api1 = agentConfig({ kubeconfig: kubeconfig(dir, api.port) });
        const c = conf({ spoofProtection: false });
        const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(c), api1);
        expect(add.code, add.stdout).toBe(0);
        expect(api.log()).toMatch(new RegExp(`GET ${PATHS.pod} auth=ok status=200\\nGET ${PATHS.vmi} auth=ok status=200`));
        const result = add.json as { interfaces: { name: string; mac?: string; sandbox?: string }[]; ips: unknown[] };
        expect(result.interfaces.map((i) => [i.name, i.sandbox])).toEqual([
          ['k6t-eth0', cni.pod.path],
          ['tap0', cni.pod.path],
        ]);
        expect(result.interfaces[1]?.mac).toBe(SPEC_MAC);
        expect(result.ips).toEqual([]);

        // What virt-launcher's tap attachment looks for: eth0 as the primary CNI left it, tap0 (the launcher's).
        expect((await cni.pod.execOk(['ip', '-o', 'addr', 'show', 'eth0'])).stdout).toBe(eth0Before);
        expect((await cni.pod.execOk(['ip', '-o', 'addr', 'show', 'k6t-eth0'])).stdout).toContain('10.0.2.1/24');
        const tap = (await cni.pod.execOk(['ip', '-d', 'link', 'show', 'tap0'])).stdout;
        expect(tap).toMatch(/master k6t-eth0/);
        expect(tap).toMatch(/tun type tap .*user 107/);
        const nft = (await cni.pod.execOk(['nft', 'list', 'ruleset'])).stdout;
        expect(nft).toMatch(/tcp dport 80 .*dnat to 10\.0\.2\.2/);
        // The VMI's spoof-protection annotation wins over the configuration's default (off).
        expect(nft).toMatch(new RegExp(`table bridge \\S+ \\{[^]*ether saddr != ${SPEC_MAC}`));
        expect((await cni.pod.execOk(['sysctl', '-n', 'net.ipv4.ip_unprivileged_port_start'])).stdout.trim()).toBe('0');
        expect((await plugin(cni.node, env(cni, 'CHECK'), JSON.stringify({ ...c, prevResult: add.json }), api1)).code).toBe(0);

        // The hook sidecar as KubeVirt runs it: uid 107, no capabilities, KubeVirt's plugin-name variable.
        const hooks = join(dir, 'hooks');
        mkdirSync(hooks, { recursive: true });
        chownSync(hooks, 107, 107);
        const resolv = join(dir, 'resolv.conf');
        writeFileSync(resolv, 'nameserver 10.96.0.10\nsearch default.svc.cluster.local svc.cluster.local\n');
        const socket = join(hooks, 'vna.sock');
        const argv = ['netns', 'exec', cni.pod.name, 'setpriv', '--reuid', '107', '--regid', '107', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', 'env', 'NETWORK_BINDING_PLUGIN_NAME=vna', process.execPath, CLI];
        sidecar = spawn('ip', [...argv, 'sidecar', '--socket', socket, '--serve', '--resolv-conf', resolv, '--hostname', POD], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        sidecar.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
        sidecar.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
        await waitFor(async () => existsSync(socket) || sidecar?.exitCode !== null, { timeoutMs: 60_000, intervalMs: 50, what: 'the hook socket' });
        if (!existsSync(socket)) throw new Error(`sidecar exited: ${out}`);
        const status = readFileSync(`/proc/${sidecar.pid}/status`, 'utf8');
        expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe('107');
        expect(/^CapEff:\s+(\w+)/m.exec(status)?.[1]).toBe('0000000000000000');

        const client = new (loadHookClients().CallbacksV1alpha3)(`unix:${socket}`, grpc.credentials.createInsecure());
        let defined: OnDefineDomainResult;
        try {
          defined = await new Promise<OnDefineDomainResult>((resolve, reject) => {
            const method = (client as unknown as Record<string, (req: object, cb: (err: grpc.ServiceError | null, res?: OnDefineDomainResult) => void) => void>)['OnDefineDomain'];
            if (method === undefined) throw new Error('no OnDefineDomain');
            method.call(client, { domainXML: Buffer.from(DOMAIN), vmi: Buffer.from(JSON.stringify(vmi())) }, (err, res) => (err || !res ? reject(err ?? new Error('no result')) : resolve(res)));
          });
        } finally {
          client.close();
        }
        const ifaces = listDomainInterfaces(defined.domainXML.toString('utf8'));
        expect(ifaces).toHaveLength(1);
        expect(ifaces[0]).toMatchObject({ alias: 'ua-default', type: 'ethernet', targetDev: 'tap0', mac: SPEC_MAC });
        await waitFor(async () => /"msg":"serving"/.test(out), { timeoutMs: 30_000, intervalMs: 50, what: 'the sidecar to serve' });

        // The same process leases to a DHCP client on the bridge (a veth stands in for the tap qemu would hold).
        guest = await attachGuest(cni.pod, 'k6t-eth0', 'vguest', SPEC_MAC);
        const clientDir = join(dir, 'udhcpc');
        mkdirSync(clientDir, { recursive: true });
        const { lease, elapsedMs } = await udhcpc(guest, clientDir);
        process.stdout.write(`udhcpc lease from the binding-plugin sidecar: ${elapsedMs.toFixed(0)} ms\n`);
        expect(lease.addresses).toContain('10.0.2.2/24');
        expect(lease.routes).toContain('default via 10.0.2.1');
        expect(lease.resolvConf).toContain('nameserver 10.96.0.10');
        await waitFor(async () => out.includes('"reply":"DHCPACK"'), { timeoutMs: 30_000, intervalMs: 50, what: 'the ACK in the sidecar log' });
        expect(out).toContain(`"mac":"${SPEC_MAC}"`);

        sidecar.kill('SIGTERM');
        await waitFor(async () => sidecar?.exitCode !== null, { timeoutMs: 30_000, intervalMs: 50, what: 'the sidecar to stop' });
        expect(sidecar.exitCode, out).toBe(0);
        expect(existsSync(socket)).toBe(false);
        await deleteNetns(guest.name);
        guest = undefined;

        const del = await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(c), api1);
        expect(del.code, del.stdout).toBe(0);
        expect(await dumpNetns(cni.pod)).toEqual(before);
        expect(readdirSync(stateDir)).toEqual([]);
      } finally {
        if (sidecar && sidecar.exitCode === null) sidecar.kill('SIGKILL');
        if (guest) await deleteNetns(guest.name).catch(() => undefined);
        await api.stop();
      }
    });
  });

  it('bad input or an unusable API is a spec error naming the field, and nothing changes', { timeout: 120_000 }, async () => {
    await withPod('10.244.82.0/24', async (cni) => {
      const multus = vmi({ network: { name: 'default', multus: { networkName: 'blue' } } });
      const api: FakeApi = await startFakeApi(cni.node, dir, { [PATHS.pod]: launcherPod, [PATHS.vmi]: multus, '/api/v1/namespaces/default/pods/forbidden': { $status: 403 } }, TOKEN);
      try {
        const before = await dumpNetns(cni.pod);
        const kc = agentConfig({ kubeconfig: kubeconfig(dir, api.port) });
        const cases: [Record<string, string>, Record<string, unknown>, string, number, RegExp][] = [
          [env(cni, 'ADD'), conf(), kc, 7, /^args\.cni\.logicNetworkName: network "default" of VMI default\/vmi-a is not the pod network/],
          [env(cni, 'ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=forbidden' }), conf(), kc, 7, /^kubeconfig: the Kubernetes API refused to show pod default\/forbidden \(HTTP 403\)/],
          [env(cni, 'ADD'), conf(), agentConfig({ kubeconfig: kubeconfig(dir, api.port, 'wrong') }), 7, /^kubeconfig: .*HTTP 401/],
          [env(cni, 'ADD', { CNI_ARGS: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=gone' }), conf(), kc, 11, /^kubeconfig: cannot read pod default\/gone from the Kubernetes API: not found/],
          [env(cni, 'ADD'), conf(), agentConfig({ kubeconfig: kubeconfig(dir, 1) }), 11, /^kubeconfig: cannot read pod .*ECONNREFUSED/],
          [env(cni, 'ADD', { CNI_ARGS: '' }), conf(), kc, 4, /^CNI_ARGS: K8S_POD_NAMESPACE and K8S_POD_NAME are needed/],
          [env(cni, 'ADD'), conf(), agentConfig({ kubeconfig: join(dir, 'no-such-kubeconfig') }), 7, /^kubeconfig: .*cannot read it: ENOENT/],
          [env(cni, 'ADD'), conf({ binding: 'bridge' }), bare, 7, /^binding: the binding-plugin role plumbs masquerade only/],
          [env(cni, 'ADD'), conf(), agentConfig({ vmiDir: join(dir, 'no-such-vmi-dir') }), 7, /^vmiDir: no VMI file .*no-such-vmi-dir\/default\/virt-launcher-vmi-a-x7k2q\.yaml/],
          // The NAD may no longer name where the VMI or the credentials come from.
          [env(cni, 'ADD'), conf({ kubeconfig: join(dir, 'kubeconfig') }), bare, 7, /^kubeconfig: a network configuration cannot name host paths or credentials/],
        ];
        for (const [e, c, agent, code, msg] of cases) expectSpecError(await plugin(cni.node, e, JSON.stringify(c), agent), code, msg);
        expect(await dumpNetns(cni.pod)).toEqual(before);
        expect(readdirSync(stateDir)).toEqual([]);
      } finally {
        await api.stop();
      }
    });
  });

  it('without a VMI source every port is forwarded and the tap takes eth0 MAC; from vmiDir on a migration target pod the tap and the guard take the status MAC', { timeout: 120_000 }, async () => {
    await withPod('10.244.83.0/24', async (cni) => {
      const before = await dumpNetns(cni.pod);
      const eth0Mac = cni.attachments[0]?.mac;
      const plain = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(conf()), bare);
      expect(plain.code, plain.stdout).toBe(0);
      expect((plain.json as { interfaces: { name: string; mac?: string }[] }).interfaces[1]).toMatchObject({ name: 'tap0', mac: eth0Mac });
      const nft = (await cni.pod.execOk(['nft', 'list', 'ruleset'])).stdout;
      expect(nft).toMatch(/dnat to 10\.0\.2\.2/);
      expect(nft).not.toMatch(/dport 80/);
      expect((await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(conf()), bare)).code).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);

      const statusMac = '02:00:00:0a:0b:0d';
      const target = vmi({ mac: null, status: { migrationState: { targetPod: POD, sourcePod: 'virt-launcher-vmi-a-aaaaa' }, interfaces: [{ name: 'default', mac: statusMac, podInterfaceName: 'eth0' }] } });
      // A node without API access: the admin's vmiDir holds <namespace>/<pod name>.yaml.
      const vmiDir = join(dir, 'vmis');
      mkdirSync(join(vmiDir, 'default'), { recursive: true });
      writeFileSync(join(vmiDir, 'default', `${POD}.yaml`), JSON.stringify(target));
      const fromDir = agentConfig({ vmiDir });
      const c = conf();
      const add = await plugin(cni.node, env(cni, 'ADD'), JSON.stringify(c), fromDir);
      expect(add.code, add.stdout).toBe(0);
      expect((add.json as { interfaces: { name: string; mac?: string }[] }).interfaces[1]).toMatchObject({ name: 'tap0', mac: statusMac });
      expect((await cni.pod.execOk(['nft', 'list', 'ruleset'])).stdout).toMatch(new RegExp(`ether saddr != ${statusMac}`));
      expect((await plugin(cni.node, env(cni, 'CHECK'), JSON.stringify({ ...c, prevResult: add.json }), fromDir)).code).toBe(0);
      expect((await plugin(cni.node, env(cni, 'DEL'), JSON.stringify(c), fromDir)).code).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
    });
  });
});
