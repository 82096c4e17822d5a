// A network configuration with `serveDhcp: false`: the plugin plumbs the attachment as always, and the cni-daemon's serving (the ADD path and adoption at start) leaves it to a `sidecar --serve`; without the field the same attachment is served.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CniServing } from '../../agent/cni/serving.js';
import { plugin, usePluginPod } from '../helpers/cni-plugin.js';
import { netnsAvailable } from '../helpers/netns.js';

describe.skipIf(!netnsAvailable())('serveDhcp: false in the network configuration', { timeout: 300_000 }, () => {
  const pod = usePluginPod('vna-serve-opt-out-', { podCidr: '10.244.71.0/24' });
  const conf = (extra: Record<string, unknown>): string =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'vna', type: 'virt-net-agent', binding: 'masquerade', ...extra, prevResult: pod.cni.attachments[0]?.result });
  const run = (command: string, extra: Record<string, unknown>) => plugin(pod.cni.node, pod.env(command), conf(extra));
  const record = (key: string): Record<string, unknown> => JSON.parse(readFileSync(join(pod.stateRoot, key, 'attachment.json'), 'utf8')) as Record<string, unknown>;

  /** What a daemon starting now would serve of the state root, and why not the attachment when it does not. */
  async function adopted(): Promise<{ served: readonly string[]; skipped: string | null }> {
    const serving = new CniServing({ stateRoot: pod.stateRoot, logger: pino({ level: 'silent' }), rescanMs: 0 });
    try {
      const report = await serving.adopt();
      const [key = ''] = readdirSync(pod.stateRoot);
      const verdict = await serving.serve(key);
      return { served: report.served, skipped: 'skipped' in verdict ? verdict.skipped : null };
    } finally {
      await serving.close({ goodbye: false });
    }
  }

  it('plumbs the attachment but the daemon does not serve it; without the field it does', async () => {
    const off = await run('ADD', { serveDhcp: false });
    expect(off.code, off.stdout).toBe(0);
    // Plumbed as always: the in-pod bridge and the guest's tap exist.
    const links = (await pod.cni.pod.execOk(['ip', '-br', 'link'])).stdout;
    expect(links).toMatch(/^k6t-eth0 /m);
    expect(links).toMatch(/^tap0 /m);
    const [key = ''] = readdirSync(pod.stateRoot);
    expect(record(key)).toMatchObject({ serveDhcp: false });
    expect(await adopted()).toEqual({ served: [], skipped: 'the network configuration says serveDhcp: false' });
    const del = await run('DEL', { serveDhcp: false });
    expect(del.code, del.stdout).toBe(0);

    const on = await run('ADD', {});
    expect(on.code, on.stdout).toBe(0);
    const [served = ''] = readdirSync(pod.stateRoot);
    expect(record(served)).not.toHaveProperty('serveDhcp');
    expect(await adopted()).toEqual({ served: [served], skipped: null });
    const delOn = await run('DEL', {});
    expect(delOn.code, delOn.stdout).toBe(0);
    expect(readdirSync(pod.stateRoot)).toEqual([]);
  });
});
