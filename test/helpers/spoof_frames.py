#!/usr/bin/env python3
# Test helper: writes Ethernet frames from a MAC that is not the guest's (02:de:ad:be:ef:01) into a bridge port the
# spoof guard watches until the guard's rules counted COUNT drops; prints that count. Until the port forwards (its
# carrier comes later) frames die before the guard, so they are written one at a time, each waited for.
# Usage (root, inside the pod netns): spoof_frames.py tap TAP COUNT     open TAP as the guest's tap and write into it
#                                     spoof_frames.py packet IFACE COUNT  send out IFACE, a veth whose peer is the port
import fcntl, os, re, socket, struct, subprocess, sys, time

mode, ifname, count = sys.argv[1], sys.argv[2], int(sys.argv[3])


def dropped():
    out = subprocess.run(['nft', 'list', 'chain', 'bridge', 'virt_net_agent', 'guest-spoof'], capture_output=True, text=True).stdout
    return sum(int(n) for n in re.findall(r'counter packets (\d+) bytes \d+ drop', out))


frame = b'\xff' * 6 + bytes.fromhex('02deadbeef01') + b'\x08\x06' + bytes(46)
if mode == 'tap':
    fd = os.open('/dev/net/tun', os.O_RDWR)
    # TUNSETIFF with the tap's own flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_ONE_QUEUE (agent/drivers/tap.ts);
    # with IFF_VNET_HDR every write starts with a 10-byte virtio-net header.
    fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', ifname.encode(), 0x0002 | 0x1000 | 0x4000 | 0x2000))
    send = lambda: os.write(fd, bytes(10) + frame)
elif mode == 'packet':
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    send = lambda: s.send(frame)
else:
    sys.exit(f'spoof_frames.py: unknown mode {mode}')

deadline = time.time() + 30
while dropped() < count:
    if time.time() > deadline:
        sys.exit('the guard never counted the frames')
    before = dropped()
    send()
    t = time.time()
    while dropped() == before and time.time() - t < 0.5:
        time.sleep(0.01)
print(dropped())
