#!/usr/bin/env bash
# Memory per idle connection at scale: Pigeon and Mosquitto, default options,
# each holding N idle MQTT connections (keep alive 60 s) opened by the shared
# benchmark's load generator (../shared/bench/mqload). Prints the broker's RSS
# per connection and, beside it, the kernel's own memory per socket: the sizes
# of the slab objects every accepted, epoll-watched TCP socket takes (TCP,
# sock_inode_cache, filp, dentry, eventpoll_epi in /proc/slabinfo, readable by
# root), which no broker can avoid and which RSS does not include.
#   bench/connections.sh [N...]        (default: 10000 100000)
# Each N needs N+100 file descriptors for the broker and for mqload: the
# script raises the limit when it may; when it cannot, it says so and
# measures the largest N the limit allows.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
if [ $# -gt 0 ]; then SIZES=("$@"); else SIZES=(10000 100000); fi
SHARED=$(cd ../shared/bench 2>/dev/null && pwd) || { echo "../shared/bench is missing" >&2; exit 1; }
TARGET=${CARGO_TARGET_DIR:-/tmp/pigeon-bench/target}
(cd "$SHARED/mqload" && CARGO_TARGET_DIR=$TARGET cargo build --release --locked -q) || exit 1
cargo build --release -q --bin pigeon || exit 1
MQLOAD=$TARGET/release/mqload
tmp=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
KERNEL=$(awk '$1 ~ /^(TCP|sock_inode_cache|filp|dentry|eventpoll_epi)$/ {n += $4}
  END {print n ? n : "?"}' /proc/slabinfo 2>/dev/null || echo "?")

run() { # NAME N PORT PID
  wait_port "$3" || { echo "$1 did not start" >&2; return 1; }
  local line
  line=$("$MQLOAD" --scenario connect --port "$3" --connections "$2" --hold 2 \
    --broker-pid "$4" --label "$1" 2>"$tmp/mqload.err" | tail -1)
  python3 - "$1" "$2" "$line" "$KERNEL" <<'EOF'
import json, sys
name, n, line, kernel = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    d = json.loads(line)
except ValueError:
    print(f"{name:<10} {n:>7}  mqload failed: {line!r}"); sys.exit()
print(f"{name:<10} {n:>7} {d['connected']:>9} {d['connects_per_s']:>10.0f} "
      f"{d.get('broker_rss_before_kb', 0):>9} {d.get('broker_rss_connected_kb', 0):>10} "
      f"{d.get('broker_rss_per_conn_bytes', 0):>9.0f} {kernel:>10}  "
      f"still open {d.get('still_connected_after_hold')}")
EOF
}

limit=$(ulimit -Hn)
printf '%-10s %7s %9s %10s %9s %10s %9s %10s\n' broker wanted connected "conn/s" \
  "RSS0 kB" "RSS kB" "B/conn" "kernel B"
for n in "${SIZES[@]}"; do
  need=$((n + 100))
  if [ "$limit" != unlimited ] && [ "$limit" -lt "$need" ]; then
    # Raising the hard limit needs CAP_SYS_RESOURCE (a container may not have it).
    # Then the most the limit allows is measured instead, saying so.
    ulimit -Hn "$need" 2>/dev/null || {
      echo "N=$n needs $need descriptors; the hard limit here is $limit and cannot be raised (no CAP_SYS_RESOURCE): measuring N=$((limit - 100)) instead" >&2
      n=$((limit - 100)); need=$limit
    }
  fi
  ulimit -Sn "$need"
  port=$(free_port)
  target/release/pigeon --host 127.0.0.1 --port "$port" >"$tmp/pigeon.log" 2>&1 &
  run pigeon "$n" "$port" $!; kill %1 2>/dev/null; wait 2>/dev/null; sleep 1
  port=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\n' "$port" >"$tmp/m.conf"
  "$MOSQUITTO" -c "$tmp/m.conf" >"$tmp/mosquitto.log" 2>&1 &
  run mosquitto "$n" "$port" $!; kill %1 2>/dev/null; wait 2>/dev/null; sleep 1
done
