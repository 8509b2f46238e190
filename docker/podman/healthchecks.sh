#!/usr/bin/env bash
# Runs the health checks of a compose project's containers, each at its own
# interval, until stopped:
#
#   docker/podman/healthchecks.sh userkey &
#
# Podman runs health checks from systemd timers. Where systemd is not running
# (containers, CI sandboxes), nothing runs them and every container stays
# "starting", so `depends_on: condition: service_healthy` never lets
# docker-compose go on. This loop does the timers' job: `podman healthcheck
# run` at each container's interval, from its start (start_period and retries
# are podman's, as with the timers).
set -uo pipefail
project=${1:?usage: healthchecks.sh COMPOSE_PROJECT}
declare -A due=()
while :; do
  now=$(date +%s)
  while read -r id interval; do
    [ -n "$id" ] || continue
    [ "$interval" != "0s" ] && [ -n "$interval" ] || continue
    if [ -z "${due[$id]:-}" ] || [ "$now" -ge "${due[$id]}" ]; then
      secs=${interval%s}
      case "$secs" in *[!0-9]*) secs=5 ;; esac  # 1m30s and the like: every 5 s
      due[$id]=$(( now + secs ))
      podman healthcheck run "$id" >/dev/null 2>&1 &
    fi
  done < <(ids=$(podman ps -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
           [ -z "$ids" ] || podman inspect --format '{{.Id}} {{.Config.Healthcheck.Interval}}' $ids 2>/dev/null)
  wait
  sleep 1
done
