#!/usr/bin/env bash
# bench/instructions.sh [--qos Q] [--threads N] [--scenario S] NAME=BINARY...:
# the broker's instructions per delivered message in a run of mqload (from
# ../shared/bench): S is fanin (16 publishers -> 1 subscriber, the default),
# fanout (1 -> 50), pairs (100 publisher/subscriber pairs) or wildcard (8 publishers over
# 1,000 topics, 60 subscribers with wildcard and exact filters), counted by valgrind's callgrind:
# repeatable whatever else the machine does, unlike timings. Each binary runs
# twice (2000 and 4000 messages per publisher; 500 and 1000 for pairs) and the difference is divided
# by the extra messages, so startup, connections and shutdown cancel out.
#
#   bench/instructions.sh before=/tmp/pigeon-old now=target/release/pigeon
set -euo pipefail
qos=0 threads="" scenario=fanin
while [ $# -gt 0 ]; do
  case "$1" in
    --qos) qos=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --threads) threads="--worker-threads $2"; shift 2 ;;
    *) break ;;
  esac
done
case "$scenario" in
  fanin) shape="--publishers 16" small=2000 ;;
  fanout) shape="--subscribers 50" small=2000 ;;
  pairs) shape="--pairs 100" small=500 ;;
  wildcard) shape="--publishers 8 --subscribers 60 --filters-per-sub 4 --nomatch-per-sub 20" small=500 ;;
  *) echo "unknown --scenario $scenario (fanin, fanout, pairs or wildcard)" >&2; exit 2 ;;
esac
MQLOAD=${MQLOAD:-/tmp/pigeon-bench/target/release/mqload}
[ -x "$MQLOAD" ] || { echo "mqload not found at $MQLOAD (build ../shared/bench first, or set MQLOAD)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is needed (apt install valgrind)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# run BINARY MSGS -> "instructions delivered"
run() {
  local bin=$1 msgs=$2 port out
  port=$(free_port)
  out=$work/cg.$msgs
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --host 127.0.0.1 --port "$port" $threads \
    > "$work/broker.log" 2>&1 &
  local vg=$!
  for _ in $(seq 1 600); do ss -Hltn "( sport = :$port )" | grep -q . && break; sleep 0.1; done
  local line
  line=$("$MQLOAD" --scenario "$scenario" --qos "$qos" $shape --max-msgs "$msgs" --duration 300 --port "$port" 2>/dev/null)
  kill -INT "$vg"; wait "$vg" || true
  local ir
  ir=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sys.argv[2], d["delivered"], d.get("missing",0), d.get("duplicates",0))' "$line" "$ir"
}

printf '| broker | instructions / delivered message | delivered (2 runs) | missing | duplicates |\n|---|---|---|---|---|\n'
for spec in "$@"; do
  name=${spec%%=*} bin=${spec#*=}
  read -r ir1 d1 m1 u1 < <(run "$bin" "$small")
  read -r ir2 d2 m2 u2 < <(run "$bin" $((small * 2)))
  per=$(python3 -c "print(round(($ir2-$ir1)/max($d2-$d1,1)))")
  printf '| %s | %s | %s + %s | %s | %s |\n' "$name" "$per" "$d1" "$d2" "$((m1 + m2))" "$((u1 + u2))"
done
