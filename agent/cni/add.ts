// CNI ADD, role 1 (chained): plumb the pod NIC from prevResult with the configured binding via runSetup, record, answer.
import { runSetup } from '../apply/setup.js';
import type { AgentConfig } from './agent-config.js';
import type { CniRequest, ChainedBinding } from './config.js';
import { attachmentDir, attachmentKey, inspectAttachment, removeAttachment, resolvConfText, writeAttachment, type AttachmentFolder } from './attachment.js';
import { chainedResult } from './chained-result.js';
import { CNI_CODES, CniSpecError } from './errors.js';
import { attachmentDiscover, openPodDriver, pluginArch } from './pod-access.js';
import { podNameArg } from './pod-name.js';
import { podNicOf, type PrevResult } from './prev-result.js';
import { renderResult } from './result.js';
import { ensureStateRoot } from './state-root.js';
import { chainedConfig, chainedVmi } from './vmi-input.js';

/**
 * The hostname discovery reports for the guest's DHCP: the Kubernetes pod name when the runtime passes it (checked
 * as a pod name, error 4 otherwise: it reaches the guest and the state file), else the container id's start.
 */
export function attachmentHostname(request: CniRequest): string {
  return podNameArg(request.args) ?? request.containerId.slice(0, 12);
}

/**
 * Whether the folder holds nothing of an earlier ADD (no record, no state): a failed ADD then removes what it made. A
 * folder root does not own is refused (error 74): an older version's, or someone else's.
 */
export function isFresh(folder: AttachmentFolder): boolean {
  if (folder.kind === 'untrusted') throw new CniSpecError(CNI_CODES.ioFailure, 'stateRoot', folder.error.message);
  return folder.kind === 'absent' || (folder.record === null && !folder.hasState);
}

export async function chainedAdd(request: CniRequest, binding: ChainedBinding, agent: AgentConfig): Promise<string> {
  const { conf } = request;
  const prev: PrevResult | null = conf.prevResult;
  if (prev === null) {
    throw new CniSpecError(CNI_CODES.invalidConfig, 'prevResult', 'missing: virt-net-agent is a chained plugin; put it after the primary plugin (e.g. bridge + host-local) in the conflist');
  }
  const pod = podNicOf(prev, request.ifname);
  const key = attachmentKey(conf.name, request.containerId, request.ifname);
  const dir = attachmentDir(agent.stateRoot, key);
  const fresh = isFresh(inspectAttachment(dir));
  const vmi = chainedVmi(conf, binding, key, request.containerId, request.ifname);
  const kubevirtConfig = chainedConfig(binding);
  const driver = openPodDriver(request.netns);
  try {
    ensureStateRoot(agent.stateRoot);
    const setup = await runSetup(driver, {
      vmi,
      config: kubevirtConfig,
      phase: 'start',
      arch: pluginArch(),
      spoofProtection: conf.spoofProtection,
      stateRoot: agent.stateRoot,
      launcherCopy: false,
      discover: attachmentDiscover(resolvConfText(prev.dns), attachmentHostname(request)),
      dryRun: false,
    });
    const [error] = setup.plan.errors;
    if (error !== undefined) {
      throw new CniSpecError(CNI_CODES.invalidConfig, error.field, error.message, setup.plan.errors.map((e) => `${e.field}: ${e.message}`).join('\n'));
    }
    const network = setup.plan.networks[0];
    if (network === undefined) throw new CniSpecError(CNI_CODES.invalidConfig, 'binding', 'the plan has no network');
    const links = await driver.listLinks();
    const body = chainedResult(network, prev, pod.ips, links, request.netns, request.containerId);
    const result = renderResult(conf.cniVersion, body);
    writeAttachment(dir, {
      version: 1,
      network: conf.name,
      containerId: request.containerId,
      ifname: request.ifname,
      netns: request.netns,
      role: 'chained',
      binding,
      vmi,
      kubevirtConfig,
      spoofProtection: conf.spoofProtection,
      ...(conf.serveDhcp ? {} : { serveDhcp: false }),
      result,
    });
    return `${JSON.stringify(result)}\n`;
  } catch (error) {
    // Before any kernel write (no state recorded), a failed first ADD leaves no folder behind; after one, DEL needs it.
    if (fresh && isFresh(inspectAttachment(dir))) removeAttachment(dir);
    throw error;
  } finally {
    driver.close();
  }
}
