#!/bin/bash
# Supervises one job from the host. Started detached (by spawner.sh) with the job's depot
# directory as its argument, it outlives a daemon restart: the job's output goes to files in
# that directory and its exit status to `exit_status`, so whoever asks later (link, stream)
# finds them there.
#
# The job directory holds (written by the daemon before this starts):
#   params   shell assignments, sourced:
#     DW_CGROUP_PROCS  newline-separated cgroup.procs files to join
#     DW_INIT_PID      host pid of the container's init (whose namespaces and root the job enters)
#     DW_PRIVILEGED    1: run as root in the container; else as DW_UID with nothing to gain
#     DW_UID, DW_USER, DW_HOME
#     DW_DISCARD       1: output goes to /dev/null
#     DW_RLIMITS       space-separated prlimit options (--nofile=64 ...), may be empty
#     DW_SECCOMP       the seccomp helper an unprivileged job starts under (empty: none)
#   script   the script, run by the container's /bin/bash
# and gets from it: `supervisor` (this pid and its start time), `pgid`, stdout, stderr,
# exit_status.
set -u
DW_JOB_DIR=$1
source "$DW_JOB_DIR/params"
IFS= read -r -d '' DW_SCRIPT < "$DW_JOB_DIR/script" || true

read -r self _ < /proc/self/stat
# pid and start time (field 22 of /proc/<pid>/stat): how the daemon tells whether we still run.
IFS= read -r stat < /proc/self/stat
read -ra fields <<< "${stat##*) }"
echo "$self ${fields[19]}" > "$DW_JOB_DIR/supervisor"
while IFS= read -r procs; do
  [ -n "$procs" ] && echo "$self" > "$procs"
done <<< "$DW_CGROUP_PROCS"

out="$DW_JOB_DIR/stdout"
err="$DW_JOB_DIR/stderr"
if [ "$DW_DISCARD" = 1 ]; then out=/dev/null; err=/dev/null; fi

filter=()
if [ "$DW_PRIVILEGED" = 1 ]; then
  drop=()
  identity=(HOME=/root USER=root LOGNAME=root)
else
  drop=(/usr/bin/setpriv --reuid "$DW_UID" --regid "$DW_UID" --clear-groups
        --inh-caps=-all --bounding-set=-all --no-new-privs --)
  identity=(HOME="$DW_HOME" USER="$DW_USER" LOGNAME="$DW_USER")
  # On the host side, first: the filter holds for nsenter, setpriv and all the job starts.
  [ -n "$DW_SECCOMP" ] && filter=("$DW_SECCOMP")
fi

limits=()
if [ -n "$DW_RLIMITS" ]; then
  read -ra opts <<< "$DW_RLIMITS"
  limits=(/usr/bin/prlimit "${opts[@]}" --)
fi

# Job control gives the job its own process group: the daemon kills the job by that group
# (output over the cap) without killing this supervisor.
# The job's environment is exactly PATH and the identity: the spawner runs with PATH only, the
# params are unexported shell variables (dropped here all the same), and no `env -i` exec is
# needed (every exec is latency).
set -m
(
  script=$DW_SCRIPT
  init=$DW_INIT_PID
  unset "${!DW_@}" SHLVL
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${identity[@]}"
  exec "${filter[@]}" "${limits[@]}" /usr/bin/nsenter -t "$init" -m -u -i -n -p -r -w -- "${drop[@]}" /bin/bash -c "$script"
) < /dev/null > "$out" 2> "$err" &
job=$!
echo "$job" > "$DW_JOB_DIR/pgid"
wait "$job"
status=$?
# One short write, after which this process exits: readers treat an empty file as "not yet"
# (no rename, which would cost an exec of mv).
echo "$status" > "$DW_JOB_DIR/exit_status"
