#!/usr/bin/env bash
# Alert -> first page email latency of a release build on SQLite: one P1 at a time
# (L1 delay 0 s) posted to the generic endpoint, timed from just before the POST to the
# moment a real SMTP server (../shared/harness/smtp-sink.sh, aiosmtpd) accepted the
# page; the sink names each message by its arrival time in milliseconds.
# Usage: bench/page-latency.sh [COUNT]   (default 300 alerts, 20 ms apart)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
harness="$root/../shared/harness"
count=${1:-300}
cargo build --release --locked --manifest-path "$root/Cargo.toml" >/dev/null
work=$(mktemp -d)
port=${PORT:-18081}
smtp_port=${SMTP_PORT:-12525}
bash "$harness/smtp-sink.sh" start "$smtp_port" "$work/mail" >/dev/null 2>&1
mkdir "$work/config"
sed -e 's/^transport = "spool".*/transport = "smtp"/' -e "s/^port = 25$/port = $smtp_port/" \
  "$root/config/tocsin.toml" > "$work/config/tocsin.toml"
cat >> "$work/config/tocsin.toml" <<TOML

[[users]]
id = "oncall"
email = "oncall@example.com"

[[escalation_policies]]
name = "default"
tiers = [ { level = "L1", targets = ["user:oncall"], after = "0s" } ]
TOML
cd "$work"
TOCSIN_LISTEN=127.0.0.1:$port RUST_LOG=error "$root/target/release/tocsin" serve &
pid=$!
trap 'kill $pid 2>/dev/null; bash "$harness/smtp-sink.sh" stop "$smtp_port" >/dev/null 2>&1; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
python3 - "$port" "$work/mail" "$count" <<'PY'
import json, os, sys, time, urllib.request
port, mail, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def arrivals():
    return sorted(int(n.split("-")[0]) for n in os.listdir(mail) if n.endswith(".eml"))
latencies, acks = [], []
for i in range(count):
    seen = len(arrivals())
    body = json.dumps({"resource": f"lat-{i}", "check": "latency", "severity": "critical",
                       "summary": "page latency probe"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/ingest/generic", body,
        {"content-type": "application/json", "authorization": "Bearer dev-ingest-token"})
    start = time.time() * 1000
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 202
    acks.append(time.time() * 1000 - start)
    deadline = time.time() + 5
    while len(arrivals()) == seen:
        if time.time() > deadline:
            sys.exit(f"alert {i}: no page within 5 s")
        time.sleep(0.0002)
    latencies.append(arrivals()[-1] - start)
    time.sleep(0.02)
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]
for name, values in (("202 answered", acks), ("page accepted by SMTP", latencies)):
    print(f"== {name} after the POST, {len(values)} P1 alerts: "
          f"p50 {pct(values, 50):.1f} ms, p90 {pct(values, 90):.1f} ms, "
          f"p99 {pct(values, 99):.1f} ms, max {max(values):.1f} ms")
PY
