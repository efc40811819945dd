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
#     DW_OUTPUT_CAP    bytes each of stdout and stderr may hold; one more kills the job
#     DW_RLIMITS       space-separated prlimit options (--nofile=64 ...), may be empty
#     DW_SECCOMP       the seccomp helper an unprivileged job starts under (empty: none)
#   script   the script, run by the container's /bin/bash
# and gets from it: `supervisor` (this pid and its start time), `pgid`, stdout, stderr,
# `output_exceeded` (only when the job went over the cap), exit_status.
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

# Job control gives the job its own process group: a capper kills the job by that group (output
# over the cap) without killing this supervisor.
# The job's environment is exactly PATH and the identity: the spawner runs with PATH only, the
# params are unexported shell variables (dropped here all the same), and no `env -i` exec is
# needed (every exec is latency).
set -m

# The output cap holds where the bytes are written: each stream goes through a pipe to `head -c`,
# which never reads past the cap (it asks for no more than what is left), so the file never holds
# more; stdbuf -o0 has it write each read at once (streams and links see output as it comes).
# wardend checks both at start (jobs.ts checkOutputCapper). One byte beyond the cap means the job
# went over: it is killed (by its group), and whatever of it still writes gets EPIPE once the
# pipe's reader is gone.
cap_output() {
  /usr/bin/stdbuf -o0 /usr/bin/head -c "$DW_OUTPUT_CAP" > "$DW_JOB_DIR/$1"
  if IFS= read -r -n 1 -d '' _; then
    : > "$DW_JOB_DIR/output_exceeded"
    local pg='' tries=0
    until [ -n "$pg" ] || [ $((tries++)) -ge 500 ]; do
      IFS= read -r pg 2> /dev/null < "$DW_JOB_DIR/pgid" || sleep 0.01
    done
    [ -n "$pg" ] && kill -KILL -- "-$pg" 2> /dev/null
  fi
}
cappers=()
if [ "$DW_DISCARD" = 1 ]; then
  exec {out}> /dev/null {err}> /dev/null
else
  exec {out}> >(cap_output stdout)
  cappers+=($!)
  exec {err}> >(exec {out}>&-; cap_output stderr)
  cappers+=($!)
  # The ticks of the wait for the cappers (below): a pipe that never delivers, opened now, since
  # nothing may fork once the job has ended: stop blocks forks (pids.max 0) while it kills, and a
  # failed redirection of `exec` would end this shell before it wrote the exit status.
  exec {tick}<> <(:)
fi

(
  [ -n "${tick-}" ] && exec {tick}>&-
  script=$DW_SCRIPT
  init=$DW_INIT_PID
  unset "${!DW_@}" SHLVL
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "${identity[@]}"
  exec "${filter[@]}" "${limits[@]}" /usr/bin/nsenter -t "$init" -m -u -i -n -p -r -w -- "${drop[@]}" /bin/bash -c "$script"
) < /dev/null >&$out 2>&$err {out}>&- {err}>&- &
job=$!
exec {out}>&- {err}>&-
echo "$job" > "$DW_JOB_DIR/pgid"
wait "$job"
status=$?
# What the job wrote before it ended is in the files once the cappers reach the end of their
# pipes, a moment after the job's end. A process the job left running may hold a pipe open (and
# go on writing, under the cap): its output is not waited for beyond ~0.2 s. The wait ticks
# on `tick` (`read -t`: no sleep to exec), finely at first.
if [ ${#cappers[@]} -gt 0 ]; then
  for pid in "${cappers[@]}"; do
    for ((i = 0; i < 36; i++)); do
      kill -0 "$pid" 2> /dev/null || break
      if [ $i -lt 20 ]; then read -r -t 0.001 -u "$tick" _; else read -r -t 0.01 -u "$tick" _; fi
    done
  done
fi
# One short write, after which this process exits: readers treat an empty file as "not yet"
# (no rename, which would cost an exec of mv).
echo "$status" > "$DW_JOB_DIR/exit_status"
