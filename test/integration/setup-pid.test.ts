// setup/teardown with `--pid PID` (how virt-handler names the launcher) give the same result as `--netns PATH`, and the
// two can be mixed: state written through one is converged and undone through the other.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { agent, dumpNetns, setupSummary } from '../helpers/agent-run.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

function vmiYaml(binding: 'bridge' | 'masquerade'): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: pid-${binding}-${process.pid}-${Math.random().toString(16).slice(2)}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        ${binding}: {}
${binding === 'masquerade' ? '        ports:\n        - port: 22\n' : ''}  networks:
  - name: default
    pod: {}
status:
  migrationTransport: Unix
`;
}

describe.skipIf(!netnsAvailable())('setup and teardown with --pid', { timeout: 600_000 }, () => {
  let cni: CniPod | undefined;
  let launcher: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    launcher?.kill('SIGKILL');
    launcher = undefined;
    await cni?.cleanup();
    cni = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  for (const binding of ['bridge', 'masquerade'] as const) {
    it(`${binding}: --pid of a process in the pod netns converges like --netns, and the two are interchangeable`, async () => {
      cni = await makeCniPod({ podCidr: binding === 'bridge' ? '10.244.51.0/24' : '10.244.52.0/24' });
      dir = mkdtempSync(join(tmpdir(), 'vna-pid-'));
      const vmi = join(dir, 'vmi.yaml');
      writeFileSync(vmi, vmiYaml(binding));
      // The "launcher": a process living in the pod netns (`ip netns exec` setns()es, then execs sleep in place).
      launcher = spawn('ip', ['netns', 'exec', cni.pod.name, 'sleep', '600'], { stdio: 'ignore' });
      const pid = launcher.pid!;
      await waitFor(async () => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep'), { timeoutMs: 60_000, intervalMs: 100, what: 'the launcher to exec' });
      expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(`net:[${statSync(cni.pod.path).ino}]`);

      const files = ['--vmi', vmi, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null', '--hostname', 'testvmi'];
      const viaPid = [...files, '--pid', String(pid)];
      const viaNetns = [...files, '--netns', cni.pod.path];
      const before = await dumpNetns(cni.pod);

      const byPid = setupSummary(await agent(['setup', ...viaPid]));
      expect(byPid.writes).toBeGreaterThan(5);
      const pidState = await dumpNetns(cni.pod, { ignoreMacOf: ['tap0'] });
      expect(pidState).not.toEqual(before);
      expect(setupSummary(await agent(['setup', ...viaNetns]))).toMatchObject({ writes: 0, actions: [] });
      expect(setupSummary(await agent(['setup', ...viaPid]))).toMatchObject({ writes: 0, actions: [] });

      const downByPid = await agent(['teardown', ...viaPid]);
      expect(downByPid.stderr).toBe('');
      expect(downByPid.code).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);

      const byNetns = setupSummary(await agent(['setup', ...viaNetns]));
      expect(byNetns.writes).toBe(byPid.writes);
      expect(byNetns.actions).toEqual(byPid.actions);
      expect(await dumpNetns(cni.pod, { ignoreMacOf: ['tap0'] })).toEqual(pidState);
      expect((await agent(['teardown', ...viaPid])).code).toBe(0);
      expect(await dumpNetns(cni.pod)).toEqual(before);
    });
  }

  it('--pid of a process that does not exist is a usage error and changes nothing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-pid-'));
    const vmi = join(dir, 'vmi.yaml');
    writeFileSync(vmi, vmiYaml('bridge'));
    const gone = spawn('true');
    const pid = gone.pid!;
    await new Promise((resolve) => gone.on('close', resolve));
    const r = await agent(['setup', '--vmi', vmi, '--pid', String(pid), '--state-dir', join(dir, 'state')]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^virt-net-agent: --pid: /);
  });
});
