// A private podman (Debian 12's 4.3, network_backend "cni") for tests: own config, storage, CNI config dir and plugin dir, run inside a "node" netns.
//
// Nothing is pulled: containers run `--rootfs` on a busybox directory made here. Nothing of the host is touched:
// podman and so every CNI plugin it execs run in a test netns (nsenter --net), so the bridge, the veths and the
// sysctls the bridge plugin sets live there. Two quirks of this machine are handled here, not in the tests:
//  - crun refuses the "hybrid" cgroup layout (cgroup2 at /sys/fs/cgroup/unified holding a controller), so podman runs
//    in a private mount namespace where that mount is unmounted (the host keeps it; /run/netns stays shared, so the
//    netns bind mount one podman call makes is seen by the next), with --cgroups=disabled;
//  - the default ulimits (nofile/nproc 1M+) exceed the sandbox's hard limits: containers get 1024 of each.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeNetns, deleteNetns, run, type ExecResult, type Netns } from './netns.js';
import { FALLBACK_DIR, SHIM } from './cni-shim.js';

export const REFERENCE_PLUGINS = '/usr/lib/cni';
/** Where libcni (inside podman) caches each attachment's config and result. */
export const CNI_CACHE = '/var/lib/cni/results';

/** Why podman tests cannot run here, or null when they can. */
export function podmanUnavailable(): string | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root';
  const v = spawnSync('podman', ['--version'], { encoding: 'utf8' });
  if (v.status !== 0) return 'podman is not installed (apt-get install podman)';
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed';
  if (!existsSync(join(REFERENCE_PLUGINS, 'bridge'))) return 'containernetworking-plugins is not installed';
  return null;
}

function hybridCgroup(): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => / \/sys\/fs\/cgroup\/unified .* - cgroup2 /.test(line));
}

/** One entry of libcni's cache (cniCacheV1). */
export interface CniCacheEntry {
  readonly containerId: string;
  readonly ifName: string;
  readonly networkName: string;
  readonly cniArgs: readonly (readonly [string, string])[];
  readonly config: string;
  readonly result: {
    readonly cniVersion: string;
    readonly interfaces?: readonly { name: string; mac?: string; sandbox?: string }[];
    readonly ips?: readonly { address: string; gateway?: string; interface?: number }[];
    readonly [key: string]: unknown;
  };
}

export interface Podman {
  readonly dir: string;
  /** The netns podman and the plugins run in (the node). */
  readonly node: Netns;
  /** The CNI plugin dir podman searches first: our shim (and its fallback) plus symlinks to the reference plugins. */
  readonly pluginDir: string;
  /** host-local's dataDir: one file per leased IP under <dataDir>/<network name>/. */
  readonly ipamDir: string;
  readonly rootfs: string;
  /** Runs `podman ARGS` (private config and storage, in the node netns); never throws for a non-zero exit. */
  podman(args: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /** Writes a conflist into podman's CNI config dir. */
  addNetwork(name: string, plugins: readonly object[]): void;
  /** `podman run -d` of `sleep` on the busybox rootfs in `network`; resolves with podman's result. */
  runContainer(name: string, network: string): Promise<ExecResult>;
  /** The container's netns path and PID (podman inspect). */
  inspect(name: string): Promise<{ sandbox: string; pid: number; id: string }>;
  /** libcni's cache entry of a container's attachment, or undefined. */
  cacheEntry(id: string, network: string, ifname?: string): CniCacheEntry | undefined;
  /** IPs host-local holds for `network`. */
  leases(network: string): string[];
  /** Removes every container, the node netns and the files. */
  cleanup(): Promise<void>;
}

export async function makePodman(dir: string): Promise<Podman> {
  const node = await makeNetns('podnode');
  const pluginDir = join(dir, 'cni-bin');
  const confDir = join(dir, 'cni-conf');
  const ipamDir = join(dir, 'ipam');
  const rootfs = join(dir, 'rootfs');
  for (const d of [pluginDir, confDir, ipamDir, join(rootfs, 'bin'), join(rootfs, 'proc'), join(rootfs, 'sys'), join(rootfs, 'dev'), join(rootfs, 'etc'), join(rootfs, 'tmp')]) mkdirSync(d, { recursive: true });
  copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
  chmodSync(join(rootfs, 'bin/busybox'), 0o755);
  for (const applet of ['sh', 'sleep', 'ip', 'cat']) symlinkSync('busybox', join(rootfs, 'bin', applet));
  // Our plugin as an operator installs it (scripts/install-cni.sh): the shim, the fallback beside it.
  copyFileSync(SHIM, join(pluginDir, 'virt-net-agent'));
  chmodSync(join(pluginDir, 'virt-net-agent'), 0o755);
  symlinkSync(FALLBACK_DIR, join(pluginDir, 'virt-net-agent.d'));
  for (const plugin of readdirSync(REFERENCE_PLUGINS)) symlinkSync(join(REFERENCE_PLUGINS, plugin), join(pluginDir, plugin));
  const conf = join(dir, 'containers.conf');
  writeFileSync(
    conf,
    `[network]
network_backend = "cni"
cni_plugin_dirs = ["${pluginDir}"]
network_config_dir = "${confDir}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
`,
  );
  const storage = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const inner = hybridCgroup() ? 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' : 'exec "$@"';
  const podman = (args: readonly string[], timeoutMs = 120_000): Promise<ExecResult> =>
    run(['env', `CONTAINERS_CONF=${conf}`, 'nsenter', `--net=${node.path}`, 'unshare', '-m', '--propagation', 'unchanged', 'sh', '-c', inner, 'sh', 'podman', ...storage, ...args], { timeoutMs });
  const names = new Set<string>();
  const networks = new Set<string>();

  const self: Podman = {
    dir,
    node,
    pluginDir,
    ipamDir,
    rootfs,
    podman,
    addNetwork(name, plugins) {
      networks.add(name);
      writeFileSync(join(confDir, `${name}.conflist`), JSON.stringify({ cniVersion: '1.0.0', name, plugins }, null, 2));
    },
    async runContainer(name, network) {
      names.add(name);
      return podman(['run', '-d', '--name', name, '--cgroups=disabled', '--network', network, '--rootfs', rootfs, '/bin/sleep', '100000']);
    },
    async inspect(name) {
      const r = await podman(['inspect', name, '--format', '{{.NetworkSettings.SandboxKey}} {{.State.Pid}} {{.Id}}']);
      if (r.code !== 0) throw new Error(`podman inspect ${name}: ${r.stderr.trim()}`);
      const [sandbox = '', pid = '0', id = ''] = r.stdout.trim().split(' ');
      return { sandbox, pid: Number(pid), id };
    },
    cacheEntry(id, network, ifname = 'eth0') {
      const file = join(CNI_CACHE, `${network}-${id}-${ifname}`);
      if (!existsSync(file)) return undefined;
      return JSON.parse(readFileSync(file, 'utf8')) as CniCacheEntry;
    },
    leases(network) {
      const d = join(ipamDir, network);
      if (!existsSync(d)) return [];
      return readdirSync(d).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
    },
    async cleanup() {
      for (const name of names) await podman(['rm', '-f', '-t', '0', name]);
      // A test that failed half-way may leave libcni's cache entries of its networks behind: never leak them.
      if (existsSync(CNI_CACHE)) for (const f of readdirSync(CNI_CACHE)) if ([...networks].some((n) => f.startsWith(`${n}-`))) rmSync(join(CNI_CACHE, f), { force: true });
      await deleteNetns(node.name);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return self;
}

/**
 * What a runtime does for CNI CHECK (libcni's CheckNetworkList): each plugin of the conflist in order, with the
 * cached result as prevResult, in the node netns. Resolves with the first failure, or the last success. `only`
 * restricts it to the plugins of that type.
 */
export async function checkChain(p: Podman, entry: CniCacheEntry, only?: string): Promise<ExecResult & { plugin: string }> {
  const list = JSON.parse(Buffer.from(entry.config, 'base64').toString('utf8')) as { cniVersion: string; name: string; plugins: ({ type: string } & Record<string, unknown>)[] };
  const sandbox = entry.result.interfaces?.find((i) => i.sandbox !== undefined)?.sandbox ?? '';
  let last: ExecResult & { plugin: string } = { code: 0, stdout: '', stderr: '', plugin: '' };
  for (const plugin of list.plugins) {
    if (only !== undefined && plugin.type !== only) continue;
    const conf = { ...plugin, cniVersion: list.cniVersion, name: list.name, prevResult: entry.result };
    const env = [
      'CNI_COMMAND=CHECK',
      `CNI_CONTAINERID=${entry.containerId}`,
      `CNI_NETNS=${sandbox}`,
      `CNI_IFNAME=${entry.ifName}`,
      `CNI_ARGS=${entry.cniArgs.map(([k, v]) => `${k}=${v}`).join(';')}`,
      `CNI_PATH=${p.pluginDir}`,
    ];
    const r = await p.node.exec(['env', ...env, join(p.pluginDir, plugin.type)], { input: JSON.stringify(conf) });
    last = { ...r, plugin: plugin.type };
    if (r.code !== 0) return last;
  }
  return last;
}
