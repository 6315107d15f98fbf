#!/usr/bin/env bash
# Install Slurm (Debian's slurm-wlm: slurmctld, slurmd, client tools), munge, and for accounting
# (so that `sacct` works) slurmdbd and MariaDB. KNOWIT_SLURM_ACCOUNTING=0 skips the last two.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"

need=()
command -v slurmctld >/dev/null 2>&1 || need+=(slurm-wlm)
command -v munged >/dev/null 2>&1 || need+=(munge)
if [ "$KNOWIT_SLURM_ACCOUNTING" != 0 ]; then
    command -v slurmdbd >/dev/null 2>&1 || need+=(slurmdbd)
    command -v mariadbd >/dev/null 2>&1 || need+=(mariadb-server)
fi
if [ ${#need[@]} -eq 0 ]; then
    echo "already installed: $(slurmctld -V)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: run as root (or install sudo)" >&2; exit 1; }
    SUDO="sudo"
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The packages' own services are not used (start.sh runs private daemons); in a container
# without systemd their postinst scripts just skip starting them.
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed: $(slurmctld -V)"
