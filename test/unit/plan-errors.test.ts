// Plan failures: admission errors plan nothing; a pod that cannot satisfy the VMI throws a PlanError naming the field.
import { describe, expect, it } from 'vitest';
import { PlanError } from '../../agent/plan/errors.js';
import type { FieldError, Plan } from '../../agent/plan/plan-types.js';
import type { PodState } from '../../agent/plan/pod-state.js';
import type { KubeVirtConfig } from '../../agent/plan/vmi-types.js';
import { runCase, type PlanCase } from '../fixtures/plan-case.js';
import { calicoPod, flannelPod, multusPod, ovnkDualStackPod } from '../fixtures/pods.js';

const NOTHING: PlanCase['expected'] = { networks: {}, sysctls: {}, interfaces: [] };

interface AdmissionCase {
  readonly name: string;
  readonly vmi: string;
  readonly config?: KubeVirtConfig;
  readonly pod?: PodState;
  /** Errors that must be reported (others may accompany them). */
  readonly errors: readonly FieldError[];
}

const admissionCases: readonly AdmissionCase[] = [
  {
    name: 'masquerade on a Multus network',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: blue
        masquerade: {}
  networks:
  - name: blue
    multus:
      networkName: blue-net
`,
    errors: [{ field: 'spec.domain.devices.interfaces[0].name', message: 'Masquerade interface only implemented with pod network' }],
  },
  {
    name: "masquerade asking for the in-pod bridge's MAC (KubeMacPool's first address)",
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
        macAddress: "02:00:00:00:00:00"
  networks:
  - name: default
    pod: {}
`,
    errors: [
      {
        field: 'spec.domain.devices.interfaces[0].macAddress',
        message: 'The requested MAC address is reserved for the in-pod bridge. Please choose another one.',
      },
    ],
  },
  {
    name: 'bridge on the pod network when the cluster forbids it',
    config: { network: { permitBridgeInterfaceOnPodNetwork: false } },
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        bridge: {}
  networks:
  - name: default
    pod: {}
`,
    errors: [{ field: 'spec.domain.devices.interfaces[0].name', message: 'Bridge on pod network configuration is not enabled under kubevirt-config' }],
  },
  {
    name: 'passtBinding without the PasstBinding feature gate',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        passtBinding: {}
  networks:
  - name: default
    pod: {}
`,
    errors: [{ field: 'spec.domain.devices.interfaces[0].name', message: 'PasstBinding feature gate is not enabled' }],
  },
  {
    name: 'the discontinued core macvtap binding',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
      - name: mv
        macvtap: {}
  networks:
  - name: default
    pod: {}
  - name: mv
    multus:
      networkName: macvtapnet
`,
    errors: [{ field: 'spec.domain.devices.interfaces[1].macvtap', message: 'Macvtap network binding has been discontinued since v1.3' }],
  },
  {
    name: 'an interface without a network and a network without an interface',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
      - name: blu
        bridge: {}
  networks:
  - name: default
    pod: {}
  - name: blue
    multus:
      networkName: blue-net
`,
    errors: [
      { field: 'spec.networks[1].name', message: "spec.networks[1].name 'blue' not found." },
      { field: 'spec.domain.devices.interfaces[1].name', message: "spec.domain.devices.interfaces[1].name 'blu' not found." },
    ],
  },
  {
    name: 'lower-case protocol, port 0 and an SR-IOV link state',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
        ports:
        - name: http
          port: 80
          protocol: tcp
        - name: zero
          port: 0
      - name: sriov
        sriov: {}
        state: down
  networks:
  - name: default
    pod: {}
  - name: sriov
    multus:
      networkName: sriov-net
`,
    errors: [
      { field: 'spec.domain.devices.interfaces[0].ports[0].protocol', message: 'Unknown protocol, only TCP or UDP allowed' },
      { field: 'spec.domain.devices.interfaces[0].ports[1].port', message: 'Port field is mandatory.' },
      { field: 'spec.domain.devices.interfaces[1].state', message: '"sriov" interface\'s state "down" is not supported for SR-IOV NICs' },
    ],
  },
  {
    name: 'a boot order shared with a disk',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad, namespace: default}
spec:
  domain:
    devices:
      disks:
      - name: rootdisk
        bootOrder: 1
      interfaces:
      - name: default
        masquerade: {}
        bootOrder: 1
  networks:
  - name: default
    pod: {}
`,
    errors: [
      {
        field: 'spec.domain.devices.interfaces[0].bootOrder',
        message: 'Boot order for spec.domain.devices.interfaces[0].bootOrder already set for a different device.',
      },
    ],
  },
];

describe('admission errors: reported with KubeVirt messages, nothing else planned', () => {
  describe.each(admissionCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const plan: Plan = runCase({ name: c.name, vmi: c.vmi, pod: c.pod ?? calicoPod, ...(c.config ? { config: c.config } : {}), expected: NOTHING });

    it('reports the errors', () => {
      for (const error of c.errors) expect(plan.errors).toContainEqual(error);
    });

    it('plans nothing', () => {
      expect(plan.networks).toEqual([]);
      expect(plan.sysctls).toEqual({});
      expect(plan.nftables).toBeNull();
      expect(plan.domain).toEqual({ interfaces: [], hostdevs: [], memoryBacking: null, operations: [] });
      expect(plan.warnings).toEqual([]);
    });

    it('still names the VMI', () => {
      expect(plan.vmi).toMatchObject({ name: 'vmi-bad', namespace: 'default' });
    });
  });
});

interface PodFailureCase {
  readonly name: string;
  readonly vmi: string;
  readonly pod: PodState;
  readonly config?: KubeVirtConfig;
  readonly field: string;
  readonly message: RegExp;
}

/** A pod where CNI has not (yet) created eth0. */
const noEth0Pod: PodState = { ...calicoPod, interfaces: calicoPod.interfaces.filter((link) => link.name !== 'eth0') };

const podFailureCases: readonly PodFailureCase[] = [
  ...(['bridge', 'masquerade', 'passtBinding'] as const).map(
    (binding): PodFailureCase => ({
      name: `${binding} on a pod without eth0`,
      config: { developerConfiguration: { featureGates: ['PasstBinding'] } },
      vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-fedora, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
  networks:
  - name: default
    pod: {}
`,
      pod: noEth0Pod,
      field: 'pod.interfaces',
      message: /pod link \(eth0\) is missing/,
    }),
  ),
  {
    name: 'a Multus bridge secondary whose pod interface is missing',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-multi, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
      - name: green
        bridge: {}
  networks:
  - name: default
    pod: {}
  - name: green
    multus:
      networkName: green-net
`,
    pod: multusPod,
    field: 'pod.interfaces',
    message: /pod link \(podba4788b226a\) is missing.*"green".*spec\.networks\[1\]/,
  },
  {
    name: 'a macvtap plugin network whose macvtap device was not created',
    config: { network: { binding: { macvtap: { domainAttachmentType: 'tap' } } } },
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-macvtap, namespace: default}
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
`,
    pod: calicoPod,
    field: 'pod.interfaces',
    message: /pod link \(pod2fdbdaf7835\) is missing.*"macvtapnet"/,
  },
  {
    name: 'vmNetworkCIDR 10.0.2.0/31: no room for gateway and guest',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-fedora, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod:
      vmNetworkCIDR: 10.0.2.0/31
`,
    pod: calicoPod,
    field: 'spec.networks[0].pod.vmNetworkCIDR',
    message: /^VM CIDR subnet is too small, at least 2 host addresses are required: 10\.0\.2\.0\/31$/,
  },
  {
    name: 'vmIPv6NetworkCIDR /127 on a dual-stack pod',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-alpine, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod:
      vmIPv6NetworkCIDR: fd10:0:2::/127
`,
    pod: ovnkDualStackPod,
    field: 'spec.networks[0].pod.vmIPv6NetworkCIDR',
    message: /too small.*fd10:0:2::\/127/,
  },
  {
    name: 'vmNetworkCIDR that is not a CIDR',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-fedora, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod:
      vmNetworkCIDR: 10.0.2.0
`,
    pod: calicoPod,
    field: 'spec.networks[0].pod.vmNetworkCIDR',
    message: /failed to parse VM CIDR: 10\.0\.2\.0/,
  },
  {
    name: 'SR-IOV without PCI information (no network-info, no device-info)',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-sriov, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
      - name: sriov
        sriov: {}
  networks:
  - name: default
    pod: {}
  - name: sriov
    multus:
      networkName: sriov-net
`,
    pod: {
      ...calicoPod,
      networkStatus: [
        { name: 'k8s-pod-network', interface: 'eth0', ips: ['10.244.196.140'], default: true },
        { name: 'default/sriov-net', interface: 'podf767c48f0c6', mac: '6a:3e:10:8c:21:4f' },
      ],
    },
    field: 'pod.networkInfo',
    message: /no PCI address for SR-IOV network "sriov"/,
  },
  {
    name: 'bridge on a pod interface with an IPv4 but no IPv4 route',
    vmi: `
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: testvmi, namespace: default}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        bridge: {}
  networks:
  - name: default
    pod: {}
`,
    pod: { ...flannelPod, routes: [] },
    field: 'pod.routes',
    message: /^no gateway address found in routes for eth0$/,
  },
];

describe('pod states that cannot satisfy the VMI: a PlanError naming the field', () => {
  it.each(podFailureCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const run = (): Plan =>
      runCase({ name: c.name, vmi: c.vmi, pod: c.pod, ...(c.config ? { config: c.config } : {}), expected: NOTHING });
    expect(run).toThrow(PlanError);
    try {
      run();
    } catch (error) {
      const planError = error as PlanError;
      expect(planError.field).toBe(c.field);
      expect(planError.message).toMatch(c.message);
      // One line for the terminal: "<field>: <message>".
      expect(planError.oneLine()).toBe(`${c.field}: ${planError.message}`);
      expect(planError.oneLine()).not.toContain('\n');
    }
  });
});
