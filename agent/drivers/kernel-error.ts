// A failed kernel operation (netlink, tun ioctl, sysctl, nft, setns): names the operation and carries the errno name.
import { constants } from 'node:os';
import { AgentError } from '../plan/errors.js';

/** A few strerror(3) texts, so messages read like `ip`'s ("File exists"); other codes print as their name only. */
const STRERROR: Readonly<Record<string, string>> = {
  EPERM: 'Operation not permitted',
  ENOENT: 'No such file or directory',
  ESRCH: 'No such process',
  EBADF: 'Bad file descriptor',
  EACCES: 'Permission denied',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  EINVAL: 'Invalid argument',
  ENOSPC: 'No space left on device',
  ERANGE: 'Numerical result out of range',
  EOPNOTSUPP: 'Operation not supported',
  ENOTSUP: 'Operation not supported',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  ENETUNREACH: 'Network is unreachable',
  ENOBUFS: 'No buffer space available',
  EAFNOSUPPORT: 'Address family not supported by protocol',
  ENOTEMPTY: 'Directory not empty',
  ELOOP: 'Too many levels of symbolic links',
};

const BY_NUMBER = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // ENOTSUP and EOPNOTSUPP share 95 on Linux; keep the first (EOPNOTSUPP comes later in Node's table, prefer it).
  if (!BY_NUMBER.has(value) || name === 'EOPNOTSUPP') BY_NUMBER.set(value, name);
}

/** "EEXIST" for 17; "E<n>" for numbers the platform does not name. */
export function errnoName(errno: number): string {
  return BY_NUMBER.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** Canonical name: ENOTSUP (as the netlink library reports 95) becomes EOPNOTSUPP. */
export function canonicalErrno(code: string): string {
  return code === 'ENOTSUP' ? 'EOPNOTSUPP' : code;
}

export function describeErrno(code: string): string {
  const text = STRERROR[code];
  return text === undefined ? code : `${code} (${text})`;
}

export class KernelError extends AgentError {
  /**
   * @param op   what was attempted, e.g. "netlink: create bridge k6t-eth0" (the one-line field)
   * @param code errno name (EEXIST, EOPNOTSUPP, …) when the kernel gave one, else null
   */
  constructor(
    readonly op: string,
    readonly code: string | null,
    message: string,
  ) {
    super(op, message, 1);
    this.name = 'KernelError';
  }
}

/** True when err is a KernelError carrying one of the given errno names. */
export function hasErrno(err: unknown, ...codes: readonly string[]): boolean {
  return err instanceof KernelError && err.code !== null && codes.includes(err.code);
}
