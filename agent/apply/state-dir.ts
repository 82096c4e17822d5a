// The per-VMI state dir: what setup found and made (written atomically), and a lock serialising invocations.
import { chownSync, closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { AgentError } from '../plan/errors.js';
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

const LOCK_EX = 2;
let flockFn: ((fd: number, operation: number) => number) | null = null;
function flock(fd: number, operation: number): number {
  if (!flockFn) {
    const libc = koffi.load('libc.so.6');
    flockFn = libc.func('int flock(int fd, int operation)') as (fd: number, operation: number) => number;
  }
  return flockFn(fd, operation);
}

export class StateDir {
  readonly dir: string;
  private lockFd: number | null = null;

  /**
   * @param reader who must read the state besides root: the launcher's user, which runs `serve` (KubeVirt's qemu,
   *   107). When this process is root, the VMI's folder and its files are handed to that user (0700/0600, owned by
   *   it), and a state root this process creates is 0755, so serve can find the folder. Without a reader (or when not
   *   root) nothing is chowned.
   */
  constructor(
    private readonly root: string,
    vmiKey: string,
    private readonly reader: { readonly uid: number; readonly gid: number } | null = null,
  ) {
    this.dir = join(root, vmiKey.replace(/[^A-Za-z0-9._-]/g, '_'));
  }

  /** Creates the root (0755) and the VMI's folder (0700), the folder owned by the reader when there is one. */
  private ensureDir(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o755 });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.handOver(this.dir);
  }

  private handOver(path: string): void {
    if (this.reader !== null && process.getuid?.() === 0 && this.reader.uid !== 0) chownSync(path, this.reader.uid, this.reader.gid);
  }

  get statePath(): string {
    return join(this.dir, 'state.json');
  }

  private get lockPath(): string {
    return join(this.dir, 'lock');
  }

  /**
   * Blocks until no other invocation for this VMI holds the lock (released on exit, even a crash). A teardown removes
   * the folder, lock file included, while it holds the lock; an invocation that was waiting then holds a lock on a
   * file that is gone, so it takes the lock again on the file now at the path (the same inode proves it is that one).
   */
  lock(): void {
    for (;;) {
      this.ensureDir();
      const fd = openSync(this.lockPath, 'a');
      if (flock(fd, LOCK_EX) !== 0) {
        closeSync(fd);
        throw new AgentError('--state-dir', `cannot lock ${this.dir}`);
      }
      let atPath: number | null = null;
      try {
        atPath = statSync(this.lockPath).ino;
      } catch {
        // Removed by the teardown that held the lock: take it again.
      }
      if (atPath === fstatSync(fd).ino) {
        this.lockFd = fd;
        return;
      }
      closeSync(fd);
    }
  }

  unlock(): void {
    if (this.lockFd !== null) closeSync(this.lockFd);
    this.lockFd = null;
  }

  read(): AgentState | null {
    let text: string;
    try {
      text = readFileSync(this.statePath, 'utf8');
    } catch {
      return null;
    }
    try {
      const state = JSON.parse(text) as AgentState;
      if (state.version !== 1) throw new Error(`unknown version ${String(state.version)}`);
      return state;
    } catch (error) {
      throw new AgentError('--state-dir', `corrupt state file ${this.statePath}: ${(error as Error).message}`);
    }
  }

  /**
   * write + rename: a reader, or a run after this process crashed, sees the old or the new state, never half of one.
   * No fsync: the state matters for the pod's lifetime only (it lives in the launcher's private emptyDir, and a
   * virt-launcher pod is not restarted in place after the node crashes), and a rename needs no fsync to be atomic
   * against a process crash. fsync cost 1–2 ms of CPU per write here (an ext4 journal commit), twice per setup.
   */
  write(state: AgentState): void {
    this.ensureDir();
    const temporary = `${this.statePath}.${process.pid}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(state, null, 2) + '\n');
    } finally {
      closeSync(fd);
    }
    this.handOver(temporary);
    renameSync(temporary, this.statePath);
  }

  /**
   * Removes the VMI's folder: the state, then (still holding the lock, see lock()) the lock file and the folder
   * itself. Anything else someone put in the folder keeps it in place.
   */
  remove(): void {
    rmSync(this.statePath, { force: true });
    if (this.lockFd === null) return;
    rmSync(this.lockPath, { force: true });
    try {
      rmdirSync(this.dir);
    } catch {
      // Not empty: another file lives here; the folder stays.
    }
  }
}
