# Probes many DHCP servers at once: one DISCOVER per interface every RETRY_S (20 ms) until that interface got an OFFER.
#
# Run inside a netns whose interfaces are veths into the served pods' bridges:
#   python3 test/bench/dhcp_prober.py TIMEOUT_S IFNAME...
# Prints {"answered": {ifname: unix time of the first OFFER}, "missing": [ifnames]} on stdout. Each interface has a
# socket bound to 0.0.0.0:68 and to the device (SO_BINDTODEVICE), sends a broadcast DISCOVER with the broadcast flag
# (so the server broadcasts its OFFER back on that bridge) and a per-interface xid; packets built by hand (RFC 2131).
import json
import select
import socket
import struct
import sys
import time

RETRY_S = 0.02
MAGIC = bytes([99, 130, 83, 99])
SO_BINDTODEVICE = 25


def discover(xid, mac):
    head = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4), bytes(4), bytes(4), mac + bytes(10), bytes(64), bytes(128))
    return head + MAGIC + bytes([53, 1, 1, 255])


def is_offer(reply, xid):
    if len(reply) < 244 or reply[0] != 2 or reply[236:240] != MAGIC or struct.unpack_from('!I', reply, 4)[0] != xid:
        return False
    i = 240
    while i + 1 < len(reply) and reply[i] != 255:
        if reply[i] == 0:
            i += 1
            continue
        if reply[i] == 53 and reply[i + 1] == 1:
            return reply[i + 2] == 2
        i += 2 + reply[i + 1]
    return False


def main():
    timeout = float(sys.argv[1])
    names = sys.argv[2:]
    socks = {}
    for index, name in enumerate(names):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, name.encode())
        s.bind(('0.0.0.0', 68))
        s.setblocking(False)
        xid = 0x7e000000 + index
        mac = bytes([0x02, 0x7e, 0, 0, index >> 8, index & 0xff])
        socks[s.fileno()] = (s, name, xid, discover(xid, mac))
    answered = {}
    end = time.time() + timeout
    next_send = 0.0
    while len(answered) < len(names) and time.time() < end:
        now = time.time()
        if now >= next_send:
            for s, name, _, packet in socks.values():
                if name not in answered:
                    try:
                        s.sendto(packet, ('255.255.255.255', 67))
                    except OSError:
                        pass
            next_send = now + RETRY_S
        ready, _, _ = select.select(list(socks.keys()), [], [], max(0.0, next_send - time.time()))
        for fd in ready:
            s, name, xid, _ = socks[fd]
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                if name not in answered and is_offer(data, xid):
                    answered[name] = time.time()
    print(json.dumps({'answered': answered, 'missing': [n for n in names if n not in answered]}))


main()
