#!/bin/sh
# Restarts TOCSIN_PARAM_SERVICE on TOCSIN_PARAM_HOST and checks that it is active.
# The host is this machine (localhost, 127.0.0.1 or its hostname) or is reached with
# `ssh -o BatchMode=yes HOST` (keys set up for the user Tocsin runs as). Parameters
# were validated against the manifest's patterns before this script started.
set -eu
service="$TOCSIN_PARAM_SERVICE"
host="$TOCSIN_PARAM_HOST"
with="${TOCSIN_RESTART_WITH:-systemd}"

on_host() {
  case "$host" in
    localhost|127.0.0.1|"$(hostname 2>/dev/null || echo localhost)") "$@" ;;
    *) ssh -o BatchMode=yes -o ConnectTimeout=10 -- "$host" "$@" ;;
  esac
}

case "$with" in
  systemd)
    echo "restarting $service on $host with systemctl"
    on_host systemctl restart -- "$service"
    sleep "${TOCSIN_RESTART_SETTLE:-2}"
    if on_host systemctl is-active --quiet -- "$service"; then
      echo "$service is active again"
    else
      echo "$service did not come back:" >&2
      on_host systemctl status --no-pager -- "$service" >&2 || true
      exit 1
    fi
    ;;
  docker)
    echo "restarting container $service on $host"
    on_host docker restart -- "$service"
    running=$(on_host docker inspect -f '{{.State.Running}}' -- "$service")
    [ "$running" = "true" ] || { echo "container $service is not running" >&2; exit 1; }
    echo "container $service is running again"
    ;;
  *)
    echo "TOCSIN_RESTART_WITH=$with: use systemd or docker" >&2
    exit 2
    ;;
esac
