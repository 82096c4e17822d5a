// sysctls through /proc/sys with synchronous fs calls only (main thread = the entered netns; see agent/apply/netns.ts).
//
// "net.ipv4.conf.all.arp_ignore" → /proc/sys/net/ipv4/conf/all/arp_ignore. Dots always become slashes, so interface
// names containing dots cannot be addressed this way (KubeVirt's names never contain one). A name that already
// contains "/" is taken as a path below /proc/sys.
import { readFileSync, writeFileSync } from 'node:fs';
import { describeErrno, KernelError } from './kernel-error.js';

const ROOT = '/proc/sys';

export function sysctlPath(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.split(/[./]/).some((part) => part === '' || part === '..')) {
    throw new KernelError(`sysctl ${name}`, 'EINVAL', 'not a sysctl name (expected e.g. net.ipv4.ip_forward)');
  }
  return `${ROOT}/${trimmed.includes('/') ? trimmed : trimmed.replace(/\./g, '/')}`;
}

/** The value with surrounding whitespace trimmed ("1", "0\t2147483647" stays tab-separated), or null if no such sysctl. */
export function readSysctl(name: string): string | null {
  const path = sysctlPath(name);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT') return null;
    throw new KernelError(`sysctl ${name}`, code, `read ${path}: ${describeErrno(code)}`);
  }
}

export function writeSysctl(name: string, value: string): void {
  const path = sysctlPath(name);
  try {
    writeFileSync(path, `${value}\n`, { flag: 'r+' }); // r+: never O_CREAT
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new KernelError(`sysctl ${name}`, code, `write ${JSON.stringify(value)} to ${path}: ${describeErrno(code)}`);
  }
}
