#!/usr/bin/env bash
# `make test-kfp`: runs the compiled KFP pipeline task by task in containers of
# the project's image (tests/test_kfp_containers.py), as on a cluster, without one.
#
# 1. Docker: installs Debian's docker.io when missing; starts dockerd (without
#    its default bridge network: tasks run with --network none) when no daemon
#    answers, and stops at exit only a daemon it started.
# 2. The image: the project's Dockerfile on the official TFX image when it is
#    present or can be pulled, else on a base built locally from Debian and the
#    pinned wheels (scripts/build_base_image.sh).
# 3. pytest -m kfp: compile --quick, every task in a container, handed what the
#    open-source KFP backend sends (tests/kfp_backend.py), assertions.
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
IMAGE=${CATSDOGS_KFP_IMAGE:-catsdogs-tfx:test}
TFX_IMAGE=tensorflow/tfx:$("$PY" -c 'import importlib.metadata as m; print(m.version("tfx"))')
LOCAL_BASE=catsdogs-tfx-base:${TFX_IMAGE##*:}
WORK=build/kfp
RESULTS=${KFP_TIMINGS:-$WORK/timings.json}
mkdir -p "$WORK"

log() { printf '[test-kfp] %s\n' "$*" >&2; }
now() { date +%s; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]} from Debian"
  as_root apt-get update -qq -o Acquire::Retries=5
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq -o Acquire::Retries=5 "${missing[@]}" >/dev/null
}

STARTED_DOCKERD=""
stop_dockerd() {
  if [ -n "$STARTED_DOCKERD" ]; then
    log "stopping the dockerd this run started (pid $STARTED_DOCKERD)"
    as_root kill "$STARTED_DOCKERD" 2>/dev/null || true
    wait "$STARTED_DOCKERD" 2>/dev/null || true
  fi
}

ensure_dockerd() {
  if docker info >/dev/null 2>&1; then
    log "using the running Docker daemon"
    return
  fi
  log "starting dockerd (log: $WORK/dockerd.log)"
  # Started directly (not through a shell function) so that $! is dockerd's own
  # PID (or sudo's, which passes the signal on): stop_dockerd kills exactly it.
  if [ "$(id -u)" = 0 ]; then
    dockerd --bridge=none >"$WORK/dockerd.log" 2>&1 &
  else
    sudo dockerd --bridge=none >"$WORK/dockerd.log" 2>&1 &
  fi
  STARTED_DOCKERD=$!
  trap stop_dockerd EXIT
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && return
    kill -0 "$STARTED_DOCKERD" 2>/dev/null || break
    sleep 1
  done
  log "dockerd did not start; see $WORK/dockerd.log"
  tail -n 20 "$WORK/dockerd.log" >&2
  exit 1
}

choose_base() {
  if docker image inspect "$TFX_IMAGE" >/dev/null 2>&1 || timeout 120 docker pull -q "$TFX_IMAGE" >/dev/null 2>&1; then
    BASE=$TFX_IMAGE
    log "base image: the official $TFX_IMAGE"
  elif [ -z "${FORCE:-}" ] && docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    BASE=$LOCAL_BASE
    log "base image: the local $LOCAL_BASE built earlier (scripts/build_base_image.sh; FORCE=1 rebuilds)"
  else
    log "$TFX_IMAGE cannot be pulled here: building the local base $LOCAL_BASE"
    scripts/build_base_image.sh "$LOCAL_BASE"
    BASE=$LOCAL_BASE
  fi
}

ensure_packages
ensure_dockerd
t0=$(now)
choose_base
t1=$(now)
log "building $IMAGE from the Dockerfile on $BASE"
# The legacy builder: Debian's Docker 20.10 has no buildx plugin.
DOCKER_BUILDKIT=0 docker build --network none --build-arg "TFX_IMAGE=$BASE" -t "$IMAGE" . \
  >"$WORK/docker-build.log" 2>&1 || { tail -n 30 "$WORK/docker-build.log" >&2; exit 1; }
t2=$(now)
size=$(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.2f GB", $1/1e9}')
log "image $IMAGE: $size (base $((t1 - t0)) s, project layers $((t2 - t1)) s)"

CATSDOGS_KFP_IMAGE=$IMAGE CATSDOGS_KFP_TIMINGS=$RESULTS \
  "$PY" -m pytest -q -m kfp tests/test_kfp_containers.py -s "$@"
# The Beam components on Beam's PortableRunner, SDK workers in a container of the image.
CATSDOGS_KFP_IMAGE=$IMAGE "$PY" -m pytest -q -m kfp tests/test_portable_runner.py "$@"
log "per-task timings: $RESULTS; image $IMAGE $size; base $((t1 - t0)) s, project layers $((t2 - t1)) s"
