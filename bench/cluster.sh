#!/usr/bin/env bash
# bench/cluster.sh NODES BINARY [EXTRA ARGS...]: a Pigeon cluster behind one port, for a
# ../shared/bench/run.sh `cmd:` entry. Starts a private redis-server (no persistence),
# NODES Pigeon nodes on it
#   BINARY --host 127.0.0.1 --port P --emitter redis://127.0.0.1:R
#          --persistence redis://127.0.0.1:R --node-id nK EXTRA ARGS...
# and haproxy (TCP mode, balance roundrobin) on 127.0.0.1:$PORT spreading client
# connections over the nodes. NODES=1 also goes through haproxy, so 1, 2 and 3 nodes
# compare. SIGTERM/SIGINT stops all of it (see bench/cluster-lib.sh). E.g.
#
#   run.sh --scenarios fanin_q0,fanout_q0 \
#     'pigeon-redis-2=cmd:/path/to/bench/cluster.sh 2 /path/to/pigeon'
set -u
[ $# -ge 2 ] || { echo "usage: cluster.sh NODES BINARY [EXTRA ARGS...]" >&2; exit 2; }
NODES=$1; BINARY=$2; shift 2
EXTRA_ARGS=("$@")
[ -x "$BINARY" ] || { echo "cluster.sh: $BINARY is not executable" >&2; exit 2; }
. "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

start_node() { # K NODE_PORT REDIS_PORT
  "$BINARY" --host 127.0.0.1 --port "$2" \
    --emitter "redis://127.0.0.1:$3" --persistence "redis://127.0.0.1:$3" \
    --node-id "n$1" "${EXTRA_ARGS[@]}" > "$CL_DIR/n$1.log" 2>&1 &
  NODE_PID=$!
}

cluster_main "$NODES"
