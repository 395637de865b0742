#!/usr/bin/env bash
# Client events with an ack answered by a backend, at a fixed rate: sio-relay with a local
# hook (tests/protocol/echo_backend.js over HTTP on loopback) beside Node.js socket.io with
# an in-process handler. Prints one JSON line per server (see emit_ack.js).
#
#   cargo build --release --bin sio-relay && benches/hooks/run.sh [RATE] [SECONDS] [TICK_MS]
#
# TICK_MS (default 1) is how often the client tool sends what is due; 10 sends the same rate
# in bursts of rate/100.
#
# Needs tests/clients/node_modules (tests/run.sh installs it) and free ports 29000-29101.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rate=${1:-2000}
seconds=${2:-10}
tick_ms=${3:-1}
relay_bin=${RELAY_BIN:-$root/target/release/sio-relay}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

PORT=29050 node "$root/tests/protocol/echo_backend.js" > /dev/null &
hook_pid=$!; pids+=($hook_pid)
SIO_RELAY_HOOKS_URL=http://127.0.0.1:29050/hook SIO_RELAY_HOOKS_EVENTS=message-with-ack \
    "$relay_bin" --listen 127.0.0.1:29000 --admin-listen 127.0.0.1:29001 --log-level warn &
relay_pid=$!; pids+=($relay_pid)
sleep 1
echo -n "sio-relay + hook (relay, hook backend): "
node "$root/benches/hooks/emit_ack.js" --url http://127.0.0.1:29000 --pids "$relay_pid,$hook_pid" \
    --rate "$rate" --seconds "$seconds" --tick-ms "$tick_ms"
kill "$relay_pid" "$hook_pid"

NODE_ENV=production node "$root/benches/hooks/node_server.js" 29100 > /dev/null &
node_pid=$!; pids+=($node_pid)
sleep 1
echo -n "node socket.io, in-process handler: "
node "$root/benches/hooks/emit_ack.js" --url http://127.0.0.1:29100 --pids "$node_pid" \
    --rate "$rate" --seconds "$seconds" --tick-ms "$tick_ms"
