#!/usr/bin/env bash
# Cross-node push benchmark: three sio-relay nodes on one Redis, all on this machine.
# Clients connect to node B; pushes are POSTed to node A's admin API; node C holds no
# client. Reports the load tool's figures (latency from POST to delivery on B), then each
# node's CPU time and cluster counters, which show that C dropped every push by its
# channel without decoding it.
#
#   cargo build --release --bin sio-relay && cargo build --release -p sio-relay-load
#   benches/cluster.sh [extra sio-relay-load flags, e.g. --unicast-rate 2000]
#
# Env: RELAY_BIN, LOAD_BIN (default: target/release/...), REDIS_URL (default: a private
# redis-server started on port 31379 and stopped at the end), BASE_PORT (31100).
# Everything listens on 127.0.0.1; every phase of the load tool is bounded in time.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
relay_bin="${RELAY_BIN:-$target/release/sio-relay}"
load_bin="${LOAD_BIN:-$target/release/sio-relay-load}"
base="${BASE_PORT:-31100}"
prefix="bench-$$"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

if [[ -z "${REDIS_URL:-}" ]]; then
  redis-server --port 31379 --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
  pids+=($!)
  REDIS_URL="redis://127.0.0.1:31379"
  for _ in $(seq 50); do redis-cli -p 31379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

start_node() { # name index
  local io=$((base + 2 * $2)) admin=$((base + 2 * $2 + 1))
  SIO_RELAY_CLUSTER_ADAPTER=redis SIO_RELAY_CLUSTER_REDIS_URL="$REDIS_URL" \
    SIO_RELAY_CLUSTER_KEY_PREFIX="$prefix" SIO_RELAY_LOG_LEVEL=warn \
    "$relay_bin" --listen "127.0.0.1:$io" --admin-listen "127.0.0.1:$admin" &
  pids+=($!)
  local pid=$!
  eval "pid_$1=$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { echo "node $1 exited (port taken? set BASE_PORT)" >&2; exit 1; }
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz")" == 200 ]] && return
    sleep 0.1
  done
  echo "node $1 not ready" >&2
  exit 1
}
start_node a 0
start_node b 1
start_node c 2

cpu_ms() { # pid: user+system CPU time in ms
  awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"
}
metric() { # admin port, series
  curl -s "http://127.0.0.1:$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}
snapshot() {
  for n in a b c; do
    local i; case $n in a) i=0 ;; b) i=1 ;; c) i=2 ;; esac
    local admin=$((base + 2 * i + 1)) pid_var="pid_$n"
    printf '%s cpu_ms=%s broadcasts_in=%s skipped=%s responses_out=%s\n' "$n" \
      "$(cpu_ms "${!pid_var}")" \
      "$(metric "$admin" 'sio_relay_cluster_messages_total{direction="in",kind="broadcast"}')" \
      "$(metric "$admin" 'sio_relay_cluster_broadcasts_skipped_total')" \
      "$(metric "$admin" 'sio_relay_cluster_messages_total{direction="out",kind="response"}')"
  done
}

echo "== before"
snapshot
"$load_bin" --url "http://127.0.0.1:$((base + 2))/socket.io/" \
  --admin-url "http://127.0.0.1:$((base + 1))" --pid "$pid_b" --label "cluster A->B" \
  --scenario unicast --unicast-clients 1000 --unicast-rate 2000 --duration 10s "$@"
echo "== after"
snapshot
