// Admission validation, defaulting and shape checks of VMIs as users write them, against KubeVirt's exact messages.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyInterfaceDefaults } from '../../agent/plan/defaults.js';
import { InputError } from '../../agent/plan/errors.js';
import type { FieldError, Phase } from '../../agent/plan/plan-types.js';
import { parseGoMac, validateVmi, verifyMigratable } from '../../agent/plan/validate.js';
import { parseKubeVirtConfig, parseVmiObject } from '../../agent/plan/vmi-shape.js';
import { readPlanInputs } from '../../agent/cli/plan-flags.js';
import type { KubeVirtConfig, Vmi } from '../../agent/plan/vmi-types.js';

// ---------------------------------------------------------------------------------------------------------------
// VMIs as users write them (the kubevirt.io examples: containerdisk + cloud-init, networks at the end).

interface Extra {
  readonly disks?: unknown[];
  readonly launchSecurity?: unknown;
  readonly annotations?: Record<string, string>;
  readonly resourceClaims?: unknown[];
  readonly autoattachPodInterface?: boolean;
}

function vmiObject(interfaces: unknown[] | undefined, networks: unknown[] | undefined, extra: Extra = {}): Record<string, unknown> {
  const devices: Record<string, unknown> = {
    disks: extra.disks ?? [
      { name: 'containerdisk', disk: { bus: 'virtio' } },
      { name: 'cloudinitdisk', disk: { bus: 'virtio' } },
    ],
  };
  if (interfaces !== undefined) devices['interfaces'] = interfaces;
  if (extra.autoattachPodInterface !== undefined) devices['autoattachPodInterface'] = extra.autoattachPodInterface;
  const domain: Record<string, unknown> = { devices, resources: { requests: { memory: '1024M' } } };
  if (extra.launchSecurity !== undefined) {
    domain['launchSecurity'] = extra.launchSecurity;
    domain['firmware'] = { bootloader: { efi: { secureBoot: false } } };
  }
  const spec: Record<string, unknown> = {
    domain,
    volumes: [
      { name: 'containerdisk', containerDisk: { image: 'quay.io/containerdisks/fedora:41' } },
      { name: 'cloudinitdisk', cloudInitNoCloud: { userData: '#cloud-config\npassword: fedora\nchpasswd: { expire: False }\n' } },
    ],
  };
  if (networks !== undefined) spec['networks'] = networks;
  if (extra.resourceClaims !== undefined) spec['resourceClaims'] = extra.resourceClaims;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'vmi-fedora', namespace: 'default', labels: { special: 'vmi-fedora' }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec,
  };
}

const vmi = (interfaces: unknown[] | undefined, networks: unknown[] | undefined, extra: Extra = {}): Vmi =>
  parseVmiObject(vmiObject(interfaces, networks, extra));

const podNet = { name: 'default', pod: {} };
const masq = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'default', masquerade: {}, ...extra });
const multusNet = (name: string, networkName: string, isDefault?: boolean): Record<string, unknown> => ({
  name,
  multus: isDefault === undefined ? { networkName } : { networkName, default: isDefault },
});

const fedoraMasquerade = (): Vmi =>
  vmi(
    [
      masq({
        ports: [
          { name: 'ssh', port: 22 },
          { name: 'http', port: 80, protocol: 'TCP' },
          { name: 'dns', port: 53, protocol: 'UDP' },
        ],
      }),
    ],
    [podNet],
  );

const defaultConfig: KubeVirtConfig = {};
const gates = (...featureGates: string[]): KubeVirtConfig => ({ developerConfiguration: { featureGates } });
const noBridgeOnPod: KubeVirtConfig = { network: { permitBridgeInterfaceOnPodNetwork: false } };

const I0 = 'spec.domain.devices.interfaces[0]';
const I1 = 'spec.domain.devices.interfaces[1]';

interface Case {
  readonly name: string;
  readonly vmi: () => Vmi;
  readonly config?: KubeVirtConfig;
  readonly phase?: Phase;
  readonly expected: FieldError[];
}

// ---------------------------------------------------------------------------------------------------------------

const validCases: Case[] = [
  { name: 'fedora with masquerade and forwarded ports', vmi: fedoraMasquerade, expected: [] },
  {
    name: 'multus: masquerade primary and two bridge secondaries',
    vmi: () =>
      vmi(
        [masq(), { name: 'red', bridge: {}, macAddress: 'DE-AD-00-00-BE-AF' }, { name: 'blue', bridge: {}, model: 'e1000e', bootOrder: 3 }],
        [podNet, multusNet('red', 'default/br-red'), multusNet('blue', 'bridge-blue')],
        { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' }, bootOrder: 1 }, { name: 'cloudinitdisk', disk: { bus: 'virtio' } }] },
      ),
    expected: [],
  },
  {
    name: 'SR-IOV secondary with a guest PCI address',
    vmi: () => vmi([masq(), { name: 'sriov-net', sriov: {}, pciAddress: '0000:81:11.1', macAddress: 'de:ad:00:00:be:ef' }], [podNet, multusNet('sriov-net', 'sriov/sriov-network')]),
    expected: [],
  },
  {
    name: 'passtBinding on the pod network with the gate',
    vmi: () => vmi([{ name: 'default', passtBinding: {}, ports: [{ port: 8080 }] }], [podNet]),
    config: gates('PasstBinding'),
    expected: [],
  },
  { name: 'bridge on the pod network (permitted by default)', vmi: () => vmi([{ name: 'default', bridge: {} }], [podNet]), expected: [] },
  {
    name: 'registered binding plugin',
    vmi: () => vmi([{ name: 'default', binding: { name: 'l2bridge' } }], [podNet]),
    config: { network: { binding: { l2bridge: { domainAttachmentType: 'managedTap' } } } },
    expected: [],
  },
  {
    name: 'a Multus default network alone',
    vmi: () => vmi([{ name: 'ovn', bridge: {} }], [multusNet('ovn', 'default/ovn-primary', true)]),
    expected: [],
  },
  {
    name: 'hot-unplug of a secondary bridge (state absent)',
    vmi: () => vmi([masq(), { name: 'red', bridge: {}, state: 'absent' }], [podNet, multusNet('red', 'br-red')]),
    phase: 'hotunplug',
    expected: [],
  },
  {
    name: 'link down on a bridge secondary, up on the primary',
    vmi: () => vmi([masq({ state: 'up' }), { name: 'red', bridge: {}, state: 'down' }], [podNet, multusNet('red', 'br-red')]),
    expected: [],
  },
  {
    name: 'masquerade portRanges with the gate (TCP and UDP may overlap)',
    vmi: () =>
      vmi(
        [masq({ portRanges: [{ protocol: 'TCP', start: 80, end: 200 }, { start: 1000, end: 1000 }, { protocol: 'UDP', start: 150, end: 300 }] })],
        [podNet],
      ),
    config: gates('PortRangesSpec'),
    expected: [],
  },
  {
    name: 'DHCP options: private options, TFTP, IPv4 and IPv4-mapped NTP servers',
    vmi: () =>
      vmi(
        [
          masq({
            dhcpOptions: {
              bootFileName: 'pxelinux.0',
              tftpServerName: 'tftp.example.com',
              ntpServers: ['10.0.0.1', '::ffff:10.0.0.2'],
              privateOptions: [{ option: 240, value: 'extra.options.kubevirt.io' }, { option: 254, value: 'x' }],
            },
          }),
        ],
        [podNet],
      ),
    expected: [],
  },
  {
    name: 'ports on a Multus bridge are not checked (KubeVirt checks them for the pod network only)',
    vmi: () => vmi([masq(), { name: 'red', bridge: {}, ports: [{ name: 'BAD', protocol: 'sctp' }] }], [podNet, multusNet('red', 'br-red')]),
    expected: [],
  },
  {
    name: 'port 65536 passes (KubeVirt checks `> 65536`)',
    vmi: () => vmi([masq({ ports: [{ port: 65536 }] })], [podNet]),
    expected: [],
  },
  {
    name: 'DRA SR-IOV network with the gate',
    vmi: () =>
      vmi([masq(), { name: 'dra-net', sriov: {} }], [podNet, { name: 'dra-net', resourceClaim: { claimName: 'sriov-claim', requestName: 'vf' } }], {
        resourceClaims: [{ name: 'sriov-claim', resourceClaimTemplateName: 'sriov-vf' }],
      }),
    config: gates('NetworkDevicesWithDRA'),
    expected: [],
  },
  {
    name: 'SEV without bootable NICs',
    vmi: () => vmi([masq()], [podNet], { launchSecurity: { sev: {} } }),
    config: gates('WorkloadEncryptionSEV'),
    expected: [],
  },
  { name: 'no networks at all (autoattach off)', vmi: () => vmi(undefined, undefined, { autoattachPodInterface: false }), expected: [] },
  {
    name: 'discontinued slirp is not re-checked on hotplug (creation-only rule)',
    vmi: () => vmi([masq(), { name: 'red', bridge: {} }], [podNet, multusNet('red', 'br-red')]),
    phase: 'hotplug',
    expected: [],
  },
];

const invalidCases: Case[] = [
  // --- network sources
  {
    name: 'two pod networks',
    vmi: () => vmi([masq(), { name: 'second', bridge: {} }], [podNet, { name: 'second', pod: {} }]),
    expected: [{ field: 'spec.interfaces', message: 'more than one interface is connected to a pod network in spec.interfaces' }],
  },
  {
    name: 'two Multus default networks',
    vmi: () => vmi([{ name: 'a', bridge: {} }, { name: 'b', bridge: {} }], [multusNet('a', 'net-a', true), multusNet('b', 'net-b', true)]),
    expected: [{ field: 'spec.networks', message: 'Multus CNI should only have one default network' }],
  },
  {
    name: 'pod network next to a Multus default',
    vmi: () => vmi([masq(), { name: 'ovn', bridge: {} }], [podNet, multusNet('ovn', 'ovn-primary', true)]),
    expected: [{ field: 'spec.networks', message: 'Pod network cannot be defined when Multus default network is defined' }],
  },
  {
    name: 'network without a source',
    vmi: () => vmi([{ name: 'testnet1', bridge: {} }], [{ name: 'testnet1' }]),
    expected: [{ field: 'spec.networks[0]', message: 'should have a network type' }],
  },
  {
    name: 'network with pod and multus',
    vmi: () => vmi([{ name: 'default', bridge: {} }], [{ name: 'default', pod: {}, multus: { networkName: 'default1' } }]),
    expected: [{ field: 'spec.networks[0]', message: 'should have only one network type' }],
  },
  {
    name: 'Multus networks without networkName (only the first is reported)',
    vmi: () => vmi([masq(), { name: 'a', bridge: {} }, { name: 'b', bridge: {} }], [podNet, { name: 'a', multus: {} }, { name: 'b', multus: { networkName: '' } }]),
    expected: [{ field: 'spec.networks[1]', message: 'CNI delegating plugin must have a networkName' }],
  },
  // --- names and pairing
  {
    name: 'duplicate network names',
    vmi: () => vmi([{ name: 'default', bridge: {} }], [podNet, multusNet('default', 'testport')]),
    expected: [{ field: 'spec.networks[1].name', message: 'Network with name "default" already exists, every network must have a unique name' }],
  },
  {
    name: 'network without an interface',
    vmi: () => vmi([masq()], [podNet, multusNet('red', 'br-red')]),
    expected: [{ field: 'spec.networks[1].name', message: "spec.networks[1].name 'red' not found." }],
  },
  {
    name: 'interface without a network',
    vmi: () => vmi([masq(), { name: 'red', bridge: {} }], [podNet]),
    expected: [{ field: `${I1}.name`, message: `${I1}.name 'red' not found.` }],
  },
  {
    name: 'two interfaces on one network',
    vmi: () => vmi([masq(), masq()], [podNet]),
    expected: [{ field: `${I1}.name`, message: 'Only one interface can be connected to one specific network' }],
  },
  {
    name: 'interface name with a dot',
    vmi: () => vmi([{ name: 'bad.name', masquerade: {} }], [{ name: 'bad.name', pod: {} }]),
    expected: [{ field: `${I0}.name`, message: 'Network interface name can only contain alphabetical characters, numbers, dashes (-) or underscores (_)' }],
  },
  // --- bindings
  {
    name: 'interface without a binding',
    vmi: () => vmi([{ name: 'default' }], [podNet]),
    expected: [{ field: I0, message: 'logical default interface must have exactly one binding method or binding plugin' }],
  },
  {
    name: 'interface with bridge and masquerade',
    vmi: () => vmi([{ name: 'default', bridge: {}, masquerade: {} }], [podNet]),
    expected: [{ field: I0, message: 'logical default interface must have exactly one binding method or binding plugin' }],
  },
  {
    name: 'interface with a binding method and a plugin',
    vmi: () => vmi([{ name: 'default', bridge: {}, binding: { name: 'l2bridge' } }], [podNet]),
    config: { network: { binding: { l2bridge: {} } } },
    expected: [{ field: I0, message: 'logical default interface must have exactly one binding method or binding plugin' }],
  },
  {
    name: 'discontinued slirp at creation',
    vmi: () => vmi([{ name: 'default', slirp: {} }], [podNet]),
    expected: [
      { field: `${I0}.slirp`, message: 'Slirp interface support has been discontinued since v1.3' },
      { field: I0, message: 'logical default interface must have exactly one binding method or binding plugin' },
    ],
  },
  {
    name: 'discontinued core passt and macvtap at creation',
    vmi: () => vmi([{ name: 'default', passt: {} }, { name: 'mvt', macvtap: {} }], [podNet, multusNet('mvt', 'macvtapnetwork')]),
    expected: [
      { field: `${I0}.passt`, message: 'Passt network binding has been discontinued since v1.3' },
      { field: `${I1}.macvtap`, message: 'Macvtap network binding has been discontinued since v1.3' },
      { field: I0, message: 'logical default interface must have exactly one binding method or binding plugin' },
      { field: I1, message: 'logical mvt interface must have exactly one binding method or binding plugin' },
    ],
  },
  {
    name: 'masquerade on a Multus network',
    vmi: () => vmi([{ name: 'red', masquerade: {} }], [multusNet('red', 'br-red')]),
    expected: [{ field: `${I0}.name`, message: 'Masquerade interface only implemented with pod network' }],
  },
  ...['02:00:00:00:00:00', '02-00-00-00-00-00', '02:00:00:00:00:00'.toUpperCase(), '0200.0000.0000'].map(
    (mac): Case => ({
      name: `masquerade with the reserved bridge MAC ${mac}`,
      vmi: () => vmi([masq({ macAddress: mac })], [podNet]),
      expected: [{ field: `${I0}.macAddress`, message: 'The requested MAC address is reserved for the in-pod bridge. Please choose another one.' }],
    }),
  ),
  {
    name: 'bridge on the pod network when the cluster forbids it',
    vmi: () => vmi([{ name: 'default', bridge: {} }], [podNet]),
    config: noBridgeOnPod,
    expected: [{ field: `${I0}.name`, message: 'Bridge on pod network configuration is not enabled under kubevirt-config' }],
  },
  {
    name: 'passtBinding without the gate',
    vmi: () => vmi([{ name: 'default', passtBinding: {} }], [podNet]),
    expected: [{ field: `${I0}.name`, message: 'PasstBinding feature gate is not enabled' }],
  },
  {
    name: 'passtBinding on a Multus network',
    vmi: () => vmi([masq(), { name: 'red', passtBinding: {} }], [podNet, multusNet('red', 'br-red')]),
    config: gates('PasstBinding'),
    expected: [{ field: `${I1}.name`, message: 'PasstBinding interface only implemented with pod network' }],
  },
  {
    name: 'binding plugin not registered in the KubeVirt CR',
    vmi: () => vmi([{ name: 'default', binding: { name: 'passt' } }], [podNet]),
    config: { network: { binding: { l2bridge: {} } } },
    expected: [{ field: `${I0}.binding.name`, message: "unable to find the network binding plugin 'passt' in Kubevirt configuration" }],
  },
  // --- state
  {
    name: 'unsupported state value (case-sensitive)',
    vmi: () => vmi([masq({ state: 'Down' })], [podNet]),
    expected: [{ field: `${I0}.state`, message: 'logical default interface state value is unsupported: Down' }],
  },
  {
    name: 'SR-IOV link down',
    vmi: () => vmi([masq(), { name: 'sriov-net', sriov: {}, state: 'down' }], [podNet, multusNet('sriov-net', 'sriov-network')]),
    expected: [{ field: `${I1}.state`, message: '"sriov-net" interface\'s state "down" is not supported for SR-IOV NICs' }],
  },
  {
    name: 'SR-IOV unplug',
    vmi: () => vmi([masq(), { name: 'sriov-net', sriov: {}, state: 'absent' }], [podNet, multusNet('sriov-net', 'sriov-network')]),
    phase: 'hotunplug',
    expected: [{ field: `${I1}.state`, message: '"sriov-net" interface\'s state "absent" is supported only for bridge binding' }],
  },
  {
    name: 'unplug of the pod network',
    vmi: () => vmi([{ name: 'default', bridge: {}, state: 'absent' }], [podNet]),
    phase: 'hotunplug',
    expected: [{ field: `${I0}.state`, message: '"default" interface\'s state "absent" is not supported on default networks' }],
  },
  // --- model, MAC, PCI
  {
    name: 'unsupported model',
    vmi: () => vmi([masq({ model: 'virtio-net-pci' })], [podNet]),
    expected: [{ field: `${I0}.model`, message: `interface ${I0}.name uses model virtio-net-pci that is not supported.` }],
  },
  ...['de:ad:00:00:be', 'de-ad-00-00-be', 'de:ad-00:00:be:af', 'de:ad:00:00:be:ag', 'dead.0000.beaf.'].map(
    (mac): Case => ({
      name: `malformed MAC ${mac}`,
      vmi: () => vmi([masq({ macAddress: mac })], [podNet]),
      expected: [{ field: `${I0}.macAddress`, message: `interface ${I0}.name has malformed MAC address (${mac}).` }],
    }),
  ),
  ...['de:ad:00:00:be:af:be:af', '00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01'].map(
    (mac): Case => ({
      name: `too long MAC ${mac}`,
      vmi: () => vmi([masq({ macAddress: mac })], [podNet]),
      expected: [{ field: `${I0}.macAddress`, message: `interface ${I0}.name has too long MAC address (${mac}).` }],
    }),
  ),
  ...['0000:80.10.1', '0000:80:80:1.0', '0000:80:11.15', '0000:81:01.10'].map(
    (pci): Case => ({
      name: `malformed PCI address ${pci}`,
      vmi: () => vmi([masq({ pciAddress: pci })], [podNet]),
      expected: [{ field: `${I0}.pciAddress`, message: `interface ${I0}.name has malformed PCI address (${pci}).` }],
    }),
  ),
  // --- ports
  {
    name: 'port without a number',
    vmi: () => vmi([masq({ ports: [{ name: 'http' }] })], [podNet]),
    expected: [{ field: `${I0}.ports[0].port`, message: 'Port field is mandatory.' }],
  },
  {
    name: 'port out of range',
    vmi: () => vmi([masq({ ports: [{ port: 80000 }, { port: -1 }] })], [podNet]),
    expected: [
      { field: `${I0}.ports[0].port`, message: 'Port field must be in range 0 < x < 65536.' },
      { field: `${I0}.ports[1].port`, message: 'Port field must be in range 0 < x < 65536.' },
    ],
  },
  {
    name: 'lower-case protocol (KubeVirt is case-sensitive)',
    vmi: () => vmi([masq({ ports: [{ port: 80, protocol: 'tcp' }] })], [podNet]),
    expected: [{ field: `${I0}.ports[0].protocol`, message: 'Unknown protocol, only TCP or UDP allowed' }],
  },
  {
    name: 'duplicate port names',
    vmi: () => vmi([masq({ ports: [{ name: 'testport', port: 80 }, { name: 'testport', protocol: 'UDP', port: 80 }] })], [podNet]),
    expected: [{ field: `${I0}.ports[1].name`, message: 'Duplicate name of the port: testport' }],
  },
  ...['Test', 'a--b', '-http', '8080', 'very-long-port-name'].map(
    (name): Case => ({
      name: `invalid IANA_SVC_NAME ${name}`,
      vmi: () => vmi([masq({ ports: [{ name, port: 80 }] })], [podNet]),
      expected: [{ field: `${I0}.ports[0].name`, message: `Invalid name of the port: ${name}` }],
    }),
  ),
  // --- portRanges
  {
    name: 'portRanges without the gate',
    vmi: () => vmi([masq({ portRanges: [{ start: 80, end: 90 }] })], [podNet]),
    expected: [{ field: `${I0}.name`, message: 'portRanges is specified on interface but the PortRangesSpec feature gate is not enabled' }],
  },
  {
    name: 'ports and portRanges together',
    vmi: () => vmi([masq({ ports: [{ port: 22 }], portRanges: [{ protocol: 'TCP', start: 80, end: 90 }] })], [podNet]),
    config: gates('PortRangesSpec'),
    expected: [{ field: `${I0}.name`, message: 'Cannot define both ports and portRanges on interface' }],
  },
  {
    name: 'portRanges on bridge',
    vmi: () => vmi([{ name: 'default', bridge: {}, portRanges: [{ protocol: 'TCP', start: 80, end: 90 }] }], [podNet]),
    config: gates('PortRangesSpec'),
    expected: [{ field: `${I0}.name`, message: 'portRanges are only supported on masquerade interfaces' }],
  },
  {
    name: 'eleven portRanges',
    vmi: () => vmi([masq({ portRanges: Array.from({ length: 11 }, (_, k) => ({ start: 1000 + k * 10, end: 1005 + k * 10 })) })], [podNet]),
    config: gates('PortRangesSpec'),
    expected: [{ field: `${I0}.portRanges`, message: 'No more than 10 portRanges are allowed' }],
  },
  {
    name: 'portRange bounds',
    vmi: () =>
      vmi(
        [masq({ portRanges: [{ protocol: 'TCP', start: 0, end: 100 }, { protocol: 'UDP', start: 80, end: 70000 }, { protocol: 'TCP', start: 600, end: 500 }] })],
        [podNet],
      ),
    config: gates('PortRangesSpec'),
    expected: [
      { field: `${I0}.portRanges[0].start`, message: 'Start must be a valid port number, 0 < x < 65536' },
      { field: `${I0}.portRanges[1].end`, message: 'End must be a valid port number, 0 < x < 65536' },
      { field: `${I0}.portRanges[2].start`, message: 'Start must be less than or equal to end' },
    ],
  },
  {
    name: 'portRange protocol SCTP',
    vmi: () => vmi([masq({ portRanges: [{ protocol: 'SCTP', start: 80, end: 90 }] })], [podNet]),
    config: gates('PortRangesSpec'),
    expected: [{ field: `${I0}.portRanges[0].protocol`, message: 'Unknown protocol, only TCP or UDP allowed' }],
  },
  {
    name: 'overlapping TCP portRanges (empty protocol is TCP)',
    vmi: () => vmi([masq({ portRanges: [{ protocol: 'TCP', start: 80, end: 200 }, { start: 150, end: 300 }] })], [podNet]),
    config: gates('PortRangesSpec'),
    expected: [{ field: `${I0}.portRanges`, message: 'TCP portRanges [80-200] and [150-300] overlap' }],
  },
  // --- DHCP options
  {
    name: 'private DHCP option below 224',
    vmi: () => vmi([masq({ dhcpOptions: { privateOptions: [{ option: 223, value: 'extra.options.kubevirt.io' }] } })], [podNet]),
    expected: [{ field: 'spec', message: 'provided DHCPPrivateOptions are out of range, must be in range 224 to 254' }],
  },
  {
    name: 'duplicate private DHCP options',
    vmi: () =>
      vmi([masq({ dhcpOptions: { privateOptions: [{ option: 240, value: 'a' }, { option: 240, value: 'b' }] } })], [podNet]),
    expected: [{ field: 'spec', message: 'Found Duplicates: you have provided duplicate DHCPPrivateOptions' }],
  },
  {
    name: 'NTP servers that are not IPv4',
    vmi: () => vmi([masq({ dhcpOptions: { ntpServers: ['::1', 'pool.ntp.org', '010.0.0.1', '192.168.1.1'] } })], [podNet]),
    expected: [0, 1, 2].map((j) => ({ field: `${I0}.dhcpOptions.ntpServers[${j}]`, message: 'NTP servers must be a list of valid IPv4 addresses.' })),
  },
  // --- boot order and launch security
  {
    name: 'interface boot order 0 (KubeVirt path quirk)',
    vmi: () => vmi([masq({ bootOrder: 0 })], [podNet]),
    expected: [{ field: 'spec[0].bootOrder', message: 'spec[0] must have a boot order > 0, if supplied' }],
  },
  {
    name: 'interface boot order taken by a disk',
    vmi: () =>
      vmi([masq({ bootOrder: 1 })], [podNet], {
        disks: [{ name: 'containerdisk', disk: { bus: 'virtio' }, bootOrder: 1 }, { name: 'cloudinitdisk', disk: { bus: 'virtio' } }],
      }),
    expected: [{ field: `${I0}.bootOrder`, message: `Boot order for ${I0}.bootOrder already set for a different device.` }],
  },
  {
    name: 'two interfaces with one boot order',
    vmi: () => vmi([masq({ bootOrder: 2 }), { name: 'red', bridge: {}, bootOrder: 2 }], [podNet, multusNet('red', 'br-red')]),
    expected: [{ field: `${I1}.bootOrder`, message: `Boot order for ${I1}.bootOrder already set for a different device.` }],
  },
  {
    name: 'SEV with a bootable NIC',
    vmi: () => vmi([masq({ bootOrder: 1 })], [podNet], { launchSecurity: { sev: {} } }),
    config: gates('WorkloadEncryptionSEV'),
    expected: [{ field: 'spec.launchSecurity', message: 'SEV does not work with bootable NICs: default' }],
  },
  {
    name: 'SNP with a bootable NIC',
    vmi: () => vmi([masq({ bootOrder: 1 })], [podNet], { launchSecurity: { snp: {} } }),
    config: gates('WorkloadEncryptionSEV'),
    expected: [{ field: 'spec.launchSecurity', message: 'SNP does not work with bootable NICs: default' }],
  },
  {
    name: 'TDX with a bootable NIC',
    vmi: () => vmi([masq({ bootOrder: 1 })], [podNet], { launchSecurity: { tdx: {} } }),
    config: gates('WorkloadEncryptionTDX'),
    expected: [{ field: 'spec.launchSecurity', message: 'TDX does not work with bootable NICs: default' }],
  },
  {
    name: 'SEV without its gate',
    vmi: () => vmi([masq({ bootOrder: 1 })], [podNet], { launchSecurity: { sev: {} } }),
    expected: [{ field: 'spec.launchSecurity', message: 'WorkloadEncryptionSEV feature gate is not enabled in kubevirt-config' }],
  },
  {
    name: 'two launch security types',
    vmi: () => vmi([masq()], [podNet], { launchSecurity: { sev: {}, tdx: {} } }),
    config: gates('WorkloadEncryptionSEV', 'WorkloadEncryptionTDX'),
    expected: [{ field: 'spec.launchSecurity', message: 'One and only one launchSecurity type can be set' }],
  },
  // --- DRA networks
  {
    name: 'DRA network without the gate',
    vmi: () => vmi([{ name: 'dra-net', sriov: {} }], [{ name: 'dra-net', resourceClaim: { claimName: 'c', requestName: 'r' } }], { resourceClaims: [{ name: 'c' }] }),
    expected: [{ field: 'spec.networks', message: 'NetworkDevicesWithDRA feature gate is not enabled in kubevirt-config' }],
  },
  {
    name: 'DRA network problems',
    vmi: () =>
      vmi(
        [{ name: 'a', bridge: {} }, { name: 'b', sriov: {} }, { name: 'c', sriov: {} }, { name: 'red', bridge: {} }],
        [
          { name: 'a', resourceClaim: { claimName: 'claim1', requestName: 'vf' } },
          { name: 'b', resourceClaim: { claimName: 'missing', requestName: '' } },
          { name: 'c', resourceClaim: { claimName: 'claim1', requestName: 'vf' } },
          multusNet('red', 'br-red'),
        ],
        { resourceClaims: [{ name: 'claim1' }] },
      ),
    config: gates('NetworkDevicesWithDRA'),
    expected: [
      { field: 'spec.domain.devices.interfaces', message: 'DRA network "a" requires an SR-IOV interface binding' },
      { field: 'spec.networks[1].resourceClaim.requestName', message: 'requestName is required for DRA network' },
      { field: 'spec.networks[2]', message: 'duplicate claimName/requestName combination "claim1/vf"' },
      { field: 'spec.networks', message: 'mixing Multus and DRA resourceClaim networks in the same VMI is not supported' },
    ],
  },
  {
    name: 'DRA network naming an undeclared claim',
    vmi: () => vmi([{ name: 'dra-net', sriov: {} }], [{ name: 'dra-net', resourceClaim: { claimName: 'nope', requestName: 'vf' } }]),
    config: gates('NetworkDevicesWithDRA'),
    expected: [{ field: 'spec.networks[0].resourceClaim.claimName', message: 'network references resourceClaim "nope" which is not defined in spec.resourceClaims' }],
  },
  // --- list size (CRD maxItems, enforced before the webhook)
  {
    name: '257 interfaces',
    vmi: () =>
      vmi(
        Array.from({ length: 257 }, (_, k) => ({ name: `net${k}`, bridge: {} })),
        Array.from({ length: 257 }, (_, k) => multusNet(`net${k}`, `br${k}`)),
      ),
    expected: [
      { field: 'spec.domain.devices.interfaces', message: 'Too many: 257: must have at most 256 items' },
      { field: 'spec.networks', message: 'Too many: 257: must have at most 256 items' },
    ],
  },
  // --- several rules at once, in KubeVirt's order
  {
    name: 'a VMI with many mistakes',
    vmi: () =>
      vmi(
        [
          { name: 'default', masquerade: {}, macAddress: '02:00:00:00:00:00', model: 'virtio-net', ports: [{ name: 'HTTP', port: 0, protocol: 'tcp' }] },
          { name: 'red', masquerade: {}, state: 'gone' },
        ],
        [podNet, multusNet('red', 'br-red'), multusNet('blue', 'br-blue')],
      ),
    expected: [
      { field: `${I1}.state`, message: 'logical red interface state value is unsupported: gone' },
      { field: `${I0}.macAddress`, message: 'The requested MAC address is reserved for the in-pod bridge. Please choose another one.' },
      { field: `${I1}.name`, message: 'Masquerade interface only implemented with pod network' },
      { field: 'spec.networks[2].name', message: "spec.networks[2].name 'blue' not found." },
      { field: `${I0}.model`, message: `interface ${I0}.name uses model virtio-net that is not supported.` },
      { field: `${I0}.ports[0].name`, message: 'Invalid name of the port: HTTP' },
      { field: `${I0}.ports[0].port`, message: 'Port field is mandatory.' },
      { field: `${I0}.ports[0].protocol`, message: 'Unknown protocol, only TCP or UDP allowed' },
    ],
  },
];

describe('validateVmi: valid VMIs', () => {
  it.each(validCases)('$name', (c) => {
    expect(validateVmi(c.vmi(), c.config ?? defaultConfig, { phase: c.phase ?? 'start' })).toEqual(c.expected);
  });
});

describe('validateVmi: invalid VMIs', () => {
  it.each(invalidCases)('$name', (c) => {
    expect(validateVmi(c.vmi(), c.config ?? defaultConfig, { phase: c.phase ?? 'start' })).toEqual(c.expected);
  });
});

describe('parseGoMac (Go net.ParseMAC)', () => {
  it.each([
    ['de:ad:00:00:be:af', [0xde, 0xad, 0, 0, 0xbe, 0xaf]],
    ['DE-AD-00-00-BE-AF', [0xde, 0xad, 0, 0, 0xbe, 0xaf]],
    ['dead.0000.beaf', [0xde, 0xad, 0, 0, 0xbe, 0xaf]],
    ['02:00:5e:10:00:00:00:01', [2, 0, 0x5e, 0x10, 0, 0, 0, 1]],
    ['de:ad:00:00:be:af:', null],
    ['de:ad:00:00:be:a', null],
    ['de:ad:00:00:b:eaf', null],
    ['dead.0000.be-af', null],
    ['', null],
  ] as const)('%s', (mac, bytes) => {
    expect(parseGoMac(mac)).toEqual(bytes);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('verifyMigratable', () => {
  const migrationMessage = 'cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network';
  const pluginConfig: KubeVirtConfig = {
    network: { binding: { 'l2bridge-mig': { domainAttachmentType: 'managedTap', migration: {} }, l2bridge: { domainAttachmentType: 'managedTap' } } },
  };
  it.each([
    ['masquerade', () => fedoraMasquerade(), null],
    ['passtBinding', () => vmi([{ name: 'default', passtBinding: {} }], [podNet]), null],
    ['bridge on the pod network', () => vmi([{ name: 'default', bridge: {} }], [podNet]), migrationMessage],
    [
      'bridge with the allow annotation',
      () => vmi([{ name: 'default', bridge: {} }], [podNet], { annotations: { 'kubevirt.io/allow-pod-bridge-network-live-migration': '' } }),
      null,
    ],
    ['plugin registered with migration', () => vmi([{ name: 'default', binding: { name: 'l2bridge-mig' } }], [podNet]), null],
    ['plugin without migration', () => vmi([{ name: 'default', binding: { name: 'l2bridge' } }], [podNet]), migrationMessage],
    ['secondary bridges only', () => vmi([{ name: 'red', bridge: {} }], [multusNet('red', 'br-red', true)]), null],
    ['no interfaces', () => vmi(undefined, undefined, { autoattachPodInterface: false }), null],
  ] as const)('%s', (_name, make, expected) => {
    expect(verifyMigratable(make(), pluginConfig)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('applyInterfaceDefaults', () => {
  it('adds the pod network with bridge binding by default, without touching the input', () => {
    const input = vmi(undefined, undefined);
    const before = structuredClone(input);
    const { vmi: out, errors } = applyInterfaceDefaults(input, {});
    expect(errors).toEqual([]);
    expect(out.spec.networks).toEqual([{ name: 'default', pod: {} }]);
    expect(out.spec.domain?.devices?.interfaces).toEqual([{ name: 'default', bridge: {} }]);
    expect(out.spec.domain?.devices?.disks).toEqual(input.spec.domain?.devices?.disks);
    expect(input).toEqual(before);
    expect(out).not.toBe(input);
    expect(validateVmi(out, {}, { phase: 'start' })).toEqual([]);
  });

  it('uses masquerade when the cluster default says so', () => {
    const { vmi: out, errors } = applyInterfaceDefaults(vmi([], []), { network: { defaultNetworkInterface: 'masquerade' } });
    expect(errors).toEqual([]);
    expect(out.spec.domain?.devices?.interfaces).toEqual([{ name: 'default', masquerade: {} }]);
    expect(out.spec.networks).toEqual([{ name: 'default', pod: {} }]);
  });

  it('refuses the bridge default when bridge on the pod network is not permitted', () => {
    const input = vmi(undefined, undefined);
    const { vmi: out, errors } = applyInterfaceDefaults(input, noBridgeOnPod);
    expect(errors).toEqual([{ field: 'spec.domain.devices.interfaces', message: 'bridge interface is not enabled in kubevirt-config' }]);
    expect(out).toEqual(input);
  });

  it.each([
    ['slirp', 'slirp interface is deprecated as of v1.3'],
    ['passt', 'passt interface is deprecated as of v1.3'],
  ])('rejects the discontinued %s default', (binding, message) => {
    const { errors } = applyInterfaceDefaults(vmi(undefined, undefined), { network: { defaultNetworkInterface: binding } });
    expect(errors).toEqual([{ field: 'spec.domain.devices.interfaces', message }]);
  });

  it('leaves the VMI alone when autoattachPodInterface is false', () => {
    const input = vmi(undefined, undefined, { autoattachPodInterface: false });
    const { vmi: out, errors } = applyInterfaceDefaults(input, {});
    expect(errors).toEqual([]);
    expect(out).toEqual(input);
    expect(out.spec.networks).toBeUndefined();
  });

  it('does nothing when the user named networks or interfaces', () => {
    const onlyNetworks = vmi(undefined, [multusNet('red', 'br-red')]);
    expect(applyInterfaceDefaults(onlyNetworks, {}).vmi).toEqual(onlyNetworks);
    const full = fedoraMasquerade();
    expect(applyInterfaceDefaults(full, {}).vmi).toEqual(full);
  });
});

// ---------------------------------------------------------------------------------------------------------------

function inputError(fn: () => unknown): { field: string; message: string; exitCode: number } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    const e = err as InputError;
    return { field: e.field, message: e.message, exitCode: e.exitCode };
  }
  throw new Error('expected an InputError');
}

describe('parseVmiObject', () => {
  it('accepts a VMI and keeps fields networking does not read', () => {
    const parsed = parseVmiObject(vmiObject([masq()], [podNet]));
    expect(parsed.kind).toBe('VirtualMachineInstance');
    expect((parsed.spec as { volumes?: unknown[] }).volumes).toHaveLength(2);
  });

  it('drops explicit nulls like Go does', () => {
    const parsed = parseVmiObject(vmiObject([{ name: 'default', masquerade: {}, bridge: null, macAddress: null }], [{ name: 'default', pod: {}, multus: null }]));
    expect(parsed.spec.domain?.devices?.interfaces).toEqual([{ name: 'default', masquerade: {} }]);
    expect(parsed.spec.networks).toEqual([{ name: 'default', pod: {} }]);
  });

  it('parses a VMI once: its own result comes back as is, an equal fresh object is checked again', () => {
    const document = vmiObject([masq()], [podNet]);
    const parsed = parseVmiObject(document);
    expect(parsed).not.toBe(document);
    expect(parseVmiObject(parsed)).toBe(parsed);
    const copy = JSON.parse(JSON.stringify(parsed)) as unknown;
    expect(parseVmiObject(copy)).not.toBe(copy);
    expect(parseVmiObject(copy)).toEqual(parsed);
  });

  it('readPlanInputs hands on the VMI it parsed, so computePlan and setup take it without a second pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vna-parse-once-'));
    try {
      const path = join(dir, 'vmi.json');
      writeFileSync(path, JSON.stringify(vmiObject([masq()], [podNet])));
      const inputs = await readPlanInputs({ vmi: path }, 'plan');
      expect(parseVmiObject(inputs.vmi)).toBe(inputs.vmi);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts a VMI without kind or apiVersion', () => {
    expect(parseVmiObject({ metadata: {}, spec: {} }).spec).toEqual({});
  });

  const withInterfaces = (interfaces: unknown[]): Record<string, unknown> => vmiObject(interfaces, [podNet]);
  // Networks given as a map, as someone might write in YAML by mistake.
  const networksAsMap = vmiObject([masq()], undefined);
  (networksAsMap['spec'] as Record<string, unknown>)['networks'] = { default: { pod: {} } };

  it.each([
    ['a Pod', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'virt-launcher-x' }, spec: { containers: [] } }, 'kind', 'expected a VirtualMachineInstance, got Pod'],
    ['a VirtualMachine', { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: {}, spec: {} }, 'kind', 'expected a VirtualMachineInstance, got VirtualMachine'],
    ['a list', [vmiObject([masq()], [podNet])], 'kind', 'expected a VirtualMachineInstance, got a list'],
    ['a List object', { apiVersion: 'v1', kind: 'List', items: [] }, 'kind', 'expected a VirtualMachineInstance, got List'],
    ['a string', 'vmi-fedora', 'kind', 'expected a VirtualMachineInstance, got "vmi-fedora"'],
    ['null', null, 'kind', 'expected a VirtualMachineInstance, got null'],
    ['a foreign apiVersion', { apiVersion: 'v1', kind: 'VirtualMachineInstance', metadata: {}, spec: {} }, 'apiVersion', 'expected kubevirt.io/v1, got "v1"'],
    ['no metadata', { kind: 'VirtualMachineInstance', spec: {} }, 'metadata', 'is required'],
    ['metadata as a string', { kind: 'VirtualMachineInstance', metadata: 'x', spec: {} }, 'metadata', 'must be an object, got "x"'],
    ['no spec', { kind: 'VirtualMachineInstance', metadata: {} }, 'spec', 'is required'],
    ['a non-string annotation', { metadata: { annotations: { a: 1 } }, spec: {} }, 'metadata.annotations.a', 'must be a string, got 1'],
    ['networks as a map', networksAsMap, 'spec.networks', 'must be a list, got an object'],
    [
      'a port as a string',
      withInterfaces([masq(), { name: 'red', bridge: {}, ports: [{ port: '80' }] }]),
      'spec.domain.devices.interfaces[1].ports[0].port',
      'must be an integer, got "80"',
    ],
    ['a fractional port', withInterfaces([masq({ ports: [{ port: 80.5 }] })]), 'spec.domain.devices.interfaces[0].ports[0].port', 'must be an integer, got 80.5'],
    ['a negative bootOrder', withInterfaces([masq({ bootOrder: -1 })]), 'spec.domain.devices.interfaces[0].bootOrder', 'must be a non-negative integer, got -1'],
    ['acpiIndex as a string', withInterfaces([masq({ acpiIndex: '1' })]), 'spec.domain.devices.interfaces[0].acpiIndex', 'must be an integer, got "1"'],
    ['a numeric MAC', withInterfaces([masq({ macAddress: 1234 })]), 'spec.domain.devices.interfaces[0].macAddress', 'must be a string, got 1234'],
    ['a numeric model', withInterfaces([masq({ model: 7 })]), 'spec.domain.devices.interfaces[0].model', 'must be a string, got 7'],
    ['a boolean pciAddress', withInterfaces([masq({ pciAddress: true })]), 'spec.domain.devices.interfaces[0].pciAddress', 'must be a string, got true'],
    ['a numeric state', withInterfaces([masq({ state: 0 })]), 'spec.domain.devices.interfaces[0].state', 'must be a string, got 0'],
    ['masquerade as true', withInterfaces([{ name: 'default', masquerade: true }]), 'spec.domain.devices.interfaces[0].masquerade', 'must be an object, got true'],
    ['an interface without a name', withInterfaces([{ masquerade: {} }]), 'spec.domain.devices.interfaces[0].name', 'is required'],
    ['an interface as a string', withInterfaces(['default']), 'spec.domain.devices.interfaces[0]', 'must be an object, got "default"'],
    ['interfaces as an object', withInterfaces({ default: {} } as unknown as unknown[]), 'spec.domain.devices.interfaces', 'must be a list, got an object'],
    ['a network without a name', vmiObject([masq()], [{ pod: {} }]), 'spec.networks[0].name', 'is required'],
    ['a numeric network name', vmiObject([masq()], [{ name: 5, pod: {} }]), 'spec.networks[0].name', 'must be a string, got 5'],
    ['multus.default as a string', vmiObject([masq()], [{ name: 'a', multus: { networkName: 'a', default: 'true' } }]), 'spec.networks[0].multus.default', 'must be a boolean, got "true"'],
    ['an NTP server as a number', withInterfaces([masq({ dhcpOptions: { ntpServers: [1] } })]), 'spec.domain.devices.interfaces[0].dhcpOptions.ntpServers[0]', 'must be a string, got 1'],
    [
      'a private option code as a string',
      withInterfaces([masq({ dhcpOptions: { privateOptions: [{ option: '240', value: 'x' }] } })]),
      'spec.domain.devices.interfaces[0].dhcpOptions.privateOptions[0].option',
      'must be an integer, got "240"',
    ],
    ['a port range end as a string', withInterfaces([masq({ portRanges: [{ start: 1, end: '2' }] })]), 'spec.domain.devices.interfaces[0].portRanges[0].end', 'must be an integer, got "2"'],
  ] as const)('rejects %s', (_name, value, field, message) => {
    expect(inputError(() => parseVmiObject(value))).toEqual({ field, message, exitCode: 2 });
  });
});

describe('parseKubeVirtConfig', () => {
  const configuration = {
    developerConfiguration: { featureGates: ['PasstBinding', 'PortRangesSpec'] },
    network: {
      defaultNetworkInterface: 'masquerade',
      permitBridgeInterfaceOnPodNetwork: false,
      binding: {
        passt: {
          sidecarImage: 'quay.io/kubevirt/network-passt-binding:v1.7.0',
          networkAttachmentDefinition: 'default/netbindingpasst',
          migration: {},
          computeResourceOverhead: { requests: { memory: '250Mi' } },
        },
        l2bridge: { domainAttachmentType: 'managedTap', migration: { method: 'link-refresh' } },
      },
    },
  };

  it('accepts the bare spec.configuration', () => {
    expect(parseKubeVirtConfig(configuration)).toEqual(configuration);
  });

  it('takes spec.configuration from a whole KubeVirt CR', () => {
    const cr = { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration } };
    expect(parseKubeVirtConfig(cr)).toEqual(configuration);
    expect(parseKubeVirtConfig({ apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: {}, spec: {} })).toEqual({});
  });

  it.each([
    ['a ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', data: {} }, 'kind', 'expected a KubeVirt CR or its spec.configuration, got ConfigMap'],
    ['a list', [], 'configuration', 'expected a KubeVirt CR or its spec.configuration, got a list'],
    [
      'featureGates as a string',
      { kind: 'KubeVirt', spec: { configuration: { developerConfiguration: { featureGates: 'PasstBinding' } } } },
      'spec.configuration.developerConfiguration.featureGates',
      'must be a list, got "PasstBinding"',
    ],
    ['a numeric feature gate', { developerConfiguration: { featureGates: [1] } }, 'developerConfiguration.featureGates[0]', 'must be a string, got 1'],
    ['permitBridge as a string', { network: { permitBridgeInterfaceOnPodNetwork: 'false' } }, 'network.permitBridgeInterfaceOnPodNetwork', 'must be a boolean, got "false"'],
    ['an unknown default binding', { network: { defaultNetworkInterface: 'sriov' } }, 'network.defaultNetworkInterface', 'invalid default-network-interface in config: sriov'],
    [
      'an unknown default binding in a CR',
      { kind: 'KubeVirt', spec: { configuration: { network: { defaultNetworkInterface: 'passtBinding' } } } },
      'spec.configuration.network.defaultNetworkInterface',
      'invalid default-network-interface in config: passtBinding',
    ],
    ['a plugin as a string', { network: { binding: { passt: 'image' } } }, 'network.binding.passt', 'must be an object, got "image"'],
    ['migration as true', { network: { binding: { passt: { migration: true } } } }, 'network.binding.passt.migration', 'must be an object, got true'],
  ] as const)('rejects %s', (_name, value, field, message) => {
    expect(inputError(() => parseKubeVirtConfig(value))).toEqual({ field, message, exitCode: 2 });
  });
});
