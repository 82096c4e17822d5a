// The bundle (dist/virt-net-agent.mjs + dist/chunks/, made by scripts/bundle.mjs; what the image runs) behaves as the module
// tree it is made from: the same output for the pure commands, and setup, re-run, serve and teardown in a CNI pod.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE, CLI, dumpNetns, runProgram, setupSummary } from '../helpers/agent-run.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { isServing, spawnServe, type ServeProcess } from '../helpers/dhcp-guest.js';
import { netnsAvailable } from '../helpers/netns.js';

const PLAN = ['plan', '--vmi', 'examples/vmi-masquerade.yaml', '--pod', 'examples/pod-calico.json', '--arch', 'amd64'];
const MULTUS_PLAN = ['plan', '--vmi', 'examples/vmi-bridge-multus.yaml', '--pod', 'examples/pod-multus.json', '--arch', 'amd64'];

describe('the bundle', { timeout: 600_000 }, () => {
  it('exists after the build; plan loads its own chunk and no native addon or gRPC', async () => {
    expect(existsSync(BUNDLE)).toBe(true);
    // What plan's process loaded, from Node's own module tracing of the ESM loader (stderr).
    const traced = await runProgram(BUNDLE, PLAN, { NODE_DEBUG: 'esm' });
    expect(traced.code).toBe(0);
    expect(traced.stderr).toMatch(/chunks\/cmd-plan-/);
    expect(traced.stderr).not.toMatch(/koffi|netlink|@grpc|chunks\/cmd-setup-/);
  });

  it('prints the same version, help and plans as the module tree', async () => {
    for (const args of [['--version'], ['help'], ['help', 'setup'], PLAN, MULTUS_PLAN, ['plan', '--vmi', 'nope.yaml']]) {
      const [fromTree, fromBundle] = await Promise.all([runProgram(CLI, args), runProgram(BUNDLE, args)]);
      expect(fromBundle, args.join(' ')).toEqual(fromTree);
    }
  });
});

describe.skipIf(!netnsAvailable())('the bundle in a pod', { timeout: 600_000 }, () => {
  let cni: CniPod | undefined;
  let serve: ServeProcess | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await serve?.stop('SIGKILL');
    serve = undefined;
    await cni?.cleanup();
    cni = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  it('masquerade: setup, a converged re-run, serve and teardown leave the pod as it was', async () => {
    cni = await makeCniPod({ podCidr: '10.244.57.0/24' });
    dir = mkdtempSync(join(tmpdir(), 'vna-bundle-'));
    const vmi = join(dir, 'vmi.yaml');
    writeFileSync(
      vmi,
      `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: testvmi, namespace: default, uid: bundle-${process.pid}}
spec:
  domain: {devices: {interfaces: [{name: default, masquerade: {}, ports: [{port: 22}]}]}}
  networks: [{name: default, pod: {}}]
`,
    );
    const flags = ['--vmi', vmi, '--netns', cni.pod.path, '--state-dir', join(dir, 'state'), '--resolv-conf', '/dev/null', '--hostname', 'testvmi'];
    const before = await dumpNetns(cni.pod);

    const up = await runProgram(BUNDLE, ['setup', ...flags]);
    expect(up.stderr).toBe('');
    expect(setupSummary(up).writes).toBeGreaterThan(5);
    expect(await dumpNetns(cni.pod)).not.toEqual(before);
    expect(setupSummary(await runProgram(BUNDLE, ['setup', ...flags]))).toMatchObject({ writes: 0, actions: [] });

    serve = spawnServe(['--state-dir', join(dir, 'state'), '--netns', cni.pod.path], {}, { program: BUNDLE });
    const serving = await serve.waitForLog(isServing, 'serving');
    expect(serving['services']).toEqual(['dhcpv4 k6t-eth0']);
    await serve.stop('SIGTERM');
    serve = undefined;

    const down = await runProgram(BUNDLE, ['teardown', ...flags]);
    expect(down.stderr).toBe('');
    expect(down.code).toBe(0);
    expect(await dumpNetns(cni.pod)).toEqual(before);
  });
});
