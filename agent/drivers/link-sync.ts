// Makes the kernel finish a link's pending carrier change now (ETHTOOL_GLINK runs linkwatch_sync_dev), so a neighbour entry set right after is not flushed by it later.
//
// Why: the kernel announces carrier changes from its linkwatch work up to a second late, and a carrier loss flushes
// every neighbour entry of the link that is not permanent (neigh_carrier_down). A masquerade bridge goes up, gains the
// tap (no carrier until QEMU opens it) and so loses carrier up to a second after setup made it; an entry set before
// that moment vanished (seen: the pinned guest address gone 0.5 s after setup, and a re-run then wrote it again). The
// bridge's ethtool get_link is ethtool_op_get_link, which calls linkwatch_sync_dev() before answering: after it,
// nothing about this link's carrier is pending.
import { endianness } from 'node:os';
import koffi from 'koffi';
import { libc } from './libc.js';
import { errnoName } from './kernel-error.js';

const SIOCETHTOOL = 0x8946;
const ETHTOOL_GLINK = 0x0000000a;
const IFNAMSIZ = 16;
/** struct ifreq: the name, then a union whose member here is the pointer to struct ethtool_value (ifr_data). */
const IFREQ_SIZE = 40;

/**
 * ETHTOOL_GLINK for the link `name` in the namespace of socket `fd` (any socket: the ioctl reaches dev_ioctl in the
 * socket's namespace). Returns whether the link has carrier, or null when the link has no ethtool get_link (then it
 * has no pending state this could sync). Throws Error with the errno name otherwise (ENODEV: no such link).
 */
export function ethtoolLinkState(fd: number, name: string): boolean | null {
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length === 0 || nameBytes.length >= IFNAMSIZ || nameBytes.includes(0)) throw new Error(`not an interface name: ${JSON.stringify(name)}`);
  // struct ethtool_value { u32 cmd; u32 data; } in native memory: the ifreq carries its address.
  const value = koffi.alloc('uint32_t', 2);
  try {
    koffi.encode(value, 'uint32_t', ETHTOOL_GLINK);
    const ifr = Buffer.alloc(IFREQ_SIZE);
    nameBytes.copy(ifr, 0);
    const address = BigInt(koffi.address(value));
    if (endianness() === 'LE') ifr.writeBigUInt64LE(address, IFNAMSIZ);
    else ifr.writeBigUInt64BE(address, IFNAMSIZ);
    const { ret, errno } = libc().ioctlBuffer(fd, SIOCETHTOOL, ifr);
    if (ret < 0) {
      const code = errnoName(errno);
      if (code === 'EOPNOTSUPP') return null;
      throw new Error(`SIOCETHTOOL ETHTOOL_GLINK ${name}: ${code}`);
    }
    return (koffi.decode(value, 'uint32_t', 2) as Uint32Array)[1] !== 0;
  } finally {
    koffi.free(value);
  }
}
