#!/usr/bin/env bash
# Instruction counts of short runs under valgrind's callgrind (issue 16): a measure that does not
# move with the machine's load, for before/after tables in docs/performance.md. Wall time still
# comes from `watchsim run` itself; this counts work.
#
#   benches/callgrind.sh [WATCHSIM]      (default: target/release/watchsim, built if missing)
#
# Prints one line per case: case, instructions (Ir), steps, trace hash. Cases: cluster-5k for
# 60 virtual seconds under the 1.31 rules (the first baseline's case, kept for comparison),
# sweep-1k for 5 virtual minutes at its own rules, and cluster-15k for 20 virtual seconds under
# the default 1.37 rules (its start: 30,000 informers syncing by WatchList, which issue 16 made
# one message per watch), and for 40 virtual seconds: the difference of the two is 20 seconds of
# its steady state (lease renewals, pod churn, EndpointSlice fan-out); each at the scenario's own seed. `CASES=name,name` runs a subset. The callgrind files go to target/callgrind/ (open them with callgrind_annotate or
# kcachegrind for the profile by function).
set -euo pipefail
# A binary given on the command line is named from the caller's directory, not the project's.
if [ $# -ge 1 ]; then bin=$(realpath -- "$1"); fi
cd "$(dirname "$0")/.."
bin="${bin:-target/release/watchsim}"
if [ ! -x "$bin" ]; then
  cargo build --release
fi
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
out=target/callgrind
mkdir -p "$out"
cases=(
  "cluster-5k-60s sim-scenarios/cluster-5k.toml 60s apiserver.rules=\"1.31\""
  "sweep-1k-5m sim-scenarios/sweep-1k.toml 5m"
  "cluster-15k-20s sim-scenarios/cluster-15k.toml 20s"
  "cluster-15k-40s sim-scenarios/cluster-15k.toml 40s"
)
printf '%-16s %16s %10s  %s\n' case instructions steps trace_hash
for c in "${cases[@]}"; do
  read -r name scenario duration set <<<"$c"
  if [ -n "${CASES:-}" ] && [[ ",$CASES," != *",$name,"* ]]; then continue; fi
  extra=()
  if [ -n "${set:-}" ]; then extra=(--set "$set"); fi
  valgrind --tool=callgrind --callgrind-out-file="$out/$name.out" \
    "$bin" run "$scenario" --duration "$duration" "${extra[@]}" --json >"$out/$name.json" 2>"$out/$name.log"
  ir=$(grep -m1 '^totals:' "$out/$name.out" | awk '{print $2}')
  steps=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["steps"])' "$out/$name.json")
  hash=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["trace_hash"])' "$out/$name.json")
  printf '%-16s %16s %10s  %s\n' "$name" "$ir" "$steps" "$hash"
done
