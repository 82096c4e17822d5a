#!/usr/bin/env bash
# Builds the tiny e2e test guest from Debian packages only: Debian's 6.1 kernel (linux-image-amd64) + a busybox initramfs (guest/init).
# Output: .cache/guest/{vmlinuz,initramfs.cpio.gz,VERSION}. Idempotent: does nothing when the output is newer than its inputs.
# Usage: scripts/build-guest.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.cache/guest
DEBS=$ROOT/.cache/debs
BUSYBOX=${BUSYBOX:-/bin/busybox}
# insmod order (from `strings X.ko | grep ^depends=`): virtio-net and its dependencies are modules in Debian 6.1.
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)

[ -x "$BUSYBOX" ] || BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ] || ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
  echo "build-guest.sh: needs a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi

inputs_newer() {
  [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initramfs.cpio.gz" ] || return 0
  [ -n "$(find guest scripts/build-guest.sh "$BUSYBOX" -newer "$OUT/initramfs.cpio.gz" 2>/dev/null)" ]
}
if [ "${1:-}" != --force ] && ! inputs_newer; then
  echo "build-guest.sh: up to date ($OUT)"
  exit 0
fi

# The kernel package linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64.
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$KPKG" ]; then
  echo "build-guest.sh: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2
  exit 1
fi
mkdir -p "$DEBS" "$OUT"
DEB=$(ls "$DEBS/${KPKG}"_*_amd64.deb 2>/dev/null | head -n1 || true)
if [ -z "$DEB" ]; then
  echo "build-guest.sh: downloading $KPKG (~70 MB) into $DEBS"
  # apt's _apt user must be able to write here; fall back to root otherwise (apt only warns).
  (cd "$DEBS" && apt-get download "$KPKG" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
  DEB=$(ls "$DEBS/${KPKG}"_*_amd64.deb 2>/dev/null | head -n1 || true)
  [ -n "$DEB" ] || { echo "build-guest.sh: apt-get download $KPKG failed" >&2; exit 1; }
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
KVER=${KPKG#linux-image-}
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$WORK" --wildcards \
  "./boot/vmlinuz-$KVER" \
  "./lib/modules/$KVER/kernel/drivers/virtio/*" \
  "./lib/modules/$KVER/kernel/drivers/net/virtio_net.ko" \
  "./lib/modules/$KVER/kernel/drivers/net/net_failover.ko" \
  "./lib/modules/$KVER/kernel/net/core/failover.ko"

RAMFS=$WORK/ramfs
mkdir -p "$RAMFS"/{bin,sbin,dev,proc,sys,tmp,www,lib/modules}
cp "$BUSYBOX" "$RAMFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$RAMFS/bin/$applet"
done
for m in "${MODULES[@]}"; do
  ko=$(find "$WORK/lib/modules/$KVER" -name "$m.ko" | head -n1)
  [ -n "$ko" ] || { echo "build-guest.sh: module $m.ko not found in $KPKG" >&2; exit 1; }
  cp "$ko" "$RAMFS/lib/modules/"
done
install -m 0755 guest/init "$RAMFS/init"
install -m 0755 guest/lease-hook "$RAMFS/bin/lease-hook"
echo hello-from-guest >"$RAMFS/www/index.html"
(cd "$RAMFS" && find . -print0 | cpio --null -o -H newc --quiet --owner=0:0) | gzip -9 >"$WORK/initramfs.cpio.gz"

cp "$WORK/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp" && mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
mv "$WORK/initramfs.cpio.gz" "$OUT/initramfs.cpio.gz"
echo "$KPKG $(basename "$DEB")" >"$OUT/VERSION"
echo "build-guest.sh: built $OUT (kernel $KVER)"
