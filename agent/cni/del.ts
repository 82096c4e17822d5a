// CNI DEL: undo an attachment from its recorded state; idempotent (no state, or a netns already gone, is success).
//
// The namespace to act in is CNI_NETNS, or, without it (and for GC), the one the record names. A recorded namespace is
// checked like CNI_NETNS (pod-access.ts); one that fails (a file or FIFO now at that path, or the node's own network
// namespace, e.g. a /proc/PID/ns/net whose PID a node process reuses) is left untouched: the record is removed and
// the refusal reported, so a DEL never deletes links outside a pod and never fails forever on a stale record.
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { runTeardown } from '../apply/setup.js';
import type { AgentConfig } from './agent-config.js';
import type { CniRequest } from './config.js';
import { attachmentDir, findAttachmentDir, inspectAttachment, removeAttachment, type AttachmentRecord } from './attachment.js';
import { CNI_CODES, CniSpecError } from './errors.js';
import { netnsGone, openPodDriver } from './pod-access.js';
import type { CniWarn } from './spec.js';
import type { KernelDriver } from '../drivers/kernel.js';

/** The namespace a teardown acts in, and whether it came from the record (rather than the runtime's CNI_NETNS). */
export interface TeardownNetns {
  readonly path: string;
  readonly recorded: boolean;
}

/** A stand-in VMI that keys runTeardown on the attachment folder when ADD crashed before recording its VMI. */
function keyVmi(key: string): Record<string, unknown> {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: key, uid: key }, spec: {} };
}

/** Tears one attachment folder down in `netns` (when it still exists and passes the namespace check) and removes the folder. */
export async function teardownAttachment(stateRoot: string, key: string, record: AttachmentRecord | null, netns: TeardownNetns, warn: CniWarn): Promise<void> {
  const dir = attachmentDir(stateRoot, key);
  if (existsSync(join(dir, 'state.json')) && !netnsGone(netns.path)) {
    let driver: KernelDriver;
    try {
      driver = openPodDriver(netns.path);
    } catch (error) {
      if (!netns.recorded || !(error instanceof CniSpecError) || error.code !== CNI_CODES.invalidEnvironment) throw error;
      warn('the recorded network namespace is refused: nothing in it is touched, the attachment record is removed', { attachment: key, netns: netns.path, reason: error.message });
      removeAttachment(dir);
      return;
    }
    try {
      await runTeardown(driver, { vmi: record?.vmi ?? keyVmi(key), stateRoot, dryRun: false });
    } finally {
      driver.close();
    }
  }
  // With the netns gone, every link, address, sysctl and nft table we made went with it.
  removeAttachment(dir);
}

export async function cniDel(request: CniRequest, agent: AgentConfig, warn: CniWarn): Promise<string> {
  const { conf } = request;
  const dir = findAttachmentDir(agent.stateRoot, conf.name, request.containerId, request.ifname);
  if (dir === null) return '';
  const folder = inspectAttachment(dir);
  if (folder.kind === 'absent') return '';
  if (folder.kind === 'untrusted') {
    // Not root's (an older version handed binding-plugin folders to the launcher user): nothing in it is believed or
    // undone (the pod's namespace goes with the pod); the folder goes, read by no one.
    removeAttachment(dir);
    return '';
  }
  const { record } = folder;
  const netns = request.netns !== '' ? { path: request.netns, recorded: false } : { path: record?.netns ?? '', recorded: true };
  await teardownAttachment(agent.stateRoot, basename(dir), record, netns, warn);
  return '';
}
