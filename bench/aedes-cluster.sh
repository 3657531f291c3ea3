#!/usr/bin/env bash
# bench/aedes-cluster.sh NODES: the reference Aedes cluster behind one port, for a
# ../shared/bench/run.sh `cmd:` entry, in the same shape as bench/cluster.sh: a private
# redis-server, NODES Aedes 1.x nodes (bench/aedes-cluster.mjs: mqemitter-redis +
# aedes-persistence-redis on that Redis) and haproxy (TCP, balance roundrobin) on
# 127.0.0.1:$PORT. Install the packages first with bench/install-aedes-cluster.sh
# (into $BENCH_TOOLS/aedes-cluster, default /tmp/bench-tools).
#
#   run.sh --scenarios fanin_q0 'aedes-redis-2=cmd:/path/to/bench/aedes-cluster.sh 2'
set -u
[ $# -ge 1 ] || { echo "usage: aedes-cluster.sh NODES" >&2; exit 2; }
NODES=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export AEDES_DIR=${AEDES_DIR:-${BENCH_TOOLS:-/tmp/bench-tools}/aedes-cluster}
[ -d "$AEDES_DIR/node_modules/aedes" ] || { echo "no aedes in $AEDES_DIR: run bench/install-aedes-cluster.sh" >&2; exit 2; }
. "$HERE/cluster-lib.sh"

start_node() { # K NODE_PORT REDIS_PORT
  node "$HERE/aedes-cluster.mjs" "$2" "$3" "n$1" > "$CL_DIR/n$1.log" 2>&1 &
  NODE_PID=$!
}

cluster_main "$NODES"
