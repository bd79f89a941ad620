#!/usr/bin/env bash
# Run rolecast on the bundled example profiles inside a private lab network namespace, so its DHCP
# server can never answer on this host's real interfaces. The lab holds one bridge (rcbr0,
# 10.0.0.1/24 — the example's provisioning network); attach VMs with a tap on it:
#   ip -n rolecast-lab tuntap add dev rctap0 mode tap && ip -n rolecast-lab link set rctap0 master rcbr0 up
#   ip netns exec rolecast-lab qemu-system-x86_64 -accel tcg -nographic -netdev tap,id=n0,ifname=rctap0,script=no,downscript=no \
#      -device virtio-net-pci,netdev=n0,mac=52:54:00:00:02:01 ...
# Talk to it from the lab:  ip netns exec rolecast-lab curl http://10.0.0.1:8080/api/machines
# Ctrl-C stops rolecast and removes the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
NS=${ROLECAST_LAB_NS:-rolecast-lab}
if [ "$(id -u)" -ne 0 ]; then echo "lab-serve: needs root (network namespace)" >&2; exit 1; fi
if ip netns list | awk '{print $1}' | grep -qx "$NS"; then echo "lab-serve: namespace $NS exists already (another lab running?)" >&2; exit 1; fi
cleanup() { ip netns delete "$NS" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add rcbr0 type bridge
ip -n "$NS" addr add 10.0.0.1/24 dev rcbr0
ip -n "$NS" link set rcbr0 up
mkdir -p data
echo "rolecast lab: namespace $NS, bridge rcbr0 10.0.0.1/24; serving the bundled profiles (Ctrl-C to stop)"
ip netns exec "$NS" node bin/rolecast.js serve --profiles profiles --images images --address 10.0.0.1 --data data "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
