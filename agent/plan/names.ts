// KubeVirt's in-pod naming scheme: pod interface names, bridges, renamed NICs, taps and the fake bridge IP.
import { nodeCrypto } from './lazy-builtins.js';

export const PRIMARY_POD_INTERFACE = 'eth0';

/** Secondary Multus interface: "pod" + sha256(network name)[:11] (15 = IFNAMSIZ-1 minus len("-nic")). */
export function hashedPodInterfaceName(networkName: string): string {
  return 'pod' + nodeCrypto().createHash('sha256').update(networkName).digest('hex').slice(0, 11);
}

/** Legacy ordinal names are in use if any pod interface is called netN. */
export function usesOrdinalNames(podInterfaceNames: readonly string[]): boolean {
  return podInterfaceNames.some((name) => /^net\d+$/.test(name));
}

function trimPodPrefix(podInterfaceName: string): string {
  return podInterfaceName.startsWith('pod') ? podInterfaceName.slice(3) : podInterfaceName;
}

export function bridgeName(podInterfaceName: string): string {
  return 'k6t-' + trimPodPrefix(podInterfaceName);
}

export function renamedPodNicName(podInterfaceName: string): string {
  return trimPodPrefix(podInterfaceName) + '-nic';
}

/** Secondary networks: "tap" + podIface[3:] (tap16477688c0e, tap1 for net1); the primary is tap0. */
export function tapName(podInterfaceName: string, isPrimary: boolean): string {
  return isPrimary ? 'tap0' : 'tap' + podInterfaceName.slice(3);
}

/** Bridge binding's fake bridge address: "169.254.75.1" + index (KubeVirt's scheme, valid below index 100). */
export function fakeBridgeIp(interfaceIndex: number): string {
  return `169.254.75.1${interfaceIndex}`;
}

export const USER_ALIAS_PREFIX = 'ua-';
export function userAlias(networkName: string): string {
  return USER_ALIAS_PREFIX + networkName;
}

export const MASQUERADE_BRIDGE_MAC = '02:00:00:00:00:00';
