#!/usr/bin/env bash
# Wall time of two builds, compared in pairs (issue 16): on a shared or throttled host the speed
# of one build drifts by ±10 % within minutes, so single runs of each, or the means of runs made
# one after the other, cannot show a change of a few percent. This runs the two builds
# alternately (A B, then B A, so that a drift weighs on both alike), each after a short idle
# pause (a host that hands free memory back to its hypervisor makes the first run after a busy
# one pay for faulting it in again), and reports the median of the pairs' ratios, which one
# slow spell does not move. Callgrind (benches/callgrind.sh) counts work; this measures time.
#
#   benches/wall_ab.sh BASE NEW [SCENARIO] [DURATION] [PAIRS]
#
# Defaults: sim-scenarios/cluster-15k.toml, 2m, 15 pairs; PAUSE=<seconds> sets the pause (5).
# Every run of both builds must give the same trace hash (the builds must not differ in what
# they compute), else the script stops with exit 1. Prints one line per run (build, wall, user,
# system seconds) and a summary: the median, lowest and highest NEW/BASE ratio of wall and of
# user time.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: benches/wall_ab.sh BASE NEW [SCENARIO] [DURATION] [PAIRS]" >&2
  exit 2
fi
# The builds and the scenario are named from the caller's directory, not the project's.
base=$(realpath -- "$1")
new=$(realpath -- "$2")
if [ $# -ge 3 ]; then scenario_arg=$(realpath -- "$3"); fi
cd "$(dirname "$0")/.."
scenario=${scenario_arg:-sim-scenarios/cluster-15k.toml}
duration=${4:-2m}
pairs=${5:-15}
pause=${PAUSE:-5}
for bin in "$base" "$new"; do
  [ -x "$bin" ] || { echo "wall_ab.sh: $bin is not an executable" >&2; exit 2; }
done
[ -f "$scenario" ] || { echo "wall_ab.sh: $scenario: no such scenario" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results="$tmp/results"
: >"$results"
run_one() { # label binary
  sleep "$pause"
  /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$2" run "$scenario" --duration "$duration" --json >"$tmp/report.json"
  local hash
  hash=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trace_hash"])' "$tmp/report.json")
  read -r wall user sys <"$tmp/time"
  echo "$1 $wall $user $sys $hash" | tee -a "$results"
}
for i in $(seq 1 "$pairs"); do
  if [ $((i % 2)) -eq 1 ]; then
    run_one base "$base"
    run_one new "$new"
  else
    run_one new "$new"
    run_one base "$base"
  fi
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
hashes = {r[4] for r in rows}
if len(hashes) != 1:
    print(f"wall_ab.sh: the builds' trace hashes differ: {sorted(hashes)}", file=sys.stderr)
    sys.exit(1)
base = [r for r in rows if r[0] == "base"]
new = [r for r in rows if r[0] == "new"]
for name, col in (("wall", 1), ("user", 2)):
    ratios = sorted(
        float(n[col]) / float(b[col]) for b, n in zip(base, new) if float(b[col]) > 0
    )
    if not ratios:
        print(f"{name}: the runs are too short to time (0.00 s); use a longer duration")
        continue
    print(
        f"{name}: NEW/BASE median {statistics.median(ratios):.3f} "
        f"(lowest {ratios[0]:.3f}, highest {ratios[-1]:.3f}, {len(ratios)} pairs); "
        f"medians {statistics.median(float(b[col]) for b in base):.2f} s -> "
        f"{statistics.median(float(n[col]) for n in new):.2f} s"
    )
PY
