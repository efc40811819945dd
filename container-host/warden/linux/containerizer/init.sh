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
mount -t overlay overlay -o "lowerdir=$DW_BASE,upperdir=$DW_UPPER,workdir=$DW_WORK" "$R"

# Every exec costs a millisecond or two of create: the default base already has its mount
# points and a sticky /tmp, so mkdir and chmod run only for a custom rootfs that lacks them.
while IFS= read -r dir; do
  [ -n "$dir" ] || continue
  [ -d "$R$dir" ] || mkdir -p "$R$dir"
  mount --bind -o ro,nosuid "$dir" "$R$dir"
done <<< "${DW_HOST_BINDS:-}"

for dir in dev proc sys tmp; do
  [ -d "$R/$dir" ] || mkdir -p "$R/$dir"
done
mount --bind -o ro,nosuid "$DW_DEV" "$R/dev"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$R/dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=65536k shm "$R/dev/shm"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
[ -k "$R/tmp" ] || chmod 1777 "$R/tmp"

while IFS=$'\t' read -r mode src dst; do
  [ -n "$src" ] || continue
  if [ -d "$src" ]; then mkdir -p "$R$dst"; else mkdir -p "$(dirname "$R$dst")"; touch "$R$dst"; fi
  if [ "$mode" = ro ]; then
    mount --bind -o ro,nosuid "$src" "$R$dst"
  else
    mount --bind -o nosuid "$src" "$R$dst"
  fi
done <<< "${DW_BINDS:-}"

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
