// The per-VMI state dir: what setup found and made (root-only, written atomically through descriptors), the launcher's read-only copy, and a lock serialising invocations.
//
// Layout (docs/security.md): <root>/<vmi key>/ is owned by root (the agent's euid), 0700, or 0755 when a launcher user
// other than root reads it; state.json (root 0600) is setup's record, which teardown, hotplug and later setups act on;
// serve.json (root 0644) is the part `serve` and `domain` need on the launcher side (uid 107); lock (root 0600) is
// flock()ed. Nothing is ever handed to the launcher user: it can read serve.json, never replace it. Every access goes
// through a descriptor of the folder (agent/drivers/safe-fs.ts): no symlink is followed, temporaries have random
// names and O_EXCL. A folder not owned by root, or writable by others (an older version handed it to the launcher
// user, or someone planted it), is never trusted: setup refuses it, teardown discards it without reading it.
import { closeSync, fchmodSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import {
  isSameFileAt,
  O_CREAT,
  O_DIRECTORY,
  O_NONBLOCK,
  O_RDONLY,
  openAt,
  openDirectory,
  openOrMakeDirectory,
  readFileBeneath,
  removeDirectoryAt,
  removeTreeAt,
  SafeFsError,
  unlinkAt,
  writeFileAtomic,
} from '../drivers/safe-fs.js';
import { AgentError, InputError } from '../plan/errors.js';
import type { DhcpV4Plan, DhcpV6Plan, PodIdentity } from '../plan/plan-types.js';

export const DEFAULT_STATE_ROOT = '/var/run/kubevirt-private/virt-net-agent';

export interface NetworkState {
  readonly binding: string;
  readonly podInterface: string | null;
  /** The pod NIC's ifindex (survives renames; tells the NIC from a keeper of the same name). */
  readonly podInterfaceIndex: number | null;
  /** The pod NIC as CNI left it (restored by teardown). */
  readonly podIdentity: PodIdentity | null;
  /** The pod NIC's name after plumbing, when setup renames it. */
  readonly renamedTo: string | null;
  /** Links setup creates for this network (deleted by teardown), in creation order. */
  readonly created: readonly string[];
  /** The in-pod bridge the guest hangs off (absent in state written before serve existed). */
  readonly bridge?: string | null;
  /** The planned DHCPv4 server for this network: `serve` reads it and never recomputes the plan. */
  readonly dhcp?: DhcpV4Plan | null;
  /** The planned DHCPv6 server and router advertisements for this network, read by `serve`. */
  readonly dhcpv6?: DhcpV6Plan | null;
}

export type NftTableFamily = 'ip' | 'ip6' | 'bridge';

export interface AgentState {
  readonly version: 1;
  readonly vmi: { readonly name: string; readonly namespace: string; readonly uid: string };
  readonly networks: Readonly<Record<string, NetworkState>>;
  /** Whether the kernel can create dummy links (probed once; a probe creates and deletes a link). */
  readonly dummySupported?: boolean;
  /** Values before setup first wrote them (null: did not exist). */
  readonly sysctlsBefore: Readonly<Record<string, string | null>>;
  /** The nftables ruleset applied, its stateless listing right after, and which nat tables existed before. */
  readonly nft: {
    readonly text: string;
    /**
     * Our tables as `nft list` printed them (counters stripped) once the text was applied: what the next run compares
     * against. Recorded by the first run that finds the applied text in place (setup does not spawn a listing right
     * after its own `nft -f`); null until then.
     */
    readonly listing: string | null;
    /** `nft -f` of this text succeeded (a crash before that must not look like "up to date"). */
    readonly applied?: boolean;
    /** Our tables: ip/ip6 are the (shared) `nat` tables, bridge is the anti-spoofing table we own outright. */
    readonly families: readonly NftTableFamily[];
    /** Which shared nat tables existed before setup (never includes bridge). */
    readonly tablesBefore: readonly NftTableFamily[];
  } | null;
}

/** What the launcher side (`serve`, `domain`, uid 107) reads: per network the bridge, the planned servers, the pod NIC's identity. */
export interface LauncherNetwork {
  readonly bridge: string | null;
  readonly dhcp: DhcpV4Plan | null;
  readonly dhcpv6: DhcpV6Plan | null;
  /** The pod NIC as CNI left it: `domain` plans the guest MAC from it, as setup did. */
  readonly podIdentity: PodIdentity | null;
}

export interface LauncherView {
  readonly version: 1;
  readonly vmi: AgentState['vmi'];
  readonly networks: Readonly<Record<string, LauncherNetwork>>;
}

export const STATE_FILE = 'state.json';
export const LAUNCHER_FILE = 'serve.json';
const LOCK_FILE = 'lock';
/** state.json of a VMI with many networks stays far below this. */
const MAX_STATE_BYTES = 8 << 20;

export function launcherViewOf(state: Pick<AgentState, 'vmi' | 'networks'>): LauncherView {
  const networks: Record<string, LauncherNetwork> = {};
  for (const [name, network] of Object.entries(state.networks)) {
    networks[name] = { bridge: network.bridge ?? null, dhcp: network.dhcp ?? null, dhcpv6: network.dhcpv6 ?? null, podIdentity: network.podIdentity };
  }
  return { version: 1, vmi: state.vmi, networks };
}

const LOCK_EX = 2;
const LOCK_NB = 4;
const EWOULDBLOCK = 11;
let flockFn: ((fd: number, operation: number) => number) | null = null;
function flock(fd: number, operation: number): number {
  if (!flockFn) {
    const libc = koffi.load('libc.so.6');
    flockFn = libc.func('int flock(int fd, int operation)') as (fd: number, operation: number) => number;
  }
  return flockFn(fd, operation);
}

/** Longest pause between two tries of a held lock: short next to a setup's own time, negligible in polls per second. */
const LOCK_POLL_MAX_MS = 20;

/**
 * Takes an exclusive flock without ever blocking the thread: LOCK_NB, and while another process holds it, tries again
 * after a growing pause (1 ms, doubling, at most LOCK_POLL_MAX_MS). A blocking flock(2) would stop the whole event
 * loop, so one pod whose folder another process holds (a fallback invocation, a hung virt-handler call) would stop
 * the cni-daemon's answers to every other pod. false: flock failed for another reason.
 */
async function flockExclusive(fd: number): Promise<boolean> {
  for (let pause = 1; ; pause = Math.min(pause * 2, LOCK_POLL_MAX_MS)) {
    if (flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    if (koffi.errno() !== EWOULDBLOCK) return false;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

/** A VMI folder root does not trust: the reason, or null when it is ours (owned by our euid, writable by nobody else). */
function distrust(fd: number): string | null {
  const stat = fstatSync(fd);
  if (stat.uid !== euid()) return `owned by uid ${stat.uid}, not ${euid()}`;
  if ((stat.mode & 0o022) !== 0) return `writable by others (mode ${(stat.mode & 0o777).toString(8)})`;
  return null;
}

/** The state folder cannot be trusted (see the file comment); the field is --state-dir. */
export class UntrustedStateError extends AgentError {
  constructor(
    readonly dir: string,
    readonly why: string,
  ) {
    super(
      '--state-dir',
      `${dir} is ${why}: not trusted (a virt-net-agent before the root-only layout handed it to the launcher user, or someone else made it); restart or migrate the VMI, or remove the folder`,
    );
    this.name = 'UntrustedStateError';
  }
}

function asAgentError(error: unknown): never {
  if (error instanceof SafeFsError) throw new AgentError('--state-dir', error.message);
  throw error;
}

export interface StateDirOptions {
  /** Who besides root reads the launcher copy (serve.json): a user other than root makes the folder 0755. */
  readonly reader?: { readonly uid: number; readonly gid: number } | null;
  /** Write serve.json beside state.json (the CLI's setup; the CNI has no launcher-side reader). */
  readonly launcherCopy?: boolean;
}

export class StateDir {
  readonly dir: string;
  private readonly key: string;
  private rootFd: number | null = null;
  private dirFd: number | null = null;
  private lockFd: number | null = null;
  /** serve.json as last read or written (null: absent or unknown), so an unchanged copy is not rewritten. */
  private launcherJson: string | null = null;

  constructor(
    private readonly root: string,
    vmiKey: string,
    private readonly options: StateDirOptions = {},
  ) {
    this.key = vmiKey.replace(/[^A-Za-z0-9._-]/g, '_');
    this.dir = join(root, this.key);
  }

  get statePath(): string {
    return join(this.dir, STATE_FILE);
  }

  private get mode(): number {
    const reader = this.options.reader;
    return reader !== null && reader !== undefined && reader.uid !== 0 ? 0o755 : 0o700;
  }

  private closeFds(): void {
    for (const fd of [this.lockFd, this.dirFd, this.rootFd]) if (fd !== null) closeSync(fd);
    this.lockFd = this.dirFd = this.rootFd = null;
  }

  /**
   * Opens the root (created 0755 when missing: a trusted path, the agent's flag or configuration) and the VMI's folder
   * beneath it without following a symlink, creating it when `create`. null when it does not exist.
   */
  private openFolder(create: boolean): number | null {
    if (this.dirFd !== null) return this.dirFd;
    try {
      try {
        this.rootFd = openDirectory(this.root, create ? { mode: 0o755 } : undefined);
      } catch (error) {
        if (error instanceof SafeFsError && error.code === 'ENOENT') return null;
        throw error;
      }
      if (create) {
        this.dirFd = openOrMakeDirectory(this.rootFd, this.key, this.mode, this.dir).fd;
      } else {
        try {
          this.dirFd = openAt(this.rootFd, this.key, O_RDONLY | O_DIRECTORY, 0, this.dir);
        } catch (error) {
          if (error instanceof SafeFsError && error.code === 'ENOENT') return null;
          throw error;
        }
      }
    } catch (error) {
      this.closeFds();
      if (error instanceof SafeFsError && (error.code === 'ELOOP' || error.code === 'ENOTDIR')) {
        throw new UntrustedStateError(this.dir, error.code === 'ELOOP' ? 'a symbolic link' : 'not a directory');
      }
      asAgentError(error);
    }
    return this.dirFd;
  }

  /** The folder's descriptor once checked: ours, else UntrustedStateError. Fixes the mode when a reader needs it. */
  private trusted(fd: number): number {
    const why = distrust(fd);
    if (why !== null) {
      this.closeFds();
      throw new UntrustedStateError(this.dir, why);
    }
    const mode = fstatSync(fd).mode & 0o777;
    if (mode !== this.mode && this.mode === 0o755) fchmodSync(fd, this.mode);
    return fd;
  }

  /**
   * Resolves once no other invocation for this VMI holds the lock (released on exit, even a crash); waits without
   * blocking the thread (flockExclusive). A teardown removes
   * the folder, lock file included, while it holds the lock; an invocation that was waiting then holds a lock on a
   * file that is gone, so it takes the lock again on the file now at the path (the same inode proves it is that one).
   * Throws UntrustedStateError for a folder root does not own.
   */
  async lock(): Promise<void> {
    for (;;) {
      const dirFd = this.trusted(this.openFolder(true) as number);
      let fd: number;
      try {
        fd = openAt(dirFd, LOCK_FILE, O_RDONLY | O_CREAT | O_NONBLOCK, 0o600, join(this.dir, LOCK_FILE));
      } catch (error) {
        this.closeFds();
        asAgentError(error);
      }
      if (!fstatSync(fd).isFile() || !(await flockExclusive(fd))) {
        closeSync(fd);
        this.closeFds();
        throw new AgentError('--state-dir', `cannot lock ${this.dir}`);
      }
      if (isSameFileAt(dirFd, LOCK_FILE, fd) && this.rootFd !== null && isSameFileAt(this.rootFd, this.key, dirFd)) {
        this.lockFd = fd;
        return;
      }
      closeSync(fd);
      this.closeFds();
    }
  }

  unlock(): void {
    this.closeFds();
  }

  /** setup's record, or null when there is none. Throws UntrustedStateError for a folder root does not own. */
  read(): AgentState | null {
    const dirFd = this.openFolder(false);
    if (dirFd === null) return null;
    let text: string | null;
    try {
      this.trusted(dirFd);
      text = readFileBeneath(dirFd, STATE_FILE, { maxBytes: MAX_STATE_BYTES, owner: euid(), shown: this.statePath });
      if (this.options.launcherCopy === true) this.launcherJson = readFileBeneath(dirFd, LAUNCHER_FILE, { maxBytes: MAX_STATE_BYTES, shown: join(this.dir, LAUNCHER_FILE) });
    } catch (error) {
      if (this.lockFd === null) this.closeFds();
      asAgentError(error);
    }
    if (this.lockFd === null) this.closeFds();
    if (text === null) return null;
    try {
      const state = JSON.parse(text) as AgentState;
      if (state.version !== 1) throw new Error(`unknown version ${String(state.version)}`);
      return state;
    } catch (error) {
      throw new AgentError('--state-dir', `corrupt state file ${this.statePath}: ${(error as Error).message}`);
    }
  }

  /**
   * Writes state.json (root 0600) and, for the launcher side, serve.json (root 0644) when its content changed: each
   * through a fresh O_EXCL file renamed into place, so a reader, or a run after this process crashed, sees the old or
   * the new file, never half of one. No fsync: the state matters for the pod's lifetime only (a virt-launcher pod is not
   * restarted in place after the node crashes), and a rename needs no fsync to be atomic against a process crash.
   * Call it holding the lock.
   */
  write(state: AgentState): void {
    const dirFd = this.dirFd;
    if (dirFd === null || this.lockFd === null) throw new AgentError('--state-dir', `write to ${this.dir} without its lock`);
    try {
      writeFileAtomic(dirFd, STATE_FILE, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, shown: this.dir });
      if (this.options.launcherCopy === true) {
        const view = `${JSON.stringify(launcherViewOf(state), null, 2)}\n`;
        if (view !== this.launcherJson) {
          writeFileAtomic(dirFd, LAUNCHER_FILE, view, { mode: 0o644, shown: this.dir });
          this.launcherJson = view;
        }
      }
    } catch (error) {
      asAgentError(error);
    }
  }

  /**
   * Removes the VMI's folder: the state and the launcher copy, then (still holding the lock, see lock()) the lock file
   * and the folder itself. Anything else in the folder keeps it in place.
   */
  remove(): void {
    const dirFd = this.dirFd;
    if (dirFd === null) return;
    try {
      unlinkAt(dirFd, STATE_FILE);
      unlinkAt(dirFd, LAUNCHER_FILE);
      if (this.lockFd === null || this.rootFd === null) return;
      unlinkAt(dirFd, LOCK_FILE);
      removeDirectoryAt(this.rootFd, this.key, this.dir);
    } catch (error) {
      asAgentError(error);
    }
  }

  /**
   * Removes a folder root does not trust without reading anything in it (descriptors only: a symlink planted inside
   * is unlinked, never followed). true when it is gone.
   */
  discardUntrusted(): boolean {
    this.closeFds();
    let rootFd: number;
    try {
      rootFd = openDirectory(this.root);
    } catch {
      return true;
    }
    try {
      return removeTreeAt(rootFd, this.key);
    } catch (error) {
      asAgentError(error);
    } finally {
      closeSync(rootFd);
    }
  }
}

/** A VMI folder opened for a look (no symlink followed): its descriptors, and why root does not trust it (null: it does). */
export interface OpenedStateFolder {
  readonly rootFd: number;
  readonly dirFd: number;
  readonly distrust: string | null;
  close(): void;
}

/** Opens <root>/<key> without following a symlink at the key; null when the root or the folder does not exist. */
export function openStateFolder(root: string, key: string): OpenedStateFolder | null {
  let rootFd: number;
  try {
    rootFd = openDirectory(root);
  } catch (error) {
    if (error instanceof SafeFsError && (error.code === 'ENOENT' || error.code === 'ENOTDIR')) return null;
    return asAgentError(error);
  }
  let dirFd: number;
  try {
    dirFd = openAt(rootFd, key, O_RDONLY | O_DIRECTORY, 0, join(root, key));
  } catch (error) {
    if (error instanceof SafeFsError && error.code === 'ENOENT') {
      closeSync(rootFd);
      return null;
    }
    if (error instanceof SafeFsError && (error.code === 'ELOOP' || error.code === 'ENOTDIR')) {
      // Something else than a folder at the key: a descriptor of the root stands in, and nothing is read through it.
      return { rootFd, dirFd: -1, distrust: error.code === 'ELOOP' ? 'a symbolic link' : 'not a directory', close: () => closeSync(rootFd) };
    }
    closeSync(rootFd);
    return asAgentError(error);
  }
  return {
    rootFd,
    dirFd,
    distrust: distrust(dirFd),
    close: () => {
      closeSync(dirFd);
      closeSync(rootFd);
    },
  };
}

/**
 * What the launcher side reads from a VMI folder: serve.json, or (a folder an older version wrote, or one without a
 * launcher copy such as a CNI attachment's, read by root) the same part of state.json. Regular files only, size-capped.
 * null when the folder holds neither.
 */
export function readLauncherView(dir: string): LauncherView | null {
  let fd: number;
  try {
    fd = openDirectory(dir);
  } catch (error) {
    if (error instanceof SafeFsError && (error.code === 'ENOENT' || error.code === 'ENOTDIR')) return null;
    throw new InputError('--state-dir', error instanceof Error ? error.message : String(error));
  }
  try {
    const parse = (name: string, text: string): LauncherView => {
      try {
        const value = JSON.parse(text) as AgentState | LauncherView;
        if (value.version !== 1) throw new Error(`unknown version ${String(value.version)}`);
        return name === LAUNCHER_FILE ? (value as LauncherView) : launcherViewOf(value as AgentState);
      } catch (error) {
        throw new InputError('--state-dir', `corrupt state file ${join(dir, name)}: ${(error as Error).message}`);
      }
    };
    const read = (name: string): string | null => {
      try {
        return readFileBeneath(fd, name, { maxBytes: MAX_STATE_BYTES, shown: join(dir, name) });
      } catch (error) {
        if (error instanceof SafeFsError && error.code === 'EACCES' && name === STATE_FILE) {
          throw new InputError('--state-dir', `${join(dir, LAUNCHER_FILE)}: missing, and state.json is root's (setup writes the launcher copy; a CNI attachment has none)`);
        }
        throw new InputError('--state-dir', error instanceof Error ? error.message : String(error));
      }
    };
    const launcher = read(LAUNCHER_FILE);
    if (launcher !== null) return parse(LAUNCHER_FILE, launcher);
    const state = read(STATE_FILE);
    return state === null ? null : parse(STATE_FILE, state);
  } finally {
    closeSync(fd);
  }
}
