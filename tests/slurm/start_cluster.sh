#!/usr/bin/env bash
# Bring up a real single-node SLURM cluster on this machine for tests/test_slurm.py:
# munged + slurmctld + slurmd as daemons, one node (this host, its CPUs and memory) that declares
# one GPU through gres.conf, partitions "cpu" (default) and "gpu", no accounting database.
#
#   tests/slurm/start_cluster.sh STATE_DIR     (as root; stop with tests/slurm/stop_cluster.sh STATE_DIR)
# Exit status 3: this machine cannot host it (not root, SLURM or munge missing, a slurm.conf this
# script did not write, a slurmctld/slurmd already running); any other failure is 1.
#
# Everything the cluster writes (state, spool, logs, pid files, munge key and socket, the fake GPU
# device node) lives in STATE_DIR. Only slurm.conf and gres.conf go to /etc/slurm, because job steps
# run with SLURM_CONF stripped and must find the config at the default path; an existing slurm.conf
# that this script did not write is never touched (the script stops instead).
# There is no real GPU: gres.conf's File= points at a character device node STATE_DIR/dev/nvidia0
# (major 195, NVIDIA's), so slurmd counts one GPU and sets CUDA_VISIBLE_DEVICES=0 for jobs that ask
# for it, exactly as on a GPU node. Nothing opens the node; without a driver it could not be opened.
set -euo pipefail

STATE=${1:?usage: $0 STATE_DIR}
MARKER="# written by laseg tests/slurm/start_cluster.sh"
CONF_DIR=/etc/slurm

die() { echo "start_cluster: $*" >&2; exit 1; }
refuse() { echo "start_cluster: $*" >&2; exit 3; }  # exit 3: this machine cannot host the test cluster

[ "$(id -u)" = 0 ] || refuse "must run as root (slurmd runs jobs as their user and needs root)"
for tool in munged slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v "$tool" >/dev/null || refuse "$tool not found (apt-get install slurm-wlm munge)"
done
for conf in "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"; do
  if [ -e "$conf" ] && ! grep -qF "$MARKER" "$conf"; then
    refuse "$conf exists and was not written by this script; refusing to replace a real cluster's config"
  fi
done
if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
  refuse "a slurmctld or slurmd is already running on this machine; stop it first"
fi

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
mkdir -p "$STATE/ctld" "$STATE/spool" "$STATE/log" "$STATE/munge" "$STATE/dev"
chmod 700 "$STATE" "$STATE/munge"

# munge: a fresh key and a private socket, so the test never talks to (or needs) a system munged.
dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"
munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
  --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/log/munged.log" \
  --seed-file="$STATE/munge/munged.seed"
for _ in $(seq 50); do [ -S "$STATE/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$STATE/munge/munge.socket" ] || die "munged did not start; see $STATE/log/munged.log"

# The fake GPU: a character device node with NVIDIA's major number (a plain file if mknod is denied).
rm -f "$STATE/dev/nvidia0"
mknod -m 666 "$STATE/dev/nvidia0" c 195 0 2>/dev/null || touch "$STATE/dev/nvidia0"

# This node as slurmd sees it (CPUs, sockets, cores, threads, memory), plus the GPU.
read -r -a node <<<"$(slurmd -C | head -n 1)"
host=$(hostname -s)
memory=0
node_line=""
for field in "${node[@]}"; do
  case "$field" in
    NodeName=*) node_line+="NodeName=$host NodeAddr=127.0.0.1 " ;;
    RealMemory=*) memory=${field#RealMemory=}; node_line+="RealMemory=$((memory * 95 / 100)) " ;;
    *) node_line+="$field " ;;
  esac
done
[ "$memory" -gt 0 ] || die "could not read this node's memory from 'slurmd -C'"

mkdir -p "$CONF_DIR"
cat >"$CONF_DIR/slurm.conf" <<CONF
$MARKER for a test cluster; state in $STATE
ClusterName=laseg-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups, no accounting: works in containers and VMs; sacct has nothing to report, so the
# workflow's profile queries job states with squeue, and MinJobAge keeps finished jobs visible to it.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
$node_line Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF
cat >"$CONF_DIR/gres.conf" <<CONF
$MARKER for a test cluster; state in $STATE
AutoDetect=off
NodeName=$host Name=gpu File=$STATE/dev/nvidia0
CONF

slurmctld -c
slurmd -c
for _ in $(seq 150); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1 || true)
  case "$state" in idle | mixed | allocated) break ;; esac
  sleep 0.2
done
case "$state" in
  idle | mixed | allocated) ;;
  *) die "node $host did not become idle (state '${state:-none}'); see $STATE/log/slurmctld.log and slurmd.log" ;;
esac
echo "SLURM test cluster up: node $host ($state), partitions cpu/gpu, state in $STATE"
