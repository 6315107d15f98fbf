#!/usr/bin/env bash
# Stop the loopback cluster: slurmd, slurmctld, slurmdbd and its MariaDB. munged keeps running
# (other software may use it; --munge stops it too). State stays in $KNOWIT_SLURM_DIR and
# start.sh resumes from it; remove that directory for a clean slate.
#   --keep-accounting  leave slurmdbd and MariaDB running    --quiet  print nothing
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"
quiet=0; stop_munge=0; keep_accounting=0
for arg in "$@"; do
    case "$arg" in
        --quiet) quiet=1 ;;
        --munge) stop_munge=1 ;;
        --keep-accounting) keep_accounting=1 ;;
        *) echo "usage: $0 [--quiet] [--keep-accounting] [--munge]" >&2; exit 2 ;;
    esac
done
say() { [ "$quiet" -eq 1 ] || echo "$@"; }
RUN="$KNOWIT_SLURM_DIR/run"

stop_pidfile() {  # stop_pidfile NAME FILE
    local name="$1" file="$2" pid
    if ! pid_alive "$file" "$name"; then
        say "$name not running"
        rm -f "$file"
        return 0
    fi
    pid="$(cat "$file")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        say "$name (pid $pid) did not stop in 15 s: killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
    say "stopped $name (pid $pid)"
}

stop_pidfile slurmd "$RUN/slurmd.pid"
stop_pidfile slurmctld "$RUN/slurmctld.pid"
if [ "$keep_accounting" -eq 0 ]; then
    stop_pidfile slurmdbd "$RUN/slurmdbd.pid"
    stop_pidfile mariadbd "$RUN/mariadbd.pid"
fi
if [ "$stop_munge" -eq 1 ]; then
    stop_pidfile munged /run/munge/munged.pid
fi
