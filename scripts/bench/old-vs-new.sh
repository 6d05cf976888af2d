#!/usr/bin/env bash
# Simulator speed, an old binary against a new one, measured in one run: the two binaries
# alternate ROUNDS times on the same `mpda bench` arguments (single-threaded events/s), and
# the script prints each measurement and the ratio of the medians (new / old).
#
#   scripts/bench/old-vs-new.sh OLD_BINARY NEW_BINARY [ROUNDS] -- [mpda bench arguments]
#
# Example (Decima mode, the embedded default workload):
#   git worktree add /tmp/old <rev> && (cd /tmp/old && cargo build --release)
#   scripts/bench/old-vs-new.sh /tmp/old/target/release/mpda target/release/mpda 5 -- --threads 1
set -euo pipefail
old=${1:?old binary}; new=${2:?new binary}; rounds=${3:-5}
shift 3 || true
[ "${1:-}" = "--" ] && shift
args=("$@")
speed() { "$1" bench "${args[@]}" 2>/dev/null | sed -n 's/^single thread: \([0-9]*\) events\/s.*/\1/p'; }
o=(); n=()
for r in $(seq 1 "$rounds"); do
  a=$(speed "$old"); b=$(speed "$new")
  [ -n "$a" ] && [ -n "$b" ] || { echo "a bench run printed no events/s" >&2; exit 1; }
  echo "round $r: old $a events/s, new $b events/s"
  o+=("$a"); n+=("$b")
done
python3 - "${o[*]}" "${n[*]}" <<'PY'
import statistics, sys
o = [float(x) for x in sys.argv[1].split()]
n = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.median(o), statistics.median(n)
print(f"median old {mo:.0f} events/s, new {mn:.0f} events/s: new/old = {mn / mo:.3f}")
PY
