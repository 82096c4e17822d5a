// CNI GC: remove every attachment of this network that the runtime no longer lists in cni.dev/valid-attachments.
import type { AgentConfig } from './agent-config.js';
import type { CniRequest } from './config.js';
import { listAttachments } from './attachment.js';
import { teardownAttachment } from './del.js';
import { CNI_CODES, CniSpecError } from './errors.js';
import type { CniWarn } from './spec.js';
import { basename } from 'node:path';

export async function cniGc(request: CniRequest, agent: AgentConfig, warn: CniWarn): Promise<string> {
  const { conf } = request;
  const valid = conf.validAttachments;
  if (valid === null) throw new CniSpecError(CNI_CODES.invalidConfig, 'cni.dev/valid-attachments', 'missing: GC needs the attachments to keep');
  const keep = new Set(valid.map((entry) => `${entry.containerId}\n${entry.ifname}`));
  for (const { dir, record } of listAttachments(agent.stateRoot)) {
    if (record.network !== conf.name || keep.has(`${record.containerId}\n${record.ifname}`)) continue;
    await teardownAttachment(agent.stateRoot, basename(dir), record, { path: record.netns, recorded: true }, warn);
  }
  return '';
}
