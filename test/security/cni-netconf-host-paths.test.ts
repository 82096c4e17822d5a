// Issue 26, hole 3: a tenant who may write a NetworkAttachmentDefinition writes the plugin's network configuration (Multus hands it to the plugin as root), so stateDir, kubeconfig and vmiPath in it must not choose where root writes, what it reads, or where it sends credentials.
//
// Each attack is the NAD's config as Multus would pass it, run through the plugin process as libcni runs it, with the
// node's own agent configuration (VIRT_NET_AGENT_CONFIG, state root in the test's folder). The victims are files of
// the test's own folder standing in for host files; the "attacker's server" listens on loopback of the test's node
// netns. Nothing of the machine is touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dumpNetns } from '../helpers/agent-run.js';
import { plugin, usePluginPod } from '../helpers/cni-plugin.js';
import { netnsAvailable, waitFor } from '../helpers/netns.js';

describe.skipIf(!netnsAvailable())('a NAD cannot name host paths or credentials (hole 3)', { timeout: 120_000 }, () => {
  const pod = usePluginPod('vna-sec-netconf-', { podCidr: '10.244.91.0/24', cniArgs: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-a-x7k2q' });
  const { env } = pod;
  const chained = (extra: Record<string, unknown>): string =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'tenantnet', type: 'virt-net-agent', binding: 'masquerade', prevResult: pod.cni.attachments[0]?.result, ...extra });
  const bindingPlugin = (extra: Record<string, unknown>): string => JSON.stringify({ cniVersion: '1.0.0', name: 'tenantnet', type: 'virt-net-agent', args: { cni: { logicNetworkName: 'default' } }, ...extra });

  it('stateDir: ADD does not write through the tenant\'s folder (a planted resolv.conf symlink leaves the victim file as it was)', async () => {
    const victim = join(pod.dir, 'victim-passwd');
    writeFileSync(victim, 'root:x:0:0:root:/root:/bin/bash\n');
    const tenantDir = join(pod.dir, 'tenant-state');
    const key = `tenantnet_${pod.cni.containerId}_eth0`;
    mkdirSync(join(tenantDir, key), { recursive: true });
    symlinkSync(victim, join(tenantDir, key, 'resolv.conf'));
    const before = await dumpNetns(pod.cni.pod);
    const run = await plugin(pod.cni.node, env('ADD'), chained({ stateDir: tenantDir }));
    expect(readFileSync(victim, 'utf8')).toBe('root:x:0:0:root:/root:/bin/bash\n');
    expect(await dumpNetns(pod.cni.pod)).toEqual(before);
    expect(run.json).toMatchObject({ code: 7, msg: expect.stringMatching(/^stateDir: a network configuration cannot name host paths or credentials/) });
    expect(readdirSync(pod.stateRoot)).toEqual([]);
  });

  it('stateDir: DEL never acts on the tenant\'s folder (it works on the trusted state root only)', async () => {
    const tenantDir = join(pod.dir, 'tenant-del');
    const key = `tenantnet_${pod.cni.containerId}_eth0`;
    mkdirSync(join(tenantDir, key), { recursive: true });
    writeFileSync(join(tenantDir, key, 'keep-me'), 'data root must not delete\n');
    const run = await plugin(pod.cni.node, env('DEL'), chained({ stateDir: tenantDir }));
    // DEL succeeds (the chain's DEL must go on), and the folder the tenant named is untouched.
    expect(run.code, run.stdout).toBe(0);
    expect(existsSync(join(tenantDir, key, 'keep-me'))).toBe(true);
  });

  it('kubeconfig: the tenant\'s kubeconfig never makes root read a file and send it as a Bearer token (here over plain http)', async () => {
    const secret = join(pod.dir, 'node-secret-token');
    writeFileSync(secret, 'node-root-secret-0123\n', { mode: 0o600 });
    // The tenant's server: logs the Authorization header of every request it gets.
    const server: ChildProcess = spawn('ip', ['netns', 'exec', pod.cni.node.name, process.execPath, '-e', `
      const http = require('node:http');
      const s = http.createServer((req, res) => { process.stdout.write('auth=' + (req.headers.authorization || '') + '\\n'); res.writeHead(404); res.end('{}'); });
      s.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + s.address().port + '\\n'));
      process.on('SIGTERM', () => process.exit(0));`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    server.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await waitFor(async () => /listening \d+/.test(out), { timeoutMs: 20_000, intervalMs: 50, what: "the tenant's server" });
      const port = /listening (\d+)/.exec(out)?.[1] ?? '';
      const kubeconfig = join(pod.dir, 'tenant-kubeconfig');
      writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: k, cluster: {server: "http://127.0.0.1:${port}"}}]\nusers: [{name: u, user: {tokenFile: "${secret}"}}]\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n`);
      const before = await dumpNetns(pod.cni.pod);
      const run = await plugin(pod.cni.node, env('ADD', { CNI_IFNAME: 'net1' }), bindingPlugin({ kubeconfig }));
      // Had a request been sent, its line would be there by now (the plugin waited for its answer before exiting).
      expect(out).not.toMatch(/auth=/);
      expect(run.json).toMatchObject({ code: 7, msg: expect.stringMatching(/^kubeconfig: a network configuration cannot name host paths or credentials/) });
      expect(await dumpNetns(pod.cni.pod)).toEqual(before);
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('vmiPath: root does not read a file the tenant names (a root-only file is not used as the VMI)', async () => {
    const rootOnly = join(pod.dir, 'root-only-vmi.json');
    const vmi = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'a', namespace: 'default' },
      spec: { domain: { devices: { interfaces: [{ name: 'default', binding: { name: 'vna' }, ports: [{ port: 4242 }] }] } }, networks: [{ name: 'default', pod: {} }] },
    };
    writeFileSync(rootOnly, JSON.stringify(vmi), { mode: 0o600 });
    const before = await dumpNetns(pod.cni.pod);
    const run = await plugin(pod.cni.node, env('ADD', { CNI_IFNAME: 'net1' }), bindingPlugin({ vmiPath: rootOnly }));
    try {
      expect(await dumpNetns(pod.cni.pod)).toEqual(before);
      expect(readdirSync(pod.stateRoot)).toEqual([]);
      expect(run.json).toMatchObject({ code: 7, msg: expect.stringMatching(/^vmiPath: a network configuration cannot name host paths or credentials/) });
    } finally {
      await plugin(pod.cni.node, env('DEL', { CNI_IFNAME: 'net1' }), bindingPlugin({}));
    }
  });
});
