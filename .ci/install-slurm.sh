#!/bin/sh
# Install Slurm (Debian `slurm-wlm`) and `munge`, and start a single-node cluster on this machine (munged,
# slurmctld, slurmd; partition `ci`, default) so tests/sweep_slurm_test.ts submits its job array to a real
# Slurm. Idempotent: a cluster that already answers `sinfo` is left as it is.
# Exit 0 when the cluster is up (.ci/run then requires the Slurm test to run), 1 with the reason otherwise
# (the Slurm test then skips); it never stops the build by itself.
set -u
NAME=install-slurm
LOG=/tmp/install-slurm.log
WITHOUT="the Slurm test will skip"
. "$(dirname "$0")/apt.sh"
CONF=/etc/slurm/slurm.conf
STATE=/var/lib/geo-r1-slurm
# Debian 12 (bookworm) versions; another release installs its own with a warning.
SLURM_VERSION="22.05.8-4+deb12u3"
MUNGE_VERSION="0.5.15-2+deb12u1"

fail() {
  skip "$*"
  exit 1
}

up() { sinfo -h -o %T 2>/dev/null | grep -Eq 'idle|mix|alloc'; }

if command -v sinfo >/dev/null 2>&1 && up; then
  say "a cluster is already up: $(sinfo -h -o '%P %D %T' | head -n1)"
  exit 0
fi
[ "$(id -u)" = "0" ] || fail "not root (slurmd must run as root)"

if [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/munged ]; then
  apt_ready || exit 1
  say "installing slurm-wlm and munge with apt-get"
  apt_update || fail "apt-get update failed (offline?); see $LOG"
  if ! apt_install "slurm-wlm=$SLURM_VERSION" "munge=$MUNGE_VERSION"; then
    say "warning: pinned versions unavailable; installing this release's slurm-wlm and munge"
    apt_install slurm-wlm munge || fail "apt-get install slurm-wlm munge failed; see $LOG"
  fi
fi

# munge: the key (the package usually creates it) and the daemon.
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || mungekey --create >>"$LOG" 2>&1 || create-munge-key -f >>"$LOG" 2>&1 ||
  fail "cannot create /etc/munge/munge.key; see $LOG"
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged >>"$LOG" 2>&1 || /usr/sbin/munged --force >>"$LOG" 2>&1 ||
    fail "munged does not start; see $LOG"
fi
munge -n | unmunge >/dev/null 2>&1 || fail "munge does not round-trip a credential; see $LOG"

# slurm.conf for one node: this host, all its CPUs, root as SlurmUser, no accounting, no cgroups (works
# in containers).
HOST="$(hostname -s)"
CPUS="$(nproc)"
mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
if [ -f "$CONF" ] && ! grep -q '^# geo-r1 CI cluster' "$CONF"; then
  fail "$CONF exists and is not ours; leaving it alone"
fi
cat >"$CONF" <<EOF
# geo-r1 CI cluster (.ci/install-slurm.sh): one node, one partition.
ClusterName=geor1ci
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
ReturnToService=2
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmdSpoolDir=$STATE/d
StateSaveLocation=$STATE/ctld
SlurmUser=root
SwitchType=switch/none
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=ci Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

scontrol ping 2>/dev/null | grep -q 'is UP' || /usr/sbin/slurmctld >>"$LOG" 2>&1 ||
  fail "slurmctld does not start; see $LOG and $STATE/log/slurmctld.log"
[ -s "$STATE/slurmd.pid" ] && kill -0 "$(cat "$STATE/slurmd.pid")" 2>/dev/null ||
  /usr/sbin/slurmd >>"$LOG" 2>&1 || fail "slurmd does not start; see $LOG and $STATE/log/slurmd.log"
i=0
while ! up; do
  i=$((i + 1))
  if [ "$i" -gt 60 ]; then
    tail -n 5 "$STATE"/log/*.log >>"$LOG" 2>&1
    fail "the node did not come up within 30 s; see $LOG"
  fi
  # A node that registered DOWN (e.g. after an unclean stop) is returned to service.
  [ "$i" -eq 10 ] && scontrol update nodename="$HOST" state=resume >>"$LOG" 2>&1
  sleep 0.5
done
say "cluster up: slurm $(sinfo -V | awk '{print $2}'), node $HOST with $CPUS CPUs, partition ci"
exit 0
