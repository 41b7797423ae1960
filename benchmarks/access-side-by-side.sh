#!/usr/bin/env bash
# What 1,000 access rules cost small requests: ours with htpasswd and no access section, and
# ours with htpasswd and 1,000 rules (benchmarks/access.py --write-rules), measured by
# ../shared/bench/bench.py (small-request phase), RUNS times each, interleaved.
#   benchmarks/access-side-by-side.sh [RUNS] [WORKDIR]
# bench.py does not sign in, so each registry sits behind its own nginx that adds the
# bench user's Basic credentials to every request (the same nginx for both sides).
# Needs nginx, wrk and hey, and the project's .venv (or `registry` and its Python on PATH).
# Prints ratio.py's table: anchor = no rules, ours = 1,000 rules; exits 1 under 0.9.
set -euo pipefail
runs=${1:-3}
work=${2:-/tmp/registry-access-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
bench=${BENCH_DIR:-$here/../shared/bench}
python=$here/.venv/bin/python
[ -x "$python" ] || python=python3
plain_port=5061 rules_port=5062 plain_front=5063 rules_front=5064

rm -rf "$work" && mkdir -p "$work/plain" "$work/rules" "$work/nginx"
"$python" - "$work/htpasswd" <<'PY'
import sys, bcrypt
open(sys.argv[1], "wb").write(b"bench:" + bcrypt.hashpw(b"bench-pw", bcrypt.gensalt(10)) + b"\n")
PY
"$python" "$here/benchmarks/access.py" --write-rules "$work/access.yml" 1000
for side in plain rules; do
  port=$([ $side = plain ] && echo $plain_port || echo $rules_port)
  cat > "$work/$side/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $work/$side/storage}
  delete: {enabled: true}
  maintenance: {uploadpurging: {enabled: false}}
http: {addr: "127.0.0.1:$port", secret: bench-secret}
auth: {htpasswd: {realm: bench, path: $work/htpasswd}}
YAML
done
echo "access: {path: $work/access.yml}" >> "$work/rules/config.yml"

credentials=$(printf 'bench:bench-pw' | base64)
front() {  # front UPSTREAM LISTEN_PORT: an nginx server block that signs every request in
  cat <<NGINX
  upstream $1 { server 127.0.0.1:$3; keepalive 32; }
  server {
    listen 127.0.0.1:$2;
    client_max_body_size 0;
    location / {
      proxy_pass http://$1; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host \$http_host; proxy_request_buffering off; proxy_buffering off;
      proxy_set_header Authorization "Basic $credentials";
    }
  }
NGINX
}
cat > "$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
$(front plain $plain_front $plain_port)
$(front rules $rules_front $rules_port)
}
NGINX

registry="$python -m distribution"
$registry serve "$work/plain/config.yml" >"$work/plain/stdout.log" 2>"$work/plain/stderr.log" &
plain_pid=$!
$registry serve "$work/rules/config.yml" >"$work/rules/stdout.log" 2>"$work/rules/stderr.log" &
rules_pid=$!
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
nginx_pid=$!
trap 'kill "$plain_pid" "$rules_pid" "$nginx_pid" 2>/dev/null; wait; rm -rf "$work"/*/storage' EXIT
for front in $plain_front $rules_front; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$front/v2/" >/dev/null && break; sleep 0.2; done
  curl -fs "http://127.0.0.1:$front/v2/" >/dev/null
done

run() {  # run LABEL FRONT_PORT PID
  "$python" "$bench/bench.py" --url "http://127.0.0.1:$2" --phases small --pid "$3" \
    --pid-children --label "$1" --json-out "$work/results.jsonl" >"$work/$1.txt" 2>&1
}
plain_labels=() rules_labels=()
for i in $(seq "$runs"); do  # which side goes first alternates
  if [ $((i % 2)) -eq 1 ]; then
    run "none$i" $plain_front $plain_pid; run "rules$i" $rules_front $rules_pid
  else
    run "rules$i" $rules_front $rules_pid; run "none$i" $plain_front $plain_pid
  fi
  plain_labels+=("none$i") rules_labels+=("rules$i")
done
grep -h "WARNING" "$work"/none*.txt "$work"/rules*.txt || true
"$python" - "$work/results.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    run = json.loads(line.split(" ", 1)[1])
    print(run["label"], *(f"{k} {(run.get(k) or {}).get('rps')}" for k in ("v2_get", "manifest_get", "blob_head")), sep="  ")
PY
"$python" "$bench/ratio.py" "$work/results.jsonl" "$(IFS=,; echo "${plain_labels[*]}")" \
  "$(IFS=,; echo "${rules_labels[*]}")" --min-push 0 --min-pull 0 --min-rps 0.9
