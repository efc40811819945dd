#!/bin/bash
# wardend's job launcher: a small long-lived shell that starts job supervisors (job.sh) on its
# behalf. Forking the daemon itself costs milliseconds of page-table copying per job (it grows
# with the daemon's RSS); forking this shell costs a fraction of that.
#
# Reads one job directory per line on stdin and starts `job.sh DIR` in the background, in a
# process group of its own (job control), so that neither a signal to the daemon's group nor
# the end of this shell (stdin closed: the daemon went away) reaches the supervisors.
set -m
supervisor="${BASH_SOURCE[0]%/*}/job.sh"
while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  /bin/bash "$supervisor" "$dir" < /dev/null > /dev/null 2>&1 &
done
