#!/usr/bin/env bash
# Builds what the staging plugins need at staging time into one directory: the content of the
# stager function's runtime layer on AWS (unpacked at /opt), and locally the default runtimes
# directory. It holds the Tomcat bundles (tomcat/build-bundle.sh) and the npm that ships with
# the stager (the node plugin runs it, never a host's npm).
#
# Usage: resources/build-runtimes.sh [OUT_DIR]   (default: $DROPWARDEN_RUNTIMES_DIR, else
# resources/build). Deploy with: npx cdk deploy -c dropwarden:runtimeLayerDir=OUT_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-${DROPWARDEN_RUNTIMES_DIR:-$here/build}}"
mkdir -p "$out"

"$here/tomcat/build-bundle.sh" "$out"

npm_dir="$(cd "$here/.." && node -p "require('node:path').dirname(require.resolve('npm/package.json'))")"
rm -rf "$out/npm.tmp"
cp -a "$npm_dir" "$out/npm.tmp"
rm -rf "$out/npm"
mv "$out/npm.tmp" "$out/npm"
echo "runtimes in $out: $(ls "$out" | tr '\n' ' ')"
