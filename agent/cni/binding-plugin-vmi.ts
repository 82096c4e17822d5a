// Role 2 (binding-plugin CNI): the VMI the planner sees for one logic network: its interface with the plugin's binding replaced by masquerade, keyed on the attachment.
//
// In the user's VMI the interface says `binding: {name: <plugin>}` (KubeVirt's network binding plugin API); what the
// plugin does for it is masquerade plumbing, so the planner gets that interface as `masquerade: {}` with everything
// else the user wrote (ports, macAddress, dhcpOptions…), the pod network alone, and the VMI's annotations and status.
// The sidecar does the same rewrite at OnDefineDomain (plan/binding-plugin.ts), so both plan the same network.
import { asMasquerade, isMigrationTargetPod, isObject, listAt, objectAt } from '../plan/binding-plugin.js';
import { CNI_CODES, CniSpecError } from './errors.js';

/** KubeVirt's non-root launcher user: the tap belongs to it when the VMI does not say otherwise. */
const LAUNCHER_USER = 107;

export interface BindingPluginInput {
  readonly vmi: Record<string, unknown>;
  readonly phase: 'start' | 'migration-target';
}

function named(list: readonly unknown[], name: string): Record<string, unknown> | undefined {
  const found = list.find((entry) => isObject(entry) && entry['name'] === name);
  return isObject(found) ? found : undefined;
}

/** Without a VMI (no vmiPath/kubeconfig): the network alone, masquerade with no port list (KubeVirt forwards every port). */
function synthesized(network: string, key: string): Record<string, unknown> {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: key.slice(0, 63), namespace: 'default', uid: key, annotations: {} },
    spec: { domain: { devices: { interfaces: [{ name: network, masquerade: {} }] } }, networks: [{ name: network, pod: {} }] },
    status: { runtimeUser: LAUNCHER_USER },
  };
}

/**
 * The planner's VMI for `network` of `source` (null: none known). uid = the attachment key, so a migration target on
 * the same node (same VMI uid) gets its own state. The phase is migration-target when the VMI's migration names this
 * pod as its target (the guest MAC then comes from the status, as on any migration target).
 */
export function bindingPluginVmi(source: unknown, network: string, key: string, podName: string | undefined): BindingPluginInput {
  if (source === null || source === undefined) return { vmi: synthesized(network, key), phase: 'start' };
  if (!isObject(source)) throw new CniSpecError(CNI_CODES.invalidConfig, 'vmi', 'the VMI is not an object');
  const meta = objectAt(source, 'metadata');
  const who = `VMI ${String(meta['namespace'] ?? 'default')}/${String(meta['name'] ?? '?')}`;
  const vmiNetwork = named(listAt(source, 'spec', 'networks'), network);
  if (vmiNetwork === undefined) {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'args.cni.logicNetworkName', `${who} has no network ${JSON.stringify(network)}`);
  }
  if (!isObject(vmiNetwork['pod'])) {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'args.cni.logicNetworkName', `network ${JSON.stringify(network)} of ${who} is not the pod network: this plugin plumbs masquerade, which KubeVirt allows on the pod network only`);
  }
  const iface = named(listAt(source, 'spec', 'domain', 'devices', 'interfaces'), network);
  if (iface === undefined) {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'args.cni.logicNetworkName', `${who} has no interface ${JSON.stringify(network)}`);
  }
  const spec = objectAt(source, 'spec');
  const domain = objectAt(spec, 'domain');
  const status = objectAt(source, 'status');
  const statusEntry = named(listAt(status, 'interfaces'), network);
  const target = isMigrationTargetPod(source, podName);
  return {
    vmi: {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: meta['name'], namespace: meta['namespace'] ?? 'default', uid: key, annotations: objectAt(meta, 'annotations') },
      spec: { ...spec, domain: { ...domain, devices: { ...objectAt(domain, 'devices'), interfaces: [asMasquerade(iface)] } }, networks: [vmiNetwork] },
      status: {
        runtimeUser: typeof status['runtimeUser'] === 'number' ? status['runtimeUser'] : LAUNCHER_USER,
        ...(statusEntry ? { interfaces: [statusEntry] } : {}),
        ...(typeof status['migrationTransport'] === 'string' ? { migrationTransport: status['migrationTransport'] } : {}),
      },
    },
    phase: target ? 'migration-target' : 'start',
  };
}
