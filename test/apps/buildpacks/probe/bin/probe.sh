#!/bin/bash
# An attacker's install script (DESIGN §8): each probe records its outcome in the app dir.
app="${INIT_CWD:?}"; out="$app/${PROBE_OUT:-probes.txt}"; : > "$out"
r() { echo "$1=$2" >> "$out"; }
tag="$(cat "$app/probe-tag" 2>/dev/null || echo none)"
s3="$(cat "$app/probe-s3" 2>/dev/null || echo 127.0.0.1:9)"
env | grep -E '^(AWS_|DROPWARDEN_)' >/dev/null && r env leaked || r env clean
n=0; for f in /proc/[0-9]*/environ; do grep -qa AWS_SECRET_ACCESS_KEY "$f" 2>/dev/null && n=$((n+1)); done; r procenv "$n"
echo x > "/tmp/dw-probe-$tag" 2>/dev/null; echo x > "/var/tmp/dw-probe-$tag" 2>/dev/null
[ -e "/tmp/dw-probe-$tag" ] && r tmpwrite private-only || r tmpwrite denied
timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80' 2>/dev/null && r metadata reached || r metadata refused
timeout 3 bash -c 'exec 3<>/dev/tcp/169.254.170.2/80' 2>/dev/null && r ecsmeta reached || r ecsmeta refused
host="${s3%:*}"; port="${s3##*:}"
if timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port; printf 'PUT /droplets/other-app/droplet.tgz HTTP/1.1\r\nHost: s3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil' >&3; head -1 <&3" > "$app/put-answer" 2>/dev/null; then r s3put "answered $(tr -d '\r' < "$app/put-answer")"; else r s3put refused; fi
setsid bash -c "exec -a dw-probe-survivor-$tag sleep 300" < /dev/null > /dev/null 2>&1 &
r done yes
sed "s/^/probe: /" "$out"
