// Role 1 (chained): the VMI-like input that makes the existing planner plumb one CNI attachment with a binding.
import { SPOOF_PROTECTION_ANNOTATION } from '../plan/spoof-guard.js';
import type { KubeVirtConfig } from '../plan/vmi-types.js';
import type { ChainedBinding, NetConf } from './config.js';

/** The VMI network name a chained attachment uses (the pod network: the tap is tap0, the bridge k6t-<ifname>). */
export const CHAINED_NETWORK = 'default';

/** KubeVirt's binding field for each chained binding. */
const BINDING_FIELD: Readonly<Record<ChainedBinding, string>> = { bridge: 'bridge', masquerade: 'masquerade', passt: 'passtBinding' };

/**
 * The VMI for one attachment: one interface on the pod network, named by status.interfaces to CNI_IFNAME, with the
 * capabilities mapped: mac → macAddress, the pod annotation → the spoof-protection annotation. portMappings do not
 * become masquerade `ports` (which would forward only those): a kubelet passes only the container ports that have a
 * hostPort, while Services reach every container port on the pod IP; so masquerade forwards all ports, KubeVirt's
 * behaviour for an interface without `ports` (hostPorts are the job of the portmap plugin in the node). runtimeUser 0: the state and the tap belong to root (the VM runtime, not virt-launcher).
 */
export function chainedVmi(conf: NetConf, binding: ChainedBinding, key: string, containerId: string, ifname: string): Record<string, unknown> {
  const iface: Record<string, unknown> = { name: CHAINED_NETWORK, [BINDING_FIELD[binding]]: {} };
  if (conf.mac !== null) iface['macAddress'] = conf.mac.toLowerCase();
  const annotations: Record<string, string> = {};
  const spoof = conf.podAnnotations[SPOOF_PROTECTION_ANNOTATION];
  if (spoof !== undefined) annotations[SPOOF_PROTECTION_ANNOTATION] = spoof;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: containerId.slice(0, 63), namespace: conf.name, uid: key, annotations },
    spec: { domain: { devices: { interfaces: [iface] } }, networks: [{ name: CHAINED_NETWORK, pod: {} }] },
    status: { runtimeUser: 0, interfaces: [{ name: CHAINED_NETWORK, podInterfaceName: ifname }] },
  };
}

/** The KubeVirt configuration the chained role plans with: passt needs its feature gate. */
export function chainedConfig(binding: ChainedBinding): KubeVirtConfig {
  return binding === 'passt' ? { developerConfiguration: { featureGates: ['PasstBinding'] } } : {};
}
