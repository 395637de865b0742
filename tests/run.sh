#!/usr/bin/env bash
# The project's test command: installs the pinned test clients when needed, then runs
# rustfmt, clippy and every test of the workspace (the relay and its load tool). Runs from
# any directory. Extra arguments are passed to the test runner as filters, e.g.
# `tests/run.sh smoke`.
#
# Needs: cargo, node >= 20 with npm, python3 >= 3.11 (override with PYTHON=...); installs
# Debian's chromium for the admin page's browser test when run as root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
clients="$root/tests/clients"
python="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'tests/run.sh: %s\n' "$*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (socket.io-client tests need it)"
command -v npm >/dev/null || die "npm is not installed"
command -v "$python" >/dev/null || die "$python is not installed (python-socketio tests need it)"
command -v cargo >/dev/null || die "cargo is not installed"

# --- socket.io-client: `npm ci` when node_modules is missing or older than the lock ----
npm_stamp="$clients/node_modules/.package-lock.json"
if [[ ! -f "$npm_stamp" || "$clients/package-lock.json" -nt "$npm_stamp" || "$clients/package.json" -nt "$npm_stamp" ]]; then
  step "installing the pinned npm clients"
  (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- python-socketio: a venv rebuilt when missing or when requirements.txt changed ------
venv="$clients/.venv"
pip_stamp="$venv/.requirements.sha256"
want="$(sha256sum "$clients/requirements.txt" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$pip_stamp" || "$(cat "$pip_stamp")" != "$want" ]]; then
  step "installing the pinned Python clients"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$clients/requirements.txt"
  echo "$want" >"$pip_stamp"
fi

# --- chromium for the admin page's browser test (tests/ui.rs): Debian's package ---------
if [[ ! -x /usr/bin/chromium ]]; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
    step "installing chromium (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
      || printf 'tests/run.sh: could not install chromium; the browser test will be skipped\n' >&2
  else
    printf 'tests/run.sh: /usr/bin/chromium is missing and this is not root: the browser test will be skipped\n' >&2
  fi
fi

cd "$root"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

# The official Socket.IO protocol suite is not vendored: it runs when SOCKET_IO_PROTOCOL
# names a checkout of github.com/socketio/socket.io-protocol (whole runs only).
if [[ -n "${SOCKET_IO_PROTOCOL:-}" && $# -eq 0 ]]; then
  step "socket.io-protocol test suite"
  tests/protocol-suite.sh "$SOCKET_IO_PROTOCOL"
else
  step "socket.io-protocol test suite: skipped (SOCKET_IO_PROTOCOL not set)"
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  # nextest does not run doctests: run them first, so that nextest's summary closes the run.
  if [[ $# -eq 0 ]]; then
    cargo test --doc
  fi
  cargo nextest run --workspace --no-fail-fast "$@"
else
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  set +e
  cargo test --workspace --no-fail-fast -- "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  # One total over all test binaries (each prints its own "test result" line).
  awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
  exit "$status"
fi
