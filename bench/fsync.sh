#!/usr/bin/env bash
# The disk's fsync latency, which bounds every durable commit: 1,000 writes of 8 KiB,
# each followed by fdatasync, 20 ms apart (the pace of bench/page-latency.sh), in the
# directory given (default: the current one, where Tocsin's data/ would be).
# Usage: bench/fsync.sh [DIR]
set -euo pipefail
python3 - "${1:-.}" <<'PY'
import os, sys, tempfile, time
fd, path = tempfile.mkstemp(dir=sys.argv[1], prefix="fsync-probe-")
try:
    took = []
    for i in range(1000):
        start = time.perf_counter()
        os.pwrite(fd, b"x" * 8192, (i % 64) * 8192)
        os.fdatasync(fd)
        took.append((time.perf_counter() - start) * 1000)
        time.sleep(0.02)
    took.sort()
    print("fdatasync of 8 KiB: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms"
          % (took[500], took[900], took[990], took[-1]))
finally:
    os.close(fd)
    os.unlink(path)
PY
