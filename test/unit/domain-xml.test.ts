// Table tests of the libvirt device XML renderers (exact strings, RNG schema, libvirt's parser) and of domain XML listing/merging.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainInterfaceSpec, HostdevSpec } from '../../domain/interface-spec.js';
import { parsePciAddress, renderHostdev, renderInterface, renderMemoryBacking } from '../../domain/interface-xml.js';
import { hostdevsByAlias, listDomainHostdevs, listDomainInterfaces, mergeDevices } from '../../domain/domain-xml.js';
import {
  closeLibvirt,
  defineWithLibvirt,
  libvirtAtLeast,
  type TestArch,
  validateWithSchema,
  wrapInDomain,
} from '../helpers/libvirt-check.js';

afterAll(async () => {
  await closeLibvirt();
});

const PCI_GUEST = { domain: '0x0000', bus: '0x02', slot: '0x01', function: '0x0' } as const;

interface InterfaceCase {
  readonly name: string;
  readonly spec: DomainInterfaceSpec;
  readonly arch?: TestArch;
  readonly expected: string;
}

const interfaceCases: readonly InterfaceCase[] = [
  {
    name: 'bridge/masquerade primary on tap0 (mac, mtu, rom off)',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      targetDev: 'tap0',
      model: 'virtio-non-transitional',
      mac: 'de:ad:00:00:be:af',
      mtu: 1480,
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="de:ad:00:00:be:af"/><mtu size="1480"/><alias name="ua-default"/><rom enabled="no"/></interface>',
  },
  {
    name: 'secondary bridge on tap16477688c0e with boot order (rom kept)',
    spec: {
      type: 'ethernet',
      alias: 'ua-blue',
      targetDev: 'tap16477688c0e',
      model: 'virtio-non-transitional',
      mac: '02:8f:35:00:00:07',
      mtu: 1450,
      bootOrder: 2,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap16477688c0e" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="02:8f:35:00:00:07"/><mtu size="1450"/><boot order="2"/><alias name="ua-blue"/></interface>',
  },
  {
    name: 'link state down',
    spec: {
      type: 'ethernet',
      alias: 'ua-red',
      targetDev: 'tap0',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:0a',
      mtu: 1500,
      linkState: 'down',
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="02:00:00:00:00:0a"/><mtu size="1500"/><link state="down"/><alias name="ua-red"/><rom enabled="no"/></interface>',
  },
  {
    name: 'multiqueue (driver vhost queues=4)',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      targetDev: 'tap0',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:0b',
      mtu: 1500,
      driver: { name: 'vhost', queues: 4 },
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="02:00:00:00:00:0b"/><mtu size="1500"/><alias name="ua-default"/><driver name="vhost" queues="4"/>' +
      '<rom enabled="no"/></interface>',
  },
  {
    name: 'launch security: driver iommu=on, rom off even with boot order',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      targetDev: 'tap0',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:0c',
      mtu: 1500,
      bootOrder: 1,
      driver: { name: 'vhost', iommu: 'on' },
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="02:00:00:00:00:0c"/><mtu size="1500"/><boot order="1"/><alias name="ua-default"/>' +
      '<driver name="vhost" iommu="on"/><rom enabled="no"/></interface>',
  },
  {
    name: 'guest PCI address and ACPI index',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      pciAddress: PCI_GUEST,
      targetDev: 'tap0',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:0d',
      mtu: 1500,
      romEnabled: false,
      acpiIndex: 150,
    },
    expected:
      '<interface type="ethernet"><address type="pci" domain="0x0000" bus="0x02" slot="0x01" function="0x0"/><source/>' +
      '<target dev="tap0" managed="no"/><model type="virtio-non-transitional"/><mac address="02:00:00:00:00:0d"/>' +
      '<mtu size="1500"/><alias name="ua-default"/><rom enabled="no"/><acpi index="150"/></interface>',
  },
  {
    name: 'e1000 model (no driver)',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      targetDev: 'tap0',
      model: 'e1000',
      mac: '02:00:00:00:00:0e',
      mtu: 1500,
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="e1000"/>' +
      '<mac address="02:00:00:00:00:0e"/><mtu size="1500"/><alias name="ua-default"/><rom enabled="no"/></interface>',
  },
  {
    name: 's390x virtio (no rom tuning)',
    arch: 's390x',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      targetDev: 'tap0',
      model: 'virtio',
      mac: '02:00:00:00:00:0f',
      mtu: 1500,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio"/>' +
      '<mac address="02:00:00:00:00:0f"/><mtu size="1500"/><alias name="ua-default"/></interface>',
  },
  {
    name: 'aarch64 virtio-non-transitional (rom off)',
    arch: 'aarch64',
    spec: {
      type: 'ethernet',
      alias: 'ua-default',
      targetDev: 'tap0',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:10',
      mtu: 1500,
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="02:00:00:00:00:10"/><mtu size="1500"/><alias name="ua-default"/><rom enabled="no"/></interface>',
  },
  {
    name: 'macvtap plugin: target is the pod interface',
    spec: {
      type: 'ethernet',
      alias: 'ua-macvtap',
      targetDev: 'pod7e0055a6880',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:11',
      mtu: 1500,
      romEnabled: false,
    },
    expected:
      '<interface type="ethernet"><source/><target dev="pod7e0055a6880" managed="no"/><model type="virtio-non-transitional"/>' +
      '<mac address="02:00:00:00:00:11"/><mtu size="1500"/><alias name="ua-macvtap"/><rom enabled="no"/></interface>',
  },
];

const ISTIO_PORTS = [15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090];
const PASST_LOG = '/var/run/kubevirt/passt.log';

const passtCases: readonly InterfaceCase[] = [
  {
    name: 'passt vhostuser, forward everything',
    spec: {
      type: 'vhostuser',
      alias: 'ua-default',
      sourceDev: 'eth0',
      model: 'virtio-non-transitional',
      backend: { type: 'passt', logFile: PASST_LOG },
      portForwards: [
        { proto: 'tcp', ranges: [] },
        { proto: 'udp', ranges: [] },
      ],
    },
    expected:
      '<interface type="vhostuser"><source dev="eth0"/><model type="virtio-non-transitional"/><alias name="ua-default"/>' +
      '<backend type="passt" logFile="/var/run/kubevirt/passt.log"/><portForward proto="tcp"/><portForward proto="udp"/></interface>',
  },
  {
    name: 'passt vhostuser with ports, mac, pci address, acpi and multiqueue',
    spec: {
      type: 'vhostuser',
      alias: 'ua-default',
      pciAddress: PCI_GUEST,
      sourceDev: 'eth0',
      model: 'virtio-non-transitional',
      mac: '02:00:00:00:00:20',
      driver: { name: 'vhost', queues: 2 },
      acpiIndex: 1,
      backend: { type: 'passt', logFile: PASST_LOG },
      portForwards: [
        { proto: 'tcp', ranges: [{ start: 80 }, { start: 8080 }, { start: 5000, end: 5010 }] },
        { proto: 'udp', ranges: [{ start: 53 }] },
      ],
    },
    expected:
      '<interface type="vhostuser"><address type="pci" domain="0x0000" bus="0x02" slot="0x01" function="0x0"/>' +
      '<source dev="eth0"/><model type="virtio-non-transitional"/><mac address="02:00:00:00:00:20"/><alias name="ua-default"/>' +
      '<driver name="vhost" queues="2"/><acpi index="1"/><backend type="passt" logFile="/var/run/kubevirt/passt.log"/>' +
      '<portForward proto="tcp"><range start="80"/><range start="8080"/><range start="5000" end="5010"/></portForward>' +
      '<portForward proto="udp"><range start="53"/></portForward></interface>',
  },
  {
    name: 'passt vhostuser under istio (tcp only, envoy ports excluded)',
    spec: {
      type: 'vhostuser',
      alias: 'ua-default',
      sourceDev: 'eth0',
      model: 'virtio-non-transitional',
      backend: { type: 'passt', logFile: PASST_LOG },
      portForwards: [{ proto: 'tcp', ranges: ISTIO_PORTS.map((start) => ({ start, exclude: true })) }],
    },
    expected:
      '<interface type="vhostuser"><source dev="eth0"/><model type="virtio-non-transitional"/><alias name="ua-default"/>' +
      '<backend type="passt" logFile="/var/run/kubevirt/passt.log"/><portForward proto="tcp">' +
      ISTIO_PORTS.map((p) => `<range start="${p}" exclude="yes"/>`).join('') +
      '</portForward></interface>',
  },
];

describe('renderInterface', () => {
  describe.each(interfaceCases)('$name', ({ spec, arch, expected }) => {
    const xml = renderInterface(spec);
    const domain = wrapInDomain({ interfaces: [xml], hostdevs: [], memoryBacking: null }, arch ? { arch } : undefined);

    it('renders the exact XML', () => {
      expect(xml).toBe(expected);
    });

    it('validates against libvirt RNG schema', async () => {
      const r = await validateWithSchema(domain);
      expect(r.output).toContain('validates');
      expect(r.ok).toBe(true);
    });

    it("is accepted by libvirt's parser, which keeps mac, target, alias and link state", async () => {
      const r = await defineWithLibvirt(domain);
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      const back = listDomainInterfaces(r.xml ?? '');
      expect(back).toHaveLength(1);
      expect(back[0]).toMatchObject({
        alias: spec.alias,
        type: spec.type,
        mac: spec.mac ?? null,
        targetDev: spec.targetDev ?? null,
        linkState: spec.linkState ?? null,
      });
      expect(r.xml).toContain(`<mac address='${spec.mac ?? ''}'/>`);
      expect(r.xml).toContain(`<target dev='${spec.targetDev ?? ''}' managed='no'/>`);
    });
  });
});

describe('renderInterface: passt (vhostuser + backend passt)', () => {
  // vhostuser with <source dev>, no socket, and <backend type='passt'> need libvirt >= 11.1 (schema and parser).
  let modern = false;
  beforeAll(async () => {
    modern = await libvirtAtLeast(11, 1);
  });

  describe.each(passtCases)('$name', ({ spec, expected }) => {
    const xml = renderInterface(spec);
    const memoryBacking = renderMemoryBacking();
    const domain = wrapInDomain({ interfaces: [xml], hostdevs: [], memoryBacking });

    it('renders the exact XML', () => {
      expect(xml).toBe(expected);
    });

    it('has no target, mtu, rom, boot or link', () => {
      expect(xml).not.toMatch(/<(target|mtu|rom|boot|link)\b/);
    });

    it('validates against the RNG schema (libvirt < 11.1: as type=user, which has the same backend/portForward grammar)', async () => {
      if (modern) {
        expect((await validateWithSchema(domain)).ok).toBe(true);
        return;
      }
      // libvirt 9.0's schema requires <source type='unix' path mode> for vhostuser.
      expect((await validateWithSchema(domain)).ok).toBe(false);
      const asUser = renderInterface({ ...spec, type: 'user' });
      const r = await validateWithSchema(wrapInDomain({ interfaces: [asUser], hostdevs: [], memoryBacking }));
      expect(r.output).toContain('validates');
      expect(r.ok).toBe(true);
    });

    it("libvirt's parser: accepted from 11.1, rejected by older releases", async () => {
      const r = await defineWithLibvirt(domain);
      if (modern) {
        expect(r.error).toBeUndefined();
        expect(listDomainInterfaces(r.xml ?? '')[0]?.alias).toBe(spec.alias);
      } else {
        expect(r.ok).toBe(false);
        expect(r.error).toMatch(/source|backend/);
      }
    });
  });
});

interface HostdevCase {
  readonly name: string;
  readonly spec: HostdevSpec;
  readonly expected: string;
}

const hostdevCases: readonly HostdevCase[] = [
  {
    name: 'SR-IOV VF with guest PCI address and boot order',
    spec: {
      alias: 'ua-sriov-sriov1',
      source: parsePciAddress('0000:81:01.0'),
      guestPciAddress: { domain: '0x0000', bus: '0x06', slot: '0x00', function: '0x0' },
      bootOrder: 3,
    },
    expected:
      '<hostdev mode="subsystem" type="pci" managed="no"><source><address domain="0x0000" bus="0x81" slot="0x01" function="0x0"/></source>' +
      '<boot order="3"/><address type="pci" domain="0x0000" bus="0x06" slot="0x00" function="0x0"/>' +
      '<alias name="ua-sriov-sriov1"/></hostdev>',
  },
  {
    name: 'SR-IOV VF without guest address or boot order',
    spec: { alias: 'ua-sriov-sriov2', source: parsePciAddress('0000:81:02.3') },
    expected:
      '<hostdev mode="subsystem" type="pci" managed="no"><source><address domain="0x0000" bus="0x81" slot="0x02" function="0x3"/></source>' +
      '<alias name="ua-sriov-sriov2"/></hostdev>',
  },
];

describe('renderHostdev', () => {
  describe.each(hostdevCases)('$name', ({ spec, expected }) => {
    const xml = renderHostdev(spec);
    const domain = wrapInDomain({ interfaces: [], hostdevs: [xml], memoryBacking: null });

    it('renders the exact XML', () => {
      expect(xml).toBe(expected);
    });

    it('validates against libvirt RNG schema', async () => {
      const r = await validateWithSchema(domain);
      expect(r.output).toContain('validates');
      expect(r.ok).toBe(true);
    });

    it("is accepted by libvirt's parser, which keeps source, guest address, boot order and alias", async () => {
      const r = await defineWithLibvirt(domain);
      expect(r.error).toBeUndefined();
      const back = hostdevsByAlias(r.xml ?? '').get(spec.alias);
      expect(back).toMatchObject({
        type: 'pci',
        source: spec.source,
        guestPciAddress: spec.guestPciAddress ?? null,
        bootOrder: spec.bootOrder ?? null,
      });
    });
  });

  it("why the host address has no type: KubeVirt's type='pci' there is parsed by libvirt but fails the 9.0 schema", async () => {
    const kubevirtStyle =
      "<hostdev mode='subsystem' type='pci' managed='no'><source><address type='pci' domain='0x0000' bus='0x81' slot='0x01' function='0x0'/></source><alias name='ua-sriov-x'/></hostdev>";
    const domain = wrapInDomain({ interfaces: [], hostdevs: [kubevirtStyle], memoryBacking: null });
    const defined = await defineWithLibvirt(domain);
    expect(defined.ok).toBe(true);
    // libvirt prints it back without type, i.e. exactly what renderHostdev emits.
    expect(defined.xml).toContain("<address domain='0x0000' bus='0x81' slot='0x01' function='0x0'/>");
    if (!(await libvirtAtLeast(11, 1))) expect((await validateWithSchema(domain)).ok).toBe(false);
  });
});

describe('renderMemoryBacking', () => {
  const xml = renderMemoryBacking();
  const domain = wrapInDomain({ interfaces: [], hostdevs: [], memoryBacking: xml });

  it('renders the exact XML', () => {
    expect(xml).toBe('<memoryBacking><source type="memfd"/><access mode="shared"/></memoryBacking>');
  });

  it('validates against libvirt RNG schema', async () => {
    expect((await validateWithSchema(domain)).ok).toBe(true);
  });

  it("is accepted by libvirt's parser", async () => {
    const r = await defineWithLibvirt(domain);
    expect(r.error).toBeUndefined();
    expect(r.xml).toContain("<source type='memfd'/>");
    expect(r.xml).toContain("<access mode='shared'/>");
  });
});

describe('all non-passt devices in one domain', () => {
  it('validates and is accepted by libvirt together', async () => {
    const interfaces = interfaceCases
      .filter((c) => c.arch === undefined)
      .map((c, i) => renderInterface({ ...c.spec, alias: `ua-net${i}`, targetDev: `tap${i}`, pciAddress: undefined, bootOrder: undefined }));
    const hostdevs = hostdevCases.map((c) => renderHostdev({ ...c.spec, bootOrder: undefined }));
    const domain = wrapInDomain({ interfaces, hostdevs, memoryBacking: renderMemoryBacking() });
    expect((await validateWithSchema(domain)).ok).toBe(true);
    const r = await defineWithLibvirt(domain);
    expect(r.error).toBeUndefined();
    expect(listDomainInterfaces(r.xml ?? '').map((x) => x.alias)).toEqual(interfaces.map((_, i) => `ua-net${i}`));
    expect(listDomainHostdevs(r.xml ?? '').map((x) => x.alias)).toEqual(['ua-sriov-sriov1', 'ua-sriov-sriov2']);
  });
});

describe('parsePciAddress', () => {
  it.each([
    ['0000:81:01.0', { domain: '0x0000', bus: '0x81', slot: '0x01', function: '0x0' }],
    ['0000:3B:1F.7', { domain: '0x0000', bus: '0x3b', slot: '0x1f', function: '0x7' }],
    ['0001:00:00.1', { domain: '0x0001', bus: '0x00', slot: '0x00', function: '0x1' }],
  ])('%s', (input, expected) => {
    expect(parsePciAddress(input)).toEqual(expected);
  });

  it.each(['', '81:01.0', '0000:81:01', '0000:81:01.8', '0000:81:20.0', '0000:8g:01.0', '0x0000:81:01.0'])('rejects %j', (input) => {
    expect(() => parsePciAddress(input)).toThrow(/invalid PCI address/);
  });
});

// A virt-launcher-like domain: qemu namespace, qemu:commandline, an existing memoryBacking, unknown elements.
const LAUNCHER_DOMAIN = `<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by virt-launcher -->
<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
  <name>default_vmi-fedora</name>
  <memory unit="KiB">131072</memory>
  <memoryBacking>
    <hugepages/>
  </memoryBacking>
  <vcpu>1</vcpu>
  <os>
    <type arch="x86_64" machine="q35">hvm</type>
  </os>
  <vna-extra enabled="yes">kept &amp; untouched</vna-extra>
  <devices>
    <interface type="ethernet">
      <source/>
      <target dev="tap0" managed="no"/>
      <model type="virtio-non-transitional"/>
      <mac address="02:00:00:11:22:33"/>
      <alias name="ua-default"/>
      <rom enabled="no"/>
    </interface>
    <hostdev mode="subsystem" type="pci" managed="no">
      <source><address domain="0x0000" bus="0x81" slot="0x01" function="0x0"/></source>
      <alias name="ua-sriov-old"/>
    </hostdev>
    <vna:gadget xmlns:vna="urn:example:vna" level="3">keep me</vna:gadget>
    <console type="pty"><target type="serial" port="0"/></console>
  </devices>
  <qemu:commandline>
    <qemu:env name="FOO" value="bar"/>
    <qemu:arg value="-nodefaults"/>
  </qemu:commandline>
</domain>
`;

const NEW_DEFAULT = renderInterface({
  type: 'ethernet',
  alias: 'ua-default',
  targetDev: 'tap0',
  model: 'virtio-non-transitional',
  mac: '02:00:00:aa:bb:cc',
  mtu: 1400,
  romEnabled: false,
});
const NEW_BLUE = renderInterface({
  type: 'ethernet',
  alias: 'ua-blue',
  targetDev: 'tap16477688c0e',
  model: 'virtio-non-transitional',
  mac: '02:00:00:dd:ee:ff',
  mtu: 1450,
  romEnabled: false,
});
const NEW_OLD_HOSTDEV = renderHostdev({ alias: 'ua-sriov-old', source: parsePciAddress('0000:81:05.0') });
const NEW_HOSTDEV = renderHostdev({ alias: 'ua-sriov-new', source: parsePciAddress('0000:81:06.1') });

describe('listDomainInterfaces / listDomainHostdevs', () => {
  it('lists devices of a domain with a qemu namespace and unknown elements', () => {
    const ifaces = listDomainInterfaces(LAUNCHER_DOMAIN);
    expect(ifaces).toEqual([
      {
        alias: 'ua-default',
        type: 'ethernet',
        targetDev: 'tap0',
        mac: '02:00:00:11:22:33',
        linkState: null,
        xml:
          '<interface type="ethernet"><source/><target dev="tap0" managed="no"/><model type="virtio-non-transitional"/>' +
          '<mac address="02:00:00:11:22:33"/><alias name="ua-default"/><rom enabled="no"/></interface>',
      },
    ]);
    const hostdevs = listDomainHostdevs(LAUNCHER_DOMAIN);
    expect(hostdevs).toHaveLength(1);
    expect(hostdevs[0]).toMatchObject({
      alias: 'ua-sriov-old',
      type: 'pci',
      source: { domain: '0x0000', bus: '0x81', slot: '0x01', function: '0x0' },
      guestPciAddress: null,
      bootOrder: null,
    });
    expect([...hostdevsByAlias(LAUNCHER_DOMAIN).keys()]).toEqual(['ua-sriov-old']);
  });

  it('returns [] when there is no <devices>', () => {
    expect(listDomainInterfaces('<domain type="kvm"><name>x</name></domain>')).toEqual([]);
    expect(listDomainHostdevs('<domain type="kvm"><name>x</name></domain>')).toEqual([]);
  });

  it.each([
    ['unclosed element', '<domain><devices></domain>'],
    ['mismatched close', '<domain><devices></device></domain>'],
    ['empty input', ''],
    ['plain text', 'domain'],
    ['wrong root', '<network><name>x</name></network>'],
    ['two roots', '<domain/><domain/>'],
    ['duplicate attribute', '<domain type="kvm" type="qemu"/>'],
    ['undefined entity', '<domain><name>&bogus;</name></domain>'],
    ['doctype', '<!DOCTYPE domain [<!ENTITY x "y">]><domain/>'],
  ])('throws on malformed input: %s', (_label, xml) => {
    expect(() => listDomainInterfaces(xml)).toThrow();
  });
});

describe('mergeDevices', () => {
  const merged = mergeDevices(LAUNCHER_DOMAIN, [NEW_DEFAULT, NEW_BLUE], [NEW_OLD_HOSTDEV, NEW_HOSTDEV], renderMemoryBacking());

  it('keeps the declaration, comment, qemu namespace, qemu:commandline and unknown elements', () => {
    expect(merged.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    expect(merged).toContain('<!-- generated by virt-launcher -->');
    expect(merged).toContain('<domain type="kvm" xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">');
    expect(merged).toContain(
      '<qemu:commandline>\n    <qemu:env name="FOO" value="bar"/>\n    <qemu:arg value="-nodefaults"/>\n  </qemu:commandline>',
    );
    expect(merged).toContain('<vna-extra enabled="yes">kept &amp; untouched</vna-extra>');
    expect(merged).toContain('<vna:gadget xmlns:vna="urn:example:vna" level="3">keep me</vna:gadget>');
    expect(merged).toContain('<console type="pty"><target type="serial" port="0"/></console>');
  });

  it('replaces same-alias devices in place and appends the others', () => {
    const ifaces = listDomainInterfaces(merged);
    expect(ifaces.map((i) => [i.alias, i.mac])).toEqual([
      ['ua-default', '02:00:00:aa:bb:cc'],
      ['ua-blue', '02:00:00:dd:ee:ff'],
    ]);
    expect(ifaces[0]?.xml).toBe(NEW_DEFAULT);
    expect(ifaces[1]?.xml).toBe(NEW_BLUE);
    const hostdevs = listDomainHostdevs(merged);
    expect(hostdevs.map((h) => [h.alias, h.source?.slot])).toEqual([
      ['ua-sriov-old', '0x05'],
      ['ua-sriov-new', '0x06'],
    ]);
    // The replaced interface keeps its position (before the hostdev); new devices go at the end of <devices>.
    expect(merged.indexOf('ua-default')).toBeLessThan(merged.indexOf('ua-sriov-old'));
    expect(merged.indexOf('vna:gadget')).toBeLessThan(merged.indexOf('ua-blue'));
  });

  it('merges memoryBacking child by child (existing hugepages survive, one element only)', () => {
    expect(merged.match(/<memoryBacking>/g)).toHaveLength(1);
    expect(merged).toContain('<memoryBacking>\n    <hugepages/>\n  <source type="memfd"/><access mode="shared"/></memoryBacking>');
  });

  it('is idempotent', () => {
    expect(mergeDevices(merged, [NEW_DEFAULT, NEW_BLUE], [NEW_OLD_HOSTDEV, NEW_HOSTDEV], renderMemoryBacking())).toBe(merged);
  });

  it("is accepted by libvirt's parser (unknown elements ignored) with the new devices", async () => {
    const r = await defineWithLibvirt(merged);
    expect(r.error).toBeUndefined();
    const back = listDomainInterfaces(r.xml ?? '');
    expect(back.map((i) => [i.alias, i.mac, i.targetDev])).toEqual([
      ['ua-default', '02:00:00:aa:bb:cc', 'tap0'],
      ['ua-blue', '02:00:00:dd:ee:ff', 'tap16477688c0e'],
    ]);
    expect([...hostdevsByAlias(r.xml ?? '').keys()]).toEqual(['ua-sriov-old', 'ua-sriov-new']);
    expect(r.xml).toContain("<source type='memfd'/>");
  });

  it('inserts a missing memoryBacking after <memory>, and leaves it alone when null', () => {
    const bare = '<domain type="kvm"><name>x</name><memory unit="KiB">131072</memory><vcpu>1</vcpu><devices/></domain>';
    expect(mergeDevices(bare, [], [], renderMemoryBacking())).toBe(
      '<domain type="kvm"><name>x</name><memory unit="KiB">131072</memory>' +
        '<memoryBacking><source type="memfd"/><access mode="shared"/></memoryBacking><vcpu>1</vcpu><devices/></domain>',
    );
    expect(mergeDevices(bare, [], [], null)).toBe(bare);
  });

  it('creates <devices> when missing', () => {
    const out = mergeDevices('<domain type="kvm"><name>x</name></domain>', [NEW_BLUE], [NEW_HOSTDEV], null);
    expect(out).toBe(`<domain type="kvm"><name>x</name><devices>${NEW_BLUE}${NEW_HOSTDEV}</devices></domain>`);
  });

  it('the last of several fragments with one alias wins', () => {
    const down = renderInterface({
      type: 'ethernet',
      alias: 'ua-blue',
      targetDev: 'tap16477688c0e',
      model: 'virtio-non-transitional',
      linkState: 'down',
    });
    const out = mergeDevices('<domain type="kvm"><name>x</name><devices/></domain>', [NEW_BLUE, down], [], null);
    expect(listDomainInterfaces(out).map((i) => [i.alias, i.linkState])).toEqual([['ua-blue', 'down']]);
  });

  it.each([
    ['malformed domain', '<domain><devices></domain>', [NEW_BLUE], []],
    ['hostdev passed as interface', '<domain><devices/></domain>', [NEW_HOSTDEV], []],
    ['malformed fragment', '<domain><devices/></domain>', ['<interface type="ethernet"><alias name="ua-x"></interface>'], []],
  ])('throws on %s', (_label, domainXml, interfaces, hostdevs) => {
    expect(() => mergeDevices(domainXml, interfaces, hostdevs, null)).toThrow();
  });
});
