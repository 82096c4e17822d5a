// The koffi libvirt client against libvirt's in-process test:///default driver, and the pure version / capability / alias helpers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deviceRequirements, unsupportedDevices } from '../../domain/libvirt-capabilities.js';
import { AFFECT_CONFIG, AFFECT_LIVE, connectLibvirt, LibvirtError, type LibvirtClient } from '../../domain/libvirt/client.js';
import { decodeVersion, formatVersion, versionAtLeast } from '../../domain/libvirt-version.js';
import { aliasOfFragment, domainHasAlias } from '../../domain/libvirt/operations.js';
import { libvirtVersion, wrapInDomain } from '../helpers/libvirt-check.js';

const VHOSTUSER_PASST =
  '<interface type="vhostuser"><source dev="eth0"/><model type="virtio-non-transitional"/><alias name="ua-default"/>' +
  '<backend type="passt" logFile="/var/run/kubevirt/passt.log"/></interface>';
const USER_PASST = '<interface type="user"><model type="virtio"/><alias name="ua-red"/><backend type="passt"/></interface>';
const TAP = '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/><alias name="ua-default"/></interface>';

describe('libvirt versions', () => {
  it('decodes libvirt’s packed version numbers', () => {
    expect(decodeVersion(9_000_000)).toEqual({ major: 9, minor: 0, micro: 0 });
    expect(decodeVersion(11_001_002)).toEqual({ major: 11, minor: 1, micro: 2 });
    expect(formatVersion(decodeVersion(10_010_000))).toBe('10.10.0');
  });

  it('compares major.minor', () => {
    const v = { major: 11, minor: 1, micro: 0 };
    expect(versionAtLeast(v, 11, 1)).toBe(true);
    expect(versionAtLeast(v, 11, 2)).toBe(false);
    expect(versionAtLeast(v, 10, 99)).toBe(true);
    expect(versionAtLeast({ major: 9, minor: 0, micro: 0 }, 11, 1)).toBe(false);
  });
});

describe('capability check', () => {
  it('knows what vhost-user+passt and user+passt need; a tap needs nothing', () => {
    expect(deviceRequirements([VHOSTUSER_PASST, USER_PASST, TAP])).toEqual([
      { device: 'ua-default', needs: { major: 11, minor: 1 }, why: "vhost-user with <backend type='passt'/>" },
      { device: 'ua-red', needs: { major: 9, minor: 0 }, why: "<backend type='passt'/>" },
    ]);
  });

  it('refuses vhost-user+passt on libvirt 9.0 with one line naming the interface, accepts it on 11.1', () => {
    expect(unsupportedDevices([VHOSTUSER_PASST, TAP], { major: 9, minor: 0, micro: 0 })).toEqual([
      `interface "default": vhost-user with <backend type='passt'/> needs libvirt >= 11.1, the connected libvirt is 9.0.0`,
    ]);
    expect(unsupportedDevices([VHOSTUSER_PASST, TAP], { major: 11, minor: 1, micro: 0 })).toEqual([]);
    expect(unsupportedDevices([TAP], { major: 1, minor: 0, micro: 0 })).toEqual([]);
  });
});

describe('device aliases', () => {
  it('reads a fragment’s alias and finds it in a domain', () => {
    expect(aliasOfFragment(TAP)).toBe('ua-default');
    expect(aliasOfFragment('<interface type="ethernet"/>')).toBeNull();
    const domain = wrapInDomain({ interfaces: [TAP], hostdevs: [], memoryBacking: null });
    expect(domainHasAlias(domain, 'ua-default')).toBe(true);
    expect(domainHasAlias(domain, 'ua-blue')).toBe(false);
  });
});

describe('libvirt client on test:///default', () => {
  let client: LibvirtClient;
  beforeAll(async () => {
    client = await connectLibvirt('test:///default');
  });
  afterAll(async () => {
    await client.close();
  });

  it('reads the library version (same as virsh --version)', async () => {
    const v = await client.libVersion();
    const [major, minor, micro] = await libvirtVersion();
    expect(v).toEqual({ major, minor, micro });
  });

  it('defines a domain, reads its XML back, starts, destroys and undefines it', async () => {
    const xml = wrapInDomain({ interfaces: [TAP], hostdevs: [], memoryBacking: null });
    const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1] ?? '';
    const dom = await client.defineXml(xml);
    expect(dom.name).toBe(name);
    try {
      const back = await client.xmlDesc(dom);
      expect(back).toContain("<alias name='ua-default'/>");
      expect(domainHasAlias(back, 'ua-default')).toBe(true);
      expect(await client.isActive(dom)).toBe(false);
      await client.start(dom);
      expect(await client.isActive(dom)).toBe(true);
      await client.destroy(dom);
      const again = await client.lookup(name);
      expect(await client.isActive(again)).toBe(false);
    } finally {
      await client.undefine(dom);
    }
  });

  it('turns libvirt failures into one-line LibvirtErrors with libvirt’s own message', async () => {
    const lookup = client.lookup('no-such-domain-vna');
    await expect(lookup).rejects.toBeInstanceOf(LibvirtError);
    await expect(lookup).rejects.toThrow(/Domain not found/);
    await expect(client.defineXml('<domain type="qemu"><name>x</name></domain>')).rejects.toThrow(/libvirt define|memory|os/i);
    // The test driver has no device hotplug: the message proves the call reached libvirt with our flags.
    const dom = await client.lookup('test');
    await expect(client.attachDevice(dom, TAP, AFFECT_LIVE | AFFECT_CONFIG)).rejects.toThrow(/not supported by the connection driver: virDomainAttachDeviceFlags/);
    await expect(client.detachDevice(dom, TAP, AFFECT_LIVE)).rejects.toThrow(/virDomainDetachDeviceFlags/);
    await expect(client.updateDevice(dom, TAP, AFFECT_LIVE)).rejects.toThrow(/virDomainUpdateDeviceFlags/);
  });

  it('reports a connection failure with the URI and libvirt’s reason', async () => {
    const err = await connectLibvirt('qemu:///system?socket=/nonexistent/vna.sock').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LibvirtError);
    expect((err as LibvirtError).oneLine()).toMatch(/^libvirt connect: qemu:\/\/\/system\?socket=\/nonexistent\/vna\.sock: Failed to connect socket .*No such file or directory$/);
  });
});
