// Issue 26, holes 6 and 7: the cni-daemon's socket (a loose directory, a file at the socket path, a peer that is not root) and its work (one hanging invocation no longer holds up the others).
//
// The attackers: a directory someone else made or loosened where the socket goes; a regular file at --socket; an
// unprivileged user (uid 107, `setpriv --reuid 107 --regid 107 --clear-groups`) connecting to a socket whose mode an
// admin loosened; a tenant whose VMI lookup hangs (a stand-in API in the test's node netns that answers a byte every
// 200 ms). Everything lives in the test's mkdtemp and namespaces.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE } from '../helpers/agent-run.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { plugin } from '../helpers/cni-plugin.js';
import { runWithEnv, SHIM, startDaemonProcess, type ProgramRun } from '../helpers/cni-shim.js';
import { makeApiCertificate, startFakeApi, writeKubeconfig } from '../helpers/kube-api.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

/** A test group (only a number: no name needed) for socketGroup. */
const GROUP = 4242;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vna-sec-daemon-'));
  chmodSync(dir, 0o711); // uid 107 (the attacker of the peer tests) passes through to its own tools folder
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Starts cni-daemon; resolves with its exit (code, stderr) or, if it comes up, 'listening' after stopping it. */
function daemonStart(socket: string, config: string): Promise<{ readonly code: number | null; readonly stderr: string; readonly listening: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BUNDLE, 'cni-daemon', '--config', config, '--socket', socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let listening = false;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!listening && out.includes('"msg":"cni-daemon listening"')) {
        listening = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => resolve({ code, stderr: err, listening }));
  });
}

describe('the daemon socket (hole 7)', { timeout: 120_000 }, () => {
  it('a socket directory others may write, or another user owns, is refused with one line; nothing listens', async () => {
    const config = writeAgentConfig(dir);
    const loose = join(dir, 'loose');
    mkdirSync(loose, { mode: 0o755 });
    chmodSync(loose, 0o755);
    const r = await daemonStart(join(loose, 'cni.sock'), config);
    expect(r.listening).toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`virt-net-agent: --socket: ${loose} is owned by uid 0 gid 0 with mode 0755: refusing a socket directory others could change; it must be owned by root with mode 0700 (remove it or fix it)\n`);
    const theirs = join(dir, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 107, 107);
    const t = await daemonStart(join(theirs, 'cni.sock'), config);
    expect(t.listening).toBe(false);
    expect(t.stderr).toMatch(/^virt-net-agent: --socket: .* is owned by uid 107 gid 107 with mode 0700: refusing/);
    expect(existsSync(join(loose, 'cni.sock')) || existsSync(join(theirs, 'cni.sock'))).toBe(false);
  });

  it('a regular file at the socket path is never deleted (error instead)', async () => {
    const config = writeAgentConfig(dir);
    const home = mkdtempSync(join(dir, 'file-'));
    const socket = join(home, 'cni.sock');
    writeFileSync(socket, 'not a socket: data of someone else\n');
    const r = await daemonStart(socket, config);
    expect(readFileSync(socket, 'utf8')).toBe('not a socket: data of someone else\n');
    expect(r.listening).toBe(false);
    expect(r.stderr).toBe(`virt-net-agent: --socket: ${socket} exists and is not a socket: refusing to delete it\n`);
  });

  it('a missing directory is made root 0700 before listening, the socket is 0600', async () => {
    const socket = join(dir, 'made', 'run', 'cni.sock');
    const d = await startDaemonProcess(socket, { config: writeAgentConfig(dir) });
    try {
      expect(statSync(join(dir, 'made', 'run')).mode & 0o7777).toBe(0o700);
      expect(statSync(socket).mode & 0o777).toBe(0o600);
      expect(statSync(socket).uid).toBe(0);
    } finally {
      await d.stop();
    }
  });

  it('a bad --metrics-address is refused before anything is made: one line naming the flag, no socket directory', () => {
    const socket = join(dir, 'bad-metrics', 'run', 'cni.sock');
    const r = spawnSync(process.execPath, [BUNDLE, 'cni-daemon', '--config', writeAgentConfig(dir), '--socket', socket, '--metrics-address', '1.2.3.4.5:9101'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim()).toBe('virt-net-agent: --metrics-address: "1.2.3.4.5" is not an IP address');
    expect(existsSync(join(dir, 'bad-metrics'))).toBe(false);
  });

  /** A place uid 107 can reach: the shim and a stand-in fallback that says it ran. */
  function attackerTools(): { readonly shim: string; readonly fallback: string } {
    const tools = mkdtempSync(join(dir, 'tools-'));
    chmodSync(tools, 0o755);
    copyFileSync(SHIM, join(tools, 'shim'));
    chmodSync(join(tools, 'shim'), 0o755);
    writeFileSync(join(tools, 'fallback'), '#!/bin/sh\necho fallback-ran\n');
    chmodSync(join(tools, 'fallback'), 0o755);
    return { shim: join(tools, 'shim'), fallback: join(tools, 'fallback') };
  }

  function asUser(args: readonly string[], tools: { shim: string; fallback: string }, socket: string): Promise<ProgramRun> {
    return runWithEnv('setpriv', { PATH: '/usr/bin:/bin', CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket, VIRT_NET_AGENT_CNI_FALLBACK: tools.fallback }, '', [...args, tools.shim]);
  }

  it('a non-root peer is disconnected at once and logged, even when the socket mode was loosened', async () => {
    const home = mkdtempSync(join(dir, 'peer-'));
    const socket = join(home, 'cni.sock');
    const d = await startDaemonProcess(socket, { config: writeAgentConfig(dir) });
    const tools = attackerTools();
    try {
      // An admin's mistake (or a hostPath mount) exposes the socket to everyone.
      chmodSync(home, 0o711);
      chmodSync(socket, 0o666);
      const r = await asUser(['--reuid', '107', '--regid', '107', '--clear-groups'], tools, socket);
      // The daemon closed the connection without an answer: the shim fell back (to the stand-in).
      expect(r.stdout).toBe('fallback-ran\n');
      await waitFor(async () => d.output().includes('shim connection refused'), { timeoutMs: 10_000, intervalMs: 20, what: 'the refusal in the log' });
      expect(d.output()).toMatch(/"peer":\{"pid":\d+,"uid":107,"gid":107,"groups":\[\]\},"socketGroup":null,"msg":"shim connection refused: the peer is neither root nor in socketGroup"/);
      expect(d.output()).not.toMatch(/"msg":"cni invocation"/);
      // Root is still served.
      expect((await runWithEnv(SHIM, { CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket }, '')).code).toBe(0);
    } finally {
      await d.stop();
    }
  });

  it('with socketGroup, its members are served (directory root:group 0710, socket 0660); others cannot reach it', async () => {
    const home = mkdtempSync(join(dir, 'group-'));
    chmodSync(home, 0o711);
    const socket = join(home, 'run', 'cni.sock');
    const d = await startDaemonProcess(socket, { config: writeAgentConfig(dir, { socketGroup: GROUP }) });
    const tools = attackerTools();
    try {
      expect(statSync(join(home, 'run'))).toMatchObject({ uid: 0, gid: GROUP });
      expect(statSync(join(home, 'run')).mode & 0o7777).toBe(0o710);
      expect(statSync(socket)).toMatchObject({ uid: 0, gid: GROUP });
      expect(statSync(socket).mode & 0o777).toBe(0o660);
      const member = await asUser(['--reuid', '107', '--regid', '107', '--groups', String(GROUP)], tools, socket);
      expect(JSON.parse(member.stdout)).toMatchObject({ supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
      const other = await asUser(['--reuid', '107', '--regid', '107', '--clear-groups'], tools, socket);
      expect(other.stdout).toBe('fallback-ran\n');
    } finally {
      await d.stop();
    }
  });
});

describe.skipIf(!netnsAvailable())('one invocation cannot hold up the others (hole 6)', { timeout: 180_000 }, () => {
  const TOKEN = 'node-token-0123';
  const POD = 'virt-launcher-vmi-a-x7k2q';
  let a: CniPod;
  let b: CniPod;
  /** Stops what a test started even if it timed out (a test's finally does not run then). */
  const stops: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    await makeApiCertificate(dir);
    a = await makeCniPod({ podCidr: '10.244.95.0/24' });
    b = await makeCniPod({ node: a.node, podCidr: '10.244.95.0/24', rangeStart: '10.244.95.50', rangeEnd: '10.244.95.60' });
  });
  afterAll(async () => {
    for (const stop of stops) await stop();
    await b?.cleanup();
    await a?.cleanup();
  });

  it("an ADD by the fallback before the daemon's first start leaves the shared default layout acceptable to the daemon (state root and socket directory root 0700)", async () => {
    // The default layout, moved into the test's folder: /run/virt-net-agent/cni (state) beside /run/virt-net-agent/cni.sock.
    const home = mkdtempSync(join(dir, 'layout-'));
    const run = join(home, 'run', 'virt-net-agent');
    const config = writeAgentConfig(dir, { stateRoot: join(run, 'cni'), socket: join(run, 'cni.sock') });
    const env = { CNI_CONTAINERID: b.containerId, CNI_NETNS: b.pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', VIRT_NET_AGENT_CONFIG: config };
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'podnet', type: 'virt-net-agent', binding: 'masquerade', prevResult: b.attachments[0]?.result });
    const add = await plugin(a.node, { ...env, CNI_COMMAND: 'ADD' }, conf);
    try {
      expect(add.code, add.stdout).toBe(0);
      for (const folder of [run, join(run, 'cni')]) expect((statSync(folder).mode & 0o7777).toString(8), folder).toBe('700');
      const d = await startDaemonProcess(join(run, 'cni.sock'), { config });
      await d.stop();
    } finally {
      expect((await plugin(a.node, { ...env, CNI_COMMAND: 'DEL' }, conf)).code).toBe(0);
    }
  });

  it('an ADD whose API hangs is answered "try again later" at its deadline; an ADD for another pod is answered meanwhile; a DEL of the hung pod waits until that work ends', async () => {
    const api = await startFakeApi(a.node, dir, { [`/api/v1/namespaces/default/pods/${POD}`]: { $trickle: true } }, TOKEN);
    stops.push(() => api.stop());
    const stateRoot = join(dir, 'hang-state');
    mkdirSync(stateRoot);
    const config = writeAgentConfig(dir, { stateRoot, kubeconfig: writeKubeconfig(dir, api.port, { token: TOKEN }), apiTimeoutMs: 15_000, invocationTimeoutMs: 5_000 });
    const socket = join(mkdtempSync(join(dir, 'hang-')), 'cni.sock');
    const d = await startDaemonProcess(socket, { config, wrapper: ['ip', 'netns', 'exec', a.node.name] });
    stops.push(() => d.stop());
    const shim = (pod: CniPod, command: string, ifname: string, conf: Record<string, unknown>): Promise<ProgramRun> =>
      runWithEnv(SHIM, {
        CNI_COMMAND: command,
        CNI_CONTAINERID: pod.containerId,
        CNI_NETNS: pod.pod.path,
        CNI_IFNAME: ifname,
        CNI_PATH: '/usr/lib/cni',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${POD}`,
        VIRT_NET_AGENT_CNI_SOCKET: socket,
      }, JSON.stringify({ cniVersion: '1.0.0', type: 'virt-net-agent', ...conf }));
    const bindingNad = { name: 'vna-binding', args: { cni: { logicNetworkName: 'default' } } };
    const chained = { name: 'podnet', binding: 'masquerade', prevResult: b.attachments[0]?.result };
    try {
      const started = Date.now();
      let hungAnsweredAt = 0;
      const hung = shim(a, 'ADD', 'net1', bindingNad).then((r) => {
        hungAnsweredAt = Date.now();
        return r;
      });
      await waitFor(async () => /trickle/.test(api.log()), { timeoutMs: 30_000, intervalMs: 20, what: 'the hanging ADD at the API' });
      const other = await shim(b, 'ADD', 'eth0', chained);
      expect(hungAnsweredAt, 'the other pod was answered while the first still hung').toBe(0);
      expect(other.code, other.stdout).toBe(0);
      const answer = await hung;
      expect(answer.code).toBe(1);
      expect(JSON.parse(answer.stdout)).toMatchObject({ code: 11, msg: 'virt-net-agent cni-daemon: the invocation did not finish within invocationTimeoutMs (5000 ms); try again later' });
      expect(d.output()).toMatch(/"deadlineMs":5000,"msg":"cni invocation overran its deadline/);
      // The overrun ADD still holds its pod: a DEL of it waits (and is itself told to try again) until that work ends
      // at the API deadline, 15 s in; then the runtime's retry succeeds.
      let del = await shim(a, 'DEL', 'net1', bindingNad);
      while (del.code !== 0) {
        expect(JSON.parse(del.stdout)).toMatchObject({ code: 11 });
        del = await shim(a, 'DEL', 'net1', bindingNad);
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(14_000);
      expect((await shim(b, 'DEL', 'eth0', chained)).code).toBe(0);
    } finally {
      await d.stop();
      await api.stop();
    }
  });
  it("a pod's state folder locked by another process (the fallback executable, a virt-handler call) holds up only that pod's invocation", async () => {
    const stateRoot = join(dir, 'locked-state');
    mkdirSync(stateRoot);
    const config = writeAgentConfig(dir, { stateRoot, invocationTimeoutMs: 5_000 });
    const socket = join(mkdtempSync(join(dir, 'locked-')), 'cni.sock');
    const d = await startDaemonProcess(socket, { config, wrapper: ['ip', 'netns', 'exec', a.node.name] });
    stops.push(() => d.stop());
    const shim = (pod: CniPod, command: string, name: string): Promise<ProgramRun> =>
      runWithEnv(SHIM, {
        CNI_COMMAND: command,
        CNI_CONTAINERID: pod.containerId,
        CNI_NETNS: pod.pod.path,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
        VIRT_NET_AGENT_CNI_SOCKET: socket,
      }, JSON.stringify({ cniVersion: '1.0.0', name, type: 'virt-net-agent', binding: 'masquerade', prevResult: pod.attachments[0]?.result }));
    let holder: ReturnType<typeof spawn> | null = null;
    try {
      expect((await shim(b, 'ADD', 'podnet-b')).code).toBe(0);
      const [folder] = readdirSync(stateRoot);
      expect(folder).toBeDefined();
      // Another process holds b's lock, as a concurrent fallback invocation or a hung one would.
      const lockFile = join(stateRoot, folder ?? '', 'lock');
      const held = (): boolean => spawnSync('flock', ['--exclusive', '--nonblock', lockFile, 'true']).status === 1;
      // --no-fork: flock execs sleep itself, so killing that one process releases the lock.
      holder = spawn('flock', ['--exclusive', '--no-fork', lockFile, 'sleep', '100'], { stdio: 'ignore' });
      await waitFor(async () => held(), { timeoutMs: 10_000, intervalMs: 20, what: 'the lock held by the other process' });
      // b's DEL waits for the lock; the daemon answers it at its deadline, and answers another pod, while the lock is
      // still held (a daemon blocked in flock(2) answers nothing until the holder exits).
      const waited = await shim(b, 'DEL', 'podnet-b');
      expect(JSON.parse(waited.stdout)).toMatchObject({ code: 11 });
      expect(held(), 'the lock was still held when the waiting DEL was answered').toBe(true);
      const other = await shim(a, 'ADD', 'podnet-a');
      expect(other.code, other.stdout).toBe(0);
      expect(held(), 'the lock was still held when the other pod was answered').toBe(true);
      expect((await shim(a, 'DEL', 'podnet-a')).code).toBe(0);
      holder.kill('SIGKILL');
      await waitFor(async () => (await shim(b, 'DEL', 'podnet-b')).code === 0, { timeoutMs: 60_000, intervalMs: 200, what: "b's DEL once the lock is free" });
      expect(readdirSync(stateRoot)).toEqual([]);
    } finally {
      holder?.kill('SIGKILL');
      await d.stop();
    }
  });
});
