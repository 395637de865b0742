#!/usr/bin/env bash
# What counting an emit's recipients on Node.js peers costs: sequential
# POST /v1/emit {"to": "bench-room"} to one sio-relay node over one keep-alive connection,
# first with the node alone in its cluster, then with a Node.js Socket.IO server
# (@socket.io/redis-adapter, tests/clients/node_peer.js) in it, which the relay then asks
# for its count with a fetch-sockets request. Prints the latency per emit and the relay's
# CPU time per emit for each phase.
#
#   cargo build --release --bin sio-relay          # (or RELAY_BIN=target/debug/sio-relay)
#   (cd tests/clients && npm ci)                   # the Node.js peer
#   benches/mixed_emit.sh
#
# Env: RELAY_BIN (default target/release/sio-relay), REDIS_URL (default the Redis on
# 127.0.0.1:6379; a fresh key prefix is used), N emits per phase (2000), BASE_PORT (31200).
# Everything listens on 127.0.0.1.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
relay_bin="${RELAY_BIN:-$target/release/sio-relay}"
redis_url="${REDIS_URL:-redis://127.0.0.1:6379}"
n="${N:-2000}"
base="${BASE_PORT:-31200}"
prefix="bench-mixed-$$"
tmp="$(mktemp -d)"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

SIO_RELAY_CLUSTER_ADAPTER=redis SIO_RELAY_CLUSTER_REDIS_URL="$redis_url" \
  SIO_RELAY_CLUSTER_KEY_PREFIX="$prefix" SIO_RELAY_LOG_LEVEL=warn \
  "$relay_bin" --listen "127.0.0.1:$base" --admin-listen "127.0.0.1:$((base + 1))" &
relay=$!
pids+=("$relay")
for _ in $(seq 100); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((base + 1))/readyz")" == 200 ]] && break
  sleep 0.1
done

phase() { # name
  python3 - "$1" "$((base + 1))" "$n" "$relay" <<'PY'
import http.client, json, os, statistics, sys, time
name, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def cpu_s():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
conn = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"to": "bench-room", "event": "tick"})
def emit():
    conn.request("POST", "/v1/emit", body, {"Content-Type": "application/json"})
    answer = conn.getresponse().read()
    assert b'"recipients":0' in answer and b"partial" not in answer, answer
for _ in range(200):  # warm-up
    emit()
times, cpu0 = [], cpu_s()
for _ in range(n):
    start = time.perf_counter()
    emit()
    times.append(time.perf_counter() - start)
cpu = cpu_s() - cpu0
times.sort()
ms = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
print(f"{name:<22} emits {n}  mean {statistics.mean(times)*1000:.3f} ms  p50 {ms(0.5):.3f} ms"
      f"  p99 {ms(0.99):.3f} ms  relay CPU {cpu / n * 1e6:.0f} us/emit")
PY
}

phase "sio-relay only"
mkfifo "$tmp/peer-in"
node "$root/tests/clients/node_peer.js" --mode server --redis "$redis_url" --key "$prefix" \
  <"$tmp/peer-in" >"$tmp/peer-out" 2>&1 &
pids+=($!)
exec 3>"$tmp/peer-in" # keeps the peer's stdin open
for _ in $(seq 100); do grep -q '"ready"' "$tmp/peer-out" && break; sleep 0.1; done
grep -q '"ready"' "$tmp/peer-out" || { cat "$tmp/peer-out" >&2; exit 1; }
phase "with a Node.js peer"
exec 3>&-
