#!/usr/bin/env bash
# bench/install-aedes-cluster.sh: installs Aedes 1.x with mqemitter-redis and
# aedes-persistence-redis into $BENCH_TOOLS/aedes-cluster (default /tmp/bench-tools),
# for bench/aedes-cluster.sh. Nothing is installed into the repository.
# Needs node >= 20 and npm; bench/cluster.sh and bench/aedes-cluster.sh also need
# redis-server and haproxy (apt-get install -y redis-server haproxy).
set -euo pipefail
TOOLS=${BENCH_TOOLS:-/tmp/bench-tools}
DIR=$TOOLS/aedes-cluster
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || npm init -y >/dev/null
npm install --no-audit --no-fund aedes@1 mqemitter-redis aedes-persistence-redis
for p in aedes mqemitter-redis aedes-persistence-redis; do
  node -e "console.log('$p', require('./node_modules/$p/package.json').version)"
done
