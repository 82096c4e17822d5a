#!/usr/bin/env bash
# Installs the CNI plugin from dist/cni (npm run build) into a CNI bin dir: the static shim as <dir>/virt-net-agent and
# the self-contained fallback executable in <dir>/virt-net-agent.d/. Usage: scripts/install-cni.sh [DIR] [--socket PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=/opt/cni/bin
SOCKET=
while [ $# -gt 0 ]; do
  case "$1" in
    --socket) SOCKET="$2"; shift 2 ;;
    -h|--help) sed -n 2,3p "$0"; exit 0 ;;
    *) DEST="$1"; shift ;;
  esac
done
[ -x dist/cni/virt-net-agent ] && [ -x dist/cni/virt-net-agent.d/virt-net-agent ] || { echo "install-cni.sh: run npm run build first (dist/cni is missing)" >&2; exit 1; }
mkdir -p "$DEST"
install -m 0755 dist/cni/virt-net-agent "$DEST/virt-net-agent.new" && mv -f "$DEST/virt-net-agent.new" "$DEST/virt-net-agent"
rm -rf "$DEST/virt-net-agent.d.new"
cp -a dist/cni/virt-net-agent.d "$DEST/virt-net-agent.d.new"
rm -rf "$DEST/virt-net-agent.d" && mv "$DEST/virt-net-agent.d.new" "$DEST/virt-net-agent.d"
if [ -n "$SOCKET" ]; then printf 'socket=%s\n' "$SOCKET" > "$DEST/virt-net-agent.conf"; fi
echo "installed $DEST/virt-net-agent (shim) and $DEST/virt-net-agent.d/ (fallback); start the daemon with: $DEST/virt-net-agent.d/virt-net-agent cni-daemon${SOCKET:+ --socket $SOCKET}"
