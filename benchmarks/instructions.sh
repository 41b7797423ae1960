#!/usr/bin/env bash
# Instructions a hot request costs in Python, counted by valgrind: deterministic, so a change
# can be weighed on a machine too noisy to time it.
#   benchmarks/instructions.sh [TREE] [CASE...]     (CASE: v2, manifest, head; default all)
# Runs TREE's benchmarks/hotpath.py (default: this checkout) twice under callgrind, with 50 and
# 250 requests a round, and prints the difference per request: start-up and set-up cancel out.
# Needs valgrind; takes about two minutes per case.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "${1:-$here}" && pwd)
shift || true
python=${PYTHON:-$here/.venv/bin/python}
count() {  # count REQUESTS CASE: instructions of one hotpath.py run
  PYTHONPATH=$tree REQUESTS=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$python" "$tree/benchmarks/hotpath.py" "$2" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(v2 manifest head)
for name in "${cases[@]}"; do
  small=$(count 50 "$name") large=$(count 250 "$name")
  # hotpath.py serves each case six times (a warm-up and five timed rounds).
  echo "$name: $(((large - small) / (6 * 200))) instructions per request ($tree)"
done
