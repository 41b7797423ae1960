#!/usr/bin/env bash
# Stalled clients against our registry and the Go reference, both with htpasswd and their
# default settings: benchmarks/slowclients.sh [HEADS] [BODIES] [WORKDIR]
# Needs the Debian package docker-registry and `registry` on PATH (or in .venv).
set -euo pipefail
heads=${1:-1000} bodies=${2:-100} work=${3:-/tmp/registry-slowclients}
here=$(cd "$(dirname "$0")/.." && pwd)
registry=$(command -v registry || echo "$here/.venv/bin/registry")
python=$( [ -x "$here/.venv/bin/python" ] && echo "$here/.venv/bin/python" || echo python3)
go_port=5065 py_port=5066

rm -rf "$work" && mkdir -p "$work/go" "$work/py"
"$python" -c 'import bcrypt, sys; print("bench:" + bcrypt.hashpw(b"bench", bcrypt.gensalt(10)).decode())' >"$work/htpasswd"
for side in go py; do
  port=$go_port; [ "$side" = py ] && port=$py_port
  cat >"$work/$side/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/$side/storage}, maintenance: {uploadpurging: {enabled: false}}}
auth: {htpasswd: {realm: bench, path: $work/htpasswd}}
http: {addr: "127.0.0.1:$port", secret: bench-secret}
YAML
done
env -u AWS_CA_BUNDLE docker-registry serve "$work/go/config.yml" >"$work/go/log" 2>&1 &
go_pid=$!
"$registry" serve "$work/py/config.yml" >"$work/py/log" 2>&1 &
py_pid=$!
trap 'kill "$go_pid" "$py_pid" 2>/dev/null; wait' EXIT
for port in $go_port $py_port; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
done
for side in go ours; do
  port=$go_port; [ "$side" = ours ] && port=$py_port
  echo "== $side"
  "$python" "$here/benchmarks/slowclients.py" --url "http://127.0.0.1:$port" --user bench \
    --password bench --heads "$heads" --bodies "$bodies" --label "$side"
done
