// Issue 26, holes 4 and 6: every namespace the agent is told to act in (CNI_NETNS, --netns, --pid, an attachment record's netns) is checked first: opened without blocking, on nsfs, a network namespace, never the node's own.
//
// The attacks: a FIFO, a regular file, a directory and a UTS namespace as CNI_NETNS; PID 1's namespace and the
// runtime's own as CNI_NETNS (the plugin runs in a private PID namespace inside the test's "node" netns, so PID 1 there
// is a process of that test namespace, never the machine's); `discover --pid 1` the same way; and records that name
// the node's namespace for DEL and GC (what a record holds when its /proc/PID/ns/net PID was reused by a node
// process), with look-alike links there that a teardown would delete. Nothing of the machine is touched.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, dumpNetns } from '../helpers/agent-run.js';
import { plugin, usePluginPod } from '../helpers/cni-plugin.js';
import { netnsAvailable } from '../helpers/netns.js';

/** Runs the plugin as PID 2 of a fresh PID namespace (with its own /proc): PID 1 there is a shell in the test's node netns. */
const PRIVATE_PID_NS = ['unshare', '--pid', '--fork', '--mount-proc'];

describe.skipIf(!netnsAvailable())('namespaces are checked before use (holes 4 and 6)', { timeout: 180_000 }, () => {
  const pod = usePluginPod('vna-sec-netns-', { podCidr: '10.244.94.0/24' });
  const { env } = pod;
  const conf = (extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ cniVersion: '1.1.0', name: 'podnet', type: 'virt-net-agent', binding: 'masquerade', prevResult: pod.cni.attachments[0]?.result, ...extra });

  it('a FIFO as CNI_NETNS is error 4 at once (ADD, CHECK, DEL), not a hang', async () => {
    const fifo = join(pod.dir, 'fifo-netns');
    execFileSync('mkfifo', [fifo]);
    for (const command of ['ADD', 'CHECK', 'DEL']) {
      const started = Date.now();
      const r = await plugin(pod.cni.node, env(command, { CNI_NETNS: fifo }), conf());
      if (command === 'DEL') {
        // DEL of an attachment never added has nothing to undo: success without opening anything.
        expect(r.code, r.stdout).toBe(0);
      } else {
        expect(r.json).toMatchObject({ code: command === 'CHECK' ? 101 : 4 });
      }
      expect(Date.now() - started).toBeLessThan(30_000);
    }
    const add = await plugin(pod.cni.node, env('ADD', { CNI_NETNS: fifo }), conf());
    expect(add.json).toMatchObject({ code: 4, msg: `CNI_NETNS: ${fifo} is a FIFO, not a network namespace` });
    expect(readdirSync(pod.stateRoot)).toEqual([]);
  });

  it('a regular file, a directory, a UTS namespace as CNI_NETNS: error 4 naming it, nothing recorded', async () => {
    const file = join(pod.dir, 'plain-netns');
    writeFileSync(file, '');
    const cases: [string, RegExp][] = [
      [file, /^CNI_NETNS: .* is not a network namespace \(a regular file on filesystem 0x[0-9a-f]+, not nsfs\)$/],
      [pod.dir, /^CNI_NETNS: .* is a directory, not a network namespace$/],
      ['/proc/self/ns/uts', /^CNI_NETNS: \/proc\/self\/ns\/uts is a namespace but not a network namespace/],
    ];
    for (const [netns, msg] of cases) {
      const r = await plugin(pod.cni.node, env('ADD', { CNI_NETNS: netns }), conf());
      expect(r.json).toMatchObject({ code: 4, msg: expect.stringMatching(msg) });
    }
    expect(readdirSync(pod.stateRoot)).toEqual([]);
  });

  it("PID 1's network namespace and the runtime's own as CNI_NETNS are refused; the node netns is unchanged", async () => {
    const node = await dumpNetns(pod.cni.node);
    for (const netns of ['/proc/1/ns/net', '/proc/self/ns/net', pod.cni.node.path]) {
      const r = await plugin(pod.cni.node, env('ADD', { CNI_NETNS: netns }), conf(), undefined, PRIVATE_PID_NS);
      expect(r.json, r.stdout + r.stderr).toMatchObject({ code: 4, msg: expect.stringMatching(/^CNI_NETNS: .* is (the node's own network namespace \(that of PID 1\)|this process's own network namespace)/) });
    }
    expect(await dumpNetns(pod.cni.node)).toEqual(node);
    expect(readdirSync(pod.stateRoot)).toEqual([]);
  });

  it('discover --pid 1 and --netns of PID 1 are refused naming the flag', async () => {
    for (const flags of [['--pid', '1'], ['--netns', '/proc/1/ns/net']]) {
      const r = await pod.cni.node.exec([...PRIVATE_PID_NS, process.execPath, CLI, 'discover', ...flags, '--hostname', 'h']);
      expect(r.code, r.stdout).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^virt-net-agent: ${flags[0]}: /proc/1/ns/net is the node's own network namespace \\(that of PID 1\\)`));
    }
  });

  it('passt --netns of a FIFO is refused before passt is started (nsenter would block on it)', async () => {
    const fifo = join(pod.dir, 'fifo-passt');
    execFileSync('mkfifo', [fifo]);
    const vmi = join(pod.dir, 'passt-vmi.json');
    writeFileSync(vmi, JSON.stringify({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'v', namespace: 'd', uid: 'u' }, spec: { domain: { devices: { interfaces: [{ name: 'default', passtBinding: {} }] } }, networks: [{ name: 'default', pod: {} }] } }));
    // A socket folder passt's user could use, so that nothing but the namespace stands in the way (the old code then
    // started passt through nsenter, which blocked on the FIFO, and supervised it forever).
    const open = mkdtempSync(join(tmpdir(), 'vna-sec-passt-'));
    try {
      chmodSync(open, 0o755);
      const r = await pod.cni.node.exec([process.execPath, CLI, 'passt', '--vmi', vmi, '--netns', fifo, '--socket-dir', join(open, 'sockets')], { timeoutMs: 30_000 });
      expect(r.stderr).toBe(`virt-net-agent: --netns: ${fifo} is a FIFO, not a network namespace\n`);
      expect(r.code).toBe(2);
    } finally {
      rmSync(open, { recursive: true, force: true });
    }
  });

  /** ADDs the attachment, then makes its record name the node netns, where look-alike links wait. */
  async function recordNamingTheNode(): Promise<{ key: string; before: unknown }> {
    const add = await plugin(pod.cni.node, env('ADD'), conf());
    expect(add.code, add.stdout).toBe(0);
    const [key = ''] = readdirSync(pod.stateRoot);
    const file = join(pod.stateRoot, key, 'attachment.json');
    writeFileSync(file, JSON.stringify({ ...(JSON.parse(readFileSync(file, 'utf8')) as object), netns: pod.cni.node.path }));
    // What a teardown there would delete: the links ADD made in the pod, by name, and the node bridge cni0 itself.
    await pod.cni.node.execOk(['ip', 'link', 'add', 'k6t-eth0', 'type', 'bridge']);
    await pod.cni.node.execOk(['ip', 'tuntap', 'add', 'tap0', 'mode', 'tap']);
    return { key, before: await dumpNetns(pod.cni.node) };
  }

  async function cleanupLookalikes(): Promise<void> {
    await pod.cni.node.exec(['ip', 'link', 'del', 'k6t-eth0']);
    await pod.cni.node.exec(['ip', 'link', 'del', 'tap0']);
    // The pod's own plumbing stayed (its record is gone): a fresh ADD (which converges on it) and DEL undo it.
    await plugin(pod.cni.node, env('ADD'), conf());
    await plugin(pod.cni.node, env('DEL'), conf());
  }

  it('DEL of a record naming the node netns leaves its links alone, drops the record and says so', async () => {
    const { before } = await recordNamingTheNode();
    try {
      const del = await plugin(pod.cni.node, env('DEL', { CNI_NETNS: '' }), conf());
      expect(await dumpNetns(pod.cni.node)).toEqual(before);
      expect(del.code, del.stdout).toBe(0);
      expect(readdirSync(pod.stateRoot)).toEqual([]);
      expect(del.stderr).toMatch(/"msg":"the recorded network namespace is refused: nothing in it is touched, the attachment record is removed"/);
      expect(del.stderr).toContain("this process's own network namespace");
    } finally {
      await cleanupLookalikes();
    }
  });

  it('GC of a record naming the node netns leaves its links alone and drops the record', async () => {
    const { before } = await recordNamingTheNode();
    try {
      const gc = await plugin(pod.cni.node, { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni', VIRT_NET_AGENT_CONFIG: pod.config }, conf({ 'cni.dev/valid-attachments': [] }));
      expect(await dumpNetns(pod.cni.node)).toEqual(before);
      expect(gc.code, gc.stdout).toBe(0);
      expect(readdirSync(pod.stateRoot)).toEqual([]);
    } finally {
      await cleanupLookalikes();
    }
  });

  it('an explicit CNI_NETNS that is the node netns is error 4 for DEL (the record stays for a DEL with the right one)', async () => {
    const add = await plugin(pod.cni.node, env('ADD'), conf());
    expect(add.code, add.stdout).toBe(0);
    const del = await plugin(pod.cni.node, env('DEL', { CNI_NETNS: pod.cni.node.path }), conf());
    expect(del.json).toMatchObject({ code: 4, msg: expect.stringMatching(/^CNI_NETNS: .* is this process's own network namespace/) });
    expect(readdirSync(pod.stateRoot)).toHaveLength(1);
    const right = await plugin(pod.cni.node, env('DEL'), conf());
    expect(right.code, right.stdout).toBe(0);
    expect(readdirSync(pod.stateRoot)).toEqual([]);
  });
});
