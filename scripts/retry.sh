# Sourced by the build scripts: `retry CMD...` runs CMD up to $BOOTSTRAP_ATTEMPTS
# times (default 4), pausing 20 s, 40 s, 60 s between tries. Downloads of the
# 570 MB tensorflow wheel sometimes stall at the same byte however often pip
# resumes them (--resume-retries); only a fresh connection clears that.
# The caller defines log().
retry() {
  local attempts=${BOOTSTRAP_ATTEMPTS:-4} attempt
  for attempt in $(seq 1 "$attempts"); do
    if "$@"; then return 0; fi
    if [ "$attempt" -lt "$attempts" ]; then
      log "failed (attempt $attempt of $attempts), retrying in $((attempt * 20)) s: $*"
      sleep $((attempt * 20))
    fi
  done
  log "failed $attempts times: $*"
  return 1
}
