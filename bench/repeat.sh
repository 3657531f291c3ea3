#!/usr/bin/env bash
# Runs scenarios of the shared benchmark (../shared/bench/run.sh) N times, brokers
# interleaved in every round, and prints each broker's median, min and max: the figures
# one full run prints once (delivered msgs/s; for latency the p99) move from run to run on
# a shared 2-core host by more than the differences between brokers, and Mosquitto's and
# rumqttd's move as much as Pigeon's. Also prints the missing and duplicate counts summed
# over the rounds: a fast round that lost a message counts as a failure, not a result.
#   bench/repeat.sh N SCENARIOS [BROKER...]
#   bench/repeat.sh 5 pairs_q1,latency_q1              # Mosquitto, rumqttd, Pigeon
# BROKER as run.sh takes them; default mosquitto, rumqttd and target/release/pigeon
# (built first). Needs the peers (../shared/bench/install-peers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: bench/repeat.sh N SCENARIOS [BROKER...]" >&2; exit 2; }
rounds=$1 scenarios=$2; shift 2
run=${BENCH_RUN:-../shared/bench/run.sh}
[ -x "$run" ] || { echo "no benchmark at $run (set BENCH_RUN)" >&2; exit 1; }
if [ $# -eq 0 ]; then
  cargo build --release -q --bin pigeon
  set -- mosquitto rumqttd "pigeon=cmd:${CARGO_TARGET_DIR:-$PWD/target}/release/pigeon --host 127.0.0.1 --port \$PORT"
fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
# Its builds and raw results go to /tmp, never into ../shared.
export BENCH_WORK=${BENCH_WORK:-/tmp/pigeon-bench}
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  "$run" --reps 1 --scenarios "$scenarios" --out "$out/$round.json" "$@" > "$out/$round.log" 2>&1 ||
    { tail -n 20 "$out/$round.log" >&2; exit 1; }
done
python3 - "$out" <<'EOF'
import glob, json, statistics, sys
runs = [r for f in sorted(glob.glob(sys.argv[1] + "/*.json")) for r in json.load(open(f))]
def label(r): return r.get("broker") or r.get("label") or "?"
def rate(v): return f"{v/1e6:.2f}M" if v >= 1e6 else f"{v/1e3:.1f}k"
# What each kind of scenario is judged by, and how it is printed.
figure = {
    "latency": ("p99", lambda r: r["lat_p99_us"], lambda v: f"{v:.0f}us"),
    "connect": ("connects/s", lambda r: r["connects_per_s"], rate),
}
keys = sorted({(r["scenario_id"], label(r)) for r in runs})
print("| scenario | broker | rounds | figure | median | min | max | missing | duplicates |")
print("|---|---|---|---|---|---|---|---|---|")
for sid, broker in keys:
    rs = [r for r in runs if label(r) == broker and r["scenario_id"] == sid]
    name, get, fmt = figure.get(rs[0]["scenario"], ("msgs/s", lambda r: r["deliver_rate"], rate))
    vals = [get(r) for r in rs]
    lost = sum(r.get("missing", 0) for r in rs)
    dups = sum(r.get("duplicates", 0) for r in rs)
    print(f"| {sid} | {broker} | {len(rs)} | {name} | {fmt(statistics.median(vals))} | {fmt(min(vals))} "
          f"| {fmt(max(vals))} | {lost} | {dups} |")
EOF
