#!/usr/bin/env bash
# Runs pigeon-bench against Pigeon and Mosquitto on this machine, one after the
# other, with the same limits, and prints one table.
#   bench/compare.sh [extra pigeon-bench flags, e.g. --protocol 5]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || {
  echo "mosquitto is not installed: apt-get install -y mosquitto" >&2; exit 1; }
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
cargo build --release -q --bin pigeon --bin pigeon-bench
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
ulimit -n 65536 2>/dev/null || true

port=$(free_port)
RUST_LOG=warn target/release/pigeon --host 127.0.0.1 --port "$port" --max-queued-messages 100000 &
pigeon_pid=$!
wait_port "$port"
target/release/pigeon-bench --port "$port" --label pigeon --header "$@"
kill -INT $pigeon_pid; wait $pigeon_pid 2>/dev/null || true

port=$(free_port)
cat > "$tmp/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 100000
max_inflight_messages 100
set_tcp_nodelay true
CONF
"$MOSQUITTO" -c "$tmp/mosquitto.conf" >/dev/null 2>&1 &
mosq_pid=$!
wait_port "$port"
target/release/pigeon-bench --port "$port" --label mosquitto "$@"
kill $mosq_pid; wait $mosq_pid 2>/dev/null || true
