// Attacks through the launcher's own filesystem, which root reads via /proc/PID/root (--pid): /etc/resolv.conf or /etc/hostname as an absolute symlink to a node file, a FIFO, /dev/zero, an oversize file, a hostname with shell metacharacters. Root must refuse in one line (or treat the file as absent), never show the node's content, never hang, and change nothing.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, dumpNetns } from '../helpers/agent-run.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { netnsAvailable, run, waitFor } from '../helpers/netns.js';

const BUSYBOX = '/bin/busybox';
const HOST_SECRET = 'nameserver 203.0.113.66\nsearch node-secret.example\n';

describe.skipIf(!netnsAvailable() || !existsSync(BUSYBOX))('security: files of the launcher pod read through /proc/PID/root', { timeout: 300_000 }, () => {
  let cni: CniPod | undefined;
  let work = '';
  let secret = '';
  let launcher: ChildProcess | undefined;
  let root = '';

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'vna-sec-podroot-'));
    secret = join(work, 'node-file');
    writeFileSync(secret, HOST_SECRET, { mode: 0o600 });
    cni = await makeCniPod({ podCidr: '10.244.62.0/24' });
  }, 120_000);

  afterAll(async () => {
    await cni?.cleanup();
    rmSync(work, { recursive: true, force: true });
  }, 120_000);

  afterEach(() => {
    launcher?.kill('SIGKILL');
    launcher = undefined;
  });

  /**
   * A "launcher": a process in the pod's netns whose root is a directory the launcher user could have filled (a
   * statically linked busybox chrooted there, `sleep`), with the given files under etc/. Returns its PID.
   */
  async function startLauncher(files: (etc: string) => void): Promise<number> {
    root = mkdtempSync(join(work, 'root-'));
    mkdirSync(join(root, 'bin'));
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc', 'hostname'), 'testvmi\n');
    writeFileSync(join(root, 'etc', 'resolv.conf'), 'nameserver 10.96.0.10\nsearch default.svc.cluster.local\n');
    files(join(root, 'etc'));
    // Its own UTS namespace too (hostname launcher-uts), never the machine's.
    launcher = spawn('ip', ['netns', 'exec', cni!.pod.name, 'unshare', '--uts', '--', 'sh', '-c', 'hostname launcher-uts && exec chroot "$0" /bin/busybox sleep 600', root], { stdio: 'ignore' });
    const pid = launcher.pid!;
    await waitFor(async () => existsSync(`/proc/${pid}/root/bin/busybox`) && readlinkSync(`/proc/${pid}/root`) === root, { timeoutMs: 30_000, intervalMs: 50, what: 'the launcher to chroot' });
    expect(readlinkSync(`/proc/${pid}/ns/net`)).toBe(`net:[${statSync(cni!.pod.path).ino}]`);
    return pid;
  }

  /** `discover --pid`, bounded: 20 s and 4 GB of address space (the old code read /dev/zero until it died). */
  function discover(pid: number): ReturnType<typeof run> {
    return run(['prlimit', '--as=4000000000', '--', process.execPath, CLI, 'discover', '--pid', String(pid)], { timeoutMs: 20_000 });
  }

  it('a well-formed pod is read as before, including the kubelet\'s downward-API symlinks (..data)', async () => {
    const pid = await startLauncher((etc) => {
      const data = join(etc, 'podinfo', '..2026_01_01_00_00_00.000000001');
      mkdirSync(data, { recursive: true });
      writeFileSync(join(data, 'network-status'), '[]');
      symlinkSync('..2026_01_01_00_00_00.000000001', join(etc, 'podinfo', '..data'));
      symlinkSync('..data/network-status', join(etc, 'podinfo', 'network-status'));
    });
    const result = await discover(pid);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const pod = JSON.parse(result.stdout) as { hostname: string; resolvConf: string; networkStatus?: unknown };
    expect(pod.hostname).toBe('testvmi');
    expect(pod.resolvConf).toContain('nameserver 10.96.0.10');
    expect(pod.networkStatus).toEqual([]);
  });

  const cases: { name: string; plant: (etc: string) => void; file: string; error: RegExp }[] = [
    {
      name: 'resolv.conf as an absolute symlink to a node file',
      plant: (etc) => {
        rmSync(join(etc, 'resolv.conf'));
        symlinkSync(secret, join(etc, 'resolv.conf'));
      },
      file: 'resolv.conf',
      error: /is or passes through a symbolic link \(not followed\)$/,
    },
    {
      name: 'resolv.conf as a FIFO',
      plant: (etc) => {
        rmSync(join(etc, 'resolv.conf'));
        expect(spawnSyncOk('mkfifo', [join(etc, 'resolv.conf')])).toBe(0);
      },
      file: 'resolv.conf',
      error: /a FIFO, not a regular file \(not read\)$/,
    },
    {
      name: 'resolv.conf as a symlink to /dev/zero',
      plant: (etc) => {
        rmSync(join(etc, 'resolv.conf'));
        symlinkSync('/dev/zero', join(etc, 'resolv.conf'));
      },
      file: 'resolv.conf',
      error: /is or passes through a symbolic link \(not followed\)$/,
    },
    {
      name: 'resolv.conf as a /dev/zero device node',
      plant: (etc) => {
        rmSync(join(etc, 'resolv.conf'));
        expect(spawnSyncOk('mknod', [join(etc, 'resolv.conf'), 'c', '1', '5'])).toBe(0);
      },
      file: 'resolv.conf',
      error: /a character device, not a regular file \(not read\)$/,
    },
    {
      name: 'resolv.conf of 100 MB',
      plant: (etc) => writeFileSync(join(etc, 'resolv.conf'), Buffer.alloc(100 << 20, 0x61)),
      file: 'resolv.conf',
      error: /larger than 65536 bytes/,
    },
    {
      name: 'etc as a symlink to the node\'s /etc',
      plant: (etc) => {
        rmSync(etc, { recursive: true });
        symlinkSync(work, etc);
      },
      file: 'etc',
      error: /is or passes through a symbolic link \(not followed\)$/,
    },
    {
      name: 'hostname as an absolute symlink to a node file',
      plant: (etc) => {
        rmSync(join(etc, 'hostname'));
        symlinkSync(secret, join(etc, 'hostname'));
      },
      file: 'hostname',
      error: /is or passes through a symbolic link \(not followed\)$/,
    },
    {
      name: 'hostname with shell metacharacters and a newline',
      plant: (etc) => writeFileSync(join(etc, 'hostname'), 'vm;$(reboot)\nsecond line\n'),
      file: 'hostname',
      error: /not a hostname/,
    },
    {
      name: 'the podinfo network-status as an absolute symlink to a node file',
      plant: (etc) => {
        mkdirSync(join(etc, 'podinfo'));
        symlinkSync(secret, join(etc, 'podinfo', 'network-status'));
      },
      file: 'podinfo/network-status',
      error: /leads outside the directory it is read beneath \(not followed\)$/,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: one line naming the file, no node content, no hang`, async () => {
      const pid = await startLauncher(c.plant);
      const started = Date.now();
      const result = await discover(pid);
      expect(result.stdout).not.toContain('node-secret');
      expect(result.stdout).not.toContain('203.0.113.66');
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(result.code).toBe(2);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`virt-net-agent: /proc/${pid}/root/etc`);
      expect(lines[0]).toContain(c.file.split('/')[0]);
      expect(lines[0]).toMatch(c.error);
    });
  }

  it('setup --pid with a hostile resolv.conf changes nothing: no kernel write, no state', async () => {
    const pid = await startLauncher((etc) => {
      rmSync(join(etc, 'resolv.conf'));
      symlinkSync(secret, join(etc, 'resolv.conf'));
    });
    const vmi = join(work, 'vmi.yaml');
    writeFileSync(vmi, 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: testvmi, namespace: default, uid: podroot-1}\nspec:\n  domain: {devices: {interfaces: [{name: default, masquerade: {}}]}}\n  networks: [{name: default, pod: {}}]\n');
    const before = await dumpNetns(cni!.pod);
    const stateDir = join(work, 'state');
    const result = await run([process.execPath, CLI, 'setup', '--vmi', vmi, '--pid', String(pid), '--state-dir', stateDir], { timeoutMs: 60_000 });
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`virt-net-agent: /proc/${pid}/root/etc/resolv.conf: is or passes through a symbolic link (not followed)\n`);
    expect(result.code).toBe(2);
    expect(await dumpNetns(cni!.pod)).toEqual(before);
    expect(existsSync(stateDir) ? readdirSync(stateDir) : []).toEqual([]);
    expect(readFileSync(secret, 'utf8')).toBe(HOST_SECRET);
  });

  it('without /etc/hostname the hostname is the launcher\'s own (its UTS namespace), never the agent\'s', async () => {
    const pid = await startLauncher((etc) => rmSync(join(etc, 'hostname')));
    const result = await discover(pid);
    expect(result.stderr).toBe('');
    expect((JSON.parse(result.stdout) as { hostname: string }).hostname).toBe('launcher-uts');
  });
});

function spawnSyncOk(command: string, args: string[]): number {
  return spawnSync(command, args).status ?? -1;
}
