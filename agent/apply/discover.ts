// Reads the pod's network state (links, addresses, main-table routes, resolv.conf, hostname, Multus downward-API files) into a PodState.
import { readFileSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
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
  /** Default /etc/resolv.conf; a missing file gives resolvConf "". */
  readonly resolvConfPath?: string;
  /** Default os.hostname() (the UTS namespace of this process). */
  readonly hostname?: string;
  /** Multus network-status: default /etc/podinfo/network-status; a missing or empty file leaves networkStatus out. */
  readonly networkStatusPath?: string;
  /** KubeVirt network-info: default /etc/podinfo/network-info; a missing or empty file leaves networkInfo out. */
  readonly networkInfoPath?: string;
}

/** The reads discovery needs; any KernelDriver will do. */
export type DiscoveryDriver = Pick<KernelDriver, 'listLinks' | 'listAddresses' | 'listRoutes'>;

/** A small file (resolv.conf, a downward-API file), read synchronously: no threadpool hop for a few hundred bytes. */
async function readOptional(path: string): Promise<string | null> {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new InputError(path, `cannot read: ${code ?? String(err)}`);
  }
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

  const resolvConf = (await readOptional(opts.resolvConfPath ?? DEFAULT_RESOLV_CONF)) ?? '';

  const statusPath = opts.networkStatusPath ?? DEFAULT_NETWORK_STATUS;
  const statusText = await readOptional(statusPath);
  const networkStatus = statusText !== null ? parseDownwardApiJson(statusText, NETWORK_STATUS_ANNOTATION, statusPath) : undefined;
  if (networkStatus !== undefined && !Array.isArray(networkStatus)) {
    throw new InputError(statusPath, 'expected a JSON array (the Multus network-status annotation)');
  }
  const infoPath = opts.networkInfoPath ?? DEFAULT_NETWORK_INFO;
  const infoText = await readOptional(infoPath);
  const networkInfo = infoText !== null ? parseDownwardApiJson(infoText, NETWORK_INFO_ANNOTATION, infoPath) : undefined;

  const state = {
    hostname: opts.hostname ?? osHostname(),
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
