#!/usr/bin/env bash
# bench/scraped.sh BROKER [ARGS...]: runs the broker with its HTTP listener on
# 127.0.0.1:$((PORT + 1000)) and scrapes /metrics every second meanwhile (Prometheus
# scrapes every 15-60 s: this is 15-60 times harsher). For ../shared/bench/run.sh,
# which exports PORT and counts the CPU of this script's descendants:
#
#   run.sh --scenarios fanin,fanout mosquitto rumqttd \
#     'pigeon=cmd:target/release/pigeon --host 127.0.0.1 --port $PORT' \
#     'pigeon+metrics=cmd:bench/scraped.sh target/release/pigeon --host 127.0.0.1 --port $PORT'
set -u
: "${PORT:?PORT must be set (run.sh exports it)}"
http=127.0.0.1:$((PORT + 1000))
"$@" --http "$http" &
broker=$!
(
  while sleep 1; do
    curl -s -o /dev/null "http://$http/metrics" || true
  done
) &
scraper=$!
stop() {
  kill "$scraper" 2>/dev/null
  kill -TERM "$broker" 2>/dev/null
  wait "$broker"
  exit 0
}
trap stop TERM INT
wait "$broker"
kill "$scraper" 2>/dev/null
