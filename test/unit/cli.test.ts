// Tests of the compiled bin (node dist/agent/cli/cli.js): one-line errors with exit codes, plan output, and the input readers.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../agent/plan/errors.js';
import { readDocument, readPodState } from '../../agent/cli/input.js';
import { parsePodState } from '../../agent/plan/pod-state-parse.js';
import type { Plan } from '../../agent/plan/plan-types.js';
import { calicoPod, multusPod } from '../fixtures/pods.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const CLI = join(ROOT, 'dist/agent/cli/cli.js');
const EX = (name: string): string => join(ROOT, 'examples', name);

/** Each case spawns node; on a busy 2-core CI machine one spawn can take seconds. */
const SPAWN_TIMEOUT_MS = 90_000;
const SLOW = { timeout: 300_000 };

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[], opts: { input?: string; env?: Record<string, string> } = {}): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env['VIRT_NET_AGENT_DEBUG'];
  if (opts.env?.['MY_POD_IP'] === undefined) delete env['MY_POD_IP'];
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, env, input: opts.input ?? '', encoding: 'utf8', timeout: SPAWN_TIMEOUT_MS });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: nothing on stdout, exactly one stderr line naming the field, the given exit status, no stack trace. */
function expectOneLineError(r: Result, status: number, ...fragments: readonly string[]): void {
  expect(r.stderr).not.toContain('    at ');
  expect(r.stderr.endsWith('\n')).toBe(true);
  expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(r.stderr.startsWith('virt-net-agent: ')).toBe(true);
  for (const fragment of fragments) expect(r.stderr).toContain(fragment);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(status);
}

const MASQ = ['--vmi', EX('vmi-masquerade.yaml'), '--pod', EX('pod-calico.json')] as const;

let dir = '';
function tmp(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

beforeAll(() => {
  if (!existsSync(CLI)) {
    throw new Error(`${CLI} is missing: compile first (npm test runs "tsc -p tsconfig.json" before vitest)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'vna-cli-'));
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('cli: bad input gives one line and a non-zero exit', SLOW, () => {
  it('unreadable --vmi file names the flag and the file', () => {
    const r = run(['plan', '--vmi', '/nonexistent/vmi.yaml', '--pod', EX('pod-calico.json')]);
    expectOneLineError(r, 2, '--vmi: cannot read /nonexistent/vmi.yaml: no such file');
  });

  it('a directory as --pod', () => {
    const r = run(['plan', '--vmi', EX('vmi-masquerade.yaml'), '--pod', dir]);
    expectOneLineError(r, 2, `--pod: cannot read ${dir}: is a directory`);
  });

  it('invalid YAML reports line and column', () => {
    const bad = tmp('bad.yaml', 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n    name: x\n  spec: [1, 2\n');
    const r = run(['plan', '--vmi', bad, '--pod', EX('pod-calico.json')]);
    expectOneLineError(r, 2, '--vmi: invalid YAML at line ');
    expect(r.stderr).toMatch(/at line \d+, column \d+: \S/);
  });

  it('invalid JSON in a .json file is called JSON', () => {
    const bad = tmp('bad-pod.json', '{\n  "hostname": "x",\n  "interfaces": [\n    {"name": "eth0",,}\n  ]\n}\n');
    const r = run(['plan', '--vmi', EX('vmi-masquerade.yaml'), '--pod', bad]);
    expectOneLineError(r, 2, '--pod: invalid JSON at line 4');
  });

  it('an object that is not a VMI (kind: Pod)', () => {
    const pod = tmp('pod.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: virt-launcher-x\nspec:\n  containers: []\n');
    const r = run(['plan', '--vmi', pod, '--pod', EX('pod-calico.json')]);
    expectOneLineError(r, 2, '--vmi', 'kind', 'Pod');
  });

  it('a pod state file given as --vmi', () => {
    const r = run(['plan', '--vmi', EX('pod-calico.json'), '--pod', EX('pod-calico.json')]);
    expectOneLineError(r, 2, '--vmi: ');
  });

  it('an empty document', () => {
    const empty = tmp('empty.yaml', '# nothing here\n');
    expectOneLineError(run(['plan', '--vmi', empty, '--pod', EX('pod-calico.json')]), 2, '--vmi: ', 'is empty');
  });

  it('several YAML documents in one file', () => {
    const two = tmp('two.yaml', `${readFileSync(EX('vmi-masquerade.yaml'), 'utf8')}---\nkind: VirtualMachineInstance\n`);
    expectOneLineError(run(['plan', '--vmi', two, '--pod', EX('pod-calico.json')]), 2, '--vmi: ', '2 YAML documents');
  });

  it('unknown flag', () => {
    expectOneLineError(run(['plan', ...MASQ, '--frobnicate']), 2, '--frobnicate: unknown flag');
  });

  it('unknown short flag', () => {
    expectOneLineError(run(['plan', ...MASQ, '-x']), 2, '-x: unknown flag');
  });

  it('bad --phase value', () => {
    expectOneLineError(run(['plan', ...MASQ, '--phase', 'sideways']), 2, '--phase: expected one of start, migration-target, hotplug, hotunplug', 'sideways');
  });

  it('bad --arch and --mac-policy values', () => {
    expectOneLineError(run(['plan', ...MASQ, '--arch', 'riscv64']), 2, '--arch: ', 'riscv64');
    expectOneLineError(run(['plan', ...MASQ, '--mac-policy', 'random']), 2, '--mac-policy: ', 'random');
  });

  it('a flag without its value', () => {
    expectOneLineError(run(['plan', ...MASQ, '--phase']), 2, '--phase: needs a value');
    expectOneLineError(run(['plan', '--vmi', '--pod', EX('pod-calico.json')]), 2, '--vmi: needs a value');
  });

  it('missing --vmi, repeated --pod, stray argument', () => {
    expectOneLineError(run(['plan', '--pod', EX('pod-calico.json')]), 2, '--vmi: is required');
    expectOneLineError(run(['plan', ...MASQ, '--pod', EX('pod-calico.json')]), 2, '--pod: given more than once');
    expectOneLineError(run(['plan', ...MASQ, 'extra']), 2, 'plan: unexpected argument "extra"');
  });

  it('stdin for two flags', () => {
    expectOneLineError(run(['plan', '--vmi', '-', '--pod', '-']), 2, '--pod: stdin is already read by --vmi');
  });

  it('pod state shape errors name the field path', () => {
    const pod = JSON.parse(readFileSync(EX('pod-calico.json'), 'utf8')) as { interfaces: { mtu: unknown }[] };
    pod.interfaces[1]!.mtu = 'big';
    const file = tmp('pod-bad-mtu.json', JSON.stringify(pod));
    expectOneLineError(run(['plan', '--vmi', EX('vmi-masquerade.yaml'), '--pod', file]), 2, 'pod.interfaces[1].mtu: expected an integer', '"big"');
  });

  it('bad --kubevirt-config', () => {
    const notCr = tmp('cfg.yaml', 'kind: ConfigMap\ndata: {}\n');
    expectOneLineError(run(['plan', ...MASQ, '--kubevirt-config', notCr]), 2, '--kubevirt-config: ', 'ConfigMap');
    const bad = tmp('cfg-bad.yaml', 'network:\n  permitBridgeInterfaceOnPodNetwork: [\n');
    expectOneLineError(run(['plan', ...MASQ, '--kubevirt-config', bad]), 2, '--kubevirt-config: invalid YAML at line');
  });

  it('empty or non-XML --domain', () => {
    expectOneLineError(run(['plan', ...MASQ, '--domain', tmp('empty.xml', '')]), 2, '--domain: ', 'is empty');
    expectOneLineError(run(['plan', ...MASQ, '--domain', tmp('dom.txt', 'hello')]), 2, '--domain: expected libvirt domain XML');
  });

  it('MY_POD_IP that is not an IP', () => {
    expectOneLineError(run(['plan', ...MASQ], { env: { MY_POD_IP: 'banana' } }), 2, 'MY_POD_IP: not an IP address');
  });

  it('unknown and not-yet-implemented commands, global unknown flag', () => {
    expectOneLineError(run(['frobnicate']), 2, 'frobnicate: unknown command');
    expectOneLineError(run(['hotunplug']), 2, '--domain: is required (see: virt-net-agent help hotunplug)');
    expectOneLineError(run(['setup']), 2, '--vmi: is required (see: virt-net-agent help setup)');
    expectOneLineError(run(['--frobnicate']), 2, '--frobnicate: unknown flag');
  });

  it('no command prints usage on stderr and exits 2', () => {
    const r = run([]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: virt-net-agent <command>');
  });
});

describe('cli: help and version', SLOW, () => {
  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = run(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`virt-net-agent ${pkg.version}\n`);
  });

  it('help, --help, help plan and plan --help exit 0 on stdout', () => {
    for (const args of [['help'], ['--help']]) {
      const r = run(args);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('plan');
      expect(r.stderr).toBe('');
    }
    for (const args of [['help', 'plan'], ['plan', '--help']]) {
      const r = run(args);
      expect(r.status).toBe(0);
      for (const flag of ['--vmi', '--pod', '--kubevirt-config', '--phase', '--arch', '--domain', '--mac-policy']) {
        expect(r.stdout).toContain(flag);
      }
    }
  });
});

// These need computePlan (agent/plan/plan.ts) and parseVmiObject/parseKubeVirtConfig (agent/plan/vmi-shape.ts).
describe('cli: plan output (needs the planner)', SLOW, () => {
  function parsePlan(r: Result): Plan {
    return JSON.parse(r.stdout) as Plan;
  }

  it('masquerade VMI on Calico: exit 0, JSON plan on stdout, nothing on stderr', () => {
    const r = run(['plan', ...MASQ, '--arch', 'amd64']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const plan = parsePlan(r);
    expect(plan.errors).toEqual([]);
    expect(plan.vmi).toEqual({ name: 'vmi-fedora', namespace: 'default', uid: '5b1e2f3c-8d4a-4e6b-a1c9-7f0d3e2b4a61' });
    expect(plan.phase).toBe('start');
    expect(plan.arch).toBe('amd64');
    expect(plan.networks.map((n) => [n.name, n.binding, n.podInterface])).toEqual([['default', 'masquerade', 'eth0']]);
    expect(r.stdout.endsWith('}\n')).toBe(true);
  });

  it('reads the VMI from stdin with --vmi - and gives the same plan', () => {
    const fromFile = run(['plan', ...MASQ, '--arch', 'amd64']);
    const fromStdin = run(['plan', '--vmi', '-', '--pod', EX('pod-calico.json'), '--arch', 'amd64'], {
      input: readFileSync(EX('vmi-masquerade.yaml'), 'utf8'),
    });
    expect(fromStdin.status).toBe(0);
    expect(fromStdin.stdout).toBe(fromFile.stdout);
  });

  it('passes --phase and --arch through', () => {
    const r = run(['plan', ...MASQ, '--phase', 'migration-target', '--arch', 's390x']);
    expect(r.status).toBe(0);
    const plan = parsePlan(r);
    expect(plan.phase).toBe('migration-target');
    expect(plan.arch).toBe('s390x');
  });

  it('masquerade + two Multus bridges with the KubeVirt CR: hashed pod interface names', () => {
    const r = run([
      'plan',
      '--vmi', EX('vmi-bridge-multus.yaml'),
      '--pod', EX('pod-multus.json'),
      '--kubevirt-config', EX('kubevirt-config.yaml'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const plan = parsePlan(r);
    expect(plan.errors).toEqual([]);
    expect(plan.networks.map((n) => [n.name, n.binding, n.podInterface])).toEqual([
      ['default', 'masquerade', 'eth0'],
      ['blue', 'bridge', 'pod16477688c0e'],
      ['red', 'bridge', 'podb1f51a511f1'],
    ]);
    expect(plan.networks.find((n) => n.name === 'blue')?.guestMac).toBe('02:5e:8c:00:0b:01');
  });

  it('a plan with validation errors: exit 2, the plan on stdout, one stderr line per error', () => {
    const yaml = readFileSync(EX('vmi-masquerade.yaml'), 'utf8').replace(
      '      - masquerade: {}\n',
      '      - masquerade: {}\n        macAddress: 02:00:00:00:00:00\n',
    );
    const r = run(['plan', '--vmi', tmp('reserved-mac.yaml', yaml), '--pod', EX('pod-calico.json')]);
    expect(r.status).toBe(2);
    const plan = parsePlan(r);
    expect(plan.errors.length).toBeGreaterThan(0);
    expect(plan.errors[0]?.field).toBe('spec.domain.devices.interfaces[0].macAddress');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(plan.errors.length);
    for (const line of lines) expect(line.startsWith('virt-net-agent: spec.')).toBe(true);
    expect(r.stderr).not.toContain('    at ');
  });

  it('a pod that lacks the VMI networks\' interfaces: exit 3, one line', () => {
    const r = run(['plan', '--vmi', EX('vmi-bridge-multus.yaml'), '--pod', EX('pod-calico.json')]);
    expectOneLineError(r, 3, 'pod16477688c0e');
  });
});

describe('input.ts readers', () => {
  it('the example pod files are exactly the test fixtures', async () => {
    expect(await readPodState(EX('pod-calico.json'))).toEqual(calicoPod);
    expect(await readPodState(EX('pod-multus.json'))).toEqual(multusPod);
  });

  it('readDocument accepts JSON with tabs, a BOM, and "---" around one YAML document', async () => {
    expect(await readDocument(tmp('tabs.json', '{\n\t"a": [1, 2]\n}\n'), '--x')).toEqual({ a: [1, 2] });
    expect(await readDocument(tmp('bom.yaml', '\uFEFFa: 1\n'), '--x')).toEqual({ a: 1 });
    expect(await readDocument(tmp('dashes.yaml', '---\na: 1\n---\n'), '--x')).toEqual({ a: 1 });
  });

  it('readDocument rejects duplicate keys and circular aliases', async () => {
    await expect(readDocument(tmp('dup.yaml', 'a: 1\na: 2\n'), '--x')).rejects.toThrow(/invalid YAML at line 2, column 1: Map keys must be unique/);
    await expect(readDocument(tmp('loop.yaml', '&a [*a]\n'), '--x')).rejects.toThrow(InputError);
  });

  const base = (): Record<string, unknown> => JSON.parse(JSON.stringify(calicoPod)) as Record<string, unknown>;
  const fieldOf = (value: unknown): string => {
    try {
      parsePodState(value);
    } catch (err) {
      if (err instanceof InputError) return err.field;
      throw err;
    }
    return '(no error)';
  };

  it('parsePodState names the failing field', () => {
    expect(fieldOf([])).toBe('pod');
    expect(fieldOf({ ...base(), hostname: undefined })).toBe('pod.hostname');
    expect(fieldOf({ ...base(), extra: 1 })).toBe('pod.extra');
    const dupName = base();
    (dupName['interfaces'] as { name: string }[])[1]!.name = 'lo';
    expect(fieldOf(dupName)).toBe('pod.interfaces[1].name');
    const badCidr = base();
    (badCidr['interfaces'] as { ipv4: string[] }[])[1]!.ipv4 = ['10.244.196.140'];
    expect(fieldOf(badCidr)).toBe('pod.interfaces[1].ipv4[0]');
    const v6In4 = base();
    (v6In4['interfaces'] as { ipv4: string[] }[])[1]!.ipv4 = ['fd00::1/64'];
    expect(fieldOf(v6In4)).toBe('pod.interfaces[1].ipv4[0]');
    const badMac = base();
    (badMac['interfaces'] as { mac: string }[])[1]!.mac = 'ce:6a:2b:1f:30';
    expect(fieldOf(badMac)).toBe('pod.interfaces[1].mac');
    const badRoute = base();
    (badRoute['routes'] as { dev: string }[])[0]!.dev = 'eth9';
    expect(fieldOf(badRoute)).toBe('pod.routes[0].dev');
    const badStatus = { ...base(), networkStatus: [{ name: 'x', ips: ['10.0.0.1/24'] }] };
    expect(fieldOf(badStatus)).toBe('pod.networkStatus[0].ips[0]');
  });

  it('parsePodState lower-cases MACs and keeps only known Multus fields', () => {
    const pod = base();
    (pod['interfaces'] as { mac: string }[])[1]!.mac = 'CE:6A:2B:1F:30:4E';
    pod['networkStatus'] = [{ name: 'k8s-pod-network', interface: 'eth0', default: true, gateway: ['169.254.1.1'] }];
    const parsed = parsePodState(pod);
    expect(parsed.interfaces[1]?.mac).toBe('ce:6a:2b:1f:30:4e');
    expect(parsed.networkStatus).toEqual([{ name: 'k8s-pod-network', interface: 'eth0', default: true }]);
  });
});
