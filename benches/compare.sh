#!/usr/bin/env bash
# Side-by-side load comparison of Socket.IO servers with sio-relay-load.
# See benches/README.md for the details; `benches/compare.sh --help` for the options.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: benches/compare.sh [options] SERVER... [-- sio-relay-load options]

SERVER is either
  NAME=COMMAND                 a command that starts the server in the foreground; the script
                               replaces {listen} and {admin} in it with 127.0.0.1:PORT addresses
                               it picks, and starts a fresh process for every scenario
  NAME=SIO_URL,ADMIN_URL,PID   a server that is already running (every scenario runs against
                               the same process; PID is the process to measure)

options:
  --scenarios LIST   comma-separated, in order (default: idle,unicast,rooms,broadcast;
                     add unicast-max for the highest passing unicast rate)
  --runs N           repeat everything N times; the report shows medians (default: 1)
  --floor            also measure the kernel's floor (`sio-relay-load floor`) in every run,
                     after the servers, as the column "floor"; every figure of the servers
                     then also shows as a multiple of it
  --ratio-to NAME    also show every figure as a multiple of server NAME's (repeatable)
  --out DIR          where results, logs and the report go
                     (default: target/bench-results/YYYYmmdd-HHMMSS)
  --load PATH        sio-relay-load binary (default: build it with cargo --release)
  --base-port N      first port handed to started servers (default: 29100; keep it below
                     the ephemeral range, /proc/sys/net/ipv4/ip_local_port_range)
  --start-timeout S  seconds to wait for a started server's /healthz (default: 60)
  -h, --help         this text

Everything after `--` goes to sio-relay-load (e.g. -- --duration 20s --idle-clients 5000).

example:
  benches/compare.sh \
    'sio-relay=target/release/sio-relay --listen {listen} --admin-listen {admin}' \
    'other=http://127.0.0.1:4000/socket.io/,http://127.0.0.1:4001,12345'
EOF
}

scenarios="idle,unicast,rooms,broadcast"
runs=1
floor=false
ratio_to=()
out=""
load=""
base_port=29100
start_timeout=60
servers=()
load_args=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --scenarios) scenarios="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --floor) floor=true; shift ;;
        --ratio-to) ratio_to+=("$2"); shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --load) load="$2"; shift 2 ;;
        --base-port) base_port="$2"; shift 2 ;;
        --start-timeout) start_timeout="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; load_args=("$@"); break ;;
        -*) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        *=*) servers+=("$1"); shift ;;
        *) echo "compare.sh: expected NAME=..., got: $1" >&2; exit 2 ;;
    esac
done
if [[ ${#servers[@]} -eq 0 ]]; then
    usage >&2
    exit 2
fi
for tool in curl ss; do
    command -v "$tool" >/dev/null || { echo "compare.sh: needs $tool" >&2; exit 2; }
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "$load" ]]; then
    echo "building sio-relay-load (release)..." >&2
    (cd "$repo" && cargo build --release -q -p sio-relay-load)
    target_dir="${CARGO_TARGET_DIR:-$repo/target}"
    load="$target_dir/release/sio-relay-load"
fi
[[ -x "$load" ]] || { echo "compare.sh: no executable at $load" >&2; exit 2; }
if [[ -z "$out" ]]; then
    out="$repo/target/bench-results/$(date +%Y%m%d-%H%M%S)"
fi

# The floor's traffic follows the load options where they name the same thing.
load_opt() {
    local name="$1" default="$2" i
    for ((i = 0; i < ${#load_args[@]}; i++)); do
        if [[ "${load_args[i]}" == "$name" ]]; then echo "${load_args[i + 1]}"; return; fi
        if [[ "${load_args[i]}" == "$name="* ]]; then echo "${load_args[i]#*=}"; return; fi
    done
    echo "$default"
}
floor_args=(--clients "$(load_opt --broadcast-clients 2000)"
    --unicast-clients "$(load_opt --unicast-clients 1000)"
    --unicast-rate "$(load_opt --unicast-rate 5000)"
    --connects "$(load_opt --idle-clients 10000)"
    --duration "$(load_opt --duration 10s)" --warmup "$(load_opt --warmup 2s)")
report_args=()
if $floor; then report_args+=(--ratio-to floor); fi
for name in "${ratio_to[@]}"; do report_args+=(--ratio-to "$name"); done
mkdir -p "$out"
results="$out/results.jsonl"

port_free() {
    [[ -z "$(ss -Htan "sport = :$1" 2>/dev/null)" ]]
}

# The pid of the process listening on a TCP port (the server itself, even when COMMAND is a
# wrapper such as a shell or a package manager).
listener_pid() {
    ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2
}

started_pgid=""
stop_started() {
    [[ -n "$started_pgid" ]] || return 0
    kill -TERM -- "-$started_pgid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 -- "-$started_pgid" 2>/dev/null || { started_pgid=""; return 0; }
        sleep 0.1
    done
    kill -KILL -- "-$started_pgid" 2>/dev/null || true
    started_pgid=""
}
trap stop_started EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND LISTEN_PORT ADMIN_PORT LOG -> sets sio_url admin_url pid
start_server() {
    local name="$1" cmd="$2" lport="$3" aport="$4" log="$5"
    for p in "$lport" "$aport"; do
        port_free "$p" || { echo "compare.sh: port $p is in use (try --base-port)" >&2; exit 1; }
    done
    cmd="${cmd//\{listen\}/127.0.0.1:$lport}"
    cmd="${cmd//\{admin\}/127.0.0.1:$aport}"
    echo "== $name: $cmd" >>"$log"
    setsid bash -c "$cmd" >>"$log" 2>&1 < /dev/null &
    started_pgid=$!
    local waited=0
    until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$aport/healthz"; do
        if ! kill -0 "$started_pgid" 2>/dev/null; then
            echo "compare.sh: $name exited at start; see $log" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        if (( waited >= start_timeout * 10 )); then
            echo "compare.sh: $name did not answer /healthz within ${start_timeout}s" >&2
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    pid="$(listener_pid "$aport")"
    [[ -n "$pid" ]] || pid="$started_pgid"
    sio_url="http://127.0.0.1:$lport/socket.io/"
    admin_url="http://127.0.0.1:$aport"
}

run_load() {
    local name="$1" scen="$2"
    "$load" --url "$sio_url" --admin-url "$admin_url" --pid "$pid" --label "$name" \
        --scenario "$scen" --json "$results" "${load_args[@]}"
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cores: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "kernel: $(uname -r)"
    echo "load average before: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "scenarios: $scenarios; runs: $runs; load options: ${load_args[*]:-(defaults)}"
    for s in "${servers[@]}"; do echo "server: $s"; done
    if $floor; then echo "floor: sio-relay-load floor ${floor_args[*]}"; fi
} | tee "$out/meta.txt"

IFS=',' read -r -a scen_list <<<"$scenarios"
for run in $(seq 1 "$runs"); do
    for scen in "${scen_list[@]}"; do
        i=0
        for spec in "${servers[@]}"; do
            name="${spec%%=*}"
            rest="${spec#*=}"
            log="$out/$name.log"
            echo "--- run $run/$runs, $scen, $name" >&2
            if [[ "$rest" =~ ^(https?|ws)://[^,]+,(https?)://[^,]+,[0-9]+$ ]]; then
                IFS=',' read -r sio_url admin_url pid <<<"$rest"
                run_load "$name" "$scen" || echo "compare.sh: $name/$scen failed" >&2
            else
                start_server "$name" "$rest" $((base_port + 2 * i)) $((base_port + 2 * i + 1)) "$log"
                run_load "$name" "$scen" || echo "compare.sh: $name/$scen failed" >&2
                stop_started
            fi
            i=$((i + 1))
        done
    done
    if $floor; then
        echo "--- run $run/$runs, floor" >&2
        "$load" floor "${floor_args[@]}" --json "$results" >>"$out/floor.log" 2>&1 \
            || echo "compare.sh: floor failed; see $out/floor.log" >&2
    fi
done

"$load" report "${report_args[@]}" "$results" | tee "$out/report.md"
echo "results: $out" >&2
