#!/usr/bin/env bash
# One-time setup of a Debian 12 machine with Node 20 (run as root): system packages, npm dependencies, and the compiled agent in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep this list identical to README.md ("System packages") and .ci/run.
PACKAGES=(
  nftables iproute2 libvirt-daemon libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  libvirt-dev qemu-system-x86 passt busybox-static dnsmasq udhcpc isc-dhcp-client iperf3 tcpdump
  libxml2-utils cpio kea-admin containernetworking-plugins file libcap2-bin openssl
  g++ make python3 gcc libc6-dev podman buildah crun mmdebstrap runc
  openvswitch-switch ovn-central ovn-host ethtool iputils-ping
  containerd iptables prometheus
)

if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "setup.sh: Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "setup.sh: run as root (apt-get needs it)" >&2
    exit 1
  fi
fi

"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"

# @unraid/libvirt (dev dependency) is compiled by node-gyp during npm ci. Point it at the installed Node headers so it
# does not try to download them; npm only runs its build because package.json lists it under "allowScripts".
if [ -z "${npm_config_nodedir:-}" ]; then
  for dir in "$(dirname "$(dirname "$(command -v node)")")" /usr /usr/local; do
    if [ -f "$dir/include/node/node_api.h" ]; then export npm_config_nodedir="$dir"; break; fi
  done
fi

npm ci
npm run build

# The tiny e2e test guest (Debian kernel + busybox initramfs) in .cache/guest/; a no-op when already built. Only the
# opt-in `npm run test:e2e` boots it (those tests skip, saying why, without it), so a failed download is not fatal here.
scripts/build-guest.sh || echo "setup.sh: warning: the e2e guest was not built; npm run test:e2e will skip its guest tests" >&2
