#!/usr/bin/env bash
# Our registry and the Go reference, measured in one run, interleaved, with ../shared/bench.
#   benchmarks/side-by-side.sh [RUNS] [WORKDIR]
# PHASES=small (or push,pull) runs only those phases of bench.py.
# Needs the Debian packages docker-registry, wrk and hey, and `registry` on PATH (or in .venv).
# Prints ratio.py's ours/Go table; raw BENCHJSON lines are kept in WORKDIR/results.jsonl.
set -euo pipefail
runs=${1:-3}
work=${2:-/tmp/registry-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
registry=$(command -v registry || echo "$here/.venv/bin/registry")
go_port=5055 py_port=5056

rm -rf "$work" && mkdir -p "$work/py"
# The same settings as start-go-registry.sh gives Go. With deletes on, our inmemory cache
# stays off (a delete on one worker cannot clear another's memory); Go's is on.
cat > "$work/py/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  cache: {blobdescriptor: inmemory}
  filesystem: {rootdirectory: $work/py/storage}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http:
  addr: "127.0.0.1:$py_port"
  secret: bench-secret
  headers: {X-Content-Type-Options: [nosniff]}
YAML

go_pid=$("$bench/start-go-registry.sh" "$go_port" "$work/go")
"$registry" serve "$work/py/config.yml" >"$work/py/stdout.log" 2>"$work/py/stderr.log" &
py_pid=$!
# The pushed blobs (about 2 GiB per run and side) go; results and logs stay.
trap 'kill "$go_pid" "$py_pid" 2>/dev/null; wait; rm -rf "$work/go/storage" "$work/py/storage"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$py_port/v2/" >/dev/null && break; sleep 0.2; done

go_labels=() py_labels=()
for i in $(seq "$runs"); do
  python3 "$bench/bench.py" --url "http://127.0.0.1:$go_port" --pid "$go_pid" \
    --phases "${PHASES:-push,pull,small}" --label "go$i" --json-out "$work/results.jsonl" >"$work/go$i.txt" 2>&1
  python3 "$bench/bench.py" --url "http://127.0.0.1:$py_port" --pid "$py_pid" --pid-children \
    --phases "${PHASES:-push,pull,small}" --label "ours$i" --json-out "$work/results.jsonl" >"$work/ours$i.txt" 2>&1
  go_labels+=("go$i") py_labels+=("ours$i")
done
# Per run: push MB/s and the server's CPU-s per GiB. On a VM that hands free memory back to
# its host, the CPU-s show which runs paid to get page-cache memory back (benchmarks/README.md).
python3 - "$work/results.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    run = json.loads(line.split(" ", 1)[1])
    gib, cpu = run["blob_size"] / 2**30, run.get("server", {}).get("cpu_s", {})
    print(run["label"], *(
        f"{phase} {run[f'{phase}_mbps']} MB/s ({cpu.get(phase, 0) / gib:.1f} CPU-s/GiB)"
        for phase in ("push_mono", "push_chunked") if f"{phase}_mbps" in run
    ), sep="  ")
PY
python3 "$bench/ratio.py" "$work/results.jsonl" "$(IFS=,; echo "${go_labels[*]}")" \
  "$(IFS=,; echo "${py_labels[*]}")" --min-push 2.5 --min-pull 1.2
