// Reads the pod's network state (links, addresses, main-table routes, resolv.conf, hostname, Multus downward-API files) into a PodState.
import { closeSync, openSync } from 'node:fs';
import { libc } from '../drivers/libc.js';
import { hostname as osHostname } from 'node:os';
import { O_DIRECTORY, O_RDONLY, openBeneath, openDirectory, readFileBeneath, readTrustedFile, SafeFsError, type Resolve } from '../drivers/safe-fs.js';
import type { KernelDriver } from '../drivers/kernel.js';
import { InputError } from '../plan/errors.js';
import { parsePodState } from '../plan/pod-state-parse.js';
import type { PodInterface, PodRoute, PodState } from '../plan/pod-state.js';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
export const DEFAULT_NETWORK_STATUS = '/etc/podinfo/network-status';
export const DEFAULT_NETWORK_INFO = '/etc/podinfo/network-info';
export const NETWORK_STATUS_ANNOTATION = 'k8s.v1.cni.cncf.io/network-status';
export const NETWORK_INFO_ANNOTATION = 'kubevirt.io/network-info';

const RT_TABLE_MAIN = 254;
const RTN_UNICAST = 1;

export interface DiscoverOptions {
  /** Default /etc/resolv.conf (or the pod root's); a missing file gives resolvConf "". A path given here is trusted. */
  readonly resolvConfPath?: string;
  /** resolv.conf's content itself (the CNI plugin has it from the primary plugin's result): no file is read. */
  readonly resolvConf?: string;
  /** false: no Multus/KubeVirt downward-API files (the CNI plugin runs on the node, whose /etc/podinfo is not the pod's). */
  readonly readPodinfo?: boolean;
  /** Default os.hostname() (the UTS namespace of this process), or with podRoot the pod's /etc/hostname. */
  readonly hostname?: string;
  /** Multus network-status: default /etc/podinfo/network-status; a missing or empty file leaves networkStatus out. */
  readonly networkStatusPath?: string;
  /** KubeVirt network-info: default /etc/podinfo/network-info; a missing or empty file leaves networkInfo out. */
  readonly networkInfoPath?: string;
  /**
   * The pod's root as root sees it (/proc/PID/root): the default files are read beneath it, never following a link
   * out of it (see readPodFile), and the hostname comes from its /etc/hostname, else from its UTS namespace (never
   * this process's own hostname).
   */
  readonly podRoot?: string;
}

/** Size caps: resolv.conf and a hostname are small; a downward-API annotations file holds every annotation. */
const MAX_RESOLV_CONF_BYTES = 64 << 10;
const MAX_HOSTNAME_BYTES = 1024;
const MAX_PODINFO_BYTES = 1 << 20;

/** The reads discovery needs; any KernelDriver will do. */
export type DiscoveryDriver = Pick<KernelDriver, 'listLinks' | 'listAddresses' | 'listRoutes'>;

/**
 * A small file at a path the caller trusts (its own flag or default): non-blocking and size-capped, so a FIFO or a
 * device there cannot hang or exhaust the call; read synchronously (no threadpool hop for a few hundred bytes).
 */
function readOptional(path: string, maxBytes: number): string | null {
  try {
    return readTrustedFile(path, maxBytes);
  } catch (error) {
    if (error instanceof SafeFsError) throw new InputError(path, error.reason);
    throw error;
  }
}

/**
 * A file of the pod's own filesystem, read through /proc/PID/root as root: opened beneath a descriptor of the pod's
 * root, so an absolute symlink (which a plain open would resolve against the node's root) is refused, and no symlink
 * on the way is followed; then O_NONBLOCK, regular files only, size-capped. `beneath` follows relative links that stay
 * inside `dir` (the kubelet's downward-API volume is `name -> ..data/name`, `..data -> ..<timestamp>`). null when the
 * file (or `dir`) does not exist; any refusal is an InputError naming the file.
 */
export function readPodFile(podRoot: string, dir: string, name: string, maxBytes: number, resolve: Resolve = 'no-symlinks'): string | null {
  const shown = `${podRoot}/${dir}/${name}`;
  let rootFd: number | undefined;
  let dirFd: number | undefined;
  try {
    rootFd = openDirectory(podRoot);
    try {
      dirFd = openBeneath(rootFd, dir, O_RDONLY | O_DIRECTORY, { shown: `${podRoot}/${dir}` });
    } catch (error) {
      if (error instanceof SafeFsError && error.code === 'ENOENT') return null;
      throw error;
    }
    return readFileBeneath(dirFd, name, { maxBytes, resolve, shown });
  } catch (error) {
    if (error instanceof SafeFsError) throw new InputError(error.path, error.reason);
    throw error;
  } finally {
    if (dirFd !== undefined) closeSync(dirFd);
    if (rootFd !== undefined) closeSync(rootFd);
  }
}

/** A hostname DHCP may hand out (option 12): DNS labels (letters, digits, inner hyphens, at most 63), dots between, at most 253. */
export function isValidHostname(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

const CLONE_NEWUTS = 0x04000000;

/**
 * The hostname of the pod's UTS namespace (/proc/PID/ns/uts), what os.Hostname() returns in the launcher and KubeVirt
 * hands to the guest: setns on this (the main) thread, uname, setns back. null when it cannot be entered.
 */
function podUtsHostname(podRoot: string): string | null {
  const procDir = podRoot.replace(/\/root$/, '');
  const fds: number[] = [];
  try {
    const target = openSync(`${procDir}/ns/uts`, 'r');
    fds.push(target);
    const own = openSync('/proc/thread-self/ns/uts', 'r');
    fds.push(own);
    if (libc().setns(target, CLONE_NEWUTS).ret !== 0) return null;
    try {
      return osHostname();
    } finally {
      if (libc().setns(own, CLONE_NEWUTS).ret !== 0) throw new Error('cannot return to our own UTS namespace');
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== undefined) return null;
    throw error;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/**
 * The pod's hostname: its /etc/hostname (the kubelet's bind mount, read beneath the pod's root), else its UTS
 * namespace's; never this process's own. Checked to be a hostname before it can reach DHCP.
 */
export function podHostname(podRoot: string): string {
  const shown = `${podRoot}/etc/hostname`;
  const text = readPodFile(podRoot, 'etc', 'hostname', MAX_HOSTNAME_BYTES);
  const name = (text ?? podUtsHostname(podRoot) ?? '').trim();
  if (name === '') throw new InputError(shown, 'missing, and the pod\'s UTS namespace has no hostname either: pass --hostname');
  if (!isValidHostname(name)) {
    throw new InputError(text !== null ? shown : `${podRoot.replace(/\/root$/, '')}/ns/uts`, `not a hostname (DNS labels of letters, digits and hyphens, at most 253 characters): ${JSON.stringify(name.slice(0, 80))}`);
  }
  return name;
}

function splitDefault(path: string): { dir: string; name: string } {
  const relative = path.replace(/^\/+/, '');
  const slash = relative.lastIndexOf('/');
  return { dir: relative.slice(0, slash), name: relative.slice(slash + 1) };
}

/** A default pod file: beneath the pod root when there is one, else at its path in this process's filesystem. */
function readDefault(opts: DiscoverOptions, path: string, maxBytes: number, resolve: Resolve): string | null {
  if (opts.podRoot === undefined) return readOptional(path, maxBytes);
  const { dir, name } = splitDefault(path);
  return readPodFile(opts.podRoot, dir, name, maxBytes, resolve);
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/**
 * Undoes Go's strconv.Quote (what the kubelet writes for each `key="value"` line of a downward-API annotations file):
 * \a \b \f \n \r \t \v \\ \" \xNN (bytes, UTF-8 decoded together) \uNNNN \UNNNNNNNN and octal \NNN.
 */
export function unquoteGo(quoted: string): string {
  if (quoted.length < 2 || !quoted.startsWith('"') || !quoted.endsWith('"')) throw new Error('not a double-quoted string');
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const pushText = (text: string): void => {
    for (const b of Buffer.from(text, 'utf8')) bytes.push(b);
  };
  for (let i = 0; i < body.length; ) {
    const ch = body[i]!;
    if (ch !== '\\') {
      const cp = body.codePointAt(i)!;
      const s = String.fromCodePoint(cp);
      pushText(s);
      i += s.length;
      continue;
    }
    const esc = body[i + 1];
    if (esc === undefined) throw new Error('trailing backslash');
    const simple = SIMPLE_ESCAPES[esc];
    if (simple !== undefined) {
      pushText(simple);
      i += 2;
    } else if (esc === 'x') {
      const hex = body.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`bad \\x escape at ${i}`);
      bytes.push(parseInt(hex, 16));
      i += 4;
    } else if (esc === 'u' || esc === 'U') {
      const len = esc === 'u' ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new Error(`bad \\${esc} escape at ${i}`);
      pushText(String.fromCodePoint(parseInt(hex, 16)));
      i += 2 + len;
    } else if (/[0-7]/.test(esc)) {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct)) throw new Error(`bad octal escape at ${i}`);
      bytes.push(parseInt(oct, 8));
      i += 4;
    } else {
      throw new Error(`unknown escape \\${esc} at ${i}`);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * A downward-API file holds either the annotation's value alone (fieldRef metadata.annotations['<key>']), or every
 * annotation as `key="<Go-quoted value>"` lines (fieldRef metadata.annotations). Returns the JSON document, or
 * undefined when the file is empty or does not carry the annotation.
 */
export function parseDownwardApiJson(text: string, annotation: string, path: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  let json: string | undefined;
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    json = trimmed;
  } else {
    for (const line of trimmed.split('\n')) {
      const eq = line.indexOf('=');
      if (eq <= 0) throw new InputError(path, `expected JSON or key="value" lines (downward API), got ${JSON.stringify(line.slice(0, 60))}`);
      if (line.slice(0, eq).trim() !== annotation) continue;
      try {
        json = unquoteGo(line.slice(eq + 1).trim());
      } catch (err) {
        throw new InputError(path, `annotation ${annotation}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (json === undefined || json.trim() === '') return undefined;
  }
  try {
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new InputError(path, `not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function macOrZero(mac: string): string {
  // PodState wants a 6- (Ethernet) or 20-byte (InfiniBand) address; L3 devices without one report zeros.
  const bytes = mac === '' ? 0 : mac.split(':').length;
  return bytes === 6 || bytes === 20 ? mac.toLowerCase() : '00:00:00:00:00:00';
}

/**
 * The pod's network state as seen by `driver` (which must already act on the pod's namespace).
 * - interfaces: every link, lo included, ordered by ifindex; addresses split into ipv4/ipv6 (all scopes, link-local too).
 * - routes: main table, unicast routes with an output device (multipath and blackhole-style routes have none and
 *   are left out); "default" for 0.0.0.0/0 and ::/0.
 */
export async function discoverPodState(driver: DiscoveryDriver, opts: DiscoverOptions = {}): Promise<PodState> {
  const [links, addresses, routes] = [await driver.listLinks(), await driver.listAddresses(), await driver.listRoutes()];
  const names = new Map(links.map((l) => [l.index, l.name]));

  const interfaces: PodInterface[] = [...links]
    .sort((a, b) => a.index - b.index)
    .map((l) => {
      const own = addresses.filter((a) => a.index === l.index);
      const master = l.masterIndex !== null ? names.get(l.masterIndex) : undefined;
      return {
        name: l.name,
        index: l.index,
        kind: l.kind,
        mac: macOrZero(l.mac),
        mtu: l.mtu,
        up: l.up,
        ...(master !== undefined ? { master } : {}),
        ipv4: own.filter((a) => a.family === 4).map((a) => a.cidr),
        ipv6: own.filter((a) => a.family === 6).map((a) => a.cidr),
      };
    });

  const podRoutes: PodRoute[] = [];
  for (const r of routes) {
    if (r.table !== RT_TABLE_MAIN || r.type !== RTN_UNICAST || r.index === null) continue;
    const dev = names.get(r.index);
    if (dev === undefined) continue;
    podRoutes.push({ dst: r.dst, dev, ...(r.gw !== null ? { gw: r.gw } : {}) });
  }

  // Explicit paths are the caller's (trusted); the defaults are the pod's own files, beneath its root with --pid.
  const read = (path: string | undefined, fallback: string, maxBytes: number, resolve: Resolve): { text: string | null; path: string } =>
    path !== undefined
      ? { text: readOptional(path, maxBytes), path }
      : { text: readDefault(opts, fallback, maxBytes, resolve), path: `${opts.podRoot ?? ''}${fallback}` };
  const resolvConf = opts.resolvConf ?? read(opts.resolvConfPath, DEFAULT_RESOLV_CONF, MAX_RESOLV_CONF_BYTES, 'no-symlinks').text ?? '';

  const podinfo = opts.readPodinfo !== false;
  const { text: statusText, path: statusPath } = podinfo ? read(opts.networkStatusPath, DEFAULT_NETWORK_STATUS, MAX_PODINFO_BYTES, 'beneath') : { text: null, path: '' };
  const networkStatus = statusText !== null ? parseDownwardApiJson(statusText, NETWORK_STATUS_ANNOTATION, statusPath) : undefined;
  if (networkStatus !== undefined && !Array.isArray(networkStatus)) {
    throw new InputError(statusPath, 'expected a JSON array (the Multus network-status annotation)');
  }
  const { text: infoText, path: infoPath } = podinfo ? read(opts.networkInfoPath, DEFAULT_NETWORK_INFO, MAX_PODINFO_BYTES, 'beneath') : { text: null, path: '' };
  const networkInfo = infoText !== null ? parseDownwardApiJson(infoText, NETWORK_INFO_ANNOTATION, infoPath) : undefined;

  const state = {
    hostname: opts.hostname ?? (opts.podRoot !== undefined ? podHostname(opts.podRoot) : osHostname()),
    interfaces,
    routes: podRoutes,
    resolvConf,
    ...(networkStatus !== undefined ? { networkStatus } : {}),
    ...(networkInfo !== undefined ? { networkInfo } : {}),
  };
  // The same checks `plan --pod` applies: what discover prints is always accepted by plan. A bad annotation file is
  // reported against that file.
  try {
    return parsePodState(state, 'pod');
  } catch (err) {
    if (err instanceof InputError && err.field.startsWith('pod.networkStatus')) {
      throw new InputError(statusPath, err.oneLine().replace(/^pod\.networkStatus/, 'network-status'));
    }
    if (err instanceof InputError && err.field.startsWith('pod.networkInfo')) {
      throw new InputError(infoPath, err.oneLine().replace(/^pod\.networkInfo/, 'network-info'));
    }
    throw err;
  }
}
