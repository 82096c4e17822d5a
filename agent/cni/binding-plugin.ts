// CNI ADD, role 2 (KubeVirt binding-plugin CNI, args.cni.logicNetworkName): masquerade plumbing for what `domainAttachmentType: tap` expects virt-launcher to find.
//
// Multus calls the binding's NetworkAttachmentDefinition with cni-args.logicNetworkName (the VMI network) and no
// prevResult; the pod NIC is the primary CNI's eth0. virt-launcher's tap attachment then looks up the pod interface
// (eth0), takes the domain MAC from the spec or that link, and uses target dev tap0 when that link exists
// (pkg/network/domainspec TapLibvirtSpecGenerator): so the plugin leaves eth0 as it is and creates k6t-eth0
// (10.0.2.1/24), tap0 owned by the launcher user, and the NAT ruleset. It also sets
// net.ipv4.ip_unprivileged_port_start=0 in the pod, as KubeVirt's passt-binding CNI does, so the hook sidecar
// (uid 107, no capabilities) can bind DHCP's ports: `virt-net-agent sidecar --serve` serves DHCPv4/DHCPv6 in the
// same process that answers OnDefineDomain. The VMI (ports, MAC, annotations, migration) comes from the agent
// configuration's `vmiDir` (`<vmiDir>/<namespace>/<pod>.yaml`) or the Kubernetes API (its `kubeconfig`), for the pod
// CNI_ARGS K8S_POD_NAMESPACE/K8S_POD_NAME name; without either, every port is forwarded.
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runSetup } from '../apply/setup.js';
import type { AgentConfig } from './agent-config.js';
import { attachmentHostname, isFresh } from './add.js';
import { attachmentDir, attachmentKey, inspectAttachment, removeAttachment, writeAttachment } from './attachment.js';
import { bindingPluginVmi } from './binding-plugin-vmi.js';
import type { CniRequest } from './config.js';
import { CNI_CODES, CniSpecError } from './errors.js';
import { launcherVmi, readKubeconfig } from './kube-api.js';
import { readBoundedFile } from './bounded-read.js';
import { podOf } from './pod-name.js';
import { attachmentDiscover, openPodDriver, pluginArch } from './pod-access.js';
import type { ResultInterface } from './prev-result.js';
import { renderResult } from './result.js';
import { ensureStateRoot } from './state-root.js';

/** What the unprivileged hook sidecar needs to bind DHCP's ports 67 and 547 (KubeVirt's passt-binding CNI sets the same). */
export const SIDECAR_SYSCTLS: Readonly<Record<string, string>> = { 'net.ipv4.ip_unprivileged_port_start': '0' };

/**
 * The user's VMI: `<vmiDir>/<namespace>/<pod>.yaml` when the admin configured vmiDir and that file exists, else the
 * API when a kubeconfig is configured, else null (no VMI source on this node). A VMI file named by vmiDir that is
 * missing with no API to fall back on is an error: the admin said the VMIs are there.
 */
async function sourceVmi(request: CniRequest, agent: AgentConfig): Promise<unknown> {
  if (agent.vmiDir === null && agent.kubeconfig === null) return null;
  const pod = podOf(request.args, agent.vmiDir !== null ? 'to find the VMI file in vmiDir' : 'to read the VMI from the API');
  if (agent.vmiDir !== null) {
    const file = join(agent.vmiDir, pod.namespace, `${pod.name}.yaml`);
    const text = await readBoundedFile(file, agent.maxFileBytes);
    if (text !== null) {
      try {
        return parseYaml(text) as unknown;
      } catch (error) {
        throw new CniSpecError(CNI_CODES.invalidConfig, 'vmiDir', `${file} is not YAML/JSON: ${(error as Error).message.split('\n')[0] ?? ''}`);
      }
    }
    if (agent.kubeconfig === null) throw new CniSpecError(CNI_CODES.invalidConfig, 'vmiDir', `no VMI file ${file} for pod ${pod.namespace}/${pod.name}`);
  }
  if (agent.kubeconfig === null) return null;
  return launcherVmi(await readKubeconfig(agent.kubeconfig, agent), pod.namespace, pod.name);
}

export async function bindingPluginAdd(request: CniRequest, agent: AgentConfig): Promise<string> {
  const { conf } = request;
  const network = conf.logicNetworkName ?? '';
  if (conf.binding !== null && conf.binding !== 'masquerade') {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'binding', `the binding-plugin role plumbs masquerade only, got ${JSON.stringify(conf.binding)} (the sidecar rebuilds DHCP from the pod; bridge would need the pod's original routes, which the node's state alone holds)`);
  }
  const key = attachmentKey(conf.name, request.containerId, request.ifname);
  const dir = attachmentDir(agent.stateRoot, key);
  const fresh = isFresh(inspectAttachment(dir));
  const { vmi, phase } = bindingPluginVmi(await sourceVmi(request, agent), network, key, request.args['K8S_POD_NAME']);
  const driver = openPodDriver(request.netns);
  try {
    ensureStateRoot(agent.stateRoot);
    const setup = await runSetup(driver, {
      vmi,
      config: {},
      phase,
      arch: pluginArch(),
      spoofProtection: conf.spoofProtection,
      stateRoot: agent.stateRoot,
      launcherCopy: false,
      // The CNI serves no DHCP here (the sidecar does, with the pod's own resolv.conf): discovery needs none.
      discover: attachmentDiscover('', attachmentHostname(request)),
      dryRun: false,
      extraPodSysctls: SIDECAR_SYSCTLS,
    });
    const [error] = setup.plan.errors;
    if (error !== undefined) {
      throw new CniSpecError(CNI_CODES.invalidConfig, error.field, error.message, setup.plan.errors.map((e) => `${e.field}: ${e.message}`).join('\n'));
    }
    const planned = setup.plan.networks[0];
    if (planned === undefined) throw new CniSpecError(CNI_CODES.invalidConfig, 'args.cni.logicNetworkName', 'the plan has no network');
    // The links made in the pod (the bridge, then the tap with the guest MAC); no IPs: the guest's 10.0.2.2 is
    // NAT-internal, and the pod's own addresses belong to the primary CNI's result (as KubeVirt's passt-binding CNI).
    const links = await driver.listLinks();
    const interfaces: ResultInterface[] = [];
    for (const step of planned.links) {
      if (step.op !== 'create') continue;
      const link = links.find((entry) => entry.name === step.name);
      const mac = step.name === planned.tap ? (planned.guestMac?.toLowerCase() ?? link?.mac) : link?.mac;
      interfaces.push({ name: step.name, ...(mac ? { mac } : {}), sandbox: request.netns });
    }
    const result = renderResult(conf.cniVersion, { interfaces, ips: [], routes: [], dns: {} });
    writeAttachment(dir, {
      version: 1,
      network: conf.name,
      containerId: request.containerId,
      ifname: request.ifname,
      netns: request.netns,
      role: 'binding-plugin',
      binding: 'masquerade',
      vmi,
      kubevirtConfig: {},
      spoofProtection: conf.spoofProtection,
      ...(conf.serveDhcp ? {} : { serveDhcp: false }),
      phase,
      podSysctls: SIDECAR_SYSCTLS,
      result,
    });
    return `${JSON.stringify(result)}\n`;
  } catch (error) {
    if (fresh && isFresh(inspectAttachment(dir))) removeAttachment(dir);
    throw error;
  } finally {
    driver.close();
  }
}
