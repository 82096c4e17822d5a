// Attacks by the launcher's user (uid 107) on the VMI's state folder: a forged record (sysctlsBefore with kernel.core_pattern, podIdentity), symlinks planted for root's writes (the PID-named temporary, the lock), and a folder left to it by an older version. Root must never act on any of it.
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agent, dumpNetns, setupSummary } from '../helpers/agent-run.js';
import { agentWithFakeKernelSysctls, agentWithKnownPid, asLauncher, LAUNCHER_UID } from '../helpers/attacker.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable } from '../helpers/netns.js';

const EVIL_CORE_PATTERN = '|/bin/sh -c "id > /tmp/vna-pwned"';

function vmiYaml(uid: string): string {
  return `apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: testvmi
  namespace: default
  uid: ${uid}
spec:
  domain:
    devices:
      interfaces:
      - name: default
        masquerade: {}
  networks:
  - name: default
    pod: {}
`;
}

interface Record {
  sysctlsBefore: { [name: string]: string | null };
  networks: { [name: string]: { podIdentity: { mac: string; ipv4: string[] } | null } };
  [key: string]: unknown;
}

describe.skipIf(!netnsAvailable())('security: the launcher user against the state folder', { timeout: 300_000 }, () => {
  let cni: CniPod | undefined;
  let work = '';
  let uid = '';
  let stateRoot = '';
  let folder = '';
  let flags: string[] = [];

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'vna-sec-state-'));
    chmodSync(work, 0o755); // the launcher user must reach the state root, as in a pod
    uid = `sec-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
    stateRoot = join(work, 'state');
    folder = join(stateRoot, uid);
    writeFileSync(join(work, 'vmi.yaml'), vmiYaml(uid));
    cni = await makeCniPod({ podCidr: '10.244.61.0/24' });
    flags = ['--vmi', join(work, 'vmi.yaml'), '--netns', cni.pod.path, '--state-dir', stateRoot, '--resolv-conf', '/dev/null', '--hostname', 'testvmi'];
  }, 120_000);

  afterEach(async () => {
    await cni?.cleanup();
    cni = undefined;
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('a forged record (kernel.core_pattern in sysctlsBefore, another MAC and address as podIdentity) cannot reach root teardown', async () => {
    const pod = cni!.pod;
    const before = await dumpNetns(pod);
    expect(setupSummary(await agent(['setup', ...flags])).writes).toBeGreaterThan(0);
    const recorded = readFileSync(join(folder, 'state.json'), 'utf8');

    // The attacker forges the record and puts it in place the ways its owner could: rename over it, or write into it.
    const forged = JSON.parse(recorded) as Record;
    forged.sysctlsBefore['kernel.core_pattern'] = EVIL_CORE_PATTERN;
    const identity = forged.networks['default']?.podIdentity;
    if (identity) {
      identity.mac = '02:de:ad:be:ef:01';
      identity.ipv4 = ['10.99.99.99/24'];
    }
    const forgedPath = join(work, 'forged.json');
    writeFileSync(forgedPath, JSON.stringify(forged));
    chmodSync(forgedPath, 0o644);
    const attack = await asLauncher('cp "$F" "$D/.x" && mv -f "$D/.x" "$D/state.json"; cp "$F" "$D/state.json"; cat "$D/state.json" >/dev/null', { F: forgedPath, D: folder });

    const teardown = await agentWithFakeKernelSysctls(['teardown', ...flags]);
    expect(teardown.corePattern).toBe('core');
    expect(await dumpNetns(pod)).toEqual(before); // the pod NIC got its own MAC and address back, not the forged ones
    expect(teardown.stderr).toBe('');
    expect(teardown.code).toBe(0);
    // The attacker could neither replace nor rewrite the record.
    expect(attack.stderr).toMatch(/Permission denied/);
  });

  it('symlinks planted at the PID-named temporary and at the lock: root neither writes through them nor hands the target over', async () => {
    expect(setupSummary(await agent(['setup', ...flags])).writes).toBeGreaterThan(0);
    // A root-owned host file the attacker wants, and a place it wants a root-owned file created.
    const host = join(work, 'host');
    mkdirSync(host, { mode: 0o755 });
    const victim = join(host, 'victim');
    writeFileSync(victim, 'victim\n', { mode: 0o600 });
    const created = join(host, 'created-by-root');

    const run = await agentWithKnownPid(['setup', ...flags.slice(0, -1), 'renamed']); // a changed record: setup writes it
    const attack = await asLauncher(
      [
        'ln -sf "$VICTIM" "$D/state.json.$P.tmp"',
        'rm -f "$D/lock"; ln -sf "$CREATED" "$D/lock"',
        'for f in state.json serve.json; do rm -f "$D/$f.tmp"; ln -sf "$VICTIM" "$D/.$f.tmp"; done',
      ].join('\n'),
      { VICTIM: victim, CREATED: created, D: folder, P: String(run.pid) },
    );
    const result = await run.go();
    expect(readFileSync(victim, 'utf8')).toBe('victim\n');
    expect(statSync(victim).uid).toBe(0);
    expect(existsSync(created)).toBe(false);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(attack.stderr).toMatch(/Permission denied/);
    // The folder and every file in it stay root's; only serve.json is readable by the launcher user.
    for (const [name, mode] of [['', 0o755], ['state.json', 0o600], ['serve.json', 0o644], ['lock', 0o600]] as const) {
      const stat = statSync(join(folder, name));
      expect([name, stat.uid, stat.mode & 0o777]).toEqual([name, 0, mode]);
    }
    const read = await asLauncher('cat "$D/serve.json" >/dev/null && cat "$D/state.json"', { D: folder });
    expect(read.code).not.toBe(0);
    expect(read.stderr).toMatch(/state\.json: Permission denied/);
  });

  it('a folder the launcher user owns (left by an older version, or planted) is not trusted: setup refuses it, teardown removes it unread', async () => {
    const pod = cni!.pod;
    const before = await dumpNetns(pod);
    // What an older virt-net-agent left: the VMI's folder handed to 107, 0700; the attacker then fills it.
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    chmodSync(stateRoot, 0o755);
    chownSync(folder, LAUNCHER_UID, LAUNCHER_UID);
    const host = join(work, 'host');
    mkdirSync(host, { mode: 0o755 });
    const created = join(host, 'created-by-root');
    const forged = {
      version: 1,
      vmi: { name: 'testvmi', namespace: 'default', uid },
      networks: {},
      sysctlsBefore: { 'kernel.core_pattern': EVIL_CORE_PATTERN, 'net.ipv4.ip_forward': '1' },
      nft: null,
    };
    const forgedPath = join(work, 'forged.json');
    writeFileSync(forgedPath, JSON.stringify(forged));
    chmodSync(forgedPath, 0o644);
    const plant = await asLauncher('cp "$F" "$D/state.json" && ln -s "$CREATED" "$D/lock" && mkdir "$D/sub" && ln -s / "$D/sub/root"', { F: forgedPath, D: folder, CREATED: created });
    expect(plant.stderr).toBe('');
    expect(plant.code).toBe(0);

    const setup = await agent(['setup', ...flags]);
    expect(setup.code).not.toBe(0);
    expect(setup.stderr).toBe(
      `virt-net-agent: --state-dir: ${folder} is owned by uid ${LAUNCHER_UID}, not 0: not trusted (a virt-net-agent before the root-only layout handed it to the launcher user, or someone else made it); restart or migrate the VMI, or remove the folder\n`,
    );
    expect(await dumpNetns(pod)).toEqual(before);
    expect(existsSync(created)).toBe(false);

    const teardown = await agentWithFakeKernelSysctls(['teardown', ...flags]);
    expect(teardown.code).toBe(0);
    expect(teardown.stderr).toMatch(/^virt-net-agent: warning: --state-dir: .* is owned by uid 107, not 0: not trusted .*; removed unread, nothing undone\n$/);
    expect(teardown.corePattern).toBe('core');
    expect(existsSync(folder)).toBe(false);
    expect(existsSync(created)).toBe(false);
    expect(existsSync('/')).toBe(true);
    expect(await dumpNetns(pod)).toEqual(before);
  });

  it('defence in depth: even a root-owned record naming a sysctl outside the plannable set is not written back', async () => {
    expect(setupSummary(await agent(['setup', ...flags])).writes).toBeGreaterThan(0);
    const record = JSON.parse(readFileSync(join(folder, 'state.json'), 'utf8')) as Record;
    record.sysctlsBefore['kernel.core_pattern'] = EVIL_CORE_PATTERN;
    writeFileSync(join(folder, 'state.json'), JSON.stringify(record)); // root writes it: a bug elsewhere, say
    const teardown = await agentWithFakeKernelSysctls(['teardown', ...flags]);
    expect(teardown.corePattern).toBe('core');
    expect(teardown.code).toBe(0);
  });
});
