#!/usr/bin/env bash
# Runs the official Socket.IO protocol test suite (github.com/socketio/socket.io-protocol,
# folder test-suite/) against sio-relay, with tests/protocol/echo_backend.js behind [hooks]
# as the application the suite expects, and behind [auth] mode = "webhook" so that the
# handshake's auth payload reaches it (the suite's "auth" event). All of its tests pass.
#
#   git clone https://github.com/socketio/socket.io-protocol /tmp/socket.io-protocol
#   tests/protocol-suite.sh /tmp/socket.io-protocol
#
# The suite is not part of this repository. Its npm dependencies are installed as its own
# package-lock.json pins them, in a copy of test-suite/ (the checkout is left untouched).
# The suite talks to localhost:3000, so that port must be free. Needs Node.js 18+ and npm.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -f "$1/test-suite/test-suite.js" ]; then
    echo "usage: $0 PATH_TO_SOCKET_IO_PROTOCOL_CHECKOUT (with test-suite/test-suite.js)" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

cp -R "$1/test-suite/." "$work/suite"
(cd "$work/suite" && npm ci --no-audit --no-fund --loglevel=error)

(cd "$root" && cargo build --quiet --bin sio-relay)
relay_bin="$root/target/debug/sio-relay"

node "$root/tests/protocol/echo_backend.js" > "$work/backend.out" &
pids+=($!)
for _ in $(seq 100); do
    grep -q listening "$work/backend.out" 2>/dev/null && break
    sleep 0.1
done
port=$(sed -n 's/.*"listening":\([0-9]*\).*/\1/p' "$work/backend.out")
[ -n "$port" ] || { echo "the echo backend did not start" >&2; exit 1; }

# The suite's timings: ping every 300 ms, 200 ms to answer; a session that joins no
# namespace is closed within mocha's 2 s test timeout.
cat > "$work/relay.toml" <<TOML
[server]
listen = "127.0.0.1:3000"
namespaces = ["/", "/custom"]
ping_interval_ms = 300
ping_timeout_ms = 200
connect_timeout_ms = 1000

[admin]
listen = "127.0.0.1:0"

[hooks]
url = "http://127.0.0.1:$port/hook"
events = ["message", "message-with-ack"]
lifecycle = ["connect"]
TOML

# The handshake's auth payload reaches the backend through the authorize webhook, which
# keeps it as the socket's data; the connect hook carries that data back.
cat >> "$work/relay.toml" <<TOML

[auth]
mode = "webhook"
webhook_url = "http://127.0.0.1:$port/authorize"
TOML

"$relay_bin" --config "$work/relay.toml" --log-level warn &
pids+=($!)
for _ in $(seq 100); do
    curl -fs -o /dev/null "http://127.0.0.1:3000/socket.io/?EIO=4&transport=polling" && break
    sleep 0.1
done

cd "$work/suite"
npx mocha test-suite.js "${@:2}"
