#!/usr/bin/env bash
# Metadata paths at scale, ours and the Go reference on one tree, cold and warm page cache:
#   benchmarks/scale-side-by-side.sh [ROUNDS] [WORKDIR]
# Builds (once, kept in WORKDIR/root) the tree of ../shared/bench/scale.py: 10,000 repositories
# x 3 tags and one repository of 10,000 tags. Then, ROUNDS times: drop the page cache (needs
# root), measure Go cold then warm, drop it again, measure ours cold then warm; and times the
# offline `garbage-collect --dry-run` of both, cold. Results: WORKDIR/scale.jsonl and a table.
set -euo pipefail
rounds=${1:-2}
work=${2:-/tmp/registry-scale}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
registry=$(command -v registry || echo "$here/.venv/bin/registry")
go_port=5075 py_port=5076

mkdir -p "$work"
[ -f "$work/root/scale-repos.json" ] || python3 "$bench/scale.py" populate "$work/root"
for side in go py; do
  port=$go_port; [ "$side" = py ] && port=$py_port
  cat >"$work/$side.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/root}, maintenance: {uploadpurging: {enabled: false}}}
http: {addr: "127.0.0.1:$port", secret: scale-secret}
YAML
done
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
serve() { # serve SIDE: start it, print its pid
  if [ "$1" = go ]; then env -u AWS_CA_BUNDLE docker-registry serve "$work/go.yml" >"$work/go.log" 2>&1 &
  else "$registry" serve "$work/py.yml" >"$work/py.log" 2>&1 & fi
  local pid=$! port=$go_port; [ "$1" = py ] && port=$py_port
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
  echo "$pid"
}
# Our maintenance job notes, once per storage, the repositories already empty (none here); the
# catalog trusts its notes only after that, as a registry serving the tree for a while does.
noted="$work/root/docker/registry/v2/_maintenance/catalog/emptied-noted"
if [ ! -f "$noted" ]; then
  pid=$(serve py)
  for _ in $(seq 600); do [ -f "$noted" ] && break; sleep 0.2; done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ -f "$noted" ] || { echo "our registry did not sweep $work/root" >&2; exit 1; }
fi
: >"$work/scale.jsonl"
for i in $(seq "$rounds"); do
  for side in go py; do
    port=$go_port; [ "$side" = py ] && port=$py_port
    drop
    pid=$(serve "$side")
    for state in cold warm; do
      python3 "$bench/scale.py" measure --url "http://127.0.0.1:$port" --pid "$pid" \
        --label "$side-$state-$i" --json-out "$work/scale.jsonl" >/dev/null
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    drop
    start=$(date +%s.%N)
    if [ "$side" = go ]; then
      env -u AWS_CA_BUNDLE docker-registry garbage-collect --dry-run "$work/go.yml" >/dev/null 2>&1
    else
      "$registry" garbage-collect --dry-run --quiet "$work/py.yml"
    fi
    echo "{\"label\": \"$side-gc-$i\", \"gc_dry_run_s\": $(echo "$(date +%s.%N) - $start" | bc)}" \
      >>"$work/scale.jsonl"
  done
done
python3 - "$work/scale.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
keys = ["catalog_s", "catalog_first_page_s", "tags_all_s", "tags_paged_s", "manifest_p50_ms",
        "head_p50_ms", "rss_mib", "gc_dry_run_s"]
print(f"{'label':16}" + "".join(f"{k:>22}" for k in keys))
for row in rows:
    print(f"{row['label']:16}" + "".join(f"{row.get(k, ''):>22}" for k in keys))
PY
