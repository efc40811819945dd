#!/bin/bash
# Runs as pid 1 of a fresh set of namespaces (mount, pid, uts, ipc, net) made by `unshare`.
# Assembles the container's root inside its own mount namespace, so that every mount dies with
# the namespace and the host's mount table never sees one; then becomes the container's init.
#
# Environment (all set by the containerizer):
#   DW_DIR        the container's depot directory (holds rootfs/, upper/, work/)
#   DW_BASE       the read-only base rootfs (overlay lower layer)
#   DW_UPPER, DW_WORK the overlay's upper and work dirs (on the container's disk image, if any)
#   DW_HOST_BINDS newline-separated host directories bound read-only at the same path
#   DW_DEV        a prepared /dev (device nodes, pts/, shm/) bound read-only
#   DW_BINDS      newline-separated "ro|rw<TAB>src<TAB>dst" user bind mounts
#   DW_HOSTNAME, DW_USER, DW_UID, DW_GID, DW_HOME
#   DW_TINI       the host's static tini, exec'd through an fd opened before pivot_root so that
#                 a custom rootfs need not contain it
#   DW_CGROUP_PROCS newline-separated cgroup.procs files to join (every later process inherits)
set -euo pipefail

# Our host pid: this procfs is still the host's (ours is mounted below).
read -r host_pid _ < /proc/self/stat
# "0" is the writer itself: pids written here are read in the writer's (new) pid namespace.
while IFS= read -r procs; do
  [ -n "$procs" ] && echo 0 > "$procs"
done <<< "${DW_CGROUP_PROCS:-}"

R="$DW_DIR/rootfs"

# The whole tree in one `mount --all` over an fstab of our own: every exec is a millisecond or
# two of create, and this replaces six to ten of them. Entries mount in order; X-mount.mkdir
# makes a missing mount point (a custom rootfs); bind,ro is bind + read-only remount (libmount).
fstab="$DW_DIR/fstab"
# fstab fields are separated by blanks: escape them (and the escape character) as octal.
esc() { REPLY=${1//\\/\\134}; REPLY=${REPLY// /\\040}; REPLY=${REPLY//$'\t'/\\011}; }
entry() { # source target type options
  local src tgt opts
  esc "$1"; src=$REPLY
  esc "$2"; tgt=$REPLY
  esc "$4"; opts=$REPLY
  printf '%s %s %s %s 0 0\n' "$src" "$tgt" "$3" "$opts"
}
file_binds=()
{
  entry overlay "$R" overlay "lowerdir=$DW_BASE,upperdir=$DW_UPPER,workdir=$DW_WORK"
  while IFS= read -r dir; do
    [ -n "$dir" ] && entry "$dir" "$R$dir" none bind,ro,nosuid,X-mount.mkdir
  done <<< "${DW_HOST_BINDS:-}"
  entry "$DW_DEV" "$R/dev" none bind,ro,nosuid,X-mount.mkdir
  entry devpts "$R/dev/pts" devpts newinstance,ptmxmode=0666,mode=0620,nosuid,noexec
  entry shm "$R/dev/shm" tmpfs nosuid,nodev,mode=1777,size=65536k
  entry proc "$R/proc" proc nosuid,nodev,noexec,X-mount.mkdir
  entry sysfs "$R/sys" sysfs ro,nosuid,nodev,noexec,X-mount.mkdir
  while IFS=$'\t' read -r mode src dst; do
    [ -n "$src" ] || continue
    # A file is bound onto a file: made below, after the overlay is there.
    if [ ! -d "$src" ]; then file_binds+=("$mode" "$src" "$dst"); continue; fi
    if [ "$mode" = ro ]; then entry "$src" "$R$dst" none bind,ro,nosuid,X-mount.mkdir
    else entry "$src" "$R$dst" none bind,nosuid,X-mount.mkdir; fi
  done <<< "${DW_BINDS:-}"
} > "$fstab"
mount --all --fstab "$fstab"

set -- "${file_binds[@]}"
while [ $# -ge 3 ]; do
  mode=$1 src=$2 dst=$3
  shift 3
  mkdir -p "$(dirname "$R$dst")"
  touch "$R$dst"
  if [ "$mode" = ro ]; then mount --bind -o ro,nosuid "$src" "$R$dst"; else mount --bind -o nosuid "$src" "$R$dst"; fi
done

# The default base already has a sticky /tmp: chmod only for a custom rootfs that lacks one.
[ -d "$R/tmp" ] || mkdir -p "$R/tmp"
[ -k "$R/tmp" ] || chmod 1777 "$R/tmp"

# The unprivileged user, written into this container's upper layer only; its home in one exec.
printf '%s:x:%s:%s:%s:%s:/bin/bash\n' "$DW_USER" "$DW_UID" "$DW_GID" "$DW_USER" "$DW_HOME" >> "$R/etc/passwd"
printf '%s:x:%s:\n' "$DW_USER" "$DW_GID" >> "$R/etc/group"
install -d -o "$DW_UID" -g "$DW_GID" -m 0755 "$R$DW_HOME"

echo "$DW_HOSTNAME" > /proc/sys/kernel/hostname
ip link set lo up

exec {tini}< "$DW_TINI"
cd "$R"
# Stack the new root over the old one and detach the old: no directory is left behind.
pivot_root . .
umount -l .
cd "$DW_HOME"

echo "ready $host_pid"
exec "/proc/self/fd/$tini" -- sleep infinity < /dev/null > /dev/null 2>&1
