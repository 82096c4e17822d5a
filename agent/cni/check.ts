// CNI CHECK: the pod's kernel state against the plan ADD recorded (a dry-run setup must find nothing to do).
import { describeAction } from '../apply/kernel-actions.js';
import { runSetup } from '../apply/setup.js';
import { attachmentHostname } from './add.js';
import { attachmentDir, attachmentKey, findAttachmentDir, readAttachment, resolvConfText } from './attachment.js';
import type { AgentConfig } from './agent-config.js';
import type { CniRequest } from './config.js';
import { CNI_CODES, CniSpecError } from './errors.js';
import { attachmentDiscover, openPodDriver, pluginArch } from './pod-access.js';
import { podNicOf } from './prev-result.js';

export async function cniCheck(request: CniRequest, agent: AgentConfig): Promise<string> {
  const { conf } = request;
  if (conf.prevResult === null) throw new CniSpecError(CNI_CODES.invalidConfig, 'prevResult', 'missing: CHECK needs the result of ADD');
  // The chained role's pod NIC is CNI_IFNAME in prevResult; role 2's (eth0) belongs to the primary CNI.
  if (conf.logicNetworkName === null) podNicOf(conf.prevResult, request.ifname);
  const dir = findAttachmentDir(agent.stateRoot, conf.name, request.containerId, request.ifname) ?? attachmentDir(agent.stateRoot, attachmentKey(conf.name, request.containerId, request.ifname));
  const record = readAttachment(dir);
  if (record === null) {
    throw new CniSpecError(CNI_CODES.unknownAttachment, 'CNI_CONTAINERID', `no attachment ${request.containerId}/${request.ifname} of network ${conf.name} was added (nothing in ${dir})`);
  }
  const driver = openPodDriver(request.netns);
  try {
    const setup = await runSetup(driver, {
      vmi: record.vmi,
      config: record.kubevirtConfig,
      phase: record.phase ?? 'start',
      arch: pluginArch(),
      spoofProtection: record.spoofProtection,
      ...(record.podSysctls ? { extraPodSysctls: record.podSysctls } : {}),
      stateRoot: agent.stateRoot,
      launcherCopy: false,
      discover: attachmentDiscover(record.role === 'chained' ? resolvConfText(conf.prevResult.dns ?? {}) : '', attachmentHostname(request)),
      dryRun: true,
    });
    if (setup.plan.errors.length > 0) {
      const text = setup.plan.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      throw new CniSpecError(CNI_CODES.drift, 'CNI_NETNS', `the pod no longer fits the recorded plan: ${text}`);
    }
    // The ruleset as ADD applied it is not drift, even when this version of the agent would render another text (an
    // upgrade that changed the rules): CHECK asks whether the pod is still as it was set up.
    const actions = setup.nftAsApplied === true ? setup.actions.filter((action) => action.do !== 'apply-nft') : setup.actions;
    if (actions.length > 0) {
      const drift = actions.map(describeAction);
      throw new CniSpecError(CNI_CODES.drift, 'CNI_NETNS', `the pod's plumbing drifted from the recorded plan; to restore it: ${drift.join('; ')}`, drift.join('\n'));
    }
    return '';
  } finally {
    driver.close();
  }
}
