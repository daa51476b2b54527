#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (munged, slurmctld, slurmd) for the `cluster`
# tests of `reproduce --executor slurm` (docs/cluster.md). Idempotent: a running cluster is left
# as it is. Debian/Ubuntu; installs slurm-wlm and munge when missing (needs root). Exits non-zero,
# with the reason on stderr, when the cluster cannot be started.
set -euo pipefail

say() { echo "start_slurm: $*" >&2; }

if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    say "a SLURM cluster is already up: $(sinfo -h -o '%N %T %c CPUs' | head -1)"
    exit 0
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        say "slurm-wlm and munge are not installed and cannot be installed here (root and apt-get needed)"
        exit 1
    fi
    say "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq slurm-wlm munge; } >/tmp/start_slurm-apt.log 2>&1 \
        || { say "apt-get install slurm-wlm munge failed (see /tmp/start_slurm-apt.log)"; exit 1; }
fi
if [ "$(id -u)" != 0 ]; then
    say "slurmd must run as root to start jobs as users: run this script as root"
    exit 1
fi

node=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
conf=/etc/slurm/slurm.conf
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
if [ ! -f "$conf" ] || ! grep -q "^# glacier-movement one-node cluster" "$conf"; then
    cat >"$conf" <<CONF
# glacier-movement one-node cluster (scripts/start_slurm.sh)
ClusterName=glacier
SlurmctldHost=$node
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=30
Waittime=0
NodeName=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
fi
# no cgroup.conf: proctrack/linuxproc and task/none need no cgroups (22.05 has no CgroupPlugin=disabled)

if [ ! -s /etc/munge/munge.key ]; then
    (command -v mungekey >/dev/null && mungekey --create --force) \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    su -s /bin/sh munge -c "munged --force" 2>/dev/null || munged --force \
        || { say "munged does not start"; exit 1; }
    sleep 1
fi
pgrep -x slurmctld >/dev/null || slurmctld || { say "slurmctld does not start (see /var/log/slurm/slurmctld.log)"; exit 1; }
pgrep -x slurmd >/dev/null || slurmd || { say "slurmd does not start (see /var/log/slurm/slurmd.log)"; exit 1; }

for _ in $(seq 1 30); do
    if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
        say "SLURM is up: $(sinfo -h -o '%N %T %c CPUs %m MB' | head -1)"
        exit 0
    fi
    scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
    sleep 1
done
say "the node did not come up: $(sinfo -h -o '%N %T %E' 2>&1 | head -1) (see /var/log/slurm/)"
exit 1
