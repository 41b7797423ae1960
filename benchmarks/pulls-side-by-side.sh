#!/usr/bin/env bash
# What recording pull times costs small requests under load: ours recording pulls (the
# default) and ours with storage.maintenance.usage.enabled: false (OFF="pulls: false" keeps the
# usage job and only stops recording), same code, measured by
# ../shared/bench/bench.py (small-request phase), RUNS times each, interleaved, alternating
# which side goes first.
#   benchmarks/pulls-side-by-side.sh [RUNS] [WORKDIR]
# Needs wrk and hey, and the project's .venv (or `registry` and its Python on PATH).
# Prints each run's rates and ratio.py's table: anchor = not recording, ours = recording.
set -euo pipefail
runs=${1:-4}
work=${2:-/tmp/registry-pulls-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
python=$here/.venv/bin/python
[ -x "$python" ] || python=python3
off_port=5071 on_port=5072

rm -rf "$work" && mkdir -p "$work/off" "$work/on"
for side in off on; do
  port=$([ $side = off ] && echo $off_port || echo $on_port)
  usage=$([ $side = off ] && echo "${OFF:-enabled: false}" || echo "enabled: true")
  cat > "$work/$side/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $work/$side/storage}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}, usage: {$usage}}
http: {addr: "127.0.0.1:$port", secret: bench-secret}
YAML
done

registry="$python -m distribution"
$registry serve "$work/off/config.yml" >"$work/off/stdout.log" 2>"$work/off/stderr.log" &
off_pid=$!
$registry serve "$work/on/config.yml" >"$work/on/stdout.log" 2>"$work/on/stderr.log" &
on_pid=$!
trap 'kill "$off_pid" "$on_pid" 2>/dev/null; wait; rm -rf "$work"/*/storage' EXIT
for port in $off_port $on_port; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null
done

run() {  # run LABEL PORT PID
  "$python" "$bench/bench.py" --url "http://127.0.0.1:$2" --phases small --pid "$3" \
    --pid-children --label "$1" --json-out "$work/results.jsonl" >"$work/$1.txt" 2>&1
}
off_labels=() on_labels=()
for i in $(seq "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then
    run "off$i" $off_port $off_pid; run "on$i" $on_port $on_pid
  else
    run "on$i" $on_port $on_pid; run "off$i" $off_port $off_pid
  fi
  off_labels+=("off$i") on_labels+=("on$i")
done
grep -h "WARNING" "$work"/off*.txt "$work"/on*.txt || true
"$python" - "$work/results.jsonl" <<'PY'
import json, statistics, sys
clean = {"off": [], "on": []}
for line in open(sys.argv[1]):
    run = json.loads(line.split(" ", 1)[1])
    other = run["host"]["manifest_get"]["other_s"]
    rps = run["manifest_get"]["rps"]
    print(run["label"], *(f"{k} {(run.get(k) or {}).get('rps')}" for k in ("v2_get", "manifest_get", "blob_head")), f"(others' CPU during manifest_get: {other} s)", sep="  ")
    if other < 1.0:  # bench.py's own threshold: under 10 % of a core
        clean[run["label"].rstrip("0123456789")].append(rps)
if clean["off"] and clean["on"]:
    ratio = statistics.median(clean["on"]) / statistics.median(clean["off"])
    print(f"manifest_get, undisturbed runs only: not recording {clean['off']}, recording {clean['on']}; median ratio {ratio:.3f}")
PY
# the journal of the recording side did its job: batches were written (or merged)
ls "$work/on/storage/docker/registry/v2/_maintenance" 2>/dev/null || true
"$python" "$bench/ratio.py" "$work/results.jsonl" "$(IFS=,; echo "${off_labels[*]}")" \
  "$(IFS=,; echo "${on_labels[*]}")" --min-push 0 --min-pull 0 --min-rps 0.95
