// A minimal chained-plugin ADD/DEL/CHECK (role 1 of issue 16) over the existing setup/teardown path, so the shim, the daemon, podman and the bench exercise real plumbing.
//
// Stand-in until agent/cni grows the full plugin (cni-core's work: every config field, capabilities, GC, STATUS, the
// binding-plugin role): it takes the pod NIC that the previous plugin made (CNI_IFNAME, which must be the pod network's
// eth0), synthesizes a one-interface VMI with the configured binding (bridge or masquerade; masquerade forwards
// runtimeConfig.portMappings' container ports) and runs runSetup / runTeardown in CNI_NETNS. State lives per
// attachment under `stateDir` (default /var/run/virt-net-agent/cni/<network>-<container id>-<ifname>).
import { existsSync } from 'node:fs';
import { cniError, SUPPORTED_CNI_VERSIONS, type CniEnvironment, type CniOutcome } from './spec.js';

export const DEFAULT_CNI_STATE_ROOT = '/var/run/virt-net-agent/cni';

interface ChainedConfig {
  readonly cniVersion: string;
  readonly name: string;
  readonly binding: 'bridge' | 'masquerade';
  readonly stateDir: string;
  readonly prevResult: PrevResult | null;
  readonly ports: readonly number[];
}

interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  readonly sandbox?: string;
}

interface PrevResult {
  readonly cniVersion?: string;
  readonly interfaces?: readonly CniInterface[];
  readonly ips?: readonly object[];
  readonly routes?: readonly object[];
  readonly dns?: object;
}

class ConfigError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The configuration; for DEL (`forDel`) a bad `binding` is ignored: DEL must undo whatever an ADD left, even a failed one. */
function parseConfig(stdin: string, needPrev: boolean, forDel = false): ChainedConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new ConfigError(6, `stdin: not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(6, 'stdin: expected a JSON object');
  const conf = raw as Record<string, unknown>;
  const cniVersion = conf['cniVersion'];
  if (typeof cniVersion !== 'string') throw new ConfigError(7, 'cniVersion: missing');
  if (!SUPPORTED_CNI_VERSIONS.includes(cniVersion)) throw new ConfigError(1, `cniVersion: ${cniVersion} is not supported (${SUPPORTED_CNI_VERSIONS.join(', ')})`);
  const name = conf['name'];
  if (typeof name !== 'string' || name === '') throw new ConfigError(7, 'name: missing');
  let binding = conf['binding'] ?? 'masquerade';
  if (forDel && binding !== 'bridge') binding = 'masquerade';
  if (binding !== 'bridge' && binding !== 'masquerade') throw new ConfigError(7, `binding: ${JSON.stringify(binding)} is not supported (bridge, masquerade)`);
  const stateDir = conf['stateDir'] ?? DEFAULT_CNI_STATE_ROOT;
  if (typeof stateDir !== 'string' || !stateDir.startsWith('/')) throw new ConfigError(7, 'stateDir: expected an absolute path');
  const prev = conf['prevResult'];
  if (needPrev && (typeof prev !== 'object' || prev === null)) throw new ConfigError(7, 'prevResult: missing (virt-net-agent is a chained plugin: put it after the plugin that creates the pod interface)');
  const runtimeConfig = conf['runtimeConfig'];
  const mappings = typeof runtimeConfig === 'object' && runtimeConfig !== null ? (runtimeConfig as Record<string, unknown>)['portMappings'] : undefined;
  const ports = Array.isArray(mappings) ? mappings.flatMap((m: unknown) => (typeof m === 'object' && m !== null && typeof (m as Record<string, unknown>)['containerPort'] === 'number' ? [(m as { containerPort: number }).containerPort] : [])) : [];
  return { cniVersion, name, binding, stateDir, prevResult: typeof prev === 'object' && prev !== null ? (prev as PrevResult) : null, ports };
}

function requireEnv(env: CniEnvironment, key: string): string {
  const value = env[key];
  if (value === undefined || value === '') throw new ConfigError(4, `${key}: missing`);
  return value;
}

/** The one-network VMI the planner gets for this attachment; its uid is the state dir key. */
function attachmentVmi(config: ChainedConfig, containerId: string, ifname: string): object {
  const iface: Record<string, unknown> = { name: 'default', [config.binding]: {} };
  if (config.binding === 'masquerade' && config.ports.length > 0) iface['ports'] = config.ports.map((port) => ({ port }));
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: containerId.slice(0, 12), namespace: 'cni', uid: `${config.name}-${containerId}-${ifname}` },
    spec: { domain: { devices: { interfaces: [iface] } }, networks: [{ name: 'default', pod: {} }] },
  };
}

async function add(env: CniEnvironment, stdin: string): Promise<CniOutcome> {
  const config = parseConfig(stdin, true);
  const containerId = requireEnv(env, 'CNI_CONTAINERID');
  const netns = requireEnv(env, 'CNI_NETNS');
  const ifname = requireEnv(env, 'CNI_IFNAME');
  if (ifname !== 'eth0') throw new ConfigError(7, `CNI_IFNAME: ${ifname}: this version plumbs the pod network's eth0 only`);
  const [{ createNetlinkDriver }, { runSetup }] = await Promise.all([import('../drivers/netlink-driver.js'), import('../apply/setup.js')]);
  const driver = createNetlinkDriver({ netns: { netnsPath: netns } });
  try {
    const result = await runSetup(driver, {
      vmi: attachmentVmi(config, containerId, ifname),
      config: {},
      phase: 'start',
      arch: 'amd64',
      stateRoot: config.stateDir,
      discover: { resolvConfPath: '/dev/null', hostname: containerId.slice(0, 12), networkStatusPath: '/nonexistent', networkInfoPath: '/nonexistent' },
      dryRun: false,
    });
    if (result.plan.errors.length > 0) return cniError(7, 'the pod cannot be plumbed', JSON.stringify(result.plan.errors), config.cniVersion);
    const network = result.plan.networks[0];
    const prev = config.prevResult ?? {};
    // Each interface with its own kernel MAC (runtimes parse it); the guest's MAC rides along as "guestMac".
    const links = await driver.listLinks();
    const macOf = (name: string): { mac?: string } => {
      const mac = links.find((link) => link.name === name)?.mac;
      return mac ? { mac } : {};
    };
    const interfaces: CniInterface[] = [...(prev.interfaces ?? [])];
    if (network?.bridge) interfaces.push({ name: network.bridge, ...macOf(network.bridge), sandbox: netns });
    if (network?.tap) interfaces.push({ name: network.tap, ...macOf(network.tap), sandbox: netns });
    const body = { ...prev, cniVersion: config.cniVersion, interfaces, ...(network?.guestMac ? { guestMac: network.guestMac } : {}) };
    return { stdout: `${JSON.stringify(body)}\n`, exitCode: 0 };
  } finally {
    driver.close();
  }
}

async function del(env: CniEnvironment, stdin: string): Promise<CniOutcome> {
  const config = parseConfig(stdin, false, true);
  const containerId = requireEnv(env, 'CNI_CONTAINERID');
  const ifname = requireEnv(env, 'CNI_IFNAME');
  const netns = env['CNI_NETNS'] ?? '';
  const vmi = attachmentVmi(config, containerId, ifname);
  const { runTeardown, vmiKey } = await import('../apply/setup.js');
  if (netns === '' || !existsSync(netns)) {
    // The netns is gone, and with it everything we made: only our state remains to be forgotten.
    const { StateDir } = await import('../apply/state-dir.js');
    new StateDir(config.stateDir, vmiKey(vmi)).remove();
    return { stdout: '', exitCode: 0 };
  }
  const { createNetlinkDriver } = await import('../drivers/netlink-driver.js');
  const driver = createNetlinkDriver({ netns: { netnsPath: netns } });
  try {
    await runTeardown(driver, { vmi, stateRoot: config.stateDir, dryRun: false });
    return { stdout: '', exitCode: 0 };
  } finally {
    driver.close();
  }
}

async function check(env: CniEnvironment, stdin: string): Promise<CniOutcome> {
  const config = parseConfig(stdin, true);
  const containerId = requireEnv(env, 'CNI_CONTAINERID');
  const netns = requireEnv(env, 'CNI_NETNS');
  const ifname = requireEnv(env, 'CNI_IFNAME');
  const [{ createNetlinkDriver }, { runSetup }] = await Promise.all([import('../drivers/netlink-driver.js'), import('../apply/setup.js')]);
  const driver = createNetlinkDriver({ netns: { netnsPath: netns } });
  try {
    // Converged plumbing needs no action; anything the dry run would do is a drift, named by its actions.
    const result = await runSetup(driver, {
      vmi: attachmentVmi(config, containerId, ifname),
      config: {},
      phase: 'start',
      arch: 'amd64',
      stateRoot: config.stateDir,
      discover: { resolvConfPath: '/dev/null', hostname: containerId.slice(0, 12), networkStatusPath: '/nonexistent', networkInfoPath: '/nonexistent' },
      dryRun: true,
    });
    if (result.plan.errors.length > 0) return cniError(100, 'CHECK: the plumbing no longer plans', JSON.stringify(result.plan.errors), config.cniVersion);
    if (result.actions.length > 0) return cniError(100, `CHECK: the plumbing drifted (${result.actions.length} actions to repair)`, JSON.stringify(result.actions), config.cniVersion);
    return { stdout: '', exitCode: 0 };
  } finally {
    driver.close();
  }
}

const COMMANDS: Readonly<Record<string, (env: CniEnvironment, stdin: string) => Promise<CniOutcome>>> = { ADD: add, DEL: del, CHECK: check };

/** ADD, DEL or CHECK; undefined for any other command (the caller answers those). */
export async function runChained(command: string, env: CniEnvironment, stdin: string): Promise<CniOutcome | undefined> {
  const run = COMMANDS[command];
  if (run === undefined) return undefined;
  try {
    return await run(env, stdin);
  } catch (err) {
    if (err instanceof ConfigError) return cniError(err.code, err.message);
    const message = err instanceof Error ? err.message : String(err);
    return cniError(100, `${command} failed`, message);
  }
}
