# Sourced by scripts/build-image.sh and scripts/run-image.sh: points buildah/podman at the project's PRIVATE container
# storage and configuration under .cache/image/ (never the machine's global /var/lib/containers), and writes them once.
#
# Exports CONTAINERS_STORAGE_CONF and CONTAINERS_CONF, plus VNA_IMAGE_CACHE (the folder) and VNA_PODMAN_RUN_FLAGS
# (the run flags this host needs). The caller must be at the repository root (or set VNA_IMAGE_CACHE).

VNA_IMAGE_CACHE=${VNA_IMAGE_CACHE:-$PWD/.cache/image}
mkdir -p "$VNA_IMAGE_CACHE"
VNA_IMAGE_CACHE=$(cd "$VNA_IMAGE_CACHE" && pwd -P)
export VNA_IMAGE_CACHE

# runroot holds locks and mount state: kept next to graphroot so one cache folder is one self-contained store.
cat > "$VNA_IMAGE_CACHE/storage.conf.new.$$" <<EOF
# Written by scripts/image-env.sh: the private store of virt-net-agent's image builds and test containers.
[storage]
driver = "overlay"
graphroot = "$VNA_IMAGE_CACHE/storage/graph"
runroot = "$VNA_IMAGE_CACHE/storage/run"
EOF
# crun 1.8 (Debian 12) refuses hosts whose cgroup v2 hierarchy holds a controller next to v1 ("hybrid mode not
# supported"); runc handles them. Events go to a file: there is no journald to log to.
cat > "$VNA_IMAGE_CACHE/containers.conf.new.$$" <<EOF
# Written by scripts/image-env.sh.
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$VNA_IMAGE_CACHE/storage/events.log"
EOF
for f in storage.conf containers.conf; do
  if cmp -s "$VNA_IMAGE_CACHE/$f.new.$$" "$VNA_IMAGE_CACHE/$f"; then rm -f "$VNA_IMAGE_CACHE/$f.new.$$"; else mv -f "$VNA_IMAGE_CACHE/$f.new.$$" "$VNA_IMAGE_CACHE/$f"; fi
done
export CONTAINERS_STORAGE_CONF=$VNA_IMAGE_CACHE/storage.conf
export CONTAINERS_CONF=$VNA_IMAGE_CACHE/containers.conf

# podman lowers its own RLIMIT_NPROC to 32768 and asks the runtime for more than that by default; without
# CAP_SYS_RESOURCE (this machine) setrlimit then fails. Ask for what the process already has.
_vna_nproc=$(ulimit -Hu)
if [ "$_vna_nproc" = unlimited ] || [ "$_vna_nproc" -gt 32768 ]; then _vna_nproc=32768; fi
VNA_PODMAN_RUN_FLAGS="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=$_vna_nproc:$_vna_nproc"
export VNA_PODMAN_RUN_FLAGS
unset _vna_nproc
