// deploy/ holds together: every manifest validates against the Kubernetes API's schemas (kubernetes-models) or its CRD's schema, and the pieces agree with each other and with the agent.
//
// Core kinds go through kubernetes-models' validate() (the API's OpenAPI schemas); the KubeVirt CR, the NAD and the
// example VMI through their CRDs' openAPIV3Schema (test/fixtures/crd/, where they come from is in its README) with
// unknown fields refused, as `kubectl apply` (strict field validation) does. Then what only this project knows: the
// ConfigMap's config.yaml loads with the agent's own loader, the NAD's config is a network configuration the plugin
// accepts, host paths are mounted at the same path in the containers, the init container installs with the socket
// and config the ConfigMap names, the readiness probe is the plugin's STATUS, RBAC is get on pods and VMIs only.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Namespace, ServiceAccount, ConfigMap } from 'kubernetes-models/v1';
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { parseAgentConfig } from '../../agent/cni/agent-config.js';
import { parseNetConf } from '../../agent/cni/config.js';

const DEPLOY = join(process.cwd(), 'deploy');

interface Manifest {
  readonly file: string;
  readonly doc: Record<string, unknown> & { kind: string; apiVersion: string; metadata: { name: string; namespace?: string } };
}

function manifests(dir = DEPLOY, rel = ''): Manifest[] {
  const out: Manifest[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.isDirectory()) out.push(...manifests(join(dir, entry.name), `${rel}${entry.name}/`));
    else if (entry.name.endsWith('.yaml')) {
      for (const d of parseAllDocuments(readFileSync(join(dir, entry.name), 'utf8'))) {
        if (d.errors.length > 0) throw new Error(`${rel}${entry.name}: ${d.errors[0]?.message ?? ''}`);
        const doc = d.toJS() as Manifest['doc'] | null;
        if (doc !== null) out.push({ file: `${rel}${entry.name}`, doc });
      }
    }
  }
  return out;
}

const CORE: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace as never,
  'v1/ServiceAccount': ServiceAccount as never,
  'v1/ConfigMap': ConfigMap as never,
  'apps/v1/DaemonSet': DaemonSet as never,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole as never,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding as never,
};

/** A CRD schema made strict the way the API server prunes/refuses: no field outside `properties` unless the schema preserves unknown fields. */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (schema === null || typeof schema !== 'object') return schema;
  const s = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([p, ps]) => [p, strict(ps)])) : strict(v)])) as Record<string, unknown>;
  if (s['properties'] !== undefined && s['additionalProperties'] === undefined && s['x-kubernetes-preserve-unknown-fields'] !== true) s['additionalProperties'] = false;
  return s;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const crdSchemas = new Map<string, ValidateFunction>();
function crdValidator(name: string): ValidateFunction {
  let v = crdSchemas.get(name);
  if (v === undefined) {
    v = ajv.compile(strict(JSON.parse(readFileSync(join(process.cwd(), 'test/fixtures/crd', `${name}.schema.json`), 'utf8'))) as object);
    crdSchemas.set(name, v);
  }
  return v;
}
const CRDS: Record<string, string> = {
  'kubevirt.io/v1/KubeVirt': 'kubevirt',
  'kubevirt.io/v1/VirtualMachineInstance': 'virtualmachineinstance',
  'k8s.cni.cncf.io/v1/NetworkAttachmentDefinition': 'network-attachment-definition',
};

/** Validates one manifest; the error messages (empty: valid). */
function validateManifest(doc: Manifest['doc']): string[] {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const Model = CORE[key];
  if (Model !== undefined) {
    try {
      new Model(doc as never).validate();
      return [];
    } catch (e) {
      return [(e as Error).message];
    }
  }
  const crd = CRDS[key];
  if (crd === undefined) return [`no schema for ${key}`];
  const v = crdValidator(crd);
  return v(doc) ? [] : (v.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

const all = manifests();
const byKind = (kind: string): Manifest['doc'][] => all.filter((m) => m.doc.kind === kind).map((m) => m.doc);

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
  readinessProbe?: { exec?: { command: string[] } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  hostNetwork?: boolean;
  serviceAccountName?: string;
  initContainers: Container[];
  containers: Container[];
  volumes: { name: string; hostPath?: { path: string }; configMap?: { name: string } }[];
}

describe('deploy/ manifests', () => {
  it('are the expected set, in a namespace of their own', () => {
    expect(all.map((m) => `${m.file}: ${m.doc.kind}/${m.doc.metadata.name}`)).toEqual([
      '00-namespace.yaml: Namespace/virt-net-agent',
      '10-rbac.yaml: ServiceAccount/virt-net-agent',
      '10-rbac.yaml: ClusterRole/virt-net-agent',
      '10-rbac.yaml: ClusterRoleBinding/virt-net-agent',
      '20-config.yaml: ConfigMap/virt-net-agent-config',
      '30-daemonset.yaml: DaemonSet/virt-net-agent',
      'binding-plugin/kubevirt-cr.yaml: KubeVirt/kubevirt',
      'binding-plugin/nad.yaml: NetworkAttachmentDefinition/vna-binding',
      'binding-plugin/vmi-example.yaml: VirtualMachineInstance/vmi-vna',
    ]);
  });

  it.each(all.map((m) => [`${m.file} ${m.doc.kind}`, m.doc] as const))('%s validates against its schema', (_name, doc) => {
    expect(validateManifest(doc)).toEqual([]);
  });

  it('the validators catch mistakes (a wrong type, an unknown field of a CRD, a missing required field)', () => {
    const ds = structuredClone(byKind('DaemonSet')[0]!) as unknown as { spec: { template: { spec: PodSpec & { containers: (Container & { ports?: unknown })[] } } } };
    ds.spec.template.spec.containers[0]!.ports = [{ containerPort: 'http' }];
    expect(validateManifest(ds as never).join()).toMatch(/containerPort must be integer/);
    const cr = structuredClone(byKind('KubeVirt')[0]!) as unknown as { spec: { configuration: { network: { binding: { vna: Record<string, unknown> } } } } };
    cr.spec.configuration.network.binding.vna['sidecarImg'] = 'x';
    expect(validateManifest(cr as never).join()).toMatch(/must NOT have additional properties.*sidecarImg/);
    const nad = structuredClone(byKind('NetworkAttachmentDefinition')[0]!) as unknown as { spec: Record<string, unknown> };
    delete nad.spec['config'];
    expect(validateManifest(nad as never).join()).toMatch(/must have required property 'config'/);
  });

  it("the ConfigMap's config.yaml loads with the agent's loader; its kubeconfig names the service account's token and CA", () => {
    const cm = byKind('ConfigMap')[0] as unknown as { data: Record<string, string> };
    const config = parseAgentConfig(cm.data['config.yaml'] ?? '', 'config.yaml');
    expect(config).toMatchObject({ stateRoot: '/run/virt-net-agent/cni', socket: '/run/virt-net-agent/cni.sock', kubeconfig: '/etc/virt-net-agent/kubeconfig', allowInsecureApi: false });
    const kc = parseYaml(cm.data['kubeconfig'] ?? '') as { clusters: { cluster: Record<string, string> }[]; users: { user: Record<string, string> }[] };
    expect(kc.clusters[0]?.cluster['server']).toMatch(/^https:\/\//);
    expect(kc.clusters[0]?.cluster['certificate-authority']).toBe('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
    expect(kc.users[0]?.user['tokenFile']).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
  });

  it('the DaemonSet: host network, identity host-path mounts, the init container installs with the configured socket and config, STATUS readiness, resources', () => {
    const ds = byKind('DaemonSet')[0] as unknown as { spec: { template: { spec: PodSpec } } };
    const spec = ds.spec.template.spec;
    expect(spec.hostNetwork).toBe(true);
    expect(spec.serviceAccountName).toBe('virt-net-agent');
    const hostPaths = new Map(spec.volumes.filter((v) => v.hostPath !== undefined).map((v) => [v.name, v.hostPath!.path]));
    for (const c of [...spec.initContainers, ...spec.containers]) {
      for (const m of c.volumeMounts ?? []) if (hostPaths.has(m.name)) expect(m.mountPath, `${c.name}: ${m.name}`).toBe(hostPaths.get(m.name));
      expect(c.resources?.requests?.['memory'], c.name).toBeDefined();
      expect(c.resources?.limits?.['memory'], c.name).toBeDefined();
    }
    const cm = byKind('ConfigMap')[0] as unknown as { data: Record<string, string> };
    const config = parseAgentConfig(cm.data['config.yaml'] ?? '', 'config.yaml');
    const init = spec.initContainers.find((c) => c.name === 'install-cni')!;
    const script = (init.args ?? []).join(' ');
    expect(script).toContain(`install-cni.sh /opt/cni/bin --socket ${config.socket} --config /etc/virt-net-agent/config.yaml`);
    expect(init.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    const daemon = spec.containers.find((c) => c.name === 'cni-daemon')!;
    expect(daemon.args).toEqual(['cni-daemon', '--config', '/etc/virt-net-agent/config.yaml']);
    // the state root and the socket are on a host path the daemon mounts (attachments outlive a daemon pod)
    const mounted = (daemon.volumeMounts ?? []).map((m) => m.mountPath);
    for (const p of [config.stateRoot, config.socket]) expect(mounted.some((m) => p.startsWith(`${m}/`)), p).toBe(true);
    const probe = (daemon.readinessProbe?.exec?.command ?? []).join(' ');
    expect(probe).toMatch(/CNI_COMMAND=STATUS/);
    expect(probe).toContain(`VIRT_NET_AGENT_CNI_SOCKET=${config.socket}`);
  });

  it('RBAC: get on pods and virtualmachineinstances, nothing else, bound to the DaemonSet’s service account', () => {
    const role = byKind('ClusterRole')[0] as unknown as { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
      { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get'] },
    ]);
    const binding = byKind('ClusterRoleBinding')[0] as unknown as { subjects: { name: string; namespace: string }[] };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'virt-net-agent', namespace: 'virt-net-agent' }]);
  });

  it("the binding plugin: the CR names the NAD, the NAD's config is one the plugin accepts (no host path), the VMI uses the binding", () => {
    const cr = byKind('KubeVirt')[0] as unknown as { spec: { configuration: { network: { binding: Record<string, { networkAttachmentDefinition: string; domainAttachmentType: string }> } } } };
    const [name, plugin] = Object.entries(cr.spec.configuration.network.binding)[0]!;
    const nad = byKind('NetworkAttachmentDefinition')[0] as unknown as { metadata: { name: string; namespace: string }; spec: { config: string } };
    expect(plugin.networkAttachmentDefinition).toBe(`${nad.metadata.namespace}/${nad.metadata.name}`);
    expect(plugin.domainAttachmentType).toBe('tap');
    const conf = parseNetConf(nad.spec.config, 'ADD');
    expect(conf.type).toBe('virt-net-agent');
    const vmi = byKind('VirtualMachineInstance')[0] as unknown as { spec: { domain: { devices: { interfaces: { binding?: { name: string } }[] } } } };
    expect(vmi.spec.domain.devices.interfaces.map((i) => i.binding?.name)).toContain(name);
  });
});
