#!/usr/bin/env bash
# Durable store benchmark, in one run, for four configurations:
#   pigeon-mem  pigeon, in-memory store (the default)
#   redb-sync   pigeon --persistence redb:STORE --durability sync (PUBACK after fsync)
#   redb-10ms   pigeon --persistence redb:STORE --durability 10ms (commit every 10 ms, ack at once)
#   mosquitto   persistence true, persistence_location STORE/ (autosave_interval: its
#               default, 1800 s, unless MOSQUITTO_AUTOSAVE=SECONDS), and `user` the
#               current user (run as root it would switch to `mosquitto`, which
#               cannot write the private temp dir: "Error saving in-memory database")
# Every broker gets a fresh temporary store and an ephemeral port on 127.0.0.1.
#
# Part 1, throughput: pigeon-bench --persistent (subscribers with persistent
# sessions, so every QoS 1 message is stored) in the fan-in q1 and pairs q1
# scenarios; one table, a row per broker per scenario.
#
# Part 2, loss on kill -9, KILL_ROUNDS rounds (default 5) per broker: a
# persistent QoS 1 subscriber subscribes and goes offline (pigeon-bench
# kill-subscribe); a QoS 1 publisher sends numbered messages and records which
# got a PUBACK (kill-publish); the broker is killed with SIGKILL after
# KILL_AFTER seconds (default 1, plus 0.2 s more each round) and restarted on
# the same store; the subscriber reconnects to its session and collects
# (kill-collect). Summed over the rounds: published, acknowledged,
# acknowledged-but-lost, duplicates, received, and the rounds whose session
# survived the restart. Expected: redb-sync loses nothing; pigeon-mem loses
# everything (session included); mosquitto everything since its last autosave;
# redb-10ms at most about a window of what was acknowledged.
# The per-round lines (stderr) add first_lost, the lowest acknowledged sequence
# lost (equal to `received` when the loss is the tail of the stream), and the
# publisher's seconds of publishing.
#
# Queue limits, raised so nothing is refused for a full queue (both sides):
#   pigeon:    --max-queued-messages 1000000 --max-queued-bytes 1073741824
#              --max-queued-bytes-total 2147483648   (defaults 1000 / 16 MiB / 256 MiB:
#              an offline session with a full queue refuses more)
#   mosquitto: max_queued_messages 1000000            (default 1000, then it drops)
#
#   bench/durable.sh [extra pigeon-bench flags for part 1, e.g. --duration 5 --protocol 5]
#   KILL_ROUNDS=3 PIGEON_ARGS="--max-inflight 200" bench/durable.sh
# Exits non-zero if a broker did not start, a step failed, or redb-sync lost an
# acknowledged message. Part 1 rows of brokers that lose QoS 1 show FAIL as usual.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
read -ra extra_pigeon_args <<<"${PIGEON_ARGS:-}"
KILL_ROUNDS=${KILL_ROUNDS:-5}
KILL_AFTER=${KILL_AFTER:-1}
target=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p pigeon -p pigeon-bench --bin pigeon --bin pigeon-bench || exit 1
PIGEON=$target/release/pigeon
BENCH=$target/release/pigeon-bench

tmp=$(mktemp -d)
broker_pid=
cleanup() {
  [ -n "$broker_pid" ] && kill -9 "$broker_pid" 2>/dev/null
  local j; for j in $(jobs -p); do kill "$j" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true
status=0
CONFIGS=(pigeon-mem redb-sync redb-10ms mosquitto)
PIGEON_LIMITS=(--max-queued-messages 1000000 --max-queued-bytes 1073741824
               --max-queued-bytes-total 2147483648)

# start_broker NAME PORT STORE: starts (or restarts, on the same STORE) broker NAME;
# sets broker_pid; fails if it does not listen within 10 s.
start_broker() {
  local name=$1 port=$2 store=$3
  local common=(--host 127.0.0.1 --port "$port" "${PIGEON_LIMITS[@]}" "${extra_pigeon_args[@]}")
  case $name in
    pigeon-mem) RUST_LOG=warn "$PIGEON" "${common[@]}" >>"$store.log" 2>&1 & ;;
    redb-sync)  RUST_LOG=warn "$PIGEON" "${common[@]}" --persistence "redb:$store/pigeon.redb" \
                  --durability sync >>"$store.log" 2>&1 & ;;
    redb-10ms)  RUST_LOG=warn "$PIGEON" "${common[@]}" --persistence "redb:$store/pigeon.redb" \
                  --durability 10ms >>"$store.log" 2>&1 & ;;
    mosquitto)
      cat >"$store.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
set_tcp_nodelay true
user $(id -un)
persistence true
persistence_location $store/
max_queued_messages 1000000
${MOSQUITTO_AUTOSAVE:+autosave_interval $MOSQUITTO_AUTOSAVE}
CONF
      "$MOSQUITTO" -c "$store.conf" >>"$store.log" 2>&1 & ;;
  esac
  broker_pid=$!
  wait_port "$port" && return 0
  echo "$name did not start; its log:" >&2; tail -n 20 "$store.log" >&2
  return 1
}

# stop_broker SIGNAL: stops the running broker and reaps it.
stop_broker() {
  [ -n "$broker_pid" ] || return 0
  kill "-$1" "$broker_pid" 2>/dev/null
  wait "$broker_pid" 2>/dev/null
  broker_pid=
}

# broker_log NAME STORE: the broker's last words, if it said anything.
broker_log() {
  [ -s "$2.log" ] && { echo "--- $1 log (last 5 lines)"; tail -n 5 "$2.log"; } >&2
  return 0
}

echo "== part 1: QoS 1 to persistent sessions (pigeon-bench --persistent $*)"
for name in "${CONFIGS[@]}"; do
  store=$tmp/$name-bench; mkdir -p "$store"
  port=$(free_port)
  if start_broker "$name" "$port" "$store"; then
    for only in "fan-in q1" "pairs q1"; do
      "$BENCH" --port "$port" --label "$name" --header --persistent --only "$only" "$@" \
        >>"$tmp/bench-$name.txt" 2>>"$tmp/bench-$name.err" || status=1
    done
  else
    status=1
  fi
  stop_broker INT
  broker_log "$name" "$store"
done
for name in "${CONFIGS[@]}"; do touch "$tmp/bench-$name.txt" "$tmp/bench-$name.err"; done
files=(); for name in "${CONFIGS[@]}"; do files+=("$tmp/bench-$name.txt"); done
awk '/^broker / { if (!header++) print; next }
     { s = substr($0, 12, 12); if (!(s in rows)) order[n++] = s; rows[s] = rows[s] $0 "\n" }
     END { for (i = 0; i < n; i++) printf "%s", rows[order[i]] }' "${files[@]}"
for name in "${CONFIGS[@]}"; do cat "$tmp/bench-$name.err" >&2; done

echo
echo "== part 2: kill -9 mid-stream, $KILL_ROUNDS rounds per broker, QoS 1 to an offline persistent session"
# kv KEY LINE: the value after KEY in a `key value ...` line (0 if absent).
kv() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } } END { }' <<<"$2"; }
printf '%-10s %6s %10s %10s %10s %6s %10s %8s\n' broker rounds published acked "acked-lost" dups received resumed
for name in "${CONFIGS[@]}"; do
  store=$tmp/$name-kill; mkdir -p "$store"
  port=$(free_port)
  sent=0 acked=0 lost=0 dups=0 received=0 resumed=0 rounds=0 failed=
  for round in $(seq "$KILL_ROUNDS"); do
    id="kill-$$-$name-$round" topic="kill/$$/$name/$round" ackfile=$store/acked-$round
    start_broker "$name" "$port" "$store" || { failed="start"; break; }
    "$BENCH" kill-subscribe --port "$port" --client-id "$id" --topic "$topic" \
      2>>"$tmp/kill.err" || { failed="kill-subscribe"; break; }
    "$BENCH" kill-publish --port "$port" --topic "$topic" --acked "$ackfile" \
      >>"$tmp/kill-$name.pub" 2>>"$tmp/kill.err" &
    pub_pid=$!
    sleep "$(awk -v a="$KILL_AFTER" -v r="$round" 'BEGIN { print a + 0.2 * (r - 1) }')"
    stop_broker KILL
    wait "$pub_pid" || { failed="kill-publish"; break; }
    start_broker "$name" "$port" "$store" || { failed="restart"; break; }
    line=$("$BENCH" kill-collect --port "$port" --client-id "$id" --acked "$ackfile" --idle 1 \
      2>>"$tmp/kill.err") || { failed="kill-collect"; break; }
    stop_broker INT
    pub_line=$(tail -n 1 "$tmp/kill-$name.pub")
    echo "$name round $round: $line | publisher: $pub_line" >>"$tmp/kill-rounds.txt"
    sent=$((sent + $(kv sent "$line"))); acked=$((acked + $(kv acked "$line")))
    lost=$((lost + $(kv lost "$line"))); dups=$((dups + $(kv dups "$line")))
    received=$((received + $(kv received "$line"))); resumed=$((resumed + $(kv session_present "$line")))
    rounds=$round
    if [ "$(kv unexpected "$line")" != 0 ]; then echo "$name round $round: unexpected messages: $line" >&2; status=1; fi
  done
  stop_broker KILL
  printf '%-10s %6s %10s %10s %10s %6s %10s %8s\n' "$name" "$rounds" "$sent" "$acked" "$lost" "$dups" "$received" "$resumed/$rounds"
  if [ -n "$failed" ]; then echo "$name: $failed failed in round $((rounds + 1))" >&2; status=1; fi
  if [ "$name" = redb-sync ] && [ "$lost" != 0 ]; then
    echo "redb-sync lost $lost acknowledged messages" >&2; status=1
  fi
  broker_log "$name" "$store"
done
[ -s "$tmp/kill-rounds.txt" ] && { echo "--- per round"; cat "$tmp/kill-rounds.txt"; } >&2
[ -s "$tmp/kill.err" ] && { echo "--- step errors"; cat "$tmp/kill.err"; } >&2
exit $status
