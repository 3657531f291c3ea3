#!/usr/bin/env bash
# Runs pigeon-bench against Pigeon and Mosquitto in one run, each at its default
# options (Mosquitto: only a listener on 127.0.0.1 and set_tcp_nodelay true), and
# prints one table with a row per broker per scenario. Exits non-zero if any row
# failed (a QoS 1 message missing, a connection error) or a broker did not start.
#   bench/compare.sh [extra pigeon-bench flags, e.g. --duration 5 --protocol 5]
#   PIGEON_ARGS="--max-queued-messages 100000" bench/compare.sh   # flags for pigeon
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
read -ra pigeon_args <<<"${PIGEON_ARGS:-}"
cargo build --release -q --bin pigeon --bin pigeon-bench || exit 1
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true
status=0

# broker_log NAME FILE: the broker's last words, if it said anything.
broker_log() { [ -s "$2" ] && { echo "--- $1 log (last 5 lines)"; tail -n 5 "$2"; } >&2; return 0; }

port=$(free_port)
RUST_LOG=warn target/release/pigeon --host 127.0.0.1 --port "$port" "${pigeon_args[@]}" >"$tmp/pigeon.log" 2>&1 &
pigeon_pid=$!
if wait_port "$port"; then
  target/release/pigeon-bench --port "$port" --label pigeon --header "$@" >"$tmp/pigeon.txt" 2>"$tmp/pigeon.err" || status=1
else
  echo "pigeon did not start" >&2; status=1
fi
kill -INT $pigeon_pid 2>/dev/null; wait $pigeon_pid 2>/dev/null
broker_log pigeon "$tmp/pigeon.log"

port=$(free_port)
cat > "$tmp/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
CONF
"$MOSQUITTO" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
mosq_pid=$!
if wait_port "$port"; then
  target/release/pigeon-bench --port "$port" --label mosquitto --header "$@" >"$tmp/mosquitto.txt" 2>"$tmp/mosquitto.err" || status=1
else
  echo "mosquitto did not start:" >&2; cat "$tmp/mosquitto.log" >&2; status=1
fi
kill $mosq_pid 2>/dev/null; wait $mosq_pid 2>/dev/null

# One table: the header, then per scenario (columns 12-23) the pigeon row and the mosquitto row.
touch "$tmp/pigeon.txt" "$tmp/mosquitto.txt" "$tmp/pigeon.err" "$tmp/mosquitto.err"
awk '/^broker / { if (!header++) print; next }
     { s = substr($0, 12, 12); if (!(s in rows)) order[n++] = s; rows[s] = rows[s] $0 "\n" }
     END { for (i = 0; i < n; i++) printf "%s", rows[order[i]] }' "$tmp/pigeon.txt" "$tmp/mosquitto.txt"
cat "$tmp/pigeon.err" "$tmp/mosquitto.err" >&2
exit $status
