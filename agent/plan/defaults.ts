// KubeVirt's mutating-webhook defaulting of the pod network (pkg/network/vmispec/defaults.go), without mutating input.
import type { FieldError } from './plan-types.js';
import type { KubeVirtConfig, Vmi, VmiInterface, VmiNetwork } from './vmi-types.js';

const DEFAULT_NAME = 'default';
/** KubeVirt has no field for these errors (the webhook returns a bare error); this is the list being defaulted. */
const INTERFACES_FIELD = 'spec.domain.devices.interfaces';

function withDefaults(vmi: Vmi, iface: VmiInterface, network: VmiNetwork): Vmi {
  const spec = vmi.spec;
  const domain = spec.domain ?? {};
  return {
    ...vmi,
    spec: {
      ...spec,
      domain: { ...domain, devices: { ...domain.devices, interfaces: [iface] } },
      networks: [network],
    },
  };
}

/**
 * When the VMI names neither networks nor interfaces (and autoattachPodInterface is not false), attach the pod
 * network with the cluster's default binding: bridge unless `network.defaultNetworkInterface` says otherwise.
 * Returns a new VMI; the input is never modified.
 */
export function applyInterfaceDefaults(vmi: Vmi, config: KubeVirtConfig): { vmi: Vmi; errors: FieldError[] } {
  const copy = structuredClone(vmi);
  const devices = copy.spec.domain?.devices;
  if (devices?.autoattachPodInterface === false) return { vmi: copy, errors: [] };
  // KubeVirt overrides only when nothing is specified.
  if ((copy.spec.networks?.length ?? 0) !== 0 || (devices?.interfaces?.length ?? 0) !== 0) {
    return { vmi: copy, errors: [] };
  }

  const binding = config.network?.defaultNetworkInterface || 'bridge';
  const podNetwork: VmiNetwork = { name: DEFAULT_NAME, pod: {} };
  switch (binding) {
    case 'bridge':
      // permitBridgeInterfaceOnPodNetwork defaults to true in KubeVirt.
      if (config.network?.permitBridgeInterfaceOnPodNetwork === false) {
        return { vmi: copy, errors: [{ field: INTERFACES_FIELD, message: 'bridge interface is not enabled in kubevirt-config' }] };
      }
      return { vmi: withDefaults(copy, { name: DEFAULT_NAME, bridge: {} }, podNetwork), errors: [] };
    case 'masquerade':
      return { vmi: withDefaults(copy, { name: DEFAULT_NAME, masquerade: {} }, podNetwork), errors: [] };
    case 'slirp':
      return { vmi: copy, errors: [{ field: INTERFACES_FIELD, message: 'slirp interface is deprecated as of v1.3' }] };
    case 'passt':
      return { vmi: copy, errors: [{ field: INTERFACES_FIELD, message: 'passt interface is deprecated as of v1.3' }] };
    default:
      // KubeVirt's config validation never lets another value through; reject it with that message.
      return {
        vmi: copy,
        errors: [{ field: 'configuration.network.defaultNetworkInterface', message: `invalid default-network-interface in config: ${binding}` }],
      };
  }
}
