#!/usr/bin/env python3
# Test helper: logs the arrival time of every RARP frame (ethertype 0x8035, QEMU's announce-self) on one interface,
# and of every ICMP echo reply received there (the guest answering a probe, as the pod's bridge sees it).
# Usage: rarp_watch.py IFACE OUT   (root, inside the pod netns).
# Lines: "# start T IFACE" first, then "t_recv rarp SRC_MAC" and "t_recv echo-reply SRC_IP".
import signal, socket, sys, time

ifc, out = sys.argv[1], sys.argv[2]
ETH_P_ALL = 0x0003
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((ifc, 0))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
f = open(out, 'w', buffering=1)
f.write(f"# start {time.time():.6f} {ifc}\n")
while True:
    data, addr = s.recvfrom(2048)
    t = time.time()
    if addr[2] == socket.PACKET_OUTGOING or len(data) < 14:
        continue
    ethertype = data[12:14]
    if ethertype == b'\x80\x35':
        f.write(f"{t:.6f} rarp {data[6:12].hex(':')}\n")
    elif ethertype == b'\x08\x00' and len(data) >= 34 and data[23] == 1:
        ihl = (data[14] & 0x0F) * 4
        if len(data) > 14 + ihl and data[14 + ihl] == 0:
            f.write(f"{t:.6f} echo-reply {socket.inet_ntoa(data[26:30])}\n")
