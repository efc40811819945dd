#!/bin/sh
# Builds dw-seccomp (the seccomp filter unprivileged warden jobs start under) from dw-seccomp.c
# with libseccomp: Debian's gcc, libc6-dev and libseccomp-dev. `dropwarden setup` runs it when
# the binary is missing; the container-host image runs it at build time.
#
# Usage: container-host/warden/linux/containerizer/seccomp/build.sh [OUT]   (default: build/dw-seccomp beside it)
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/build/dw-seccomp}"
mkdir -p "$(dirname "$out")"
[ -e /usr/include/seccomp.h ] || { echo "seccomp/build.sh: /usr/include/seccomp.h is missing: apt-get install -y libseccomp-dev" >&2; exit 1; }
cc -O2 -Wall -Wextra -Werror -o "$out.tmp" "$here/dw-seccomp.c" -lseccomp
mv "$out.tmp" "$out"
echo "seccomp/build.sh: $out"
