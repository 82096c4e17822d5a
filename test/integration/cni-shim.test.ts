// The delivered plugin: the static shim forwards env + stdin to a cni-daemon and prints its answer, and with no daemon the fallback executable answers (node not on PATH).
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startCniDaemon, type CniDaemon } from '../../agent/cni/daemon.js';
import { defaultAgentConfig, type AgentConfig } from '../../agent/cni/agent-config.js';
import { handleCniInvocation as handle, type CniInvocation } from '../../agent/cni/invocation.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { FALLBACK_DIR, SHIM, runWithEnv, startDaemonProcess } from '../helpers/cni-shim.js';

const silent = pino({ level: 'silent' });
let dir = '';
/** The agent configuration of this test: its state root in the test's folder. */
let agent: AgentConfig;
let config = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vna-shim-'));
  config = writeAgentConfig(dir);
  agent = { ...defaultAgentConfig(), source: config, stateRoot: join(dir, 'state') };
});
const handleCniInvocation = (invocation: CniInvocation) => handle(invocation, agent);
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A plugin installed like scripts/install-cni.sh does it: the shim and virt-net-agent.d/ in one bin dir. */
function install(): string {
  const bin = join(dir, 'bin');
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin);
  copyFileSync(SHIM, join(bin, 'virt-net-agent'));
  chmodSync(join(bin, 'virt-net-agent'), 0o755);
  symlinkSync(FALLBACK_DIR, join(bin, 'virt-net-agent.d'));
  return join(bin, 'virt-net-agent');
}

const CNI_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c0ffee', CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_ARGS: 'K8S_POD_NAME=x;IgnoreUnknown=1', CNI_PATH: '/opt/cni/bin' };

describe('the shim and an in-process daemon', () => {
  let daemon: CniDaemon | undefined;
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
  });

  it('exists as a static executable after the build', () => {
    expect(existsSync(SHIM)).toBe(true);
    expect(existsSync(join(FALLBACK_DIR, 'virt-net-agent'))).toBe(true);
  });

  it('forwards every environment variable and stdin byte for byte, and returns stdout and the exit code', async () => {
    const seen: CniInvocation[] = [];
    const socket = join(dir, 'd.sock');
    daemon = await startCniDaemon({
      socketPath: socket,
      logger: silent,
      agent,
      handler: async (inv) => {
        seen.push(inv);
        return { stdout: `${JSON.stringify({ env: inv.env, stdin: inv.stdin })}\n`, exitCode: 7 };
      },
    });
    const stdin = `${JSON.stringify({ cniVersion: '1.1.0', name: 'n', type: 'virt-net-agent', big: 'ü'.repeat(300_000) })}`;
    const r = await runWithEnv(SHIM, { ...CNI_ENV, VIRT_NET_AGENT_CNI_SOCKET: socket, EMPTY: '' }, stdin);
    expect(r.code).toBe(7);
    const answer = JSON.parse(r.stdout) as { env: Record<string, string>; stdin: string };
    expect(answer.stdin).toBe(stdin);
    expect(answer.env).toEqual({ ...CNI_ENV, VIRT_NET_AGENT_CNI_SOCKET: socket, EMPTY: '' });
    expect(seen).toHaveLength(1);
  });

  it('answers concurrent invocations: different pods at the same time, one pod one invocation at a time', async () => {
    let running = 0;
    let maxRunning = 0;
    const perPod = new Map<string, number>();
    let maxPerPod = 0;
    const socket = join(dir, 'd.sock');
    daemon = await startCniDaemon({
      socketPath: socket,
      logger: silent,
      agent,
      handler: async (inv) => {
        const pod = inv.env['CNI_CONTAINERID'] ?? '';
        running++;
        perPod.set(pod, (perPod.get(pod) ?? 0) + 1);
        maxRunning = Math.max(maxRunning, running);
        maxPerPod = Math.max(maxPerPod, perPod.get(pod) ?? 0);
        await new Promise((r) => setTimeout(r, 20));
        running--;
        perPod.set(pod, (perPod.get(pod) ?? 0) - 1);
        return { stdout: `${pod}:${inv.stdin}`, exitCode: 0 };
      },
    });
    // 16 invocations for 4 pods: the pods' run side by side, each pod's one after another.
    const pods = Array.from({ length: 16 }, (_, i) => `c${i % 4}`);
    const runs = await Promise.all(pods.map((pod, i) => runWithEnv(SHIM, { CNI_COMMAND: 'ADD', CNI_CONTAINERID: pod, VIRT_NET_AGENT_CNI_SOCKET: socket }, `{"name":"n","i":${i}}`)));
    expect(runs.map((r) => r.stdout)).toEqual(pods.map((pod, i) => `${pod}:{"name":"n","i":${i}}`));
    expect(runs.every((r) => r.code === 0)).toBe(true);
    expect(maxRunning).toBeGreaterThan(1);
    expect(maxPerPod).toBe(1);
    expect(daemon.served()).toBe(16);
  });

  it('a handler that throws is a spec error (code 100), and the daemon keeps serving', async () => {
    const socket = join(dir, 'd.sock');
    let calls = 0;
    daemon = await startCniDaemon({
      socketPath: socket,
      logger: silent,
      agent,
      handler: async (inv) => {
        if (calls++ === 0) throw new Error('boom');
        return handleCniInvocation(inv);
      },
    });
    const first = await runWithEnv(SHIM, { CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket }, '');
    expect(first.code).toBe(1);
    expect(JSON.parse(first.stdout)).toEqual({ cniVersion: '1.1.0', code: 100, msg: 'virt-net-agent cni-daemon: internal error', details: 'boom' });
    const second = await runWithEnv(SHIM, { CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket }, '');
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] });
  });

  it('a malformed request closes that connection only', async () => {
    const socket = join(dir, 'd.sock');
    daemon = await startCniDaemon({ socketPath: socket, logger: silent, agent });
    const { connect } = await import('node:net');
    await new Promise<void>((resolve) => {
      const c = connect(socket, () => c.write('GET / HTTP/1.0\r\n\r\n'));
      c.on('close', () => resolve());
      c.on('error', () => undefined);
    });
    const r = await runWithEnv(SHIM, { CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket }, '');
    expect(r.code).toBe(0);
  });
});

describe('the cni-daemon process', { timeout: 60_000 }, () => {
  it('serves the shim (the real plugin: VERSION), refuses a second daemon on its socket, removes its socket on SIGTERM', async () => {
    const socket = join(dir, 'daemon.sock');
    const d = await startDaemonProcess(socket, { config });
    try {
      const shim = install();
      const [viaDaemon, direct] = await Promise.all([
        runWithEnv(shim, { CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket }, ''),
        handleCniInvocation({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' }),
      ]);
      expect(viaDaemon).toEqual({ code: 0, stdout: direct.stdout, stderr: '' });
      // The config file beside the shim names the socket too.
      writeFileSync(`${shim}.conf`, `# virt-net-agent shim\nsocket=${socket}\n`);
      const viaConf = await runWithEnv(shim, { CNI_COMMAND: 'VERSION' }, '');
      expect(viaConf.stdout).toBe(direct.stdout);
      const second = await startDaemonProcess(socket, { config }).then(
        async (p) => {
          await p.stop();
          return 'started';
        },
        (e: unknown) => String(e),
      );
      expect(second).not.toBe('started');
      expect(d.output()).toMatch(/"msg":"cni invocation"/);
      expect(d.output()).toMatch(/"command":"VERSION"/);
      // Its link deletions wait for the kernel on a thread of their own (drivers/netlink-worker.ts).
      expect(d.output()).toMatch(/"backgroundDeletes":true,"msg":"cni-daemon listening"/);
    } finally {
      expect(await d.stop()).toBe(0);
    }
    expect(existsSync(socket)).toBe(false);
  });

  it('runs from the fallback executable too (how install-cni.sh deploys it, no node on PATH), its deletion thread included', async () => {
    const socket = join(dir, 'sea-daemon.sock');
    const d = await startDaemonProcess(socket, { config, env: { PATH: join(dir, 'empty-path') }, executable: join(FALLBACK_DIR, 'virt-net-agent') });
    try {
      expect(d.output()).toMatch(/"backgroundDeletes":true,"msg":"cni-daemon listening"/);
      const r = await runWithEnv(SHIM, { CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: socket }, '');
      expect(r.code).toBe(0);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});

describe('no daemon: the fallback executable', { timeout: 60_000 }, () => {
  it('answers with node absent from PATH (empty environment but CNI_*)', async () => {
    const shim = install();
    const env = { PATH: join(dir, 'empty-path'), CNI_COMMAND: 'VERSION', VIRT_NET_AGENT_CNI_SOCKET: join(dir, 'nobody.sock'), VIRT_NET_AGENT_CONFIG: config };
    // Nothing called node can be found on that PATH.
    expect((await runWithEnv('/bin/sh', env, '', ['-c', 'command -v node || echo none'])).stdout.trim()).toBe('none');
    const r = await runWithEnv(shim, env, '');
    const direct = await handleCniInvocation({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' });
    expect(r).toEqual({ code: 0, stdout: direct.stdout, stderr: '' });
    const add = await runWithEnv(shim, { ...env, ...CNI_ENV }, '{"cniVersion":"1.1.0","name":"n","type":"virt-net-agent"}');
    const addDirect = await handleCniInvocation({ env: CNI_ENV, stdin: '{"cniVersion":"1.1.0","name":"n","type":"virt-net-agent"}' });
    expect({ code: add.code, stdout: add.stdout }).toEqual({ code: addDirect.exitCode, stdout: addDirect.stdout });
  });

  it("runs under the agent configuration the shim's .conf names (config=PATH → cni --config PATH)", async () => {
    const shim = install();
    // A configuration the fallback must refuse proves it read this one: the error names the file and the setting.
    const wrong = writeAgentConfig(dir, { stateRoot: 'relative/state' });
    writeFileSync(`${shim}.conf`, `socket=${join(dir, 'nobody.sock')}\nconfig=${wrong}\n`);
    const env = { PATH: join(dir, 'empty-path'), ...CNI_ENV };
    const r = await runWithEnv(shim, env, '{"cniVersion":"1.1.0","name":"n","type":"virt-net-agent"}');
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 7, msg: `${wrong}: stateRoot: must be an absolute path, got "relative/state"` });
    // VERSION needs no configuration and still answers.
    expect((await runWithEnv(shim, { ...env, CNI_COMMAND: 'VERSION' }, '')).code).toBe(0);
    // The line wins over the environment's VIRT_NET_AGENT_CONFIG (the .conf is the node's installation).
    const viaEnv = await runWithEnv(shim, { ...env, VIRT_NET_AGENT_CONFIG: config }, '{"cniVersion":"1.1.0","name":"n","type":"virt-net-agent"}');
    expect(JSON.parse(viaEnv.stdout)).toMatchObject({ code: 7 });
  });

  it('gets the runtime stdin untouched, also when a daemon accepted and then closed the connection', async () => {
    const fake = join(dir, 'fake-fallback');
    writeFileSync(fake, '#!/bin/sh\n[ "$1" = cni ] || exit 9\necho "cmd=$CNI_COMMAND"\nexec cat\n');
    chmodSync(fake, 0o755);
    const stdin = 'x'.repeat(200_000);
    const down = await runWithEnv(SHIM, { CNI_COMMAND: 'DEL', VIRT_NET_AGENT_CNI_SOCKET: join(dir, 'none.sock'), VIRT_NET_AGENT_CNI_FALLBACK: fake }, stdin);
    expect(down).toEqual({ code: 0, stdout: `cmd=DEL\n${stdin}`, stderr: '' });
    // A daemon that dies on the request: the shim already read stdin and pipes it to the fallback.
    const socket = join(dir, 'dying.sock');
    const server = createServer((c) => c.once('data', () => c.destroy()));
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      const dying = await runWithEnv(SHIM, { CNI_COMMAND: 'CHECK', VIRT_NET_AGENT_CNI_SOCKET: socket, VIRT_NET_AGENT_CNI_FALLBACK: fake }, stdin);
      expect(dying).toEqual({ code: 0, stdout: `cmd=CHECK\n${stdin}`, stderr: '' });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('neither daemon nor fallback: a spec error (code 11) naming both', async () => {
    const r = await runWithEnv(SHIM, { CNI_COMMAND: 'ADD', VIRT_NET_AGENT_CNI_SOCKET: join(dir, 'none.sock'), VIRT_NET_AGENT_CNI_FALLBACK: join(dir, 'missing') }, '{}');
    expect(r.code).toBe(1);
    const err = JSON.parse(r.stdout) as { code: number; msg: string; details: string };
    expect(err.code).toBe(11);
    expect(err.details).toContain('none.sock');
    expect(err.details).toContain('missing');
  });
});
