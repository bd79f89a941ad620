#!/usr/bin/env bash
# Run by test/system/package/package.test.ts under `unshare --mount`: /etc, /usr and /var become overlays on a
# tmpfs, so dpkg -i, the new user and every file the package writes vanish with the mount namespace.
# Then the installed service is started the way its unit says (ExecStart, User, CAP_NET_BIND_SERVICE only)
# inside the lab's network namespace. systemd is not PID 1 here, so systemctl cannot start it.
#   install-in-namespace.sh WORKDIR DEB SERVER_NS CLIENT_NS
set -euo pipefail
T=$1 DEB=$2 NS=$3 CLI=$4
mount -t tmpfs tmpfs "$T/ov"
for d in etc usr var; do
  mkdir -p "$T/ov/$d.up" "$T/ov/$d.wk"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$T/ov/$d.up,workdir=$T/ov/$d.wk" "/$d"
done
step() { echo "== $*"; }
step dpkg; dpkg -i "$DEB" >/dev/null
step user; getent passwd rolecast
step version; rolecast --version
step man; man -w rolecast
step unit; systemd-analyze verify /usr/lib/systemd/system/rolecast.service && echo "verify ok"
step conffile; dpkg-query -W -f='${Conffiles}\n' rolecast
# What the operator does (README.Debian), then what systemd would do for StateDirectory=.
cp -r /usr/lib/rolecast/profiles /etc/rolecast/profiles
chown -R rolecast:rolecast /etc/rolecast/profiles
install -d -o rolecast -g rolecast -m 0750 /var/lib/rolecast
unit=/usr/lib/systemd/system/rolecast.service
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
user=$(sed -n 's/^User=//p' "$unit")
caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_//')
step start "$user" "$caps" "$exec_start"
# shellcheck disable=SC2086 # ExecStart is a command line
ip netns exec "$NS" setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs \
  --inh-caps="-all,+$caps" --ambient-caps="+$caps" --bounding-set="-all,+$caps" \
  env ROLECAST_LOG_FORMAT=json $exec_start > "$T/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 150); do grep -q 'rolecast serving' "$T/serve.log" && break; kill -0 $pid 2>/dev/null || break; sleep 0.2; done
step status; grep -E '^(Uid|CapEff|CapPrm):' /proc/$pid/status || true
step healthz; ip netns exec "$CLI" curl -sS -m 10 http://10.0.0.1:8080/healthz; echo
step script; ip netns exec "$CLI" curl -sS -m 10 http://10.0.0.1:8080/boot/52:54:00:00:02:01.ipxe | head -3
step tftp; ip netns exec "$CLI" curl -sS -m 10 -o "$T/u.kpxe" tftp://10.0.0.1/undionly.kpxe && cmp "$T/u.kpxe" /usr/lib/ipxe/undionly.kpxe && echo "tftp same bytes"
kill -TERM $pid; wait $pid || true
step log; cat "$T/serve.log"
