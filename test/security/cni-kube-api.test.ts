// Issue 26, holes 3 and 6 on the Kubernetes API path: a slow or endless API server cannot hold an invocation past the configured deadline, a huge answer is cut at the configured cap, and credentials never travel over plain http or to an unverified server unless the admin allows it.
//
// The "servers" are stand-ins (test/helpers/fake-kube-api.mjs) in the test's own node netns on loopback; the plugin
// runs there as libcni runs it, with the node's agent configuration naming the kubeconfig (role 2, as Multus calls a
// binding plugin's NAD).
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpNetns } from '../helpers/agent-run.js';
import { writeAgentConfig } from '../helpers/agent-config.js';
import { makeCniPod, type CniPod } from '../helpers/cni.js';
import { plugin, type PluginRun } from '../helpers/cni-plugin.js';
import { makeApiCertificate, startFakeApi, writeKubeconfig, type FakeApi } from '../helpers/kube-api.js';
import { netnsAvailable } from '../helpers/netns.js';

const TOKEN = 'node-token-0123';
const POD = 'virt-launcher-vmi-a-x7k2q';
const POD_PATH = `/api/v1/namespaces/default/pods/${POD}`;

describe.skipIf(!netnsAvailable())('the Kubernetes API is reached with a deadline, a cap and TLS (holes 3, 6)', { timeout: 180_000 }, () => {
  let dir: string;
  let stateRoot: string;
  let cni: CniPod;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-sec-api-'));
    stateRoot = join(dir, 'state');
    mkdirSync(stateRoot);
    await makeApiCertificate(dir);
    cni = await makeCniPod({ podCidr: '10.244.93.0/24' });
  });
  afterAll(async () => {
    await cni?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (config: string): Record<string, string> => ({
    CNI_COMMAND: 'ADD',
    CNI_CONTAINERID: cni.containerId,
    CNI_NETNS: cni.pod.path,
    CNI_IFNAME: 'net1',
    CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${POD}`,
    VIRT_NET_AGENT_CONFIG: config,
  });
  const NAD = JSON.stringify({ cniVersion: '1.0.0', name: 'vna-binding', type: 'virt-net-agent', args: { cni: { logicNetworkName: 'default' } } });

  /** ADD under an agent configuration with `settings`; the pod and the state root must be unchanged. */
  async function add(settings: Record<string, unknown>): Promise<{ run: PluginRun; ms: number }> {
    const config = writeAgentConfig(dir, { stateRoot, ...settings });
    const before = await dumpNetns(cni.pod);
    const started = Date.now();
    const run = await plugin(cni.node, env(config), NAD);
    const ms = Date.now() - started;
    expect(readdirSync(stateRoot)).toEqual([]);
    expect(await dumpNetns(cni.pod)).toEqual(before);
    return { run, ms };
  }

  async function withApi(objects: Record<string, unknown>, fn: (api: FakeApi) => Promise<void>, http = false): Promise<void> {
    const api = await startFakeApi(cni.node, dir, objects, TOKEN, http);
    try {
      await fn(api);
    } finally {
      await api.stop();
    }
  }

  it('a server that answers one byte every 200 ms is cut at apiTimeoutMs (error 11 naming the deadline)', async () => {
    await withApi({ [POD_PATH]: { $trickle: true } }, async (api) => {
      const { run, ms } = await add({ kubeconfig: writeKubeconfig(dir, api.port, { token: TOKEN }), apiTimeoutMs: 1500 });
      expect(api.log()).toMatch(/trickle/);
      expect(run.json).toMatchObject({ code: 11, msg: expect.stringMatching(/^kubeconfig: cannot read pod default\/virt-launcher-vmi-a-x7k2q from the Kubernetes API: no complete answer within 1500 ms/) });
      // The idle timeout alone never fires against a trickle; the overall deadline does (generous bound: a loaded machine).
      expect(ms).toBeLessThan(30_000);
    });
  });

  it('an endless answer is cut at apiMaxResponseBytes (error 11), not read into memory', async () => {
    await withApi({ [POD_PATH]: { $flood: 8 << 20 } }, async (api) => {
      const { run } = await add({ kubeconfig: writeKubeconfig(dir, api.port, { token: TOKEN }), apiMaxResponseBytes: 1 << 20 });
      expect(run.json).toMatchObject({ code: 11, msg: expect.stringMatching(/the answer is larger than 1048576 bytes/) });
    });
  });

  it('plain http:// is refused before any request (error 7) unless allowInsecureApi; then the token goes there', async () => {
    await withApi(
      { [POD_PATH]: { $status: 404 } },
      async (api) => {
        const kubeconfig = writeKubeconfig(dir, api.port, { token: TOKEN, server: `http://127.0.0.1:${api.port}` });
        const { run } = await add({ kubeconfig });
        expect(api.log()).not.toMatch(/^GET /m);
        expect(run.json).toMatchObject({ code: 7, msg: expect.stringMatching(/^kubeconfig: .*is plain http:\/\/: credentials and the VMI would travel unprotected \(allowInsecureApi: true/) });
        const allowed = await add({ kubeconfig, allowInsecureApi: true });
        expect(api.log()).toMatch(/^GET \/api\/v1\/namespaces\/default\/pods\/virt-launcher-vmi-a-x7k2q auth=ok status=404/m);
        expect(allowed.run.json).toMatchObject({ code: 11 });
      },
      true,
    );
  });

  it('insecure-skip-tls-verify is refused before any request (error 7) unless allowInsecureApi', async () => {
    await withApi({ [POD_PATH]: { $status: 404 } }, async (api) => {
      const { run } = await add({ kubeconfig: writeKubeconfig(dir, api.port, { token: TOKEN, insecureSkipTlsVerify: true }) });
      expect(api.log()).not.toMatch(/^GET /m);
      expect(run.json).toMatchObject({ code: 7, msg: expect.stringMatching(/^kubeconfig: .*insecure-skip-tls-verify is set/) });
    });
  });
});
