#!/usr/bin/env bash
# Memory proportional to data: RSS of Pigeon and Mosquitto before and after
# storing N retained 64-byte messages (topics r/0000000 ...), at default options.
#   bench/retained_memory.sh [N]        (default 100000; needs .venv from scripts/test)
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/test once first (it makes .venv with paho-mqtt)" >&2; exit 1; }
. bench/lib.sh
cargo build --release -q --bin pigeon || exit 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

measure() { # NAME PID PORT
  wait_port "$3" || { echo "$1 did not start" >&2; return 1; }
  local before after
  before=$(rss "$2")
  "$PY" bench/retained_publish.py "$3" "$N" || return 1
  sleep 1
  after=$(rss "$2")
  printf '%-10s %8d %12d %12d %10d %8.1fx\n' "$1" "$N" "$before" "$after" \
    $(( (after - before) * 1024 / N )) "$(echo "($after - $before) * 1024 / ($N * 73)" | bc -l)"
}

echo "data per message: 64-byte payload + 9-byte topic = 73 bytes"
printf '%-10s %8s %12s %12s %10s %9s\n' broker messages "RSS kB" "after kB" "B/message" "x data"
port=$(free_port)
target/release/pigeon --host 127.0.0.1 --port "$port" >"$tmp/pigeon.log" 2>&1 &
measure pigeon $! "$port"; kill %1 2>/dev/null; wait 2>/dev/null
port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$tmp/m.conf"
"$MOSQUITTO" -c "$tmp/m.conf" >"$tmp/mosquitto.log" 2>&1 &
measure mosquitto $! "$port"
