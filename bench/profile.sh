#!/usr/bin/env bash
# Where the CPU goes under ingest load: the `profiling` build (release code, with
# symbols) serving on SQLite with the default config, loaded by wrk (2 threads, 32
# connections, bench/distinct.lua) while `perf record -g` samples every thread of it;
# the samples become a flamegraph SVG, bench/flamegraph-<what>.svg (not committed: 2-4 MB), and a text
# summary of the hottest symbols beside it.
# Usage: bench/profile.sh [WHAT] [SECONDS]   WHAT: p3 (default), p1 or duplicates
# Needs perf (run as root, or with kernel.perf_event_paranoid <= 1 for kernel frames)
# and inferno: cargo install --locked inferno. TOCSIN_BIN=path profiles another build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-p3}
seconds=${2:-10}
case "$what" in
  p3) severity=warning script="$root/bench/distinct.lua" ;;
  p1) severity=critical script="$root/bench/distinct.lua" ;;
  duplicates) severity=warning script="$root/bench/duplicate.lua" ;;
  *) echo "usage: $0 [p3|p1|duplicates] [SECONDS]" >&2; exit 2 ;;
esac
binary=${TOCSIN_BIN:-}
if [ -z "$binary" ]; then
  cargo build --profile profiling --locked --manifest-path "$root/Cargo.toml" --bin tocsin >/dev/null
  binary="$root/target/profiling/tocsin"
fi
work=$(mktemp -d)
mkdir "$work/config" && cp "$root/config/tocsin.toml" "$work/config/"
port=${PORT:-18083}
cd "$work"
TOCSIN_LISTEN=127.0.0.1:$port RUST_LOG=error "$binary" serve &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
# Frame pointers are not kept in release code: unwind with the DWARF call frame
# information instead (larger samples, so a lower frequency).
perf record -F 199 --call-graph dwarf,8192 -p "$pid" -o "$work/perf.data" -- sleep "$seconds" \
  2>"$work/perf.log" &
perf_pid=$!
SEVERITY=$severity wrk -t2 -c32 -d"${seconds}s" --latency -s "$script" "http://127.0.0.1:$port" |
  grep -E 'Requests/sec|50%|99%|Non-2xx'
wait "$perf_pid"
out="$root/bench/flamegraph-$what.svg"
perf script -i "$work/perf.data" 2>/dev/null | inferno-collapse-perf > "$work/folded"
inferno-flamegraph --title "tocsin, $what ingest under wrk -t2 -c32" < "$work/folded" > "$out"
echo "== flamegraph: $out"
echo "== hottest symbols (self time, % of samples)"
perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
  grep -E '^ +[0-9.]+%' | sed -E 's/ +-? +-? *$//' | head -25 | tee "$root/bench/flamegraph-$what.txt"
