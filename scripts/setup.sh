#!/usr/bin/env bash
# One-shot set-up on a fresh Debian 12 or 13 machine (as root), then either run every test or the server.
#   bash scripts/setup.sh test    install, then npm test (every tier)
#   bash scripts/setup.sh serve   install, build the images the bundled lab boots, run rolecast in the lab
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}
case "$what" in test|serve) ;; *) echo "usage: setup.sh test|serve" >&2; exit 2 ;; esac

# Node.js >= 20 (package.json engines). Debian 13 ships 20 (nodejs + npm); Debian 12 ships 18, so there
# the operator has to bring it: we say exactly how rather than add a third-party repository behind their back.
node_major() { command -v node >/dev/null 2>&1 && node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 20 ]; then
  candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}' | sed -E 's/^[0-9]+://; s/\..*//')
  if [ "$(id -u)" -eq 0 ] && [[ "$candidate" =~ ^[0-9]+$ ]] && [ "$candidate" -ge 20 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
  else
    . /etc/os-release 2>/dev/null || true
    cat >&2 <<MSG
setup: rolecast needs Node.js 20 or newer; this machine has $(command -v node >/dev/null && node --version || echo none),
and ${PRETTY_NAME:-this distribution}'s own nodejs package is ${candidate:-not available} (Debian 12 ships 18).
Install Node.js 20 from NodeSource's Debian repository, then run this script again:
    curl -fsSL https://deb.nodesource.com/setup_20.x -o /tmp/nodesource_setup.sh
    bash /tmp/nodesource_setup.sh        # adds the repository and its key, runs apt-get update
    apt-get install -y nodejs            # Node 20 with npm
or move to Debian 13, whose nodejs is 20: apt-get install nodejs npm.
MSG
    exit 1
  fi
fi

# Debian packages: real peers for the tests (clients, servers to compare with, VM firmware), and the
# compiler node-gyp needs for the native sendfile engine (native/sendfile, built by npm run build).
# policy-rc.d keeps packaged daemons (tftpd-hpa, nginx, keepalived) from starting on the host.
PKGS=(
  iproute2 procps curl ca-certificates
  keepalived ifupdown ifenslave vlan
  isc-dhcp-client isc-dhcp-relay dnsmasq-base kea-admin busybox-static
  tftp-hpa atftp tftpd-hpa nginx-light
  qemu-system-x86 ipxe-qemu ovmf ipxe pxelinux syslinux-common grub-efi-amd64-bin memtest86+
  linux-image-amd64 kmod cpio zstd mmdebstrap tcpdump
  g++ make python3
  openipmi ipmitool redfishtool postgresql chromium lldpd dmidecode radvd
  prometheus man-db groff-base
)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-fund --no-audit

case "$what" in
  test) npm test ;;
  serve)
    npm run build
    # The images the bundled lab boots (kernel + common initramfs, the test/rescue image, memtest86+), each
    # built once; the lab then boots machines instead of serving a script and a 404.
    targets=(initramfs test memtest)
    i=0
    for t in "${targets[@]}"; do
      i=$((i + 1))
      if node scripts/image-built.mjs "$t"; then echo "[$i/${#targets[@]}] $t: built already"; continue; fi
      start=$SECONDS
      echo "[$i/${#targets[@]}] building $t ..."
      node bin/rolecast.js images build "$t" --images images 2>&1 | sed -u "s/^/[$i\/${#targets[@]}] $t: /"
      echo "[$i/${#targets[@]}] $t: done in $((SECONDS - start)) s"
    done
    exec bash scripts/lab-serve.sh ;;
esac
