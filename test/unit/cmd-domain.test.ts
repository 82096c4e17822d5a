// The compiled `domain` command offline (--pod, --libvirt-version): the merge keeps what it does not own, replaces by alias, and refuses what libvirt cannot run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { listDomainInterfaces } from '../../domain/domain-xml.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const CLI = join(ROOT, 'dist/agent/cli/cli.js');
const EX = (name: string): string => join(ROOT, 'examples', name);
const dir = mkdtempSync(join(tmpdir(), 'vna-domain-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function run(args: readonly string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BASE = `<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
  <name>vmi-fedora</name>
  <!-- virt-launcher's comment -->
  <memory unit="MiB">2048</memory>
  <os><type arch="x86_64" machine="q35">hvm</type></os>
  <devices>
    <interface type="ethernet"><source/><target dev="tapold" managed="no"/><model type="virtio"/><alias name="ua-default"/></interface>
    <disk type="file" device="disk"><source file="/var/run/kubevirt/disk.img"/><target dev="vda" bus="virtio"/></disk>
  </devices>
  <qemu:commandline><qemu:env name="FOO" value="bar"/></qemu:commandline>
</domain>
`;

describe('virt-net-agent domain', { timeout: 300_000 }, () => {
  it('replaces the ua-default interface and keeps the comment, the disk and the qemu namespace', () => {
    const r = run(['domain', '--vmi', EX('vmi-masquerade.yaml'), '--pod', EX('pod-calico.json'), '--in', file('base.xml', BASE)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const interfaces = listDomainInterfaces(r.stdout);
    expect(interfaces.map((i) => [i.alias, i.targetDev])).toEqual([['ua-default', 'tap0']]);
    expect(r.stdout).toContain('<!-- virt-launcher\'s comment -->');
    expect(r.stdout).toContain('<disk type="file" device="disk">');
    expect(r.stdout).toContain('xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"');
    expect(r.stdout).toContain('<qemu:commandline><qemu:env name="FOO" value="bar"/></qemu:commandline>');
  });

  it('refuses vhost-user + passt on libvirt 9.0 in one line naming the interface (exit 3); 11.1 is fine', () => {
    const vmi = file(
      'vmi-passt.yaml',
      'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n  name: p\n  namespace: default\nspec:\n  domain:\n    devices:\n      interfaces:\n      - name: default\n        passtBinding: {}\n  networks:\n  - name: default\n    pod: {}\n',
    );
    const config = file('kv.yaml', 'developerConfiguration:\n  featureGates: [PasstBinding]\n');
    const common = ['domain', '--vmi', vmi, '--kubevirt-config', config, '--pod', EX('pod-calico.json'), '--in', file('base2.xml', BASE)];
    const old = run([...common, '--libvirt-version', '9.0']);
    expect(old.status).toBe(3);
    expect(old.stdout).toBe('');
    expect(old.stderr).toBe(
      `virt-net-agent: libvirt: interface "default": vhost-user with <backend type='passt'/> needs libvirt >= 11.1, the connected libvirt is 9.0.0\n`,
    );
    const recent = run([...common, '--libvirt-version', '11.1']);
    expect(recent.stderr).toBe('');
    expect(recent.status).toBe(0);
    expect(recent.stdout).toContain('<interface type="vhostuser">');
  });

  it('--passt-form: user (libvirt 9.1-11.0), auto by version, stream onto the agent-managed passt socket', () => {
    const vmi = file(
      'vmi-passt-forms.yaml',
      'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n  name: p\n  namespace: default\nspec:\n  domain:\n    devices:\n      interfaces:\n      - name: default\n        passtBinding: {}\n        ports:\n        - port: 8080\n  networks:\n  - name: default\n    pod: {}\n',
    );
    const config = file('kv-forms.yaml', 'developerConfiguration:\n  featureGates: [PasstBinding]\n');
    const common = ['domain', '--vmi', vmi, '--kubevirt-config', config, '--pod', EX('pod-calico.json'), '--in', file('base3.xml', BASE)];
    const user = run([...common, '--libvirt-version', '10.0', '--passt-form', 'user']);
    expect(user.stderr).toBe('');
    expect(user.status).toBe(0);
    const [iface] = listDomainInterfaces(user.stdout);
    expect(iface?.type).toBe('user');
    expect(iface?.xml).toContain('<backend type="passt"');
    expect(iface?.xml).toContain('<portForward proto="tcp"><range start="8080"/></portForward>');
    expect(run([...common, '--libvirt-version', '10.0', '--passt-form', 'auto']).stdout).toBe(user.stdout);
    expect(listDomainInterfaces(run([...common, '--libvirt-version', '11.1', '--passt-form', 'auto']).stdout)[0]?.type).toBe('vhostuser');

    // Debian 12's libvirt 9.0.0 rejects the passt backend in any form: auto picks the agent-managed stream.
    const noSocket = run([...common, '--libvirt-version', '9.0', '--passt-form', 'auto']);
    expect(noSocket.status).toBe(3);
    expect(noSocket.stderr).toBe('virt-net-agent: libvirt: passt through -netdev stream needs the socket of "virt-net-agent passt": pass --passt-socket PATH\n');
    const stream = run([...common, '--libvirt-version', '9.0', '--passt-form', 'auto', '--passt-socket', '/var/run/kubevirt/passt/passt.socket']);
    expect(stream.status).toBe(0);
    expect(listDomainInterfaces(stream.stdout)).toEqual([]);
    expect(stream.stdout).toContain('<qemu:arg value="stream,id=ua-default,server=off,addr.type=unix,addr.path=/var/run/kubevirt/passt/passt.socket"/>');

    const tooOld = run([...common, '--libvirt-version', '8.0', '--passt-form', 'user']);
    expect(tooOld.status).toBe(3);
    expect(tooOld.stderr).toContain("<backend type='passt'/> needs libvirt >= 9.0, the connected libvirt is 8.0.0");
    expect(run([...common, '--passt-form', 'auto']).stderr).toBe(
      'virt-net-agent: --passt-form: auto needs the libvirt version: give --define URI or --libvirt-version X.Y\n',
    );
  });

  it('one-line usage errors', () => {
    const noIn = run(['domain', '--vmi', EX('vmi-masquerade.yaml'), '--pod', EX('pod-calico.json')]);
    expect(noIn.status).toBe(2);
    expect(noIn.stderr).toBe('virt-net-agent: --in: is required (see: virt-net-agent help domain)\n');
    const badVersion = run(['domain', '--vmi', EX('vmi-masquerade.yaml'), '--pod', EX('pod-calico.json'), '--in', file('b3.xml', BASE), '--libvirt-version', 'nine']);
    expect(badVersion.status).toBe(2);
    expect(badVersion.stderr).toBe('virt-net-agent: --libvirt-version: expected MAJOR.MINOR[.MICRO], got "nine"\n');
  });
});
