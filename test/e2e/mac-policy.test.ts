// Migration-safe MACs on real CNI pods: with --mac-policy stable the guest MAC survives a restart and a migration (new pods, new pod MACs).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeCniPod } from '../helpers/cni.js';
import { netnsAvailable } from '../helpers/netns.js';

const CLI = join(process.cwd(), 'dist/agent/cli/cli.js');

function agent(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A bridge-bound VMI; `statusMac` is what KubeVirt reports once the guest runs (read by a migration target). */
function vmiYaml(statusMac?: string): string {
  const status = statusMac === undefined ? '' : `status:\n  interfaces:\n  - name: default\n    mac: ${statusMac}\n    podInterfaceName: eth0\n    infoSource: domain\n`;
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: db-0
  namespace: shop
  uid: 7d1c0f52-mac-policy
spec:
  domain:
    devices:
      interfaces:
      - name: default
        bridge: {}
  networks:
  - name: default
    pod: {}
${status}`;
}

/** Plans (setup --dry-run: discover + plan, no write) the VMI in a fresh CNI pod; returns the pod MAC and the guest MAC. */
async function guestMacInNewPod(vmi: string, phase: string, policy: string): Promise<{ podMac: string; guestMac: string }> {
  const cni = await makeCniPod({ podCidr: '10.244.40.0/24' });
  const dir = mkdtempSync(join(tmpdir(), 'vna-mac-'));
  try {
    const path = join(dir, 'vmi.yaml');
    writeFileSync(path, vmi);
    const r = await agent(['setup', '--dry-run', '--vmi', path, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null', '--phase', phase, '--mac-policy', policy]);
    expect(r.stderr).toBe('');
    const summary = JSON.parse(r.stdout) as { networks: { name: string; guestMac: string | null }[] };
    return { podMac: cni.attachments[0]?.mac ?? '', guestMac: summary.networks.find((n) => n.name === 'default')?.guestMac ?? '' };
  } finally {
    await cni.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!netnsAvailable())('migration-safe guest MACs', { timeout: 300_000 }, () => {
  it('stable: same guest MAC after a restart and on a migration target, whatever the new pods’ MACs', async () => {
    const first = await guestMacInNewPod(vmiYaml(), 'start', 'stable');
    const restarted = await guestMacInNewPod(vmiYaml(), 'start', 'stable');
    const target = await guestMacInNewPod(vmiYaml(first.guestMac), 'migration-target', 'stable');
    expect(new Set([first.podMac, restarted.podMac, target.podMac]).size).toBe(3); // three pods, three pod MACs
    expect(restarted.guestMac).toBe(first.guestMac);
    expect(target.guestMac).toBe(first.guestMac);
    expect([first.podMac, restarted.podMac, target.podMac]).not.toContain(first.guestMac);
    // Locally administered (bit 1 of the first octet set), unicast (bit 0 clear).
    const octet = parseInt(first.guestMac.slice(0, 2), 16);
    expect(first.guestMac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(octet & 0b11).toBe(0b10);
  });

  it('pod (KubeVirt’s default): a restart changes the guest MAC; a migration target keeps the status MAC', async () => {
    const first = await guestMacInNewPod(vmiYaml(), 'start', 'pod');
    const restarted = await guestMacInNewPod(vmiYaml(), 'start', 'pod');
    const target = await guestMacInNewPod(vmiYaml(first.guestMac), 'migration-target', 'pod');
    expect(first.guestMac).toBe(first.podMac);
    expect(restarted.guestMac).toBe(restarted.podMac);
    expect(restarted.guestMac).not.toBe(first.guestMac);
    expect(target.guestMac).toBe(first.guestMac); // status MAC > pod MAC (KubeVirt issue #16696)
    expect(target.guestMac).not.toBe(target.podMac);
  });
});
