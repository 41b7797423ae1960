#!/usr/bin/env bash
# skopeo end to end, ours and the Go reference in one run, interleaved:
#   benchmarks/skopeo-side-by-side.sh [ROUNDS] [WORKDIR]
# Each round runs ../shared/bench/skopeo_bench.py (push and pull of a fresh 5 x 50 MiB gzip
# image, 3 repeats, digests checked) against Go, then against ours. Prints each side's lines.
set -euo pipefail
rounds=${1:-2}
work=${2:-/tmp/registry-skopeo}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
registry=$(command -v registry || echo "$here/.venv/bin/registry")
go_port=5057 py_port=5058

rm -rf "$work" && mkdir -p "$work/py"
cat > "$work/py/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $work/py/storage}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:$py_port", secret: bench-secret}
YAML
go_pid=$("$bench/start-go-registry.sh" "$go_port" "$work/go")
"$registry" serve "$work/py/config.yml" >"$work/py/stdout.log" 2>"$work/py/stderr.log" &
py_pid=$!
trap 'kill "$go_pid" "$py_pid" 2>/dev/null; wait; rm -rf "$work/go/storage" "$work/py/storage"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$py_port/v2/" >/dev/null && break; sleep 0.2; done
py_pids="$py_pid,$(pgrep -d, -P "$py_pid")"  # gunicorn's master and its workers

for i in $(seq "$rounds"); do
  python3 "$bench/skopeo_bench.py" --url "http://127.0.0.1:$go_port" --pid "$go_pid" \
    --label "go$i" --seed-base $((i * 100)) --work "$work/images" \
    --json-out "$work/results.jsonl"
  python3 "$bench/skopeo_bench.py" --url "http://127.0.0.1:$py_port" --pid "$py_pids" \
    --label "ours$i" --seed-base $((i * 100 + 50)) --work "$work/images" \
    --json-out "$work/results.jsonl"
done
