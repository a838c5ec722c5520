#!/bin/sh
# Prints a snapshot of TOCSIN_PARAM_HOST (this machine, or over ssh): load, memory,
# disk, the busiest processes and the last system log lines.
set -u
host="$TOCSIN_PARAM_HOST"

on_host() {
  case "$host" in
    localhost|127.0.0.1|"$(hostname 2>/dev/null || echo localhost)") "$@" ;;
    *) ssh -o BatchMode=yes -o ConnectTimeout=10 -- "$host" "$@" ;;
  esac
}

# A host it cannot reach is a failed run, saying why, not a success with empty sections.
if ! on_host true; then
  echo "cannot run commands on $host: give Tocsin's user an ssh key it accepts (BatchMode), or the alert's resource is not a host" >&2
  exit 2
fi

section() { printf '\n== %s\n' "$1"; }
section "load";      on_host uptime
section "memory";    on_host free -m
section "disk";      on_host df -h -x tmpfs -x devtmpfs
section "processes"; on_host ps -eo pid,pcpu,pmem,etime,comm --sort=-pcpu | head -n 11
section "logs";      on_host journalctl -n 30 --no-pager -p warning 2>/dev/null || on_host tail -n 30 /var/log/syslog 2>/dev/null || echo "no system log readable"
exit 0
