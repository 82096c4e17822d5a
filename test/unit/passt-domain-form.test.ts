// Agent-managed passt's domain form (libvirt < 11.1): the planned passt interface becomes <qemu:commandline> -netdev stream args; libvirt's schema and parser accept it.
import { afterAll, describe, expect, it } from 'vitest';
import { listDomainInterfaces, mergeDevices } from '../../domain/domain-xml.js';
import { attachPasstByStream, passtAttachmentFor, streamArgs, toUserPasst } from '../../agent/passt/domain-form.js';
import { passtSriovPluginCases } from '../fixtures/cases-passt-sriov-plugins.js';
import { runCase } from '../fixtures/plan-case.js';
import { closeLibvirt, defineWithLibvirt, validateWithSchema, wrapInDomain } from '../helpers/libvirt-check.js';

const SOCKET = '/var/run/kubevirt/passt/passt.socket';
const passtCase = passtSriovPluginCases.find((c) => c.vmi.includes('passtBinding'));
if (passtCase === undefined) throw new Error('no passt plan case');
const plan = runCase(passtCase);

afterAll(closeLibvirt);

describe('passtAttachmentFor', () => {
  it.each([
    [8, 0, 'agent-stream'],
    [9, 0, 'agent-stream'],
    [9, 1, 'user'],
    [11, 0, 'user'],
    [11, 1, 'vhostuser'],
    [12, 0, 'vhostuser'],
  ] as const)('libvirt %i.%i → %s', (major, minor, expected) => {
    expect(passtAttachmentFor({ major, minor })).toBe(expected);
  });
});

describe('attachPasstByStream', () => {
  const domain = mergeDevices(
    wrapInDomain({ interfaces: [], hostdevs: [], memoryBacking: null }),
    plan.domain.interfaces,
    plan.domain.hostdevs,
    plan.domain.memoryBacking,
  );
  const rewritten = attachPasstByStream(domain, SOCKET);

  it('removes the vhost-user passt interface and adds -netdev stream + -device with the alias and MAC', () => {
    expect(listDomainInterfaces(domain).map((i) => i.type)).toEqual(['vhostuser']);
    expect(listDomainInterfaces(rewritten)).toEqual([]);
    expect(rewritten).toContain(' xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0"');
    const args = [...rewritten.matchAll(/<qemu:arg value="([^"]*)"\/>/g)].map((m) => m[1]);
    expect(args).toEqual([
      '-netdev',
      `stream,id=ua-default,server=off,addr.type=unix,addr.path=${SOCKET}`,
      '-device',
      'virtio-net-pci-non-transitional,netdev=ua-default,id=ua-default-nic',
    ]);
  });

  it('appends to an existing <qemu:commandline> and keeps the rest of the domain', () => {
    const withCmdline = domain
      .replace('<domain type="qemu">', '<domain type="qemu" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">')
      .replace('</domain>', '<qemu:commandline><qemu:arg value="-fw_cfg"/><qemu:arg value="name=opt/x,string=y"/></qemu:commandline></domain>');
    const out = attachPasstByStream(withCmdline, SOCKET);
    expect(out.match(/<qemu:commandline>/g)).toHaveLength(1);
    expect(out).toMatch(/<qemu:arg value="name=opt\/x,string=y"\/><qemu:arg value="-netdev"\/>/);
    expect(out).toContain('<memoryBacking>');
  });

  it('a MAC in the interface goes to -device', () => {
    const args = streamArgs('<interface type="vhostuser"><model type="virtio"/><mac address="02:00:00:00:00:01"/><alias name="ua-default"/><backend type="passt"/></interface>', SOCKET);
    expect(args[3]).toBe('virtio-net-pci,netdev=ua-default,id=ua-default-nic,mac=02:00:00:00:00:01');
  });

  it('a domain without passt is returned unchanged', () => {
    const plain = wrapInDomain({ interfaces: [], hostdevs: [], memoryBacking: null });
    expect(attachPasstByStream(plain, SOCKET)).toBe(plain);
  });

  it("libvirt's schema and its parser accept the result", async () => {
    const schema = await validateWithSchema(rewritten);
    expect(schema.output).not.toMatch(/fails to validate/);
    expect(schema.ok).toBe(true);
    const defined = await defineWithLibvirt(rewritten);
    expect(defined.error).toBeUndefined();
    expect(defined.ok).toBe(true);
  });
});

describe('toUserPasst (libvirt 9.1-11.0)', () => {
  const domain = mergeDevices(
    wrapInDomain({ interfaces: [], hostdevs: [], memoryBacking: null }),
    plan.domain.interfaces,
    plan.domain.hostdevs,
    plan.domain.memoryBacking,
  );
  const user = toUserPasst(domain);

  it("turns the vhost-user passt interface into type='user', keeping backend, MAC, alias and port forwards", () => {
    const [before] = listDomainInterfaces(domain);
    const [after] = listDomainInterfaces(user);
    expect(after?.type).toBe('user');
    expect(after?.alias).toBe(before?.alias);
    expect(after?.mac).toBe(before?.mac);
    for (const kept of ['<backend type="passt"', '<portForward', '<model type=']) expect(after?.xml.includes(kept)).toBe(before?.xml.includes(kept));
    const withoutPasst = wrapInDomain({ interfaces: [], hostdevs: [], memoryBacking: null });
    expect(toUserPasst(withoutPasst)).toBe(withoutPasst);
  });

  it("libvirt's schema accepts it; Debian's libvirt 9.0.0 parser rejects the passt backend (libvirt issue 462)", async () => {
    const schema = await validateWithSchema(user);
    expect(schema.ok, schema.output).toBe(true);
    const defined = await defineWithLibvirt(user);
    if (!defined.ok) expect(defined.error).toContain("Invalid value for attribute 'type' in element 'backend': 'passt'");
  });
});
