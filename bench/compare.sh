#!/usr/bin/env bash
# Side by side on this machine: Prometheus Alertmanager 0.25 (Debian package, started
# by ../shared/harness/alertmanager.sh, in memory, no receiver traffic) and Tocsin
# (release build, SQLite, every 202 committed), each loaded with wrk, 2 threads,
# 32 connections, 10 s, one distinct alert per request, then resident memory, then
# one alert repeated.
# Usage: bench/compare.sh   (needs wrk and the harness)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness="$root/../shared/harness"
run() { wrk -t2 -c32 -d10s --latency "$@" | grep -E 'Requests/sec|99%|Non-2xx'; }
echo "== Alertmanager 0.25, distinct alerts"
bash "$harness/alertmanager.sh" start http://127.0.0.1:9/unused >/dev/null 2>&1
run -s "$root/bench/alertmanager.lua" http://127.0.0.1:19093
am_pid=$(pgrep -f prometheus-alertmanager | head -1)
echo "   resident memory: $(ps -o rss= -p "$am_pid") KiB"
echo "== Alertmanager 0.25, one alert repeated"
run -s "$root/bench/alertmanager-duplicate.lua" http://127.0.0.1:19093
bash "$harness/alertmanager.sh" stop >/dev/null 2>&1
echo "== Tocsin"
bash "$root/bench/ingest.sh"
