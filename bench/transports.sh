#!/usr/bin/env bash
# Fan-in and fan-out at QoS 0 and 1 over every transport, Pigeon and Mosquitto
# side by side in one run, each at its default options plus its listeners:
#   Pigeon:    mqtt://, mqtts://, ws://…/mqtt, wss://…/mqtt
#   Mosquitto: plain, TLS (certfile/keyfile), and `protocol websockets` plain and
#              TLS when its build has WebSocket support (Debian's does)
# A throwaway CA and a server certificate for 127.0.0.1 are made with openssl in
# a temp dir; every port is ephemeral; the brokers are stopped on exit. Prints one
# table: broker, transport, scenario, msgs/s, delivered, missing, dups, p50, p99.
# Exits non-zero if a row failed (a QoS 1 message missing, a connection error).
#   bench/transports.sh [extra pigeon-bench flags, e.g. --duration 5 --protocol 5]
#   TRANSPORTS="tcp tls" bench/transports.sh        # a subset
#   PIGEON_ARGS="--max-queued-messages 100000" bench/transports.sh
set -uo pipefail
cd "$(dirname "$0")/.."
command -v openssl >/dev/null || { echo "openssl is not installed: apt-get install -y openssl" >&2; exit 1; }
. bench/lib.sh
read -ra pigeon_args <<<"${PIGEON_ARGS:-}"
read -ra transports <<<"${TRANSPORTS:-tcp tls ws wss}"
cargo build --release -q --bin pigeon || exit 1
cargo build --release -q -p pigeon-bench --bin pigeon-bench || exit 1
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null || true
status=0

# --- Throwaway PKI: a CA and a server certificate for 127.0.0.1 / localhost.
cat >"$tmp/pki.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext
[dn]
CN = pigeon-bench throwaway CA
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
CNF
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
{ openssl req -x509 -config "$tmp/pki.cnf" "${ec[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 2 &&
  openssl req -new "${ec[@]}" -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj /CN=127.0.0.1 &&
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -set_serial 2 -days 2 \
    -extfile "$tmp/pki.cnf" -extensions server_ext -out "$tmp/server.pem"; } >"$tmp/openssl.log" 2>&1 || {
  echo "openssl failed:" >&2; cat "$tmp/openssl.log" >&2; exit 1; }
# Mosquitto started as root drops to its own user: let it read the throwaway key.
chmod 755 "$tmp"; chmod 644 "$tmp/server.key"

# broker_log NAME FILE: the broker's last words, if it said anything.
broker_log() { [ -s "$2" ] && { echo "--- $1 log (last 5 lines)"; tail -n 5 "$2"; } >&2; return 0; }

# bench BROKER TRANSPORT PORT [flags]: fan-in and fan-out rows, prefixed by the transport.
bench() {
  local broker=$1 transport=$2 port=$3; shift 3
  target/release/pigeon-bench --port "$port" --transport "$transport" --ca "$tmp/ca.pem" \
    --label "$broker" --only fan- "$@" >"$tmp/$broker-$transport.txt" 2>"$tmp/$broker-$transport.err" || status=1
  sed "s/^/$transport /" "$tmp/$broker-$transport.txt" >>"$tmp/rows.txt"
  sed "s/^/$broker $transport: /" "$tmp/$broker-$transport.err" >>"$tmp/errors.txt"
}
touch "$tmp/rows.txt" "$tmp/errors.txt"

# --- Pigeon: four listeners, default options otherwise.
declare -A pport
for t in tcp tls ws wss; do pport[$t]=$(free_port); done
RUST_LOG=warn target/release/pigeon "${pigeon_args[@]}" \
  --listen "mqtt://127.0.0.1:${pport[tcp]}" --listen "mqtts://127.0.0.1:${pport[tls]}" \
  --listen "ws://127.0.0.1:${pport[ws]}/mqtt" --listen "wss://127.0.0.1:${pport[wss]}/mqtt" \
  --cert "$tmp/server.pem" --key "$tmp/server.key" >"$tmp/pigeon.log" 2>&1 &
pigeon_pid=$!; pids+=("$pigeon_pid")
up=1; for t in tcp tls ws wss; do wait_port "${pport[$t]}" || up=0; done
if [ $up = 1 ]; then
  for t in "${transports[@]}"; do bench pigeon "$t" "${pport[$t]}" "$@"; done
else
  echo "pigeon did not start" >&2; status=1
fi
kill -INT "$pigeon_pid" 2>/dev/null; wait "$pigeon_pid" 2>/dev/null
broker_log pigeon "$tmp/pigeon.log"

# --- Mosquitto: plain and TLS listeners, and WebSocket ones if its build has them.
declare -A mport
for t in tcp tls ws wss; do mport[$t]=$(free_port); done
tls_files="certfile $tmp/server.pem
keyfile $tmp/server.key"
{ echo "allow_anonymous true"; echo "set_tcp_nodelay true"
  echo "listener ${mport[tcp]} 127.0.0.1"
  echo "listener ${mport[tls]} 127.0.0.1"; echo "$tls_files"
} >"$tmp/mosquitto.conf"
mosq_ws=0
if grep -aq 'Opening websockets listen socket' "$MOSQUITTO" 2>/dev/null; then
  mosq_ws=1
  { echo "listener ${mport[ws]} 127.0.0.1"; echo "protocol websockets"
    echo "listener ${mport[wss]} 127.0.0.1"; echo "protocol websockets"; echo "$tls_files"
  } >>"$tmp/mosquitto.conf"
fi
"$MOSQUITTO" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
mosq_pid=$!; pids+=("$mosq_pid")
up=1; for t in tcp tls; do wait_port "${mport[$t]}" || up=0; done
[ $mosq_ws = 1 ] && for t in ws wss; do wait_port "${mport[$t]}" || up=0; done
if [ $up = 1 ]; then
  for t in "${transports[@]}"; do
    case $t in
      ws | wss) [ $mosq_ws = 1 ] || { echo "mosquitto: built without websockets, no $t rows" >&2; continue; } ;;
    esac
    bench mosquitto "$t" "${mport[$t]}" "$@"
  done
else
  echo "mosquitto did not start:" >&2; cat "$tmp/mosquitto.log" >&2; status=1
fi
kill "$mosq_pid" 2>/dev/null; wait "$mosq_pid" 2>/dev/null

# --- One table, grouped by scenario, then transport, then broker (Pigeon first).
# A row is: transport broker scenario(2 words) msgs/s delivered missing dups reord p50 p99 …
awk 'BEGIN { fmt = "%-10s %-9s %-11s %10s %10s %9s %6s %9s %9s\n"
             printf fmt, "broker", "transport", "scenario", "msgs/s", "delivered", "missing", "dups", "p50 ms", "p99 ms" }
     { s = $3 " " $4; t = $1
       if (!(s in seen_s)) { seen_s[s]; scen[ns++] = s }
       if (!(t in seen_t)) { seen_t[t]; tran[nt++] = t }
       if ($5 == "ERROR") line = sprintf(fmt, $2, t, s, "ERROR", "", "", "", "", "")
       else line = sprintf(fmt, $2, t, s, $5, $6, $7, $8, $10, $11)
       rows[s, t] = rows[s, t] line }
     END { for (i = 0; i < ns; i++) for (j = 0; j < nt; j++) printf "%s", rows[scen[i], tran[j]] }' "$tmp/rows.txt"
cat "$tmp/errors.txt" >&2
exit $status
