// A private containerd 1.6 (Debian 12) with its CRI plugin for tests and benchmarks, driven as a kubelet drives it, torn down completely.
//
// Everything lives in a mkdtemp: containerd's config, root, state, socket, runc root, the CNI bin dir (Debian's
// reference plugins + ours installed by scripts/install-cni.sh) and conf dir, host-local's leases, our agent's
// trusted configuration file (agent/cni/agent-config.ts) and the state root it names. containerd runs in a test "node" netns (nsenter --net; it keeps the host's mount
// namespace), so the CNI bridge, the pods' veths and portmap's iptables chains live there; the sandboxes' netns bind
// mounts stay under its state dir (netns_mounts_under_state_dir). The pause image is built here and imported with
// `ctr images import`. Facts of this machine the config handles: runc needs restrict_oom_score_adj (root lacks
// CAP_SYS_RESOURCE), cgroupfs (SystemdCgroup = false) with containerd's default disable_hugetlb_controller.
//
// Clean-up removes only what this instance made, since other tests may run a containerd at the same time: its
// sandboxes through CRI, the daemons by PID, leftover runc containers of its runc root, mounts under its dir, the
// cgroups under its own cgroup parent, libcni's cache entries of its network, the shim sockets of its sandboxes in
// containerd 1.6's hard-coded /run/containerd/s/ (and that directory only when no other instance is alive).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criClient, type CriClient, type PodSandboxConfig, type PortMapping } from './cri-client.js';
import { deleteNetns, makeNetns, run, runOk, waitFor, type Netns } from './netns.js';
import { writePauseImage, BUSYBOX } from './pause-image.js';
import { socketAccepts } from './cni-shim.js';

export const REFERENCE_PLUGINS = '/usr/lib/cni';
/** libcni's result cache inside containerd (go-cni's default; not configurable in containerd 1.6). */
export const CNI_CACHE = '/var/lib/cni/results';
/** containerd 1.6 puts every shim's socket here, whatever its state dir. */
export const SHIM_SOCKET_DIR = '/run/containerd/s';
const SHIM_LOCK = '/run/lock/vna-test-containerd-shims.lock';
export const PAUSE_IMAGE = 'localhost/vna-pause:1.0';
const REPO = process.cwd();

/** Why the containerd (CRI) tests cannot run here, or null when they can. VNA_CRI=0 turns them off. */
export function containerdUnavailable(): string | null {
  if (process.env['VNA_CRI'] === '0') return 'VNA_CRI=0';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root';
  for (const [cmd, pkg] of [['containerd', 'containerd'], ['ctr', 'containerd'], ['runc', 'runc'], ['iptables', 'iptables'], ['flock', 'util-linux']] as const) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0) return `${cmd} is not installed (apt-get install ${pkg})`;
  }
  if (!existsSync(BUSYBOX)) return 'busybox-static is not installed';
  if (!existsSync(join(REFERENCE_PLUGINS, 'bridge'))) return 'containernetworking-plugins is not installed';
  if (!existsSync(join(REPO, 'dist/cni/virt-net-agent'))) return 'the CNI plugin is not built (npm run build)';
  return null;
}

export interface ContainerdOptions {
  /** Prefix of names (netns, network, cgroup parent). */
  readonly tag?: string;
  /** The conflist's plugins (see bridgeChain / agentPlugin); the network name is the instance's own. */
  readonly plugins: (c: Containerd) => readonly object[];
  /** Start our cni-daemon (from the installed fallback executable) before containerd. Default true. */
  readonly daemon?: boolean;
  /** Log each invocation of our plugin (env + stdin) under <dir>/plugin-log/ through a wrapper plugin "vna-logged". */
  readonly logInvocations?: boolean;
  /**
   * A CNI bin dir made elsewhere (the DaemonSet's init container installs our plugin there): the reference plugins
   * are linked into it, ours is not installed by the harness, and no daemon is started.
   */
  readonly binDir?: string;
  /** Sandbox netns bind mounts under containerd's state dir (default) or, false, in /var/run/netns as on a node. */
  readonly netnsUnderStateDir?: boolean;
  /** More arguments of `cni-daemon` (e.g. --metrics-address). */
  readonly daemonArgs?: readonly string[];
}

/** One invocation of our plugin as containerd made it (through the vna-logged wrapper). */
export interface LoggedInvocation {
  readonly env: Record<string, string>;
  readonly conf: Record<string, unknown>;
}

export interface Containerd {
  readonly dir: string;
  readonly tag: string;
  /** The CNI network name (conflist "name"), unique per instance. */
  readonly network: string;
  readonly bridge: string;
  /** A unique /24 for host-local. */
  readonly subnet: string;
  readonly node: Netns;
  readonly socket: string;
  readonly binDir: string;
  readonly confDir: string;
  readonly ipamDir: string;
  /** Our plugin's state root and the trusted agent config that names it. */
  readonly stateRoot: string;
  readonly agentConfig: string;
  /** Our cni-daemon's socket (written into <binDir>/virt-net-agent.conf). */
  readonly agentSocket: string;
  /** The kubelet-style cgroup parent root of this instance's pods. */
  readonly cgroupRoot: string;
  readonly cri: CriClient;
  /** Replaces the conflist atomically and waits until containerd has reloaded it. */
  setPlugins(plugins: readonly object[]): Promise<void>;
  /** A RunPodSandbox config as a kubelet writes it for a pod on the pod network. */
  podConfig(name: string, extra?: PodExtras): PodSandboxConfig;
  /** The sandbox's netns path (PodSandboxStatus verbose info). */
  sandboxNetns(id: string): Promise<string>;
  /** IPs host-local holds for the network. */
  leases(): string[];
  /** Folders in our state root (one per attachment). */
  attachments(): string[];
  /** libcni cache entries of the network. */
  cacheEntries(): string[];
  /** veth links in the node netns. */
  nodeVeths(): Promise<string[]>;
  /** Our plugin's invocations logged so far (logInvocations). */
  invocations(): LoggedInvocation[];
  /** The cni-daemon's stdout so far. */
  daemonLog(): string;
  containerdLog(): string;
  cleanup(): Promise<void>;
}

export interface PodExtras {
  readonly namespace?: string;
  readonly uid?: string;
  readonly ports?: readonly PortMapping[];
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** bridge + host-local as a cluster's primary CNI sets them up (the bridge is the node's gateway). */
export function bridgeChain(c: Containerd): object[] {
  return [
    {
      type: 'bridge',
      bridge: c.bridge,
      isGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', dataDir: c.ipamDir, ranges: [[{ subnet: c.subnet }]], routes: [{ dst: '0.0.0.0/0' }] },
    },
  ];
}

/** portmap as kubelets' conflists chain it (hostPorts via iptables DNAT in the node netns). */
export function portmapPlugin(): object {
  return { type: 'portmap', snat: true, capabilities: { portMappings: true } };
}

/** Our plugin chained with a binding, asking for the capabilities containerd fills in. */
export function agentPlugin(_c: Containerd, binding: 'masquerade' | 'bridge' | 'passt', type = 'virt-net-agent'): object {
  // No host path here: the state root comes from the instance's agent configuration (c.agentConfig).
  return {
    type,
    binding,
    capabilities: { portMappings: true, 'io.kubernetes.cri.pod-annotations': true },
  };
}

function containerdConfig(d: Record<'root' | 'state' | 'socket' | 'runc' | 'bin' | 'conf', string>, netnsUnderStateDir: boolean): string {
  return `# Private containerd for one test (test/helpers/containerd.ts).
version = 2
root = "${d.root}"
state = "${d.state}"
# "opt" would create /opt/containerd; the other snapshotters only log load errors here
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "${d.socket}"
[ttrpc]
  address = "${d.socket}.ttrpc"
[debug]
  level = "info"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "${PAUSE_IMAGE}"
    disable_hugetlb_controller = true
    # root here lacks CAP_SYS_RESOURCE: runc cannot set the sandbox's oom_score_adj (-998)
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = ${String(netnsUnderStateDir)}
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "/usr/sbin/runc"
          Root = "${d.runc}"
          SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "${d.bin}"
      conf_dir = "${d.conf}"
      max_conf_num = 1
`;
}

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  out: string;
}

function spawnLogged(argv: readonly string[], logFile: string, env: NodeJS.ProcessEnv = process.env): Proc {
  const fd = openSync(logFile, 'a');
  const [file, ...args] = argv;
  const child = spawn(file!, args, { stdio: ['ignore', 'pipe', fd], env });
  closeSync(fd);
  // 'exit', not 'close': a child of the process may hold its stdout open after it is gone.
  const proc: Proc = { child, exited: new Promise((resolve) => child.on('exit', () => resolve())), out: '' };
  child.stdout?.on('data', (b: Buffer) => {
    proc.out += b.toString();
  });
  return proc;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
async function stopProc(p: Proc | undefined, graceMs = 15_000): Promise<void> {
  if (p === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

const liveProcs = new Set<ChildProcess>();
let exitHook = false;
function track(p: Proc): void {
  liveProcs.add(p.child);
  p.child.on('exit', () => liveProcs.delete(p.child));
  if (!exitHook) {
    exitHook = true;
    // Last resort (normal paths stop them in cleanup): never leave a daemon of ours running.
    process.on('exit', () => {
      for (const c of liveProcs) c.kill('SIGKILL');
    });
  }
}

/** The path of a shim socket containerd 1.6 derives for a task (runtime/v2/shim SocketAddress). */
export function shimSocket(grpcAddress: string, namespace: string, id: string): string {
  return join(SHIM_SOCKET_DIR, createHash('sha256').update(join(grpcAddress, namespace, id)).digest('hex'));
}

export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  const tagBase = (opts.tag ?? 'cri').replace(/[^a-z0-9]/g, '').slice(0, 8);
  const hex = randomBytes(3).toString('hex');
  const tag = `${tagBase}${hex}`;
  const dir = mkdtempSync(join(tmpdir(), 'vna-cri-'));
  const p = (...parts: string[]): string => join(dir, ...parts);
  const dirs = { root: p('root'), state: p('state'), socket: p('containerd.sock'), runc: p('runc'), bin: opts.binDir ?? p('cni-bin'), conf: p('cni-conf') };
  const external = opts.binDir !== undefined;
  for (const d of [dirs.root, dirs.state, dirs.runc, dirs.bin, dirs.conf, p('ipam'), p('agent'), p('logs'), p('plugin-log'), p('pods')]) mkdirSync(d, { recursive: true });
  const octet = 1 + ((randomBytes(1)[0] ?? 0) % 250);
  let node: Netns | undefined;
  let containerd: Proc | undefined;
  let daemon: Proc | undefined;
  let shimLock: Proc | undefined;
  let cri: CriClient | undefined;
  const sandboxIds = new Set<string>();

  const self: Containerd = {
    dir,
    tag,
    network: `vna-cri-${tag}`,
    bridge: `vnacri${hex}`,
    subnet: `10.214.${octet}.0/24`,
    get node(): Netns {
      if (node === undefined) throw new Error('containerd harness: no node netns');
      return node;
    },
    socket: dirs.socket,
    binDir: dirs.bin,
    confDir: dirs.conf,
    ipamDir: p('ipam'),
    stateRoot: p('agent', 'state'),
    agentConfig: p('agent', 'config.yaml'),
    // The daemon makes its socket's directory root 0700 (an existing looser one, like 'agent' itself, it refuses).
    agentSocket: p('agent', 'run', 'cni.sock'),
    cgroupRoot: `/vna-cri-${tag}`,
    get cri(): CriClient {
      if (cri === undefined) throw new Error('containerd harness: not started');
      return cri;
    },
    async setPlugins(plugins) {
      writeConflist(plugins);
      // containerd reloads on the directory's fsnotify event; a pod is run with the conflist loaded at that moment.
      // Its log line for the reload is the only signal: wait for one more than before.
      const before = reloads;
      await waitFor(async () => countReloads() > before, { timeoutMs: 30_000, intervalMs: 50, what: `containerd reloading ${dirs.conf}` });
      reloads = countReloads();
    },
    podConfig(name, extra = {}) {
      const namespace = extra.namespace ?? 'default';
      const uid = extra.uid ?? randomUuid();
      const logDir = p('pods', `${namespace}_${name}_${uid}`);
      return {
        metadata: { name, uid, namespace, attempt: 0 },
        hostname: name,
        log_directory: logDir,
        dns_config: { servers: ['10.96.0.10'], searches: [`${namespace}.svc.cluster.local`, 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] },
        port_mappings: extra.ports ?? [],
        labels: { 'io.kubernetes.pod.name': name, 'io.kubernetes.pod.namespace': namespace, 'io.kubernetes.pod.uid': uid, ...(extra.labels ?? {}) },
        annotations: { 'kubernetes.io/config.seen': new Date().toISOString(), 'kubernetes.io/config.source': 'api', ...(extra.annotations ?? {}) },
        linux: {
          cgroup_parent: `${self.cgroupRoot}/besteffort/pod${uid}`,
          security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' }, seccomp: { profile_type: 'RuntimeDefault' } },
          sysctls: {},
        },
      };
    },
    async sandboxNetns(id) {
      const r = await self.cri.podSandboxStatus(id, true);
      const info = JSON.parse(r.info['info'] ?? '{}') as { runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } } };
      const ns = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path;
      if (ns === undefined) throw new Error(`no netns path in the status of ${id}`);
      return ns;
    },
    leases() {
      const d = join(self.ipamDir, self.network);
      if (!existsSync(d)) return [];
      return readdirSync(d).filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip'));
    },
    attachments() {
      return existsSync(self.stateRoot) ? readdirSync(self.stateRoot) : [];
    },
    cacheEntries() {
      return existsSync(CNI_CACHE) ? readdirSync(CNI_CACHE).filter((f) => f.startsWith(`${self.network}-`)) : [];
    },
    async nodeVeths() {
      const links = JSON.parse((await self.node.execOk(['ip', '-j', 'link', 'show'])).stdout) as { ifname: string; link_kind?: string }[];
      return links.map((l) => l.ifname).filter((n) => n.startsWith('veth'));
    },
    invocations() {
      const d = p('plugin-log');
      return readdirSync(d)
        .sort()
        .filter((f) => existsSync(join(d, f, 'done')))
        .map((f) => ({
          env: Object.fromEntries(
            readFileSync(join(d, f, 'env'), 'utf8')
              .split('\0')
              .filter((l) => l.includes('='))
              .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
          ),
          conf: JSON.parse(readFileSync(join(d, f, 'stdin'), 'utf8')) as Record<string, unknown>,
        }));
    },
    daemonLog: () => daemon?.out ?? '',
    containerdLog: () => (existsSync(p('logs', 'containerd.log')) ? readFileSync(p('logs', 'containerd.log'), 'utf8') : ''),
    async cleanup() {
      await teardown();
    },
  };

  let reloads = 0;
  const countReloads = (): number => (self.containerdLog().match(/receiving change event from cni conf dir/g) ?? []).length;
  const writeConflist = (plugins: readonly object[]): void => {
    const tmp = join(dirs.conf, '.conflist.tmp');
    writeFileSync(tmp, JSON.stringify({ cniVersion: '1.0.0', name: self.network, plugins }, null, 2));
    renameSync(tmp, join(dirs.conf, '10-vna-cri.conflist'));
  };

  /** Stops and removes one sandbox; if its DEL keeps failing, the reference chain alone undoes the rest. */
  const removeSandbox = async (c: CriClient, id: string): Promise<void> => {
    try {
      await c.stopPodSandbox(id, 60_000);
    } catch {
      writeConflist(bridgeChain(self));
      await waitFor(async () => (await c.stopPodSandbox(id, 60_000).then(() => true)), { timeoutMs: 30_000, intervalMs: 500, what: `StopPodSandbox ${id} with the reference chain` }).catch(() => undefined);
    }
    await c.removePodSandbox(id, 60_000).catch(() => undefined);
  };

  const teardown = async (): Promise<void> => {
    const errors: string[] = [];
    const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    if (cri !== undefined && containerd !== undefined && containerd.child.exitCode === null) {
      const c = cri;
      await step('sandboxes', async () => {
        for (const s of await c.listPodSandbox()) sandboxIds.add(s.id);
        for (const id of sandboxIds) await removeSandbox(c, id);
      });
    }
    cri?.close();
    await step('containerd', () => stopProc(containerd));
    await step('cni-daemon', () => stopProc(daemon));
    // Whatever a failed removal left: runc containers of our runc root, then their shims (by their pid files).
    await step('runc', async () => {
      const root = join(dirs.runc, 'k8s.io');
      if (!existsSync(root)) return;
      for (const id of readdirSync(root)) await run(['runc', '--root', root, 'delete', '--force', id]);
    });
    await step('shims', () => {
      const tasks = join(dirs.state, 'io.containerd.runtime.v2.task', 'k8s.io');
      if (!existsSync(tasks)) return;
      for (const id of readdirSync(tasks)) {
        sandboxIds.add(id);
        const pidFile = join(tasks, id, 'shim.pid');
        if (existsSync(pidFile)) {
          const pid = Number(readFileSync(pidFile, 'utf8'));
          if (pid > 1) spawnSync('kill', ['-KILL', String(pid)], { stdio: 'ignore' });
        }
      }
    });
    await step('shim sockets', () => {
      for (const id of sandboxIds) rmSync(shimSocket(dirs.socket, 'k8s.io', id), { force: true });
    });
    await step('mounts', async () => {
      const mounts = readFileSync('/proc/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .map((m) => m.replace(/\\040/g, ' '))
        .filter((m) => m.startsWith(`${dir}/`))
        .sort()
        .reverse();
      for (const m of mounts) if ((await run(['umount', m])).code !== 0) await run(['umount', '-l', m]);
    });
    await step('cgroups', () => {
      for (const ctrl of readdirSync('/sys/fs/cgroup')) {
        const top = join('/sys/fs/cgroup', ctrl, self.cgroupRoot);
        if (existsSync(top)) removeCgroupTree(top);
      }
    });
    await step('libcni cache', () => {
      for (const f of self.cacheEntries()) rmSync(join(CNI_CACHE, f), { force: true });
    });
    await step('node netns', async () => {
      if (node !== undefined) await deleteNetns(node.name);
    });
    await step('shim dir', async () => {
      await stopProc(shimLock, 1000);
      // Only when no other instance holds the shared lock (so none of their shims is about to bind there).
      await run(['flock', '-n', '-x', SHIM_LOCK, 'sh', '-c', `rmdir ${SHIM_SOCKET_DIR} 2>/dev/null; rmdir /run/containerd 2>/dev/null; true`]);
    });
    await step('files', () => rmSync(dir, { recursive: true, force: true }));
    if (errors.length > 0) throw new Error(`containerd harness clean-up: ${errors.join('; ')}`);
  };

  try {
    // Held (shared) while this instance may create shim sockets; clean-up removes the shared dir only under an exclusive lock.
    // The lock is held by the process itself (its fd 9), so killing it by PID releases it.
    shimLock = spawnLogged(['sh', '-c', `exec 9>>${SHIM_LOCK} && flock -s 9 && exec sleep infinity`], p('logs', 'flock.log'));
    track(shimLock);
    node = await makeNetns(`cri${tagBase}`.slice(0, 12));
    // The CNI bin dir: the reference plugins, ours installed as an operator does.
    for (const plugin of readdirSync(REFERENCE_PLUGINS)) symlinkSync(join(REFERENCE_PLUGINS, plugin), join(dirs.bin, plugin));
    if (!external) {
      // The node's trusted agent configuration (what the DaemonSet's ConfigMap holds): state root and socket here.
      writeFileSync(self.agentConfig, `stateRoot: ${self.stateRoot}\nsocket: ${self.agentSocket}\n`, { mode: 0o644 });
      await runOk([join(REPO, 'scripts/install-cni.sh'), dirs.bin, '--socket', self.agentSocket, '--config', self.agentConfig], { timeoutMs: 60_000 });
    }
    if (opts.logInvocations === true) {
      writeFileSync(
        join(dirs.bin, 'vna-logged'),
        `#!/bin/sh\n# Records one invocation (env, stdin) and runs our shim with it.\nd=$(mktemp -d ${p('plugin-log')}/$(date +%s%N)-XXXX)\nenv -0 > "$d/env"\ncat > "$d/stdin"\n: > "$d/done"\nexec ${join(dirs.bin, 'virt-net-agent')} < "$d/stdin"\n`,
        { mode: 0o755 },
      );
    }
    writeConflist(opts.plugins(self));
    if (opts.daemon !== false && !external) {
      daemon = spawnLogged(['nsenter', `--net=${node.path}`, join(dirs.bin, 'virt-net-agent.d', 'virt-net-agent'), 'cni-daemon', '--config', self.agentConfig, ...(opts.daemonArgs ?? [])], p('logs', 'cni-daemon.err'));
      track(daemon);
      const d = daemon;
      await waitFor(async () => {
        if (d.child.exitCode !== null) throw new Error(`cni-daemon exited ${d.child.exitCode}: ${readFileSync(p('logs', 'cni-daemon.err'), 'utf8')}`);
        return /"msg":"cni-daemon listening"/.test(d.out) && (await socketAccepts(self.agentSocket));
      }, { timeoutMs: 30_000, intervalMs: 50, what: 'cni-daemon listening' });
    }
    writeFileSync(p('containerd.toml'), containerdConfig(dirs, opts.netnsUnderStateDir !== false));
    containerd = spawnLogged(['nsenter', `--net=${node.path}`, 'containerd', '--config', p('containerd.toml')], p('logs', 'containerd.log'));
    track(containerd);
    const ctd = containerd;
    await waitFor(async () => {
      if (ctd.child.exitCode !== null) throw new Error(`containerd exited ${ctd.child.exitCode}: ${self.containerdLog().slice(-2000)}`);
      return (await run(['ctr', '-a', dirs.socket, 'version'], { timeoutMs: 5000 })).code === 0;
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'containerd answering' });
    writePauseImage(p('pause.tar'), PAUSE_IMAGE);
    await runOk(['ctr', '-a', dirs.socket, '-n', 'k8s.io', 'images', 'import', '--snapshotter', 'overlayfs', p('pause.tar')], { timeoutMs: 60_000 });
    cri = criClient(dirs.socket);
    const c = cri;
    // Ready once CRI answers (the CNI config is loaded at start).
    await waitFor(async () => (await c.version()).runtime_name === 'containerd', { timeoutMs: 30_000, intervalMs: 100, what: 'CRI Version' });
    reloads = countReloads();
    return self;
  } catch (e) {
    await teardown().catch(() => undefined);
    throw e;
  }
}

function removeCgroupTree(path: string): void {
  for (const entry of readdirSync(path, { withFileTypes: true })) if (entry.isDirectory()) removeCgroupTree(join(path, entry.name));
  try {
    rmdirSync(path);
  } catch {
    // a process still in it: left for the kernel to refuse loudly the next time
  }
}

function randomUuid(): string {
  const b = randomBytes(16);
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
