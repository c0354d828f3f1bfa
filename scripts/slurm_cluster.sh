#!/usr/bin/env bash
# Start or stop a real single-node SLURM cluster from Debian's packages (runs as root).
#   scripts/slurm_cluster.sh start   reuse the cluster that is up, or install if needed, write
#                                    the config and start munge + SLURM; registers the caller
#   scripts/slurm_cluster.sh stop    unregister the caller; once no registered caller is alive,
#                                    stop the daemons this script started (never others)
# Safe to run beside a cluster that is already up: it is reused as it is (its config is not
# rewritten), and daemons this script did not start are never stopped. A caller is the
# process that runs this script (its parent), or $BENCH_SLURM_USER.
# On a cluster this script configures, MaxArraySize is small (8) so that tests exercise array
# splitting, and a requeued job may start again within seconds: after 5 s instead of SLURM's
# 120 s (cred_expire), with pending jobs considered every 5 s instead of every 30 to 60 s.
set -euo pipefail
cmd=${1:-start}
state=/var/lib/bench-slurm
users=$state/users
me=${BENCH_SLURM_USER:-$PPID}
host=$(hostname -s)
marker="# written by scripts/slurm_cluster.sh"

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_ready() { sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }
live_users() {
    local f
    for f in "$users"/*; do
        [ -e "$f" ] || continue
        if kill -0 "${f##*/}" 2>/dev/null; then echo "${f##*/}"; else rm -f "$f"; fi
    done
}

stop_daemon() {  # NAME: stop it if this script started it
    local pid
    [ -f "$state/$1.started" ] || return 0
    rm -f "$state/$1.started"
    pid=$(cat "$state/$1.pid" 2>/dev/null || true)
    [ "$1" = munged ] && rm -f "$state/munged.pid"  # our copy; slurm removes its own
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true  # stuck: the next start needs it gone
}

stop() {
    rm -f "$users/$me"
    local others
    others=$(live_users | tr '\n' ' ')
    if [ -n "$others" ]; then
        echo "$0: cluster left running: still used by process(es) $others"
        return 0
    fi
    # Jobs still ending need slurmd, slurmctld and munge to end cleanly.
    for _ in $(seq 30); do
        [ -z "$(squeue -h -t running,completing 2>/dev/null)" ] && break
        sleep 1
    done
    # Only daemons whose start this script recorded, each by its own pid file, in order.
    stop_daemon slurmd; stop_daemon slurmctld; stop_daemon munged
    return 0
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: must run as root" >&2; exit 1; }
mkdir -p "$users" "$state"/{ctld,d}
touch "$users/$me"  # registered first: a concurrent stop must not take the cluster away

if ctld_up && node_ready; then
    echo "$0: reusing the cluster that is up"
    sinfo
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

mkdir -p /etc/slurm /etc/munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if [ ! -s /etc/munge/munge.key ]; then
        head -c 1024 /dev/urandom > /etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
    touch "$state/munged.started"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    cp /run/munge/munged.pid "$state/munged.pid" 2>/dev/null || true
fi

if ! ctld_up && ! pgrep -x slurmctld >/dev/null; then
    conf=/etc/slurm/slurm.conf
    if [ -f "$conf" ] && ! grep -qx "$marker" "$conf"; then
        [ -e "$conf.before-bench" ] || cp "$conf" "$conf.before-bench"  # someone else's, kept once
    fi
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) * 9 / 10 ))
    cat > "$conf" <<CONF
$marker
ClusterName=bench
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
AuthInfo=cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MaxArraySize=8
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    slurmctld -c  # a fresh controller: no jobs left over from an earlier cluster
    touch "$state/slurmctld.started"
fi
if ! pgrep -x slurmd >/dev/null; then
    slurmd
    touch "$state/slurmd.started"
fi
for _ in $(seq 150); do
    if node_ready; then
        sinfo; exit 0
    fi
    sleep 0.2
done
echo "$0: the node did not become idle; see $state/slurmctld.log" >&2
sinfo >&2 || true
exit 1
