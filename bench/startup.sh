#!/usr/bin/env bash
# Start-up time of a release build: from exec to the first 200 on /readyz, on an empty
# SQLite database and on one holding the alerts of a previous run.
# Usage: bench/startup.sh [RUNS]   (default 10 runs each)
# TOCSIN_BIN=path runs another build instead of building this one.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-10}
binary=${TOCSIN_BIN:-$root/target/release/tocsin}
[ -n "${TOCSIN_BIN:-}" ] || cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/config" && cp "$root/config/tocsin.toml" "$work/config/"
python3 - "$binary" "$work" "$runs" <<'PY'
import os, shutil, subprocess, sys, time, urllib.request
binary, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
port = 18092
def start_once():
    env = dict(os.environ, TOCSIN_LISTEN=f"127.0.0.1:{port}", RUST_LOG="error")
    begin = time.perf_counter()
    daemon = subprocess.Popen([binary, "serve"], cwd=work, env=env)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as reply:
                if reply.status == 200:
                    break
        except OSError:
            time.sleep(0.001)
    took = (time.perf_counter() - begin) * 1000
    daemon.terminate()
    daemon.wait()
    return took
def report(name, values):
    values = sorted(values)
    print(f"{name}: median {values[len(values)//2]:.0f} ms, max {values[-1]:.0f} ms ({len(values)} runs)")
shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
empty = []
for _ in range(runs):
    shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
    empty.append(start_once())
report("empty database", empty)
# A database with 10,000 open alerts, posted through the API.
env = dict(os.environ, TOCSIN_LISTEN=f"127.0.0.1:{port}", RUST_LOG="error")
daemon = subprocess.Popen([binary, "serve"], cwd=work, env=env)
time.sleep(0.5)
for chunk in range(100):
    import json
    body = json.dumps([{"resource": f"host-{chunk}-{i}", "check": "disk", "severity": "warning", "summary": "x"} for i in range(100)]).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/ingest/generic", body,
        {"content-type": "application/json", "authorization": "Bearer dev-ingest-token"})
    urllib.request.urlopen(request).read()
daemon.terminate(); daemon.wait()
report("10,000 open alerts", [start_once() for _ in range(runs)])
PY
