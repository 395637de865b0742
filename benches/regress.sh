#!/usr/bin/env bash
# Benchmark-regression check for a change on the hot path: builds BASE (a commit, default
# main) and the work tree in release mode, runs benches/compare.sh on both, interleaved, and
# fails when a CPU or memory figure of the work tree is more than THRESHOLD percent above
# BASE's (medians over the runs). A developer runs it before merging; it is not a test.
#
#   benches/regress.sh [--runs N] [--threshold PCT] [--scenarios LIST] [BASE] [-- LOAD ARGS]
#
# LOAD ARGS go to sio-relay-load, e.g. `--scenarios idle main -- --transport polling` for
# the memory of polling clients.
#
# Defaults: 3 runs, 5 %, idle,unicast,rooms,broadcast. Needs curl, ss and python3.
set -euo pipefail

runs=3
threshold=5
scenarios="idle,unicast,rooms,broadcast"
base=main
load_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        --threshold) threshold="$2"; shift 2 ;;
        --scenarios) scenarios="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        --) shift; load_args=("$@"); break ;;
        -*) echo "regress.sh: unknown option $1" >&2; exit 2 ;;
        *) base="$1"; shift ;;
    esac
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
work="$target_dir/regress"
out="$work/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"

echo "building the work tree (release)..." >&2
(cd "$repo" && cargo build --release -q -p sio-relay -p sio-relay-load)
cp "$target_dir/release/sio-relay" "$work/sio-relay-head"

echo "building $base (release)..." >&2
checkout="$work/base-src"
rm -rf "$checkout"
git -C "$repo" worktree prune
git -C "$repo" worktree add --detach -f "$checkout" "$base" >/dev/null
trap 'git -C "$repo" worktree remove --force "$checkout" 2>/dev/null || true' EXIT
(cd "$checkout" && CARGO_TARGET_DIR="$work/base-target" cargo build --release -q -p sio-relay)
cp "$work/base-target/release/sio-relay" "$work/sio-relay-base"

"$repo/benches/compare.sh" --runs "$runs" --scenarios "$scenarios" --ratio-to base \
    --load "$target_dir/release/sio-relay-load" --out "$out" \
    "base=$work/sio-relay-base --listen {listen} --admin-listen {admin} --log-level warn" \
    "head=$work/sio-relay-head --listen {listen} --admin-listen {admin} --log-level warn" \
    -- "${load_args[@]}"

python3 - "$out/results.jsonl" "$threshold" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
limit = 1 + float(sys.argv[2]) / 100
figures = [("idle", "rss_kib_per_conn", "RSS per idle client"),
           ("idle", "cpu_us_per_connect", "CPU per connect"),
           ("idle-polling", "rss_kib_per_conn", "RSS per idle polling client"),
           ("idle-polling", "cpu_us_per_connect", "CPU per polling connect"),
           ("unicast", "cpu_us_per_msg", "CPU per unicast push"),
           ("rooms", "cpu_us_per_msg", "CPU per delivery, rooms"),
           ("broadcast", "cpu_us_per_msg", "CPU per delivery, broadcast")]
def median(label, scenario, key):
    values = [r[key] for r in rows if r["label"] == label and r["scenario"] == scenario and r.get(key)]
    return statistics.median(values) if values else None
worse = []
for scenario, key, name in figures:
    base, head = median("base", scenario, key), median("head", scenario, key)
    if base is None or head is None:
        continue
    ratio = head / base
    verdict = "WORSE" if ratio > limit else "ok"
    print(f"{name:32} base {base:8.2f}  head {head:8.2f}  head/base {ratio:5.2f}  {verdict}")
    if ratio > limit:
        worse.append(name)
lost = sum(r.get("lost") or 0 for r in rows if r["label"] == "head")
if lost:
    print(f"head lost {lost} messages")
    worse.append("lost messages")
sys.exit(1 if worse else 0)
PY
