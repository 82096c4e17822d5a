// A network configuration with `serveDhcp: false`: the plugin plumbs the attachment as always, and the cni-daemon's serving (the ADD path and adoption at start) leaves it to a `sidecar --serve`; without the field the same attachment is served.
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CniServing } from '../../agent/cni/serving.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { plugin } from '../helpers/cni-plugin.js';
import { netnsAvailable } from '../helpers/netns.js';

describe.skipIf(!netnsAvailable())('serveDhcp: false in the network configuration', { timeout: 300_000 }, () => {
  let dir = '';
  let stateRoot = '';
  let config = '';
  let pod: CniPod;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-serve-opt-out-'));
    stateRoot = join(dir, 'state');
    mkdirSync(stateRoot);
    config = writeAgentConfig(dir, { stateRoot });
    pod = await makeCniPod({ podCidr: '10.244.71.0/24' });
  }, 180_000);

  afterAll(async () => {
    await pod?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  const env = (command: string): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'opt-out-1',
    CNI_NETNS: pod.pod.path,
    CNI_IFNAME: 'eth0',
    CNI_PATH: '/usr/lib/cni',
    VIRT_NET_AGENT_CONFIG: config,
  });
  const conf = (extra: Record<string, unknown>): string =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'vna', type: 'virt-net-agent', binding: 'masquerade', ...extra, prevResult: pod.attachments[0]?.result });

  /** What a daemon starting now would serve of the state root, and why not the rest. */
  async function adopted(): Promise<{ served: readonly string[]; skipped: string | null }> {
    const serving = new CniServing({ stateRoot, logger: pino({ level: 'silent' }), rescanMs: 0 });
    try {
      const report = await serving.adopt();
      const [key = ''] = readdirSync(stateRoot);
      const verdict = await serving.serve(key);
      return { served: report.served, skipped: 'skipped' in verdict ? verdict.skipped : null };
    } finally {
      await serving.close({ goodbye: false });
    }
  }

  it('plumbs the attachment but the daemon does not serve it; without the field it does', async () => {
    const off = await plugin(pod.node, env('ADD'), conf({ serveDhcp: false }));
    expect(off.code, off.stdout).toBe(0);
    // Plumbed as always: the in-pod bridge and the guest's tap exist.
    const links = (await pod.pod.execOk(['ip', '-br', 'link'])).stdout;
    expect(links).toMatch(/^k6t-eth0 /m);
    expect(links).toMatch(/^tap0 /m);
    const [key = ''] = readdirSync(stateRoot);
    expect(JSON.parse(readFileSync(join(stateRoot, key, 'attachment.json'), 'utf8'))).toMatchObject({ serveDhcp: false });
    expect(await adopted()).toEqual({ served: [], skipped: 'the network configuration says serveDhcp: false' });
    const del = await plugin(pod.node, env('DEL'), conf({ serveDhcp: false }));
    expect(del.code, del.stdout).toBe(0);

    const on = await plugin(pod.node, env('ADD'), conf({}));
    expect(on.code, on.stdout).toBe(0);
    const [served = ''] = readdirSync(stateRoot);
    expect(JSON.parse(readFileSync(join(stateRoot, served, 'attachment.json'), 'utf8'))).not.toHaveProperty('serveDhcp');
    expect(await adopted()).toEqual({ served: [served], skipped: null });
    const delOn = await plugin(pod.node, env('DEL'), conf({}));
    expect(delOn.code, delOn.stdout).toBe(0);
    expect(readdirSync(stateRoot)).toEqual([]);
  });
});
