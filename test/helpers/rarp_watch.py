#!/usr/bin/env python3
# Test helper: logs the arrival time of every RARP frame (ethertype 0x8035, QEMU's announce-self) on one interface.
# Usage: rarp_watch.py IFACE OUT   (root, inside the pod netns). Lines: "t_recv src_mac"; "# start T" first.
import signal, socket, sys, time

ifc, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))
s.bind((ifc, 0))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
f = open(out, 'w', buffering=1)
f.write(f"# start {time.time():.6f} {ifc}\n")
while True:
    data = s.recv(2048)
    t = time.time()
    if len(data) >= 14 and data[12:14] == b'\x80\x35':
        f.write(f"{t:.6f} {data[6:12].hex(':')}\n")
