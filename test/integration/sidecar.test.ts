// The hook sidecar end to end: the compiled CLI (module tree and bundle) serves KubeVirt's hook gRPC API on a unix socket; a real @grpc/grpc-js client calls it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { listDomainInterfaces } from '../../domain/domain-xml.js';
import { loadHookClients, type InfoResult, type OnDefineDomainResult, type PreCloudInitIsoResult } from '../../agent/sidecar/protos.js';
import { closeLibvirt, defineWithLibvirt } from '../helpers/libvirt-check.js';
import { waitFor } from '../helpers/netns.js';

const VMI = parseYaml(readFileSync('examples/vmi-masquerade.yaml', 'utf8')) as Record<string, unknown>;

/** What virt-launcher's converter hands the hook: a disk, the pre-phase-2 interface, and elements we know nothing about. */
const DOMAIN = `<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
  <name>default_vmi-fedora</name>
  <memory unit="b">2147483648</memory>
  <metadata><kubevirt xmlns="http://kubevirt.io"><uid>5b1e2f3c</uid></kubevirt></metadata>
  <vcpu placement="static">1</vcpu>
  <os><type arch="x86_64" machine="q35">hvm</type></os>
  <devices>
    <disk type="file" device="disk"><driver name="qemu" type="raw"/><source file="/var/run/kubevirt/container-disks/disk_0.img"/><target bus="virtio" dev="vda"/></disk>
    <interface type="ethernet"><source></source><model type="virtio-non-transitional"></model><alias name="ua-default"></alias><rom enabled="no"></rom></interface>
    <!-- kept: a comment -->
  </devices>
  <qemu:commandline><qemu:arg value="-fw_cfg"/><qemu:arg value="name=opt/x,string=y"/></qemu:commandline>
</domain>`;

type Unary<Req, Res> = (request: Req, callback: (err: grpc.ServiceError | null, res?: Res) => void) => void;

function call<Req, Res>(client: grpc.Client, method: string, request: Req): Promise<Res> {
  const fn = (client as unknown as Record<string, Unary<Req, Res>>)[method];
  if (fn === undefined) throw new Error(`no method ${method}`);
  return new Promise((resolve, reject) => {
    fn.call(client, request, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

async function callError(client: grpc.Client, method: string, request: object): Promise<grpc.ServiceError> {
  try {
    await call(client, method, request);
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error(`${method} succeeded where an error was expected`);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

// Both programs: the module tree and the single-file bundle the image runs (it finds proto/ from dist/).
describe.each([['dist/agent/cli/cli.js'], ['dist/virt-net-agent.mjs']])('virt-net-agent sidecar (gRPC over a unix socket): %s', (program) => {
  const CLI = join(process.cwd(), program);
  let dir = '';
  let socket = '';
  let child: ChildProcess | undefined;
  let stderr = '';
  const clients = loadHookClients();
  let info: grpc.Client;
  let v3: grpc.Client;
  let v2: grpc.Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-sidecar-'));
    socket = join(dir, 'hooks', 'virt-net-agent.sock');
    // A stale socket from a dead sidecar: a process that bound it and exited leaves the file behind (Node's
    // server.close() would unlink it, so python does the bind).
    const bound = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', join(dir, 'stale.sock')]);
    if (bound.status !== 0) throw new Error(`cannot make a stale socket: ${bound.stderr.toString()}`);
    child = spawn(process.execPath, [CLI, 'sidecar', '--socket', socket, '--pod', 'examples/pod-calico.json', '--arch', 'amd64'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    await waitFor(async () => existsSync(socket) || child?.exitCode !== null, { timeoutMs: 150_000, intervalMs: 100, what: 'the hook socket' });
    if (!existsSync(socket)) throw new Error(`sidecar exited: ${stderr}`);
    const address = `unix:${socket}`;
    info = new clients.Info(address, grpc.credentials.createInsecure());
    v3 = new clients.CallbacksV1alpha3(address, grpc.credentials.createInsecure());
    v2 = new clients.CallbacksV1alpha2(address, grpc.credentials.createInsecure());
  }, 180_000);

  afterAll(async () => {
    for (const c of [info, v3, v2]) c?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited(child);
    }
    rmSync(dir, { recursive: true, force: true });
    await closeLibvirt();
  });

  const goodRequest = { domainXML: Buffer.from(DOMAIN), vmi: Buffer.from(JSON.stringify(VMI)) };

  it('Info: name, versions and the hook points', async () => {
    const res = await call<object, InfoResult>(info, 'Info', {});
    expect(res.name).toBe('virt-net-agent');
    expect(res.versions).toEqual(['v1alpha3', 'v1alpha2']);
    expect(res.hookPoints.map((p) => p.name).sort()).toEqual(['OnDefineDomain', 'PreCloudInitIso', 'Shutdown']);
  });

  it('OnDefineDomain merges the planned interface and keeps everything else', async () => {
    const res = await call<object, OnDefineDomainResult>(v3, 'OnDefineDomain', goodRequest);
    const xml = res.domainXML.toString('utf8');
    const ifaces = listDomainInterfaces(xml);
    expect(ifaces).toHaveLength(1);
    // Masquerade on Calico: the pre-phase-2 interface is replaced by the agent's tap0 interface (same alias).
    expect(ifaces[0]).toMatchObject({ alias: 'ua-default', type: 'ethernet', targetDev: 'tap0' });
    expect(ifaces[0]?.xml).toContain('<mtu size="1450"/>');
    for (const kept of [
      '<kubevirt xmlns="http://kubevirt.io"><uid>5b1e2f3c</uid></kubevirt>',
      '<source file="/var/run/kubevirt/container-disks/disk_0.img"/>',
      '<!-- kept: a comment -->',
      '<qemu:arg value="name=opt/x,string=y"/>',
      'xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"',
    ]) {
      expect(xml).toContain(kept);
    }
    // libvirt's own parser takes the result.
    const defined = await defineWithLibvirt(xml);
    expect(defined.error).toBeUndefined();
    expect(defined.xml).toContain("<target dev='tap0' managed='no'/>");
  });

  it('v1alpha2 OnDefineDomain gives the same domain', async () => {
    const a = await call<object, OnDefineDomainResult>(v3, 'OnDefineDomain', goodRequest);
    const b = await call<object, OnDefineDomainResult>(v2, 'OnDefineDomain', goodRequest);
    expect(b.domainXML.toString('utf8')).toBe(a.domainXML.toString('utf8'));
  });

  it('malformed domain XML → INVALID_ARGUMENT naming domainXML; the next good call still works', async () => {
    const err = await callError(v3, 'OnDefineDomain', { ...goodRequest, domainXML: Buffer.from('<domain><devices></domain>') });
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^domainXML: malformed XML \(<\/domain> closes <devices>\)/);
    expect(err.details).not.toContain('\n');
    const again = await call<object, OnDefineDomainResult>(v3, 'OnDefineDomain', goodRequest);
    expect(listDomainInterfaces(again.domainXML.toString('utf8'))[0]?.targetDev).toBe('tap0');
  });

  it('a VMI that is not JSON, not a VMI, invalid, or not satisfiable by the pod → one-line errors naming the field', async () => {
    const notJson = await callError(v3, 'OnDefineDomain', { ...goodRequest, vmi: Buffer.from('{"kind": ') });
    expect(notJson.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(notJson.details).toMatch(/^vmi: invalid JSON: /);

    const notVmi = await callError(v3, 'OnDefineDomain', { ...goodRequest, vmi: Buffer.from(JSON.stringify({ ...VMI, kind: 'Pod' })) });
    expect(notVmi.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(notVmi.details).toBe('vmi.kind: expected a VirtualMachineInstance, got Pod');

    // A network whose interface is missing: KubeVirt's webhook message, with the VMI field path.
    const spec = VMI['spec'] as Record<string, unknown>;
    const invalid = { ...VMI, spec: { ...spec, networks: [{ name: 'other', pod: {} }] } };
    const invalidErr = await callError(v3, 'OnDefineDomain', { ...goodRequest, vmi: Buffer.from(JSON.stringify(invalid)) });
    expect(invalidErr.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(invalidErr.details).toMatch(/^vmi\.spec\./);

    // Bridge binding asks for a pod interface the pod does not have (a Multus network with no pod link).
    const domain = spec['domain'] as Record<string, unknown>;
    const devices = domain['devices'] as Record<string, unknown>;
    const unplumbable = {
      ...VMI,
      spec: {
        ...spec,
        domain: { ...domain, devices: { ...devices, interfaces: [...(devices['interfaces'] as object[]), { name: 'blue', bridge: {} }] } },
        networks: [...(spec['networks'] as object[]), { name: 'blue', multus: { networkName: 'br-blue' } }],
      },
    };
    const podErr = await callError(v3, 'OnDefineDomain', { ...goodRequest, vmi: Buffer.from(JSON.stringify(unplumbable)) });
    expect(podErr.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(podErr.details).toMatch(/^pod\.interfaces.*missing/);
    for (const e of [notJson, notVmi, invalidErr, podErr]) expect(e.details).not.toContain('\n');
    await call<object, OnDefineDomainResult>(v3, 'OnDefineDomain', goodRequest);
  });

  it('PreCloudInitIso returns the cloud-init data unchanged', async () => {
    const data = Buffer.from('{"userData":"#cloud-config\\n"}');
    const res = await call<object, PreCloudInitIsoResult>(v3, 'PreCloudInitIso', { cloudInitData: data, vmi: goodRequest.vmi });
    expect(res.cloudInitData.equals(data)).toBe(true);
  });

  it('a second sidecar refuses the live socket', async () => {
    const second = spawn(process.execPath, [CLI, 'sidecar', '--socket', socket, '--pod', 'examples/pod-calico.json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    second.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const { code } = await exited(second);
    expect(code).toBe(2);
    expect(err.trim()).toBe(`virt-net-agent: --socket: ${socket} is in use by a running server`);
    expect(lstatSync(socket).isSocket()).toBe(true);
  }, 60_000);

  it('Shutdown → the process exits 0 and removes its socket', async () => {
    if (!child) throw new Error('no sidecar');
    await call<object, object>(v3, 'Shutdown', {});
    const { code } = await exited(child);
    expect(code).toBe(0);
    expect(existsSync(socket)).toBe(false);
  }, 30_000);

  it('a stale socket file is replaced at start; SIGTERM also exits 0 and cleans up', async () => {
    const stale = join(dir, 'stale.sock');
    expect(lstatSync(stale).isSocket()).toBe(true);
    const c = spawn(process.execPath, [CLI, 'sidecar', '--socket', stale, '--pod', 'examples/pod-calico.json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const client = new clients.Info(`unix:${stale}`, grpc.credentials.createInsecure());
    try {
      await waitFor(
        async () => {
          if (c.exitCode !== null) throw new Error(`exited: ${err}`);
          return (await call<object, InfoResult>(client, 'Info', {}).catch(() => null)) !== null;
        },
        { timeoutMs: 60_000, intervalMs: 200, what: 'the sidecar on the stale socket' },
      );
    } finally {
      client.close();
    }
    c.kill('SIGTERM');
    expect((await exited(c)).code).toBe(0);
    expect(existsSync(stale)).toBe(false);
  }, 180_000);
});
