#!/usr/bin/env bash
# npm run package:deb [OUTDIR] — build rolecast_<version>_<arch>.deb with dpkg-deb (default OUTDIR: build/deb).
# Layout: /usr/lib/rolecast (the npm package + its production node_modules, from package-lock.json),
# /usr/bin/rolecast, the systemd unit, /etc/rolecast/rolecast.yaml (conffile), rolecast(1).
# The package does not enable or start the service: the profiles come first (see /usr/share/doc/rolecast).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build/deb}")
version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
# ROLECAST_PACKAGE_BUILD=0: package the dist/ already built (the test suite, which built it before).
if [ "${ROLECAST_PACKAGE_BUILD:-1}" = 1 ]; then npm run build --silent; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/root
lib=$stage/usr/lib/rolecast

echo "package:deb: npm pack"
npm pack --pack-destination "$work" --silent >/dev/null
mkdir -p "$lib"
tar -xzf "$work/rolecast-$version.tgz" -C "$lib" --strip-components=1
cp package-lock.json "$lib/"
echo "package:deb: production dependencies (npm ci --omit=dev, from the npm cache when it has them)"
(cd "$lib" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error)
rm -f "$lib/package-lock.json"

install -d "$stage/usr/bin" "$stage/usr/lib/systemd/system" "$stage/etc/rolecast" "$stage/usr/share/man/man1" "$stage/usr/share/doc/rolecast" "$stage/DEBIAN"
ln -s ../lib/rolecast/bin/rolecast.js "$stage/usr/bin/rolecast"
chmod 0755 "$lib/bin/rolecast.js"
install -m 0644 packaging/rolecast.service "$stage/usr/lib/systemd/system/rolecast.service"
install -m 0644 packaging/rolecast.yaml "$stage/etc/rolecast/rolecast.yaml"
node dist/cli.js help --man | gzip -9n > "$stage/usr/share/man/man1/rolecast.1.gz"
install -m 0644 packaging/README.Debian "$stage/usr/share/doc/rolecast/README.Debian"
printf 'rolecast\nLicense: MIT (see /usr/lib/rolecast/package.json); bundled npm modules under their own licenses in /usr/lib/rolecast/node_modules.\n' > "$stage/usr/share/doc/rolecast/copyright"
echo /etc/rolecast/rolecast.yaml > "$stage/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst "$stage/DEBIAN/postinst"
install -m 0755 packaging/debian/postrm "$stage/DEBIAN/postrm"

# Depends: what rolecast runs on and serves (Node, the boot loaders, zstd for .tar.zst rootfs); Recommends: what
# `rolecast images build` uses and the other loaders (gcc and libc6-dev: the initramfs's static rolecast-boot,
# without which machines with secret files cannot fetch them, and rolecast-hw).
cat > "$stage/DEBIAN/control" <<CONTROL
Package: rolecast
Version: $version
Architecture: $arch
Maintainer: rolecast developers <rolecast@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: nodejs (>= 20), adduser, ipxe, pxelinux, syslinux-common, zstd
Recommends: grub-efi-amd64-bin, syslinux-efi, busybox-static, kmod, cpio, linux-image-amd64, memtest86+, mmdebstrap, gcc, libc6-dev
Section: net
Priority: optional
Homepage: https://localhost/rolecast
Description: network-boot and bare-metal provisioning server
 One Node.js process answers DHCP (authoritative or proxyDHCP) and TFTP for PXE, and serves
 boot configs (iPXE, PXELINUX, GRUB), kernels, initramfs and per-machine rootfs over HTTP keyed
 by MAC, from YAML profiles: a machine's role is one line.
CONTROL

mkdir -p "$out"
deb="$out/rolecast_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "package:deb: $deb ($(du -h "$deb" | cut -f1))"
