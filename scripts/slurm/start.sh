#!/usr/bin/env bash
# Start a single-node Slurm cluster on loopback for tests, CI and development: munged, a private
# MariaDB + slurmdbd (accounting, so `sacct` works), slurmctld and slurmd; one partition `debug`
# with this machine's CPUs and memory; no cgroups. Run as root.
# Idempotent: daemons already running with the same config are left alone.
#   KNOWIT_SLURM_DIR         where configs, state, spool, database and logs live
#                            (/var/tmp/knowit-slurm)
#   KNOWIT_SLURM_ACCOUNTING  0 = no slurmdbd/MariaDB (sacct then fails; see common.sh)
#   KNOWIT_SLURM_TIMEOUT     seconds to wait for each daemon and for the node (60)
#   KNOWIT_SLURM_CPUS        CPUs the node offers (this machine's, at least 2: two 1-CPU jobs
#                            always fit, oversubscribing a 1-core machine)
# Install first with scripts/slurm/install.sh; stop with stop.sh; check with status.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"
TIMEOUT="${KNOWIT_SLURM_TIMEOUT:-60}"
LOG="$KNOWIT_SLURM_DIR/log"
RUN="$KNOWIT_SLURM_DIR/run"

die() { echo "error: $*" >&2; exit 1; }
wait_for() {  # wait_for WHAT COMMAND...: poll COMMAND for up to $TIMEOUT seconds
    shift  # WHAT only documents the call
    local deadline=$(( $(date +%s) + TIMEOUT ))
    until "$@"; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.3
    done
}
[ "$(id -u)" -eq 0 ] || die "run as root (slurmd must run as root)"
for cmd in munged slurmctld slurmd sinfo scontrol; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd not found; run scripts/slurm/install.sh"
done
if [ "$KNOWIT_SLURM_ACCOUNTING" != 0 ] && ! accounting_wanted; then
    die "slurmdbd or mariadbd not found: run scripts/slurm/install.sh, or set" \
        "KNOWIT_SLURM_ACCOUNTING=0 (then sacct fails and a sweep waits forever for a killed job)"
fi

mkdir -p "$KNOWIT_SLURM_DIR"/{state,spool,log,run}

# ---- munge: authentication between the daemons and the client commands -------------------
if ! munge_works; then
    if [ ! -s /etc/munge/munge.key ]; then
        echo "creating /etc/munge/munge.key"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
    fi
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o munge -g munge -m 0755 /run/munge
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    echo "starting munged"
    runuser -u munge -- munged
    wait_for munged munge_works || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# ---- accounting: a private MariaDB (127.0.0.1:$DB_PORT) and slurmdbd -----------------------
if accounting_wanted; then
    if [ ! -d "$KNOWIT_SLURM_DIR/mysql/mysql" ]; then
        echo "creating the accounting database in $KNOWIT_SLURM_DIR/mysql"
        rm -rf "$KNOWIT_SLURM_DIR/mysql"
        mariadb-install-db --no-defaults --datadir="$KNOWIT_SLURM_DIR/mysql" --user=root \
            --auth-root-authentication-method=normal --skip-test-db >"$LOG/mysql-install.log" 2>&1 \
            || die "mariadb-install-db failed; see $LOG/mysql-install.log"
    fi
    if ! db_works; then
        echo "starting mariadbd"
        # Native AIO is off: gVisor and some container runtimes lack it.
        setsid mariadbd --no-defaults --user=root --datadir="$KNOWIT_SLURM_DIR/mysql" \
            --bind-address=127.0.0.1 --port="$DB_PORT" --socket="$DB_SOCKET" \
            --pid-file="$RUN/mariadbd.pid" --log-error="$LOG/mysqld.log" --skip-name-resolve \
            --innodb-use-native-aio=0 --innodb-buffer-pool-size=256M \
            --innodb-log-file-size=64M --innodb-lock-wait-timeout=900 \
            </dev/null >/dev/null 2>&1 &
        wait_for mariadbd db_works || { tail -n 20 "$LOG/mysqld.log" >&2; die "mariadbd did not start"; }
    fi
    mariadb --no-defaults -S "$DB_SOCKET" -u root -e \
        "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'knowit';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
        || die "cannot create the database user for slurmdbd"
    new_dbd="$(mktemp)"
    cat > "$new_dbd" <<CONF
$MARKER
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
AuthType=auth/munge
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=knowit
StorageLoc=slurm_acct_db
CONF
    if pid_alive "$RUN/slurmdbd.pid" slurmdbd && ! cmp -s "$new_dbd" "$SLURMDBD_CONF_FILE"; then
        echo "slurmdbd config changed: restarting it"
        kill -TERM "$(cat "$RUN/slurmdbd.pid")" || true
        for _ in $(seq 100); do pid_alive "$RUN/slurmdbd.pid" slurmdbd || break; sleep 0.1; done
    fi
    install -m 0600 "$new_dbd" "$SLURMDBD_CONF_FILE"
    rm -f "$new_dbd"
    if ! pid_alive "$RUN/slurmdbd.pid" slurmdbd; then
        echo "starting slurmdbd"
        # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF.
        SLURM_CONF="$SLURM_CONF_FILE" slurmdbd || die "slurmdbd failed; see $LOG/slurmdbd.log"
    fi
    accounting_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819"
else
    echo "warning: no accounting (KNOWIT_SLURM_ACCOUNTING=0 or slurmdbd/mariadbd missing):" \
         "sacct fails, and submitit never notices a job that died without a result" >&2
    accounting_lines="AccountingStorageType=accounting_storage/none"
fi

# ---- slurm.conf ----------------------------------------------------------------------------
hw_cpus="$(nproc)"
cpus="${KNOWIT_SLURM_CPUS:-$(( hw_cpus > 2 ? hw_cpus : 2 ))}"
overrides=""
if [ "$cpus" -gt "$hw_cpus" ]; then
    # Declare more CPUs than there are: slurmd must trust slurm.conf over the hardware.
    overrides="SlurmdParameters=config_overrides"
fi
mem_total_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
# Leave a margin (10%, at least 512 MB): slurmd drains a node that reports less memory than
# configured, and the OS needs some for itself.
margin=$(( mem_total_mb / 10 > 512 ? mem_total_mb / 10 : 512 ))
real_mem=$(( mem_total_mb - margin ))
[ "$real_mem" -gt 256 ] || real_mem=256

new_conf="$(mktemp)"
trap 'rm -f "$new_conf"' EXIT
cat > "$new_conf" <<CONF
$MARKER
# Generated: edit scripts/slurm/start.sh instead. Directory: $KNOWIT_SLURM_DIR
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE_NAME(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
# A requeued job (submitit requeues on a time limit or preemption) may start again only once
# its job credential has expired: 10 s here instead of Slurm's default 120 s.
AuthInfo=cred_expire=10
StateSaveLocation=$KNOWIT_SLURM_DIR/state
SlurmdSpoolDir=$KNOWIT_SLURM_DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups (containers rarely allow them): plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$accounting_lines
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
# Cores are the consumable resource: a 1-CPU job takes one core, so N jobs run at once on an
# N-core node. Memory is not consumable (a request must merely fit RealMemory).
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Fast turnaround for tests: forget finished jobs soon, bring the node back by itself.
MinJobAge=30
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
Waittime=0
$overrides
NodeName=$NODE_NAME NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=$NODE_NAME Default=YES MaxTime=INFINITE State=UP
CONF

ctld_up=0; slurmd_up=0
pid_alive "$RUN/slurmctld.pid" slurmctld && ctld_up=1
pid_alive "$RUN/slurmd.pid" slurmd && slurmd_up=1
if [ "$ctld_up$slurmd_up" = 11 ] && cmp -s "$new_conf" "$SLURM_CONF_FILE"; then
    echo "slurmctld and slurmd already running with this config ($SLURM_CONF_FILE)"
else
    if [ "$ctld_up$slurmd_up" != 00 ]; then
        echo "config changed or a daemon is missing: restarting slurmctld and slurmd"
        "$HERE/stop.sh" --quiet --keep-accounting
    fi
    install -m 0644 "$new_conf" "$SLURM_CONF_FILE"
    if [ -z "${SLURM_CONF:-}" ]; then
        # /etc/slurm/slurm.conf is free or ours: point every client at our config.
        mkdir -p /etc/slurm
        install -m 0644 "$SLURM_CONF_FILE" "$ETC_SLURM_CONF"
    fi
    if accounting_wanted; then
        # slurmctld needs its cluster registered in the accounting database.
        wait_for slurmdbd sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1 \
            || die "slurmdbd does not answer; see $LOG/slurmdbd.log"
        if ! sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
            sacctmgr -i add cluster "$CLUSTER_NAME" >/dev/null \
                || die "cannot register cluster $CLUSTER_NAME with slurmdbd"
        fi
    fi
    echo "starting slurmctld and slurmd ($SLURM_CONF_FILE)"
    slurmctld -f "$SLURM_CONF_FILE" || die "slurmctld failed; see $LOG/slurmctld.log"
    slurmd -f "$SLURM_CONF_FILE" || die "slurmd failed; see $LOG/slurmd.log"
fi

# ---- wait for the node ---------------------------------------------------------------------
node_up() {
    local state
    state="$(sinfo -h -n "$NODE_NAME" -o '%T' 2>/dev/null | head -n1 || true)"
    case "$state" in
        idle|mixed|allocated|completing) return 0 ;;
        down*|drain*)   # e.g. left down by an earlier unclean stop
            scontrol update NodeName="$NODE_NAME" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    return 1
}
if ! wait_for node node_up; then
    echo "error: node $NODE_NAME is not up after ${TIMEOUT}s" >&2
    scontrol show node "$NODE_NAME" 2>&1 | sed 's/^/  /' >&2 || true
    echo "last lines of the logs:" >&2
    tail -n 15 "$LOG/slurmctld.log" "$LOG/slurmd.log" >&2 || true
    exit 1
fi
"$HERE/status.sh"
