// deploy/ run for real: the DaemonSet's pod template (as a Pod) by `podman kube play` from the project's image, then containerd's CRI using the plugin it installed, and an upgrade to a second image version.
//
// Podman 4.3 has no DaemonSet in `kube play`: the test plays the template as a Pod with the ConfigMap, every host path
// of the manifest moved under the test's folder (the node's /opt/cni/bin, /etc/virt-net-agent, /run/virt-net-agent;
// /run/netns stays the host's, where containerd is told to put the sandboxes' namespaces, as on a node), the image
// replaced by the test's tag. Everything runs in the containerd harness' "node" netns (hostNetwork: the daemon sits
// where the runtime runs the plugins). Asserted: the init container installed the shim, its fallback and the .conf
// into the host directory and the configuration into /etc/virt-net-agent; the daemon answers the manifest's readiness
// command; a pod sandbox run through containerd gets our plumbing from that daemon. Upgrade: a second image version
// (the first plus a label) replaces the pod with `kube play --replace`; the sandbox keeps its plumbing, and the new
// daemon tears it down on StopPodSandbox. Skipped (saying why) when the image or containerd tests cannot run here.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentPlugin, bridgeChain, containerdUnavailable, startContainerd, type Containerd } from '../helpers/containerd.js';
import { run, waitFor, type ExecResult } from '../helpers/netns.js';
import { writePauseImage } from '../helpers/pause-image.js';

const why = process.env['VNA_IMAGE'] === '0' ? 'VNA_IMAGE=0' : containerdUnavailable();
const TAG = `deploy-${process.pid}`;
const V1 = `localhost/virt-net-agent:${TAG}-v1`;
const V2 = `localhost/virt-net-agent:${TAG}-v2`;
const POD_INFRA = 'localhost/vna-kube-infra:1.0';
/** The host paths of deploy/30-daemonset.yaml the test moves into its folder. */
const MOVED = ['/opt/cni/bin', '/etc/virt-net-agent', '/run/virt-net-agent'];

interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { template: { spec: Record<string, unknown> & { containers: { name: string; readinessProbe?: { exec: { command: string[] } } }[] } } };
}

function deployDocs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(join(process.cwd(), 'deploy', file), 'utf8')).map((d) => d.toJS() as Doc);
}

/** Every occurrence of a moved host path (as a whole path component prefix) under `root`. */
function movePaths(text: string, root: string): string {
  let out = text;
  for (const p of MOVED) out = out.replace(new RegExp(`(?<![\\w/.-])${p.replace(/\//g, '\\/')}(?=[/"'\\s;]|$)`, 'gm'), `${root}${p}`);
  return out;
}

describe.skipIf(why !== null)(`deploy/ under podman kube play and containerd${why !== null ? ` (skipped: ${why})` : ''}`, { timeout: 900_000 }, () => {
  let dir = '';
  let host = '';
  let env: Record<string, string> = {};
  let c: Containerd | undefined;
  const podName = `vna-node-${process.pid}`;
  let playFile = '';

  function podman(args: readonly string[], timeoutMs = 300_000): Promise<ExecResult> {
    return run(['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'nsenter', `--net=${c!.node.path}`, 'podman', ...args], { timeoutMs });
  }
  async function podmanOk(args: readonly string[], timeoutMs?: number): Promise<string> {
    const r = await podman(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Writes the ConfigMap + the DaemonSet's template as a Pod (host paths moved, `image`) and returns the file. */
  function podYaml(image: string): string {
    const [cm] = deployDocs('20-config.yaml');
    const [ds] = deployDocs('30-daemonset.yaml');
    const spec = structuredClone(ds!.spec!.template.spec) as Record<string, unknown>;
    // What a kubelet does with these and podman does not know: dropped.
    for (const k of ['serviceAccountName', 'priorityClassName', 'tolerations', 'dnsPolicy']) delete spec[k];
    // podman 4.3 removes a "once" init container right after starting it and fails on one that still runs (ours copies
    // ~100 MB): "always" keeps it, which is also what a kubelet's restart does (init containers run again).
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName, labels: { 'app.kubernetes.io/name': 'virt-net-agent' }, annotations: { 'io.podman.annotations.init.container.type': 'always' } },
      spec,
    };
    const text = [stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: cm!.metadata.name }, data: cm!.data }), stringify(pod)].join('---\n');
    const file = join(dir, `play-${image.split(':').pop() ?? ''}.yaml`);
    writeFileSync(file, movePaths(text, host).replaceAll('localhost/virt-net-agent:dev', image));
    return file;
  }

  function readinessCommand(): string[] {
    const [ds] = deployDocs('30-daemonset.yaml');
    const daemon = ds!.spec!.template.spec.containers.find((x) => x.name === 'cni-daemon')!;
    return JSON.parse(movePaths(JSON.stringify(daemon.readinessProbe!.exec.command), host)) as string[];
  }

  async function ready(): Promise<boolean> {
    const r = await podman(['exec', `${podName}-cni-daemon`, ...readinessCommand()], 30_000);
    return r.code === 0;
  }

  async function daemonLog(): Promise<string> {
    return (await podman(['logs', `${podName}-cni-daemon`])).stdout;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vna-deploy-'));
    host = join(dir, 'host');
    for (const p of MOVED) mkdirSync(join(host, p), { recursive: true, mode: 0o755 });
    // The private image store of scripts/image-env.sh, plus what `kube play` needs here: an infra image (podman
    // would build one from catatonit, which Debian does not install with podman) and ulimits the sandbox allows.
    const out = spawnSync('bash', ['-c', '. scripts/image-env.sh && printf "%s\\n%s" "$CONTAINERS_STORAGE_CONF" "$CONTAINERS_CONF"'], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`scripts/image-env.sh: ${out.stderr}`);
    const [storage = '', conf = ''] = out.stdout.split('\n');
    const hard = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(
      join(dir, 'containers.conf'),
      `${readFileSync(conf, 'utf8').replace('[engine]', `[engine]\ninfra_image = "${POD_INFRA}"`)}\n[containers]\ndefault_ulimits = ["nofile=${hard}:${hard}", "nproc=32768:32768"]\n`,
    );
    env = { CONTAINERS_STORAGE_CONF: storage, CONTAINERS_CONF: join(dir, 'containers.conf') };
    // The image, as scripts/build-image.sh builds it (cached after the first build), and a second version of it.
    const build = await run(['env', `VNA_IMAGE_NAME=${V1}`, 'VNA_SKIP_BUILD=1', 'scripts/build-image.sh'], { timeoutMs: 1_200_000 });
    if (build.code !== 0) throw new Error(`scripts/build-image.sh: ${build.stderr.slice(-2000)}`);
    writeFileSync(join(dir, 'Containerfile.v2'), `FROM ${V1}\nLABEL org.virt-net-agent.test.version="2 ${TAG}"\n`);
    c = await startContainerd({ tag: 'deploy', binDir: join(host, '/opt/cni/bin'), netnsUnderStateDir: false, plugins: (self) => [...bridgeChain(self), agentPlugin(self, 'masquerade')] });
    await podmanOk(['build', '--quiet', '-t', V2, '-f', join(dir, 'Containerfile.v2'), dir]);
    writePauseImage(join(dir, 'infra.tar'), POD_INFRA, ['/bin/busybox', 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done']);
    await podmanOk(['load', '--quiet', '-i', join(dir, 'infra.tar')]);
  }, 1_500_000);

  afterAll(async () => {
    if (c !== undefined) {
      // sandboxes first (their DEL needs the daemon), then the daemon pod, then containerd
      for (const s of await c.cri.listPodSandbox().catch(() => [])) {
        await c.cri.stopPodSandbox(s.id).catch(() => undefined);
        await c.cri.removePodSandbox(s.id).catch(() => undefined);
      }
      await podman(['pod', 'rm', '-f', '-t', '10', podName]);
      await podman(['rmi', V2, V1, POD_INFRA]);
      await c.cleanup();
    }
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  }, 300_000);

  it('the init container installs the shim, its fallback, the .conf and the configuration; the daemon answers the readiness probe', async () => {
    playFile = podYaml(V1);
    await podmanOk(['kube', 'play', playFile]);
    const bin = join(host, '/opt/cni/bin');
    expect(statSync(join(bin, 'virt-net-agent')).mode & 0o777).toBe(0o755);
    expect(existsSync(join(bin, 'virt-net-agent.d', 'virt-net-agent'))).toBe(true);
    expect(readFileSync(join(bin, 'virt-net-agent.conf'), 'utf8')).toBe(`socket=${host}/run/virt-net-agent/cni.sock\nconfig=${host}/etc/virt-net-agent/config.yaml\n`);
    const config = readFileSync(join(host, '/etc/virt-net-agent/config.yaml'), 'utf8');
    expect(config).toContain(`stateRoot: ${host}/run/virt-net-agent/cni`);
    expect(statSync(join(host, '/etc/virt-net-agent/config.yaml')).mode & 0o777).toBe(0o644);
    await waitFor(ready, { timeoutMs: 60_000, intervalMs: 500, what: 'the readiness command (CNI STATUS through the daemon socket)' });
    expect(await daemonLog()).toMatch(/"msg":"cni-daemon listening"/);
  });

  it('containerd runs a pod sandbox through the installed plugin; after an upgrade to a second image the sandbox keeps its plumbing and the new daemon tears it down', async () => {
    const client = c!;
    const id = await client.cri.runPodSandbox(client.podConfig('vm-before-upgrade', { ports: [{ protocol: 'TCP', container_port: 80, host_port: 8080 }] }));
    const netnsPath = await client.sandboxNetns(id);
    expect(netnsPath.startsWith('/var/run/netns/') || netnsPath.startsWith('/run/netns/'), netnsPath).toBe(true);
    const links = async (): Promise<string[]> => ((JSON.parse((await run(['nsenter', `--net=${netnsPath}`, 'ip', '-j', 'link', 'show'])).stdout || '[]') as { ifname: string }[]).map((l) => l.ifname));
    expect(await links()).toEqual(expect.arrayContaining(['eth0', 'k6t-eth0', 'tap0']));
    const stateRoot = join(host, '/run/virt-net-agent/cni');
    expect(existsSync(stateRoot) && spawnSync('ls', [stateRoot], { encoding: 'utf8' }).stdout.trim().split('\n').filter((l) => l !== '').length).toBe(1);
    expect(await daemonLog()).toMatch(new RegExp(`"command":"ADD","containerId":"${id}"`));
    const nftBefore = (await run(['nsenter', `--net=${netnsPath}`, 'nft', '-s', 'list', 'ruleset'])).stdout;

    // The upgrade: the second image version replaces the daemon pod (the old daemon gets SIGTERM).
    const idV2 = (await podmanOk(['image', 'inspect', '--format', '{{.Id}}', V2])).trim();
    await podmanOk(['kube', 'play', '--replace', podYaml(V2)]);
    expect((await podmanOk(['inspect', '--format', '{{.Image}}', `${podName}-cni-daemon`])).trim()).toBe(idV2);
    await waitFor(ready, { timeoutMs: 60_000, intervalMs: 500, what: 'the new daemon ready' });
    // A new process: no ADD of this sandbox in its log; it adopted the attachment (serves its guest again).
    const newLog = await daemonLog();
    expect(newLog).not.toMatch(new RegExp(`"command":"ADD","containerId":"${id}"`));
    expect(newLog).toMatch(/"served":1,[^\n]*"msg":"attachments adopted"/);
    // What the old daemon made is still there.
    expect(await links()).toEqual(expect.arrayContaining(['eth0', 'k6t-eth0', 'tap0']));
    expect((await run(['nsenter', `--net=${netnsPath}`, 'nft', '-s', 'list', 'ruleset'])).stdout).toBe(nftBefore);

    // StopPodSandbox: the new daemon's DEL undoes it from the state the old one recorded.
    await client.cri.stopPodSandbox(id);
    expect(await daemonLog()).toMatch(new RegExp(`"command":"DEL","containerId":"${id}"[^\\n]*"exitCode":0`));
    expect(spawnSync('ls', [stateRoot], { encoding: 'utf8' }).stdout.trim()).toBe('');
    expect(client.leases()).toEqual([]);
    expect(await client.nodeVeths()).toEqual([]);
    await client.cri.removePodSandbox(id);
  });
});
