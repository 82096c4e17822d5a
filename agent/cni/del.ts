// CNI DEL: undo an attachment from its recorded state; idempotent (no state, or a netns already gone, is success).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runTeardown } from '../apply/setup.js';
import type { AgentConfig } from './agent-config.js';
import type { CniRequest } from './config.js';
import { attachmentDir, attachmentKey, readAttachment, removeAttachment, type AttachmentRecord } from './attachment.js';
import { netnsGone, openPodDriver } from './pod-access.js';

/** A stand-in VMI that keys runTeardown on the attachment folder when ADD crashed before recording its VMI. */
function keyVmi(key: string): Record<string, unknown> {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: key, uid: key }, spec: {} };
}

/** Tears one attachment folder down in `netns` (when it still exists) and removes the folder. */
export async function teardownAttachment(stateRoot: string, key: string, record: AttachmentRecord | null, netns: string): Promise<void> {
  const dir = attachmentDir(stateRoot, key);
  if (existsSync(join(dir, 'state.json')) && !netnsGone(netns)) {
    const driver = openPodDriver(netns);
    try {
      await runTeardown(driver, { vmi: record?.vmi ?? keyVmi(key), stateRoot, dryRun: false });
    } finally {
      driver.close();
    }
  }
  // With the netns gone, every link, address, sysctl and nft table we made went with it.
  removeAttachment(dir);
}

export async function cniDel(request: CniRequest, agent: AgentConfig): Promise<string> {
  const { conf } = request;
  const key = attachmentKey(conf.name, request.containerId, request.ifname);
  const dir = attachmentDir(agent.stateRoot, key);
  if (!existsSync(dir)) return '';
  const record = readAttachment(dir);
  await teardownAttachment(agent.stateRoot, key, record, request.netns !== '' ? request.netns : (record?.netns ?? ''));
  return '';
}
