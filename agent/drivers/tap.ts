// Persistent tap devices through /dev/net/tun ioctls (TUNSETIFF, TUNSETOWNER, TUNSETGROUP, TUNSETPERSIST) via koffi.
//
// The device is created in the network namespace of the calling thread at open() time, so call this on the main thread
// after enterNetns, or inside NetnsScope.run (agent/apply/netns.ts). rtnetlink cannot create taps (RTM_NEWLINK kind "tun"
// → EOPNOTSUPP), hence the ioctls.
//
// Flags follow KubeVirt's virt-chroot create-tap (cmd/virt-chroot/tap-device-maker.go): always IFF_TAP | IFF_NO_PI |
// IFF_VNET_HDR; queues ≤ 1 adds IFF_ONE_QUEUE, queues > 1 adds IFF_MULTI_QUEUE. IFF_TUN_EXCL is always added so that
// "create" never silently attaches to an existing device (EBUSY instead); it is a request flag, not stored on the device.
// Multi-queue: the device is made with one queue and left with none (persistent); qemu/libvirt attach their N queue
// fds later with the same IFF_MULTI_QUEUE flag, so nothing here opens the other queues.
// PERSIST is set last: if any earlier step fails, closing the fd destroys the half-made device.
import { O_CLOEXEC, O_RDWR, libc } from './libc.js';
import { errnoName, KernelError, describeErrno } from './kernel-error.js';

const TUNSETIFF = 0x400454ca;
const TUNSETPERSIST = 0x400454cb;
const TUNSETOWNER = 0x400454cc;
const TUNSETGROUP = 0x400454ce;

export const IFF_TAP = 0x0002;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_NO_PI = 0x1000;
export const IFF_ONE_QUEUE = 0x2000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_TUN_EXCL = 0x8000;

const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;

export interface TapDeviceOptions {
  readonly queues: number;
  readonly uid: number;
  readonly gid: number;
}

/** The TUNSETIFF flags for a queue count. */
export function tapFlags(queues: number): number {
  return IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL | (queues > 1 ? IFF_MULTI_QUEUE : IFF_ONE_QUEUE);
}

/** Creates a persistent tap named `name`, owned by uid/gid. Synchronous; see the file comment for the namespace rule. */
export function createTapDevice(name: string, options: TapDeviceOptions): void {
  const op = `tap: create ${name}`;
  if (name.length === 0 || Buffer.byteLength(name) >= IFNAMSIZ || /[/:\s]/.test(name)) {
    throw new KernelError(op, 'EINVAL', `not a valid interface name: ${JSON.stringify(name)}`);
  }
  const c = libc();
  const opened = c.open('/dev/net/tun', O_RDWR | O_CLOEXEC);
  if (opened.ret < 0) {
    const code = errnoName(opened.errno);
    throw new KernelError(op, code, `open /dev/net/tun: ${describeErrno(code)}`);
  }
  const fd = opened.ret;
  try {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, 'utf8');
    ifr.writeUInt16LE(tapFlags(options.queues), IFNAMSIZ);
    const steps: readonly (readonly [string, () => { ret: number; errno: number }])[] = [
      ['TUNSETIFF', () => c.ioctlBuffer(fd, TUNSETIFF, ifr)],
      [`TUNSETOWNER ${options.uid}`, () => c.ioctlInt(fd, TUNSETOWNER, options.uid)],
      [`TUNSETGROUP ${options.gid}`, () => c.ioctlInt(fd, TUNSETGROUP, options.gid)],
      ['TUNSETPERSIST', () => c.ioctlInt(fd, TUNSETPERSIST, 1)],
    ];
    for (const [what, step] of steps) {
      const { ret, errno } = step();
      if (ret < 0) {
        const code = errnoName(errno);
        const hint = what === 'TUNSETIFF' && code === 'EBUSY' ? ' (a link with this name already exists)' : '';
        throw new KernelError(op, code, `${what}: ${describeErrno(code)}${hint}`);
      }
    }
  } finally {
    c.close(fd);
  }
}
