#!/usr/bin/env bash
# Show the loopback cluster's state. Exit 0 when the node accepts jobs, 1 otherwise.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"
RUN="$KNOWIT_SLURM_DIR/run"

for name in slurmctld slurmd slurmdbd mariadbd; do
    if pid_alive "$RUN/$name.pid" "$name"; then
        echo "$name: running (pid $(cat "$RUN/$name.pid"))"
    else
        echo "$name: not running"
    fi
done
if munge_works; then echo "munged: running"; else echo "munged: not answering"; fi
echo "config: ${SLURM_CONF:-$ETC_SLURM_CONF} (logs in $KNOWIT_SLURM_DIR/log)"
if [ -n "${SLURM_CONF:-}" ]; then
    echo "note: /etc/slurm/slurm.conf is not ours; use: export SLURM_CONF=$SLURM_CONF"
fi
if ! command -v sinfo >/dev/null 2>&1; then
    echo "sinfo not found (scripts/slurm/install.sh)"; exit 1
fi
if sacct -n -X -S now-1minute >/dev/null 2>&1; then
    echo "accounting: sacct works"
else
    echo "accounting: sacct does not work (submitit cannot see jobs that died without a result)"
fi
sinfo 2>&1
squeue 2>&1
state="$(sinfo -h -n "$NODE_NAME" -o '%T' 2>/dev/null | head -n1)"
case "$state" in
    idle|mixed|allocated|completing) exit 0 ;;
    *) exit 1 ;;
esac
