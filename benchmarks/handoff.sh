#!/usr/bin/env bash
# A push whose closing PUT lands on another replica, ours and Go's, interleaved.
#   benchmarks/handoff.sh [ROUNDS] [WORKDIR]
# Two replicas of each registry share one storage root and secret, as behind nginx; each round
# pushes 1 GiB as docker does (POST, one PATCH, empty PUT) with patches.py, the PUT sent to
# the other replica, then the same push with the PUT on the PATCH's connection. BEFORE=DIR
# adds replicas run from another checkout (a commit to compare with).
# Needs the Debian package docker-registry and the project's .venv (PYTHON=... for another).
set -euo pipefail
rounds=${1:-3}
work=${2:-/tmp/registry-handoff}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}

rm -rf "$work" && mkdir -p "$work"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$work"/*/storage' EXIT

config() {  # config ROOT PORT: the same settings side-by-side.sh gives both registries
  cat <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $1}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: "127.0.0.1:$2"
  secret: handoff-secret
YAML
}

start() {  # start SIDE PORT COMMAND...: one replica of SIDE, storage shared by the side
  local side=$1 port=$2
  shift 2
  mkdir -p "$work/$side"
  config "$work/$side/storage" "$port" > "$work/$side/$port.yml"
  # From the side's folder: `python -m` looks in the working directory before PYTHONPATH.
  (cd "$work/$side" && exec setsid "$@" "$port.yml" > "$port.log" 2>&1 < /dev/null) &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" > /dev/null && return; sleep 0.1; done
  echo "replica on $port did not start:" >&2
  cat "$work/$side/$port.log" >&2
  exit 1
}

sides=(go ours)
start go 5071 /usr/bin/docker-registry serve
start go 5072 /usr/bin/docker-registry serve
start ours 5073 "$python" -m distribution serve
start ours 5074 "$python" -m distribution serve
if [ -n "${BEFORE:-}" ]; then
  sides+=(before)
  start before 5075 env PYTHONPATH="$BEFORE" "$python" -m distribution serve
  start before 5076 env PYTHONPATH="$BEFORE" "$python" -m distribution serve
fi
declare -A port=([go]=5071 [ours]=5073 [before]=5075)

for i in $(seq "$rounds"); do
  for side in "${sides[@]}"; do
    a=${port[$side]}
    b=$((a + 1))
    printf '%-6s round %d, PUT elsewhere: ' "$side" "$i"
    python3 "$here/benchmarks/patches.py" "http://127.0.0.1:$a" 1 1024 "http://127.0.0.1:$b"
    printf '%-6s round %d, PUT same:      ' "$side" "$i"
    python3 "$here/benchmarks/patches.py" "http://127.0.0.1:$a" 1 1024
    rm -rf "$work/$side/storage/docker/registry/v2/blobs"
  done
done
