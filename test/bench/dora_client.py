# A DHCP relay-style DORA client for benchmarks: from GIADDR:67 it sends DISCOVER then REQUEST to SERVER:67 and times each DORA.
#
# Run inside the relay netns: python3 test/bench/dora_client.py SERVER GIADDR COUNT [MAC] [WARM_UP]
# Prints {"latenciesMs": [...], "lost": N} on stdout. Relay mode (giaddr set) makes every server unicast its reply to
# GIADDR:67, so serve and dnsmasq are measured on exactly the same path.
# Why Python and not Node: a fresh Node client stalled at fixed iterations while V8 compiled its own code (the slow
# DORAs of every round fell on the same indices for serve and dnsmasq alike), which set the p99 of both servers.
# This client builds its packets by hand (RFC 2131 layout), independent of the agent's codec.
import json
import socket
import struct
import sys
import time

TIMEOUT_S = 2.0
MAGIC = bytes([99, 130, 83, 99])
DISCOVER, OFFER, REQUEST, ACK = 1, 2, 3, 5


def packet(xid: int, giaddr: bytes, mac: bytes, options: bytes) -> bytes:
    # op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr[16], sname[64], file[128]
    head = struct.pack('!BBBBIHH4s4s4s4s16s64s128s', 1, 1, 6, 1, xid, 0, 0, bytes(4), bytes(4), bytes(4), giaddr, mac + bytes(10), bytes(64), bytes(128))
    return head + MAGIC + options + bytes([255])


def option(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


PARAMETERS = option(55, bytes([1, 3, 6, 15, 26, 28, 51, 54]))


def parse(reply: bytes):
    """(xid, message type, yiaddr, server identifier or None), or None for anything that is not a DHCP reply."""
    if len(reply) < 240 or reply[0] != 2 or reply[236:240] != MAGIC:
        return None
    xid = struct.unpack_from('!I', reply, 4)[0]
    yiaddr = reply[16:20]
    kind, server_id = None, None
    i = 240
    while i < len(reply):
        code = reply[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(reply):
            break
        length = reply[i + 1]
        value = reply[i + 2:i + 2 + length]
        if code == 53 and length == 1:
            kind = value[0]
        elif code == 54 and length == 4:
            server_id = value
        i += 2 + length
    return xid, kind, yiaddr, server_id


def await_reply(sock: socket.socket, xid: int, kind: int, deadline: float):
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return None
        parsed = parse(data)
        if parsed is not None and parsed[0] == xid and parsed[1] == kind:
            return parsed


def main() -> None:
    server = sys.argv[1]
    giaddr_text = sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    mac = bytes.fromhex((sys.argv[4] if len(sys.argv) > 4 else '02:be:0c:00:00:01').replace(':', ''))
    warm_up = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    giaddr = socket.inet_aton(giaddr_text)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((giaddr_text, 67))
    latencies, lost = [], 0
    xid = (int(time.time() * 1000) << 8) & 0xffffffff
    for i in range(warm_up + count):
        measured = i >= warm_up
        xid = (xid + 1) & 0xffffffff
        start = time.perf_counter_ns()
        sock.sendto(packet(xid, giaddr, mac, option(53, bytes([DISCOVER])) + PARAMETERS), (server, 67))
        offer = await_reply(sock, xid, OFFER, time.monotonic() + TIMEOUT_S)
        if offer is None:
            lost += measured
            continue
        server_id = offer[3] if offer[3] is not None else socket.inet_aton(server)
        options = option(53, bytes([REQUEST])) + option(50, offer[2]) + option(54, server_id) + PARAMETERS
        sock.sendto(packet(xid, giaddr, mac, options), (server, 67))
        ack = await_reply(sock, xid, ACK, time.monotonic() + TIMEOUT_S)
        if ack is None:
            lost += measured
            continue
        if measured:
            latencies.append((time.perf_counter_ns() - start) / 1e6)
    sock.close()
    sys.stdout.write(json.dumps({'latenciesMs': latencies, 'lost': lost}) + '\n')


if __name__ == '__main__':
    main()
