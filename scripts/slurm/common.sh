# shellcheck shell=bash disable=SC2034  # sourced: the scripts use these variables
# Shared settings for scripts/slurm/*.sh (sourced, not run).
# The loopback cluster keeps everything (configs, state, spool, database, logs, pids) under one
# directory. Ports on 127.0.0.1: slurmctld 6817, slurmd 6818, slurmdbd 6819, MariaDB 6820.
KNOWIT_SLURM_DIR="${KNOWIT_SLURM_DIR:-/var/tmp/knowit-slurm}"
# Accounting (slurmdbd + a private MariaDB) makes `sacct` work. submitit needs sacct to notice a
# job that died without writing its result (scancel, time limit, OOM kill): without it a sweep
# waits forever for such a job. 1 = on (default), 0 = off.
KNOWIT_SLURM_ACCOUNTING="${KNOWIT_SLURM_ACCOUNTING:-1}"
SLURM_CONF_FILE="$KNOWIT_SLURM_DIR/slurm.conf"
SLURMDBD_CONF_FILE="$KNOWIT_SLURM_DIR/slurmdbd.conf"
ETC_SLURM_CONF="/etc/slurm/slurm.conf"
MARKER="# knowit-app loopback cluster (scripts/slurm/start.sh)"
NODE_NAME="$(hostname -s)"
CLUSTER_NAME="knowit"
DB_PORT=6820
DB_SOCKET="$KNOWIT_SLURM_DIR/run/mysqld.sock"
PATH="$PATH:/usr/sbin:/sbin"

# Client commands (sinfo, sbatch, sacct, submitit) read /etc/slurm/slurm.conf unless SLURM_CONF
# says otherwise. start.sh installs the config there when that file is free or is ours; else
# everything here (and you) must use SLURM_CONF.
if [ -z "${SLURM_CONF:-}" ]; then
    if [ -f "$ETC_SLURM_CONF" ] && ! grep -qF "$MARKER" "$ETC_SLURM_CONF"; then
        export SLURM_CONF="$SLURM_CONF_FILE"
    fi
fi

pid_alive() {  # pid_alive FILE [NAME]: the pid in FILE runs (and is called NAME)
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1" 2>/dev/null)"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A stale pid file (after a reboot) may name an unrelated process.
    [ -z "${2:-}" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

munge_works() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

db_works() {
    mariadb-admin --no-defaults -S "$DB_SOCKET" -u root ping >/dev/null 2>&1
}

accounting_wanted() {  # on unless switched off or not installed
    [ "$KNOWIT_SLURM_ACCOUNTING" != 0 ] && command -v slurmdbd >/dev/null 2>&1 \
        && command -v mariadbd >/dev/null 2>&1
}
