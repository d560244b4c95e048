#!/usr/bin/env bash
# Stop the test cluster that tests/slurm/start_cluster.sh STATE_DIR started: cancel its jobs, end
# slurmd, slurmctld and munged by the PIDs in their pid files, and remove the /etc/slurm files that
# start_cluster.sh wrote. Safe to run twice, and after a start that failed half-way.
set -uo pipefail

STATE=${1:?usage: $0 STATE_DIR}
MARKER="# written by laseg tests/slurm/start_cluster.sh"

if [ -d "$STATE" ]; then
  STATE=$(cd "$STATE" && pwd)
  if [ -S "$STATE/munge/munge.socket" ] && grep -qF "state in $STATE" /etc/slurm/slurm.conf 2>/dev/null; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    sleep 1
  fi
  # $1: pid file, $2: the program it must belong to (a stale pid file never kills another process)
  stop_pid() {
    local pid
    [ -s "$1" ] || return 0
    pid=$(cat "$1")
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  }
  stop_pid "$STATE/slurmd.pid" slurmd
  stop_pid "$STATE/slurmctld.pid" slurmctld
  stop_pid "$STATE/munge/munged.pid" munged
fi
# Only this cluster's config files: their first line names its state folder.
for conf in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
  if grep -qF "$MARKER for a test cluster; state in $STATE" "$conf" 2>/dev/null; then rm -f "$conf"; fi
done
exit 0
