#!/usr/bin/env bash
# Sets up a real sandbox pod (built by the CNI bridge + host-local plugins, like a kubelet) for an example VMI, shows the result, tears it down.
#
# Usage (root, after ./scripts/setup.sh):  ./scripts/demo.sh [--vmi FILE] [--keep | --clean]
#   --vmi FILE  the VMI to plumb (default examples/vmi-masquerade.yaml)
#   --keep      leave the namespaces and the plumbing in place to look around (the next run, or --clean, removes them)
#   --clean     only remove what a previous --keep run left, then exit
#
# Two network namespaces stand in for a Kubernetes node: "vna-demo-node" plays the host (CNI bridge cni0, the pod
# network's gateway 10.244.196.1) and "vna-demo-pod" is the virt-launcher pod's sandbox (eth0 from CNI). Nothing outside
# these two namespaces is touched. Re-running is safe: leftovers of an earlier run are removed first.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_NS=vna-demo-node
POD_NS=vna-demo-pod
WORK=/tmp/vna-demo
CNI_PATH=/usr/lib/cni
CONTAINER_ID=vna-demo-sandbox
VMI=examples/vmi-masquerade.yaml
KEEP=0
CLEAN_ONLY=0

while [ $# -gt 0 ]; do
  case "$1" in
    --vmi) VMI="${2:?--vmi needs a file}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --clean) CLEAN_ONLY=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "demo.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it creates network namespaces)"
[ -x "$CNI_PATH/bridge" ] && [ -x "$CNI_PATH/host-local" ] || die "$CNI_PATH/bridge not found: install containernetworking-plugins (./scripts/setup.sh)"
[ -f dist/agent/cli/cli.js ] || die "dist/agent/cli/cli.js not found: run ./scripts/setup.sh (or npm run build) first"
[ -f "$VMI" ] || die "--vmi: no such file $VMI"
command -v nft >/dev/null || die "nft not found: install nftables (./scripts/setup.sh)"

agent() { node dist/agent/cli/cli.js "$@"; }
section() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

# The CNI network configuration a kubelet would hand the bridge plugin (as in test/helpers/cni.ts). The range starts
# at .140 so the pod gets 10.244.196.140, the IP in the example VMI's status.
cni_conf() {
  cat <<EOF
{"cniVersion": "1.0.0", "name": "podnet", "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "mtu": 1450,
 "ipam": {"type": "host-local", "dataDir": "$WORK/ipam",
          "ranges": [[{"subnet": "10.244.196.0/24", "rangeStart": "10.244.196.140", "gateway": "10.244.196.1"}]],
          "routes": [{"dst": "0.0.0.0/0"}]}}
EOF
}

cni() { # cni ADD|DEL: run the bridge plugin in the node netns against the pod netns, as the kubelet's CRI would
  cni_conf | ip netns exec "$NODE_NS" env CNI_COMMAND="$1" CNI_CONTAINERID="$CONTAINER_ID" CNI_NETNS="/run/netns/$POD_NS" \
    CNI_IFNAME=eth0 CNI_PATH="$CNI_PATH" "$CNI_PATH/bridge"
}

common_flags() {
  printf '%s\n' --vmi "$VMI" --netns "/run/netns/$POD_NS" --state-dir "$WORK/state" \
    --resolv-conf "$WORK/resolv.conf" --hostname "$(vmi_name)"
}
vmi_name() { sed -n 's/^  name: //p' "$VMI" | head -n1; }

ns_exists() { [ -e "/run/netns/$1" ]; }

cleanup() {
  if ns_exists "$POD_NS"; then
    if [ -d "$WORK/state" ]; then mapfile -t flags < <(common_flags); agent teardown "${flags[@]}" >/dev/null 2>&1 || true; fi
    if ns_exists "$NODE_NS"; then cni DEL >/dev/null 2>&1 || true; fi
    ip netns del "$POD_NS" 2>/dev/null || true
  fi
  if ns_exists "$NODE_NS"; then ip netns del "$NODE_NS" 2>/dev/null || true; fi
  rm -rf "$WORK"
}

# What the namespace looks like, for the "restored exactly" check (same idea as test/helpers/agent-run.ts dumpNetns).
snapshot() {
  ip -n "$POD_NS" -br link; ip -n "$POD_NS" -br addr; ip -n "$POD_NS" route show table all
  ip netns exec "$POD_NS" nft list ruleset
  ip netns exec "$POD_NS" sysctl -n net.ipv4.ip_forward net.ipv4.conf.all.arp_ignore
}

cleanup # leftovers of an earlier --keep run or an interrupted run
[ "$CLEAN_ONLY" -eq 1 ] && { echo "demo.sh: removed $NODE_NS, $POD_NS and $WORK"; exit 0; }
if [ "$KEEP" -eq 0 ]; then trap cleanup EXIT; else trap 'echo "demo.sh: failed; ./scripts/demo.sh --clean removes the leftovers" >&2' ERR; fi

mkdir -p "$WORK/ipam"
printf 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n' >"$WORK/resolv.conf"
ip netns add "$NODE_NS"
ip netns add "$POD_NS"
ip -n "$NODE_NS" link set lo up
ip -n "$POD_NS" link set lo up
cni ADD >"$WORK/cni-result.json"
mapfile -t FLAGS < <(common_flags)

section "1. The pod sandbox as CNI left it (bridge + host-local; gateway cni0 in $NODE_NS)"
ip -n "$POD_NS" -br addr
ip -n "$POD_NS" route
BEFORE="$(snapshot)"

# The pod state setup will see, kept to show the plan's DHCP lease below (setup itself does discover → plan → apply).
agent discover --netns "/run/netns/$POD_NS" --resolv-conf "$WORK/resolv.conf" --hostname "$(vmi_name)" >"$WORK/pod.json"

section "2. virt-net-agent setup --vmi $VMI --netns /run/netns/$POD_NS"
agent setup "${FLAGS[@]}" >"$WORK/setup.json"
node -e '
  const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${s.writes} kernel writes:`);
  for (const a of s.actions) console.log(`  - ${a}`);
  for (const n of s.networks) console.log(`network ${n.name}: ${n.binding}, bridge ${n.bridge}, tap ${n.tap}, guest MAC ${n.guestMac}`);
  for (const w of s.warnings ?? []) console.log(`warning: ${w}`);
' "$WORK/setup.json"

section "3. The pod after setup"
ip -n "$POD_NS" -br link
ip -n "$POD_NS" -br addr

section "4. nftables ruleset in the pod (applied as one nft -f transaction)"
ip netns exec "$POD_NS" nft list ruleset

section "5. The DHCP lease the guest will be offered (from the plan)"
agent plan --vmi "$VMI" --pod "$WORK/pod.json" >"$WORK/plan.json" || [ $? -eq 2 ] || die "plan failed"
node -e '
  const plan = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const ip4 = (hex) => (hex.match(/.{8}/g) ?? []).map((w) => w.match(/../g).map((b) => parseInt(b, 16)).join(".")).join(", ");
  const text = (hex) => Buffer.from(hex, "hex").toString("latin1");
  for (const n of plan.networks) {
    const d = n.dhcp;
    if (!d) { console.log(`network ${n.name}: no DHCPv4 server (${n.binding})`); continue; }
    const o = d.options;
    console.log(`network ${n.name} on ${d.interface}: offer ${d.yiaddr}/${d.prefixLength} to ${d.clientMac ?? "any client"}`);
    console.log(`  server ${d.serverIdentifier}, lease ${d.leaseSeconds} s`);
    if (o["3"]) console.log(`  router      ${ip4(o["3"])}`);
    if (o["6"]) console.log(`  dns         ${ip4(o["6"])}`);
    if (o["26"]) console.log(`  mtu         ${parseInt(o["26"], 16)}`);
    if (o["12"]) console.log(`  hostname    ${text(o["12"])}`);
    if (o["15"]) console.log(`  domain      ${text(o["15"])}`);
    console.log(`  options     ${Object.keys(o).join(", ")}`);
  }
' "$WORK/plan.json"

section "6. setup again: converged, nothing to do"
agent setup "${FLAGS[@]}" | node -e 'let t="";process.stdin.on("data",c=>t+=c).on("end",()=>{const s=JSON.parse(t);console.log(`${s.writes} kernel writes, ${s.actions.length} actions`)})'

if [ "$KEEP" -eq 1 ]; then
  section "Kept"
  echo "Look around: ip netns exec $POD_NS bash   (node side: $NODE_NS).  Remove: ./scripts/demo.sh --clean"
  exit 0
fi

section "7. virt-net-agent teardown"
agent teardown "${FLAGS[@]}" | node -e 'let t="";process.stdin.on("data",c=>t+=c).on("end",()=>{const s=JSON.parse(t);console.log(`${s.writes} kernel writes:`);for(const a of s.actions)console.log(`  - ${a}`)})'
if [ "$(snapshot)" = "$BEFORE" ]; then
  echo "pod namespace restored exactly (ip link/addr/route, nft ruleset, sysctls equal the pre-setup dump)"
else
  echo "pod namespace NOT restored:"; diff <(echo "$BEFORE") <(snapshot) || true; exit 1
fi
