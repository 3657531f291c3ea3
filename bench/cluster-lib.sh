# Shared by bench/cluster.sh and bench/aedes-cluster.sh (sourced, not run): a private
# redis-server, N broker nodes and an haproxy TCP balancer on 127.0.0.1:$PORT, for a
# ../shared/bench/run.sh `cmd:` entry. run.sh watches this script's PID (it counts the CPU
# and RSS of all its descendants: redis, the nodes and haproxy), starts load as soon as
# $PORT listens, and stops it with SIGTERM (then SIGKILL after 3 s), so:
#   - $PORT is bound last, once redis and every node listen;
#   - SIGTERM/SIGINT stops haproxy, then the nodes, then redis, and waits for each
#     (SIGKILL for whatever is still running after ~2 s), all within run.sh's 3 s;
#   - if any of them dies on its own, the rest is stopped and the script exits 1, so
#     run.sh sees a dead broker.
# The caller defines start_node K NODE_PORT REDIS_PORT (starts node K in the background,
# output to $CL_DIR/nK.log, and sets NODE_PID) and then calls cluster_main NODES.
set -u
: "${PORT:?PORT must be set (run.sh exports it)}"

command -v redis-server >/dev/null || { echo "redis-server missing: apt-get install -y redis-server" >&2; exit 1; }
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { echo "haproxy missing: apt-get install -y haproxy" >&2; exit 1; }
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

CL_DIR=$(mktemp -d "/tmp/cluster-$PORT.XXXXXX")
PIDS=()       # nodes, in start order
REDIS_PID=""
LB_PID=""

listening() { [ -n "$(ss -Hltn "( sport = :$1 )" 2>/dev/null | head -1)" ]; }

# Ports derived from $PORT (run.sh uses 19010-19099), below the ephemeral range, so the
# load generator's and haproxy's client sockets can't take them; the next free one if taken.
NEXT_CL_PORT=$((21000 + (PORT % 1000) * 10))
cl_port() {
  while listening "$NEXT_CL_PORT"; do NEXT_CL_PORT=$((NEXT_CL_PORT + 1)); done
  CL_PORT=$NEXT_CL_PORT; NEXT_CL_PORT=$((NEXT_CL_PORT + 1))
}

wait_listen() { # port pid what: up to 10 s
  local i=0
  while [ $i -lt 200 ]; do
    kill -0 "$2" 2>/dev/null || { echo "cluster: $3 exited before listening on $1" >&2; return 1; }
    listening "$1" && return 0
    sleep 0.05; i=$((i + 1))
  done
  echo "cluster: $3 does not listen on $1 after 10 s" >&2; return 1
}

stop_pids() { # pid... : SIGTERM, wait up to ~2 s, SIGKILL the rest, reap
  local p i=0 alive
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  while [ $i -lt 40 ]; do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.05; i=$((i + 1))
  done
  for p in "$@"; do
    if kill -0 "$p" 2>/dev/null; then echo "cluster: pid $p still running, SIGKILL" >&2; kill -KILL "$p" 2>/dev/null; fi
  done
  for p in "$@"; do wait "$p" 2>/dev/null; done
}

STOPPING=0
cluster_stop() { # exit code
  [ $STOPPING = 1 ] && return; STOPPING=1
  trap '' TERM INT
  [ -n "$LB_PID" ] && stop_pids "$LB_PID"
  [ ${#PIDS[@]} -gt 0 ] && stop_pids "${PIDS[@]}"
  [ -n "$REDIS_PID" ] && stop_pids "$REDIS_PID"
  # the logs go to this script's output (run.sh's broker log); keep only the last lines
  local f
  for f in "$CL_DIR"/*.log; do
    [ -s "$f" ] || continue
    echo "---- $(basename "$f") (last 40 lines)"
    tail -n 40 "$f"
  done
  rm -rf "$CL_DIR"
  exit "$1"
}

cluster_main() { # NODES
  local n=$1 k
  case "$n" in ''|*[!0-9]*|0) echo "NODES must be a positive integer" >&2; exit 2 ;; esac
  trap 'cluster_stop 0' TERM INT

  cl_port; REDIS_PORT=$CL_PORT
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize no --dir "$CL_DIR" --logfile "$CL_DIR/redis.log" --maxclients 10000 &
  REDIS_PID=$!
  wait_listen "$REDIS_PORT" "$REDIS_PID" redis-server || cluster_stop 1
  echo "cluster: redis-server on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID), work dir $CL_DIR"

  local servers=""
  for k in $(seq 1 "$n"); do
    cl_port
    start_node "$k" "$CL_PORT" "$REDIS_PORT"
    PIDS+=("$NODE_PID")
    wait_listen "$CL_PORT" "$NODE_PID" "node n$k" || cluster_stop 1
    echo "cluster: node n$k on 127.0.0.1:$CL_PORT (pid $NODE_PID)"
    servers+="    server n$k 127.0.0.1:$CL_PORT"$'\n'
  done

  # haproxy in TCP mode, round robin per connection, no health checks (they would be
  # extra connections to the nodes); client and server timeouts far above the 60 s keep alive.
  # haproxy needs 2 descriptors per proxied connection and refuses to start if maxconn
  # does not fit in the descriptor limit (run.sh raises it to the hard limit)
  local nofile maxconn
  nofile=$(ulimit -n); [ "$nofile" = unlimited ] && nofile=1048576
  maxconn=$(( (nofile - 200) / 2 )); [ $maxconn -gt 40000 ] && maxconn=40000
  cat > "$CL_DIR/haproxy.cfg" <<CFG
global
    maxconn $maxconn
    nbthread 2
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout client-fin 5s
    timeout server-fin 5s
frontend mqtt
    bind 127.0.0.1:$PORT
    maxconn $maxconn
    default_backend nodes
backend nodes
    balance roundrobin
$servers
CFG
  "$HAPROXY" -db -f "$CL_DIR/haproxy.cfg" > "$CL_DIR/haproxy.log" 2>&1 &
  LB_PID=$!
  wait_listen "$PORT" "$LB_PID" haproxy || cluster_stop 1
  echo "cluster: haproxy on 127.0.0.1:$PORT (pid $LB_PID) -> $n node(s)"

  # until stopped, or until one of them dies
  wait -n "$REDIS_PID" "$LB_PID" "${PIDS[@]}"
  [ $STOPPING = 1 ] && return
  echo "cluster: a process exited on its own; stopping the rest" >&2
  cluster_stop 1
}
