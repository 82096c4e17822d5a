#!/usr/bin/env bash
# Installs the CNI plugin from dist/cni (npm run build) into a CNI bin dir: the static shim as <dir>/virt-net-agent and
# the self-contained fallback executable in <dir>/virt-net-agent.d/, and <dir>/virt-net-agent.conf for the shim when
# --socket or --config is given. Usage: scripts/install-cni.sh [DIR] [--socket PATH] [--config FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=/opt/cni/bin
SOCKET=
CONFIG=
while [ $# -gt 0 ]; do
  case "$1" in
    --socket) SOCKET="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    -h|--help) sed -n 2,4p "$0"; exit 0 ;;
    *) DEST="$1"; shift ;;
  esac
done
case "$CONFIG" in ''|/*) ;; *) echo "install-cni.sh: --config needs an absolute path" >&2; exit 2 ;; esac
[ -x dist/cni/virt-net-agent ] && [ -x dist/cni/virt-net-agent.d/virt-net-agent ] || { echo "install-cni.sh: run npm run build first (dist/cni is missing)" >&2; exit 1; }
mkdir -p "$DEST"
install -m 0755 dist/cni/virt-net-agent "$DEST/virt-net-agent.new" && mv -f "$DEST/virt-net-agent.new" "$DEST/virt-net-agent"
rm -rf "$DEST/virt-net-agent.d.new"
cp -a dist/cni/virt-net-agent.d "$DEST/virt-net-agent.d.new"
rm -rf "$DEST/virt-net-agent.d" && mv "$DEST/virt-net-agent.d.new" "$DEST/virt-net-agent.d"
if [ -n "$SOCKET$CONFIG" ]; then
  # The shim reads this file as root on every invocation: root-owned, not writable by others, replaced atomically.
  { [ -z "$SOCKET" ] || printf 'socket=%s\n' "$SOCKET"; [ -z "$CONFIG" ] || printf 'config=%s\n' "$CONFIG"; } > "$DEST/virt-net-agent.conf.new"
  chmod 0644 "$DEST/virt-net-agent.conf.new" && mv -f "$DEST/virt-net-agent.conf.new" "$DEST/virt-net-agent.conf"
fi
echo "installed $DEST/virt-net-agent (shim) and $DEST/virt-net-agent.d/ (fallback); start the daemon with: $DEST/virt-net-agent.d/virt-net-agent cni-daemon${CONFIG:+ --config $CONFIG}${SOCKET:+ --socket $SOCKET}"
