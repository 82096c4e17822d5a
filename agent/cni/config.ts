// Parses and checks one CNI invocation (CNI_* environment + network configuration) into a typed request; errors name the field.
import { CNI_CODES, CniSpecError } from './errors.js';
import type { CniEnvironment } from './spec.js';
import { negotiateVersion } from './version.js';
import { parsePrevResult, type PrevResult } from './prev-result.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

export type ChainedBinding = 'bridge' | 'masquerade' | 'passt';
const BINDINGS: readonly ChainedBinding[] = ['bridge', 'masquerade', 'passt'];

/**
 * Fields a network configuration may no longer carry: each picks a host path or a credential, and the network
 * configuration is tenant input (a NetworkAttachmentDefinition). They moved to the agent configuration
 * (agent-config.ts), under the name given here.
 */
export const MOVED_TO_AGENT_CONFIG: Readonly<Record<string, string>> = { stateDir: 'stateRoot', kubeconfig: 'kubeconfig', vmiPath: 'vmiDir' };

export interface PortMapping {
  readonly hostPort?: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp' | 'sctp';
}

export interface NetConf {
  readonly cniVersion: string;
  readonly name: string;
  readonly type: string;
  /** Role 1 (chained): the binding to apply to the pod NIC (null: not given; ADD applies masquerade, KubeVirt's default). */
  readonly binding: ChainedBinding | null;
  /** Agent-wide spoof-protection default (the pod annotation overrides it). */
  readonly spoofProtection: boolean;
  /**
   * `serveDhcp: false`: the cni-daemon does not serve this attachment's DHCP and RAs (a `sidecar --serve` or `serve`
   * does). true or absent: the agent configuration's `serveDhcp` decides (a network cannot turn on what the admin
   * turned off: that daemon runs no serving core).
   */
  readonly serveDhcp: boolean;
  /** Role 2: `args.cni.logicNetworkName`, the VMI network this attachment serves. */
  readonly logicNetworkName: string | null;
  readonly portMappings: readonly PortMapping[];
  readonly mac: string | null;
  readonly podAnnotations: Readonly<Record<string, string>>;
  readonly prevResult: PrevResult | null;
  /** GC: the attachments the runtime still has (`cni.dev/valid-attachments`). */
  readonly validAttachments: readonly { readonly containerId: string; readonly ifname: string }[] | null;
}

export interface CniRequest {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS as key=value pairs. */
  readonly args: Readonly<Record<string, string>>;
  readonly conf: NetConf;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
/** A VMI network name as KubeVirt's API takes it; nothing that could climb a path or break a line. */
const LOGIC_NETWORK_NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function badConf(field: string, message: string): CniSpecError {
  return new CniSpecError(CNI_CODES.invalidConfig, field, message);
}

export function parseCommand(env: CniEnvironment): CniCommand {
  const command = env['CNI_COMMAND'];
  if (command === undefined || command === '') throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_COMMAND', 'missing');
  if (!COMMANDS.includes(command as CniCommand)) {
    throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_COMMAND', `unknown command ${JSON.stringify(command)} (one of ${COMMANDS.join(', ')})`);
  }
  return command as CniCommand;
}

function envValue(env: CniEnvironment, name: string, required: boolean): string {
  const value = env[name];
  if (value === undefined || value === '') {
    if (required) throw new CniSpecError(CNI_CODES.invalidEnvironment, name, 'missing');
    return '';
  }
  return value;
}

export function parseCniArgs(text: string): Record<string, string> {
  const args: Record<string, string> = {};
  if (text === '') return args;
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_ARGS', `not a KEY=VALUE pair: ${JSON.stringify(pair)}`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

function checkIfname(ifname: string): void {
  // The kernel's own rule (dev_valid_name), plus no control characters: the name reaches files and logs too.
  if (ifname.length > 15 || ifname === '.' || ifname === '..' || /[/:\s\0-\x1f\x7f]/.test(ifname)) {
    throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_IFNAME', `not a valid interface name: ${JSON.stringify(ifname)}`);
  }
}

/**
 * A field the way Go's encoding/json finds it: the exact key, else any key equal to it ignoring case. containerd 1.6
 * (go-cni's PortMapping has no json tags) sends portMappings as {"HostPort","ContainerPort","Protocol","HostIP"},
 * which the Go plugins (portmap) accept for that reason.
 */
function goField(object: Record<string, unknown>, key: string): unknown {
  if (key in object) return object[key];
  const lower = key.toLowerCase();
  for (const [k, v] of Object.entries(object)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function parsePortMappings(value: unknown): PortMapping[] {
  if (value === undefined) return [];
  const field = 'runtimeConfig.portMappings';
  if (!Array.isArray(value)) throw badConf(field, 'must be an array');
  return value.map((entry: unknown, i) => {
    if (!isObject(entry)) throw badConf(`${field}[${i}]`, 'must be an object');
    const port = goField(entry, 'containerPort');
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw badConf(`${field}[${i}].containerPort`, `must be a port number 1-65535, got ${JSON.stringify(port)}`);
    }
    const protocolText = goField(entry, 'protocol') ?? 'tcp';
    if (typeof protocolText !== 'string' || !['tcp', 'udp', 'sctp'].includes(protocolText.toLowerCase())) {
      throw badConf(`${field}[${i}].protocol`, `must be tcp, udp or sctp, got ${JSON.stringify(protocolText)}`);
    }
    const hostPort = goField(entry, 'hostPort');
    if (hostPort !== undefined && (typeof hostPort !== 'number' || !Number.isInteger(hostPort))) {
      throw badConf(`${field}[${i}].hostPort`, 'must be an integer');
    }
    return { containerPort: port, protocol: protocolText.toLowerCase() as PortMapping['protocol'], ...(hostPort !== undefined ? { hostPort } : {}) };
  });
}

function parseStringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) throw badConf(field, 'must be an object of strings');
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') throw badConf(`${field}.${key}`, 'must be a string');
  }
  return value as Record<string, string>;
}

function parseValidAttachments(value: unknown): NetConf['validAttachments'] {
  if (value === undefined) return null;
  const field = 'cni.dev/valid-attachments';
  if (!Array.isArray(value)) throw badConf(field, 'must be an array');
  return value.map((entry: unknown, i) => {
    if (!isObject(entry) || typeof entry['containerID'] !== 'string' || typeof entry['ifname'] !== 'string') {
      throw badConf(`${field}[${i}]`, 'must be {"containerID": string, "ifname": string}');
    }
    return { containerId: entry['containerID'], ifname: entry['ifname'] };
  });
}

function optionalString(object: Record<string, unknown>, key: string, field = key): string | null {
  const value = object[key];
  if (value === undefined) return null;
  if (typeof value !== 'string' || value === '') throw badConf(field, 'must be a non-empty string');
  return value;
}

/**
 * The capabilities the runtime filled in. DEL and GC undo from the recorded state and never use them: a value ADD
 * refused must not fail the runtime's clean-up DEL too (libcni stops the chain's DEL at the first failing plugin, so
 * the sandbox would be left half torn down, containerd marks it SANDBOX_UNKNOWN).
 */
function parseRuntimeConfig(value: unknown, command: CniCommand): Pick<NetConf, 'portMappings' | 'mac' | 'podAnnotations'> {
  try {
    if (value !== undefined && !isObject(value)) throw badConf('runtimeConfig', 'must be an object');
    const rc = isObject(value) ? value : {};
    const mac = optionalString(rc, 'mac', 'runtimeConfig.mac');
    if (mac !== null && !MAC.test(mac)) throw badConf('runtimeConfig.mac', `not a MAC address: ${JSON.stringify(mac)}`);
    return {
      portMappings: parsePortMappings(rc['portMappings']),
      mac,
      podAnnotations: parseStringMap(rc['io.kubernetes.cri.pod-annotations'], 'runtimeConfig["io.kubernetes.cri.pod-annotations"]'),
    };
  } catch (error) {
    if (command === 'DEL' || command === 'GC') return { portMappings: [], mac: null, podAnnotations: {} };
    throw error;
  }
}

/** The network configuration on stdin. Malformed JSON is code 6, a bad field code 7, an unknown version code 1. */
export function parseNetConf(stdin: string, command: CniCommand): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (error) {
    throw new CniSpecError(CNI_CODES.decodeFailure, 'stdin', `the network configuration is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(raw)) throw new CniSpecError(CNI_CODES.decodeFailure, 'stdin', 'the network configuration must be a JSON object');
  const cniVersion = negotiateVersion(raw['cniVersion'], raw['cniVersions']);
  const name = raw['name'];
  if (typeof name !== 'string' || !NETWORK_NAME.test(name)) throw badConf('name', `must be a network name ([A-Za-z0-9][A-Za-z0-9_.-]*), got ${JSON.stringify(name)}`);
  const type = raw['type'];
  if (typeof type !== 'string' || type === '') throw badConf('type', 'missing');
  // DEL and GC act on the trusted state root only and never read these fields: refusing them there would stop the
  // chain's DEL (libcni stops at the first failure) for pods added before the move, and leak the other plugins' state.
  if (command !== 'DEL' && command !== 'GC') {
    for (const [field, setting] of Object.entries(MOVED_TO_AGENT_CONFIG)) {
      if (raw[field] !== undefined) {
        throw badConf(field, `a network configuration cannot name host paths or credentials: this setting moved to the agent configuration (${setting} in /etc/virt-net-agent/config.yaml; see docs/cni.md)`);
      }
    }
  }

  const args = raw['args'];
  if (args !== undefined && !isObject(args)) throw badConf('args', 'must be an object');
  const cniArgs = isObject(args) ? args['cni'] : undefined;
  if (cniArgs !== undefined && !isObject(cniArgs)) throw badConf('args.cni', 'must be an object');
  const logicNetworkName = isObject(cniArgs) ? optionalString(cniArgs, 'logicNetworkName', 'args.cni.logicNetworkName') : null;
  if (logicNetworkName !== null && !LOGIC_NETWORK_NAME.test(logicNetworkName)) {
    throw badConf('args.cni.logicNetworkName', `must be a VMI network name (letters, digits, '-', '_', '.', at most 253), got ${JSON.stringify(logicNetworkName)}`);
  }

  const bindingText = raw['binding'];
  let binding: ChainedBinding | null = null;
  if (bindingText !== undefined && (typeof bindingText !== 'string' || !BINDINGS.includes(bindingText as ChainedBinding))) {
    // DEL undoes whatever an ADD left (even a failed one) from the recorded state: a bad binding must not stop it,
    // or libcni stops the chain's DEL there and leaks what the plugins before us hold (host-local leases).
    if (command !== 'DEL' && command !== 'GC') throw badConf('binding', `must be one of ${BINDINGS.join(', ')}, got ${JSON.stringify(bindingText)}`);
  } else if (bindingText !== undefined) {
    binding = bindingText as ChainedBinding;
  }
  const spoof = raw['spoofProtection'];
  if (spoof !== undefined && typeof spoof !== 'boolean') throw badConf('spoofProtection', 'must be true or false');
  const serve = raw['serveDhcp'];
  if (serve !== undefined && typeof serve !== 'boolean' && command !== 'DEL' && command !== 'GC') throw badConf('serveDhcp', 'must be true or false');
  const runtime = parseRuntimeConfig(raw['runtimeConfig'], command);
  return {
    cniVersion,
    name,
    type,
    binding,
    spoofProtection: spoof === true,
    serveDhcp: serve !== false,
    logicNetworkName,
    ...runtime,
    // DEL and GC work from the recorded state only: a malformed prevResult must not stop the chain's DEL.
    prevResult: raw['prevResult'] === undefined || command === 'DEL' || command === 'GC' ? null : parsePrevResult(raw['prevResult']),
    validAttachments: parseValidAttachments(raw['cni.dev/valid-attachments']),
  };
}

/** The whole request for a command other than VERSION: environment per the spec's table, then the configuration. */
export function parseRequest(env: CniEnvironment, stdin: string, command: CniCommand): CniRequest {
  const perAttachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = envValue(env, 'CNI_CONTAINERID', perAttachment);
  if (containerId !== '' && !CONTAINER_ID.test(containerId)) {
    throw new CniSpecError(CNI_CODES.invalidEnvironment, 'CNI_CONTAINERID', `must match [A-Za-z0-9][A-Za-z0-9_.-]*, got ${JSON.stringify(containerId)}`);
  }
  const netns = envValue(env, 'CNI_NETNS', command === 'ADD' || command === 'CHECK');
  const ifname = envValue(env, 'CNI_IFNAME', perAttachment);
  if (ifname !== '') checkIfname(ifname);
  const args = parseCniArgs(env['CNI_ARGS'] ?? '');
  const conf = parseNetConf(stdin, command);
  return { command, containerId, netns, ifname, args, conf };
}
