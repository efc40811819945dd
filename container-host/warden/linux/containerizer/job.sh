#!/bin/bash
# Supervises one job from the host. Started detached by the daemon, it outlives a daemon restart:
# the job's output goes to files in its depot directory and its exit status to `exit_status`,
# so whoever asks later (link, stream) finds them there.
#
# Environment (set by the job runner):
#   DW_JOB_DIR       the job's depot directory
#   DW_CGROUP_PROCS  newline-separated cgroup.procs files to join
#   DW_INIT_PID      host pid of the container's init (whose namespaces and root the job enters)
#   DW_PRIVILEGED    1: run as root in the container; else as DW_UID with nothing to gain
#   DW_UID, DW_USER, DW_HOME
#   DW_DISCARD       1: output goes to /dev/null
#   DW_RLIMITS       space-separated prlimit options (--nofile=64 ...), may be empty
#   DW_SCRIPT        the script, run by the container's /bin/bash
set -u

read -r self _ < /proc/self/stat
while IFS= read -r procs; do
  [ -n "$procs" ] && echo "$self" > "$procs"
done <<< "$DW_CGROUP_PROCS"

out="$DW_JOB_DIR/stdout"
err="$DW_JOB_DIR/stderr"
if [ "$DW_DISCARD" = 1 ]; then out=/dev/null; err=/dev/null; fi

if [ "$DW_PRIVILEGED" = 1 ]; then
  drop=()
  identity=(HOME=/root USER=root LOGNAME=root)
else
  drop=(/usr/bin/setpriv --reuid "$DW_UID" --regid "$DW_UID" --clear-groups
        --inh-caps=-all --bounding-set=-all --no-new-privs --)
  identity=(HOME="$DW_HOME" USER="$DW_USER" LOGNAME="$DW_USER")
fi

limits=()
if [ -n "$DW_RLIMITS" ]; then
  read -ra opts <<< "$DW_RLIMITS"
  limits=(/usr/bin/prlimit "${opts[@]}" --)
fi

# Job control gives the job its own process group: the daemon kills the job by that group
# (output over the cap) without killing this supervisor.
# The job's environment is exactly PATH and the identity: the daemon started this script with
# PATH and DW_* only, and the subshell drops the DW_* (no `env -i` exec: every exec is latency).
set -m
(
  script=$DW_SCRIPT
  init=$DW_INIT_PID
  unset "${!DW_@}" SHLVL
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${identity[@]}"
  exec "${limits[@]}" /usr/bin/nsenter -t "$init" -m -u -i -n -p -r -w -- "${drop[@]}" /bin/bash -c "$script"
) < /dev/null > "$out" 2> "$err" &
job=$!
echo "$job" > "$DW_JOB_DIR/pgid"
wait "$job"
status=$?
# One short write, after which this process exits: readers treat an empty file as "not yet"
# (no rename, which would cost an exec of mv).
echo "$status" > "$DW_JOB_DIR/exit_status"
