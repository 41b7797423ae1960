#!/usr/bin/env bash
# Small requests with htpasswd on both sides: the Go reference registry and ours, each with the
# same htpasswd file (bcrypt cost 5, `htpasswd -B`'s default), every request carrying Basic
# credentials, as `docker pull` sends them to a registry with htpasswd.
#   benchmarks/auth-side-by-side.sh [RUNS] [WORKDIR]
# RUNS rounds, which side goes first alternating: `GET /v2/` and `GET` manifest by tag with
# `wrk -t2 -c32`, blob `HEAD` with `hey -c32` (wrk hangs on HEAD), DURATION seconds each.
# Prints each run's req/s and, per request, best ours / best Go (issue 24: >= 2).
# Needs docker-registry, wrk and hey, and the project's .venv (or `registry` on PATH).
set -euo pipefail
runs=${1:-3}
work=${2:-/tmp/registry-auth-bench}
duration=${DURATION:-8}
here=$(cd "$(dirname "$0")/.." && pwd)
python=$here/.venv/bin/python
[ -x "$python" ] || python=python3
go_port=5081 py_port=5082

rm -rf "$work" && mkdir -p "$work"
"$python" - "$work/htpasswd" <<'PY'
import sys, bcrypt
open(sys.argv[1], "wb").write(b"bench:" + bcrypt.hashpw(b"bench-pw", bcrypt.gensalt(5)) + b"\n")
PY
for side in go py; do
  port=$([ $side = go ] && echo $go_port || echo $py_port)
  cat > "$work/$side.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $work/$side-storage}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:$port", secret: bench-secret}
auth: {htpasswd: {realm: bench, path: $work/htpasswd}}
YAML
done
env -u AWS_CA_BUNDLE docker-registry serve "$work/go.yml" >"$work/go.log" 2>&1 &
go_pid=$!
"$python" -m distribution serve "$work/py.yml" >"$work/py.log" 2>&1 &
py_pid=$!
trap 'kill "$go_pid" "$py_pid" 2>/dev/null; wait; rm -rf "$work"/*-storage' EXIT
authorization="Basic $(printf 'bench:bench-pw' | base64)"
for port in $go_port $py_port; do
  for _ in $(seq 100); do
    curl -fs -H "Authorization: $authorization" "http://127.0.0.1:$port/v2/" >/dev/null && break
    sleep 0.2
  done
  # a tiny image: config, one layer, manifest "bench"; prints the layer's digest
  layer=$("$python" - "$port" "$authorization" <<'PY'
import hashlib, http.client, json, sys
port, authorization = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
def send(method, path, body=b"", headers=None):
    conn.request(method, path, body, {"Authorization": authorization, **(headers or {})})
    response = conn.getresponse()
    response.read()
    return response
def blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = send("POST", "/v2/bench/app/blobs/uploads/").getheader("Location")
    separator = "&" if "?" in location else "?"
    assert send("PUT", f"{location}{separator}digest={digest}", data).status == 201
    return {"digest": digest, "size": len(data)}
config = blob(b'{"architecture":"amd64","os":"linux"}')
layer = blob(bytes(range(256)) * 4)
manifest = json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
}).encode()
media_type = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
assert send("PUT", "/v2/bench/app/manifests/bench", manifest, media_type).status == 201
print(layer["digest"])
PY
)
done
accept="Accept: application/vnd.oci.image.manifest.v1+json"

rate() {  # rate OUTPUT: the req/s of a wrk or hey run, which must have had only 2xx answers
  if grep -q "Non-2xx" "$1" || grep -E '^\s+\[[0-9]+\]' "$1" | grep -vq '\[200\]'; then
    echo "answers other than 200 in $1:" >&2; cat "$1" >&2; exit 1
  fi
  awk '/Requests\/sec/ {print $2}' "$1"
}

measure() {  # measure SIDE PORT: one run of the three, "SIDE v2 N manifest N head N"
  local base="http://127.0.0.1:$2" out="$work/$1.out"
  wrk -t2 -c32 -d"${duration}s" -H "Authorization: $authorization" "$base/v2/" >"$out"
  local v2; v2=$(rate "$out")
  wrk -t2 -c32 -d"${duration}s" -H "Authorization: $authorization" -H "$accept" \
    "$base/v2/bench/app/manifests/bench" >"$out"
  local manifest; manifest=$(rate "$out")
  hey -c 32 -z "${duration}s" -m HEAD -H "Authorization: $authorization" \
    "$base/v2/bench/app/blobs/$layer" >"$out"
  local head; head=$(rate "$out")
  echo "$1 v2 $v2 manifest $manifest head $head" | tee -a "$work/results.txt"
}
: >"$work/results.txt"
for i in $(seq "$runs"); do
  if [ $((i % 2)) -eq 1 ]; then measure go $go_port; measure py $py_port
  else measure py $py_port; measure go $go_port; fi
done
"$python" - "$work/results.txt" <<'PY'
import sys
rates = {}
for line in open(sys.argv[1]):
    side, *pairs = line.split()
    for name, value in zip(pairs[::2], pairs[1::2]):
        rates.setdefault((side, name), []).append(float(value))
for name in ("v2", "manifest", "head"):
    go, py = rates[("go", name)], rates[("py", name)]
    print(f"{name:9} Go {'/'.join(f'{r:.0f}' for r in go):>20}  ours "
          f"{'/'.join(f'{r:.0f}' for r in py):>20}  best/best {max(py) / max(go):.2f}")
PY
