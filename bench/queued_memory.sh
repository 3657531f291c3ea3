#!/usr/bin/env bash
# Memory proportional to data, for queued messages: RSS of Pigeon and Mosquitto
# before and after S offline persistent sessions have M QoS 1 messages of 64
# bytes queued each (S*M in all, each published in a read of its own), at
# default options. M is at most 1000, both brokers' default queue limit.
#   bench/queued_memory.sh [S] [M]      (default 100 1000; needs .venv from scripts/test)
set -uo pipefail
cd "$(dirname "$0")/.."
S=${1:-100}
M=${2:-1000}
PY=.venv/bin/python
[ -x "$PY" ] || { echo "run scripts/test once first (it makes .venv with paho-mqtt)" >&2; exit 1; }
. bench/lib.sh
BIN=${PIGEON_BIN:-target/release/pigeon}
[ -n "${PIGEON_BIN:-}" ] || cargo build --release -q --bin pigeon || exit 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
N=$((S * M))

measure() { # NAME PID PORT
  wait_port "$3" || { echo "$1 did not start" >&2; return 1; }
  local before after
  before=$(rss "$2")
  "$PY" bench/queued_publish.py "$3" "$S" "$M" || return 1
  sleep 1
  after=$(rss "$2")
  printf '%-10s %8d %12d %12d %10d %8.1fx\n' "$1" "$N" "$before" "$after" \
    $(( (after - before) * 1024 / N )) "$(echo "($after - $before) * 1024 / ($N * 68)" | bc -l)"
}

echo "$S offline sessions, $M queued each; data per message: 64-byte payload + 4-byte topic = 68 bytes"
printf '%-10s %8s %12s %12s %10s %9s\n' broker messages "RSS kB" "after kB" "B/message" "x data"
port=$(free_port)
"$BIN" --host 127.0.0.1 --port "$port" >"$tmp/pigeon.log" 2>&1 &
measure pigeon $! "$port"; kill %1 2>/dev/null; wait 2>/dev/null
port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$tmp/m.conf"
"$MOSQUITTO" -c "$tmp/m.conf" >"$tmp/mosquitto.log" 2>&1 &
measure mosquitto $! "$port"
