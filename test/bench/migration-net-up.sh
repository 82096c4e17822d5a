#!/bin/bash
# Bench baseline: the reference masquerade plumbing (/work/shared/reference/migration/net-up.sh, shell + dnsmasq) for one existing pod netns.
# Bridge k6t-eth0 10.0.2.1/24 with MAC 02:00:00:00:00:00, tap0 on it, ip_forward, nft DNAT pod IP -> 10.0.2.2 except the
# migration ports 49152-49215, masquerade of the guest, dnsmasq handing out 10.0.2.2 (daemonized; pid file in DIR).
# Usage: migration-net-up.sh NETNS POD_IP DIR [MTU]   (MTU: the pod network's, e.g. 1400 on OVN-K pods: set on the
# bridge and the tap and handed out by dnsmasq, option 26, as the reference would need on such a pod)
set -euo pipefail
ns=$1 podip=$2 dir=$3 mtu=${4:-}
mkdir -p "$dir"
ip -n "$ns" link add k6t-eth0 type bridge
ip -n "$ns" link set k6t-eth0 address 02:00:00:00:00:00
ip -n "$ns" addr add 10.0.2.1/24 dev k6t-eth0
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" link set tap0 master k6t-eth0 up
ip -n "$ns" link set k6t-eth0 up
mtu_option=()
if [ -n "$mtu" ]; then
  ip -n "$ns" link set k6t-eth0 mtu "$mtu"
  ip -n "$ns" link set tap0 mtu "$mtu"
  mtu_option=(--dhcp-option=26,"$mtu")
fi
ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$ns" nft add table ip lmfz
ip netns exec "$ns" nft add chain ip lmfz pre '{ type nat hook prerouting priority dstnat; }'
ip netns exec "$ns" nft add rule ip lmfz pre iifname eth0 tcp dport 49152-49215 accept
ip netns exec "$ns" nft add rule ip lmfz pre iifname eth0 ip daddr "$podip" dnat to 10.0.2.2
ip netns exec "$ns" nft add chain ip lmfz post '{ type nat hook postrouting priority srcnat; }'
ip netns exec "$ns" nft add rule ip lmfz post ip saddr 10.0.2.2 oifname eth0 masquerade
ip netns exec "$ns" dnsmasq --conf-file=/dev/null --port=0 --user=root --group=root \
  --interface=k6t-eth0 --bind-interfaces --except-interface=lo --dhcp-authoritative \
  --dhcp-range=10.0.2.2,10.0.2.2,255.255.255.0,1h --dhcp-option=3,10.0.2.1 "${mtu_option[@]}" \
  --dhcp-leasefile="$dir/dnsmasq.leases" --log-dhcp --log-facility="$dir/dnsmasq.log" \
  --pid-file="$dir/dnsmasq.pid"
