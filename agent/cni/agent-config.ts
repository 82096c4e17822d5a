// The trusted configuration of the agent on a node: every host path, server, credential and limit the CNI plugin uses, from a root-owned file the cluster admin writes.
//
// A network configuration is tenant input (Multus hands a NetworkAttachmentDefinition's config to the plugin as
// root), so nothing in it may pick a file, a server or a secret. Those come from here: the resident daemon loads
// this file once (`cni-daemon --config FILE`), the fallback executable per invocation (`cni --config FILE`, env
// VIRT_NET_AGENT_CONFIG, or the shim's `config=PATH` line), and both hand the same value to handleCniInvocation.
// When running as root the file must be root-owned and not writable by group or others: a configuration that a
// less privileged user could edit would let that user steer root. docs/security.md and docs/cni.md describe it.
import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { readRegularFd, readTrustedFile, SafeFsError } from '../drivers/safe-fs.js';
import { METRICS_ADDRESS_SYNTAX } from '../metrics/address.js';
import { InputError } from '../plan/errors.js';

/** Where the admin's configuration lives on a node (a DaemonSet mounts its ConfigMap here). */
export const DEFAULT_AGENT_CONFIG_PATH = '/etc/virt-net-agent/config.yaml';
/** The environment variable the fallback executable reads the configuration path from (the runtime sets it). */
export const AGENT_CONFIG_ENV = 'VIRT_NET_AGENT_CONFIG';

export interface AgentConfig {
  /** The file it was read from; null: built-in defaults (no file at the default path). */
  readonly source: string | null;
  /** Root of the per-attachment state folders (root-only). */
  readonly stateRoot: string;
  /** Role 2: the kubeconfig to read the launcher pod's VMI from the Kubernetes API (e.g. Multus' own); null: no API. */
  readonly kubeconfig: string | null;
  /** Role 2: VMI files for nodes without API access, `<vmiDir>/<namespace>/<pod name>.yaml`; null: none. */
  readonly vmiDir: string | null;
  /** Allows an `http://` API server and `insecure-skip-tls-verify` in the kubeconfig (never by default). */
  readonly allowInsecureApi: boolean;
  /** The cni-daemon's unix socket (its directory is root's, 0700; see daemon-socket.ts). */
  readonly socket: string;
  /** A group (gid) whose members may use the daemon socket besides root; null: root only. */
  readonly socketGroup: number | null;
  /** The daemon answers an invocation that runs longer with code 11 ("try again later"). */
  readonly invocationTimeoutMs: number;
  /** Largest file read for role 2: a VMI from vmiDir, the kubeconfig and the token and certificate files it names. */
  readonly maxFileBytes: number;
  /** Overall deadline of one Kubernetes API request (connect, TLS, headers and body). */
  readonly apiTimeoutMs: number;
  /** Largest Kubernetes API response body read. */
  readonly apiMaxResponseBytes: number;
  /**
   * The cni-daemon serves DHCPv4, DHCPv6 and router advertisements for every attachment it plumbs (issue 27); false
   * leaves that to `serve` or `sidecar --serve` in the launcher pod.
   */
  readonly serveDhcp: boolean;
  /** Where cni-daemon serves Prometheus metrics (HOST:PORT); null: off. */
  readonly metricsAddress: string | null;
}

const DEFAULTS: Omit<AgentConfig, 'source'> = {
  stateRoot: '/var/run/virt-net-agent/cni',
  kubeconfig: null,
  vmiDir: null,
  allowInsecureApi: false,
  socket: '/run/virt-net-agent/cni.sock',
  socketGroup: null,
  invocationTimeoutMs: 60_000,
  maxFileBytes: 4 << 20,
  apiTimeoutMs: 10_000,
  apiMaxResponseBytes: 4 << 20,
  serveDhcp: true,
  metricsAddress: null,
};

/** The built-in configuration (no file): what a node without /etc/virt-net-agent/config.yaml gets. */
export function defaultAgentConfig(): AgentConfig {
  return { source: null, ...DEFAULTS };
}

/** The configuration file itself is small; a larger one is a mistake, not something to allocate for. */
const MAX_CONFIG_BYTES = 1 << 20;
/** A unix socket address holds 107 bytes of path. */
const MAX_SOCKET_PATH = 107;

type Raw = Record<string, unknown>;
type Parser = (value: unknown, key: string, file: string) => Partial<AgentConfig>;

function bad(file: string, key: string, message: string): InputError {
  return new InputError(file, `${key}: ${message}`);
}

function absolutePath(value: unknown, key: string, file: string): string {
  if (typeof value !== 'string' || value === '') throw bad(file, key, 'must be an absolute path');
  if (!isAbsolute(value)) throw bad(file, key, `must be an absolute path, got ${JSON.stringify(value)}`);
  if (/[\0-\x1f\x7f]/.test(value)) throw bad(file, key, 'contains a control character');
  return value;
}

function positiveInteger(value: unknown, key: string, file: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > max) throw bad(file, key, `must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
  return value;
}

/** A gid, or a group name looked up in /etc/group (the node's own file) when the configuration is loaded. */
function group(value: unknown, key: string, file: string, lookup: (name: string) => number | null): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value >= 0xffffffff) throw bad(file, key, `not a group id: ${value}`);
    return value;
  }
  if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(value)) throw bad(file, key, `must be a group name or gid, got ${JSON.stringify(value)}`);
  const gid = lookup(value);
  if (gid === null) throw bad(file, key, `no group named ${JSON.stringify(value)} in /etc/group`);
  return gid;
}

/** The gid of a group name in /etc/group; null when absent. */
export function groupIdOf(name: string, groupFile = '/etc/group'): number | null {
  let text: string;
  try {
    text = readTrustedFile(groupFile, MAX_CONFIG_BYTES) ?? '';
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const [entry, , gid] = line.split(':');
    if (entry === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return null;
}

/** Every key the file may hold and how it is checked; later features add their keys here. */
function parsers(lookupGroup: (name: string) => number | null): Readonly<Record<string, Parser>> {
  return {
    stateRoot: (v, k, f) => ({ stateRoot: absolutePath(v, k, f) }),
    kubeconfig: (v, k, f) => ({ kubeconfig: v === null ? null : absolutePath(v, k, f) }),
    vmiDir: (v, k, f) => ({ vmiDir: v === null ? null : absolutePath(v, k, f) }),
    allowInsecureApi: (v, k, f) => {
      if (typeof v !== 'boolean') throw bad(f, k, 'must be true or false');
      return { allowInsecureApi: v };
    },
    socket: (v, k, f) => {
      const path = absolutePath(v, k, f);
      if (Buffer.byteLength(path) > MAX_SOCKET_PATH) throw bad(f, k, `path of ${Buffer.byteLength(path)} bytes is longer than a unix socket address allows (${MAX_SOCKET_PATH})`);
      return { socket: path };
    },
    socketGroup: (v, k, f) => ({ socketGroup: v === null ? null : group(v, k, f, lookupGroup) }),
    invocationTimeoutMs: (v, k, f) => ({ invocationTimeoutMs: positiveInteger(v, k, f, 3_600_000) }),
    apiTimeoutMs: (v, k, f) => ({ apiTimeoutMs: positiveInteger(v, k, f, 600_000) }),
    apiMaxResponseBytes: (v, k, f) => ({ apiMaxResponseBytes: positiveInteger(v, k, f, 256 << 20) }),
    maxFileBytes: (v, k, f) => ({ maxFileBytes: positiveInteger(v, k, f, 256 << 20) }),
    serveDhcp: (v, k, f) => {
      if (typeof v !== 'boolean') throw bad(f, k, 'must be true or false');
      return { serveDhcp: v };
    },
    metricsAddress: (v, k, f) => {
      if (v === null) return { metricsAddress: null };
      if (typeof v !== 'string' || !METRICS_ADDRESS_SYNTAX.test(v)) throw bad(f, k, `must be HOST:PORT (e.g. 127.0.0.1:9101), got ${JSON.stringify(v)}`);
      return { metricsAddress: v };
    },
  };
}

/** Parses the text of a configuration file (YAML or JSON); `file` names it in errors. Pure but for group names. */
export function parseAgentConfig(text: string, file: string, lookupGroup: (name: string) => number | null = groupIdOf): AgentConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw new InputError(file, `not YAML/JSON: ${(error as Error).message.split('\n')[0] ?? ''}`);
  }
  if (raw === null || raw === undefined) return { ...DEFAULTS, source: file };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InputError(file, 'must be a mapping of settings (stateRoot, kubeconfig, vmiDir, …)');
  const table = parsers(lookupGroup);
  let config: AgentConfig = { ...DEFAULTS, source: file };
  for (const [key, value] of Object.entries(raw as Raw)) {
    const parse = table[key];
    if (parse === undefined) throw bad(file, key, `unknown setting (known: ${Object.keys(table).join(', ')})`);
    config = { ...config, ...parse(value, key, file) };
  }
  return config;
}

/**
 * The whole of the configuration file, which only the admin (root) may write: a regular file (opened non-blocking,
 * so a FIFO cannot hang us), at most maxBytes, and, when we are root, owned by root and not writable by group or
 * others. Symlinks are followed (a ConfigMap volume is made of them); the checks apply to the file they lead to.
 */
function readConfigFile(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (st.isFile() && process.getuid?.() === 0) {
      if (st.uid !== 0) throw new InputError(path, `owned by uid ${st.uid}, not root: refusing a configuration a less privileged user can change`);
      if ((st.mode & 0o022) !== 0) throw new InputError(path, `writable by ${(st.mode & 0o020) !== 0 ? 'its group' : 'others'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): refusing a configuration a less privileged user can change`);
    }
    return readRegularFd(fd, maxBytes, path);
  } catch (error) {
    if (error instanceof SafeFsError) throw new InputError(path, error.reason);
    throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * The agent configuration from `path` (a flag or VIRT_NET_AGENT_CONFIG), else from the default path; a missing
 * default file means the built-in defaults, a missing named file is an error. Errors are InputErrors naming the file.
 */
export function loadAgentConfig(path?: string | null): AgentConfig {
  const explicit = path !== undefined && path !== null && path !== '';
  const file = explicit ? path : DEFAULT_AGENT_CONFIG_PATH;
  if (explicit && !isAbsolute(file)) throw new InputError(file, 'the agent configuration must be named by an absolute path');
  let bytes: Buffer;
  try {
    bytes = readConfigFile(file, MAX_CONFIG_BYTES);
  } catch (error) {
    if (error instanceof InputError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    if (code === 'ENOENT' && !explicit) return defaultAgentConfig();
    throw new InputError(file, `cannot read the agent configuration: ${code}`);
  }
  return parseAgentConfig(bytes.toString('utf8'), file);
}
