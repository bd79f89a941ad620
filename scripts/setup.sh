#!/usr/bin/env bash
# One-shot set-up on a fresh Debian 12 machine (as root), then either run every test or the server.
#   bash scripts/setup.sh test    install, then npm test (every tier)
#   bash scripts/setup.sh serve   install, then run rolecast on the bundled example profiles
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}

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
  serve) npm run build && exec bash scripts/lab-serve.sh ;;
  *) echo "usage: setup.sh test|serve" >&2; exit 2 ;;
esac
