# rolecast commissioning (rolecast.action=discover), sourced by /init once the network is up.
# Collects what the box is (SMBIOS from /sys/class/dmi/id, CPU, memory, disks, NICs, the LLDP neighbour
# of each NIC, the BMC's LAN address), POSTs it as JSON to ${URL}/api/discovered/${MAC}, then polls
# that entry until an operator or a rule adopts the box, and reboots into its new role (no BMC needed:
# the next PXE boot of an adopted MAC gets its role). Every fact is optional; a box without DMI,
# LLDP or BMC still reports. Helpers use `local` (ash variables are global).

LLDP_WAIT=${LLDP_WAIT:-35}   # a switch sends LLDP every 30 s by default (802.1AB msgTxInterval)
POLL=${POLL:-5}

# One line of a sysfs/proc file, as a JSON string value or null (control characters dropped).
jfile() {
  local v
  [ -r "$1" ] || { printf null; return; }
  v=$(head -c 256 "$1" 2>/dev/null | tr -d '\000-\037' | sed 's/^ *//; s/ *$//')
  [ -n "$v" ] && printf '"%s"' "$(json_str "$v")" || printf null
}

# An integer from a file, or null (a NIC without link reports speed -1 or an error).
jint() {
  local v
  v=$(cat "$1" 2>/dev/null)
  case "$v" in ''|*[!0-9]*) printf null ;; *) printf '%s' "$v" ;; esac
}

jbool() { [ "$(cat "$1" 2>/dev/null)" = 1 ] && printf true || printf false; }

facts_system() {
  local d=/sys/class/dmi/id
  printf '"system":{"vendor":%s,"product":%s,"serial":%s,"uuid":%s}' \
    "$(jfile $d/sys_vendor)" "$(jfile $d/product_name)" "$(jfile $d/product_serial)" "$(jfile $d/product_uuid)"
}

facts_cpu() {
  local model threads sockets cores
  model=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//')
  threads=$(grep -c '^processor' /proc/cpuinfo)
  sockets=$(grep '^physical id' /proc/cpuinfo | sort -u | wc -l)
  [ "$sockets" -gt 0 ] || sockets=1
  # "cpu cores" is per package: total cores = per-package cores x packages.
  cores=$(grep -m1 '^cpu cores' /proc/cpuinfo | sed 's/^[^:]*: *//')
  case "$cores" in ''|*[!0-9]*) cores=$threads ;; *) cores=$((cores * sockets)) ;; esac
  printf '"cpu":{"model":"%s","sockets":%s,"cores":%s,"threads":%s}' "$(json_str "$model")" "$sockets" "$cores" "$threads"
}

# Installed memory: the online memory blocks (the whole DIMMs), else MemTotal (less the kernel's share).
facts_memory() {
  local bs n=0 b
  if [ -r /sys/devices/system/memory/block_size_bytes ]; then
    bs=$(printf '%d' "0x$(cat /sys/devices/system/memory/block_size_bytes)")
    for b in /sys/devices/system/memory/memory*/online; do [ "$(cat "$b")" = 1 ] && n=$((n + 1)); done
  fi
  if [ "$n" -gt 0 ]; then printf '"memory_mib":%s' $((n * bs / 1048576))
  else printf '"memory_mib":%s' $(($(grep '^MemTotal' /proc/meminfo | awk '{print $2}') / 1024)); fi
}

facts_disks() {
  local p n first=1 serial
  printf '"disks":['
  for p in /sys/block/*; do
    n=${p##*/}
    [ -e "$p/device" ] || continue            # loop, ram, zram, dm: not hardware
    case "$n" in sr*|fd*) continue ;; esac
    serial=$p/serial; [ -r "$serial" ] || serial=$p/device/serial
    [ $first = 1 ] || printf ,
    first=0
    printf '{"name":"%s","bytes":%s,"model":%s,"serial":%s,"rotational":%s}' "$n" \
      "$(( $(cat "$p/size") * 512 ))" "$(jfile "$p/device/model")" "$(jfile "$serial")" "$(jbool "$p/queue/rotational")"
  done
  printf ']'
}

# Physical Ethernet NICs (a device link, ARP type 1), in name order.
nic_names() {
  local p
  for p in /sys/class/net/*; do
    [ -e "$p/device" ] && [ "$(cat "$p/type")" = 1 ] && echo "${p##*/}"
  done
}

# Every NIC up (LLDP is heard only on a running link), then one LLDPDU per NIC with carrier.
listen_lldp() {
  local n i=0 up=
  for n in $(nic_names); do ip link set "$n" up; done
  while [ $i -lt 30 ]; do                      # carrier may take ~2 s (e1000)
    up=
    for n in $(nic_names); do [ "$(cat /sys/class/net/$n/carrier 2>/dev/null)" = 1 ] && up="$up $n"; done
    [ "$(echo $up | wc -w)" = "$(nic_names | wc -l)" ] && break
    i=$((i + 1)); usleep 100000
  done
  : > /tmp/lldp
  [ -n "$up" ] && [ -x /bin/rolecast-hw ] || return 0
  say "listening for LLDP on$up (up to ${LLDP_WAIT} s)"
  rolecast-hw lldp "$LLDP_WAIT" $up > /tmp/lldp 2>/tmp/lldp.err
}

facts_nics() {
  local n p first=1 drv lldp
  printf '"nics":['
  for n in $(nic_names); do
    p=/sys/class/net/$n
    drv=$(readlink "$p/device/driver" 2>/dev/null); drv=${drv##*/}
    lldp=$(grep "^$n " /tmp/lldp 2>/dev/null | head -n 1 | cut -d' ' -f2-)
    [ $first = 1 ] || printf ,
    first=0
    printf '{"name":"%s","mac":"%s","driver":"%s","speed_mbps":%s,"link":%s,"lldp":%s}' "$n" "$(cat "$p/address")" \
      "$drv" "$(jint "$p/speed")" "$(jbool "$p/carrier")" "${lldp:-null}"
  done
  printf ']'
}

# The BMC's LAN address, when the box has one (IPMI system interface → /dev/ipmi0).
facts_bmc() {
  local m b
  if [ -d /lib/rolecast-modules/discover ]; then
    while read -r m; do insmod "/lib/rolecast-modules/discover/$m" 2>/dev/null; done < /lib/rolecast-modules/discover/order
  fi
  [ -e /dev/ipmi0 ] && [ -x /bin/rolecast-hw ] && b=$(timeout 20 rolecast-hw bmc 2>/dev/null)
  printf '"bmc":%s' "${b:-null}"
}

discover_report() {
  listen_lldp
  printf '{"version":1,%s,%s,%s,%s,%s,%s}' "$(facts_system)" "$(facts_cpu)" "$(facts_memory)" \
    "$(facts_disks)" "$(facts_nics)" "$(facts_bmc)" > /tmp/report.json
}

# The entry's state as the server has it: waiting | adopted | known-machine-new-nic (or empty).
entry_field() {
  sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" /tmp/entry.json 2>/dev/null | head -n 1
}

discover_main() {
  local n=0 state host
  discover_report
  say "facts $(head -c 3000 /tmp/report.json)"
  while ! timeout 20 wget -q -O /tmp/entry.json --header 'Content-Type: application/json' \
      --post-file /tmp/report.json "$URL/api/discovered/$MAC" 2>/tmp/post.err; do
    n=$((n + 1))
    say "report refused or lost ($(tail -n 1 /tmp/post.err)); attempt $n"
    phone failed "discovery report refused or lost: $(tail -n 1 /tmp/post.err)"
    [ $n -ge 5 ] && fail "discovery report not accepted after $n attempts"
    sleep $((n * 5))
  done
  stage discovered "state=$(entry_field state)"
  # Poll until adopted; a box shown as a known machine's new NIC waits for the operator too.
  while :; do
    state=$(entry_field state)
    host=$(entry_field host)
    [ "$state" = adopted ] && break
    sleep "$POLL"
    timeout 20 wget -q -O /tmp/entry.json "$URL/api/discovered/$MAC" 2>/dev/null || say "poll failed (retrying)"
  done
  stage adopted "host=$host"
  say "rebooting into role of $host"
  sync
  reboot -f
}
