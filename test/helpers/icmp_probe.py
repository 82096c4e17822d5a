#!/usr/bin/env python3
# Test helper: raw-socket ICMP echo to every TARGET each INTERVAL_S (10 ms in the migration tests); one line per reply.
# Usage: icmp_probe.py OUT INTERVAL_S TARGET...   (root, run inside the "node" netns). Lines: "t_recv target seq rtt_ms";
# "# start T" first and "# stop T sent N" after SIGTERM. After /work/shared/reference/migration/pinger.py (no ping binary
# on the host, and busybox ping has no timestamps).
import os, select, signal, socket, struct, sys, time

out, interval, targets = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setblocking(False)
ident = os.getpid() & 0xFFFF
stop = False


def onsig(*_):
    global stop
    stop = True


def csum(b):
    if len(b) % 2:
        b += b'\0'
    x = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    x = (x >> 16) + (x & 0xFFFF)
    x += x >> 16
    return (~x) & 0xFFFF


signal.signal(signal.SIGTERM, onsig)
signal.signal(signal.SIGINT, onsig)
f = open(out, 'w', buffering=1)
f.write(f"# start {time.time():.6f} interval {interval} targets {' '.join(targets)}\n")
seq = 0
nsent = 0
nxt = time.monotonic()
while not stop:
    now = time.monotonic()
    if now >= nxt:
        seq = (seq + 1) & 0xFFFF
        for t in targets:
            payload = struct.pack('!d', time.time())
            hdr = struct.pack('!BBHHH', 8, 0, 0, ident, seq)
            pkt = struct.pack('!BBHHH', 8, 0, csum(hdr + payload), ident, seq) + payload
            try:
                s.sendto(pkt, (t, 0))
                nsent += 1
            except OSError:
                pass
        nxt += interval
        if nxt < now:
            nxt = now + interval
    try:
        r, _, _ = select.select([s], [], [], max(0, nxt - time.monotonic()))
    except InterruptedError:
        continue
    while r:
        try:
            data, addr = s.recvfrom(2048)
        except BlockingIOError:
            break
        ihl = (data[0] & 0xF) * 4
        typ, _code, _c, rid, rseq = struct.unpack('!BBHHH', data[ihl:ihl + 8])
        if typ == 0 and rid == ident and len(data) >= ihl + 16:
            tsent = struct.unpack('!d', data[ihl + 8:ihl + 16])[0]
            tr = time.time()
            f.write(f"{tr:.6f} {addr[0]} {rseq} {1000 * (tr - tsent):.2f}\n")
f.write(f"# stop {time.time():.6f} sent {nsent}\n")
f.close()
