# rolecast initramfs: disk wipe (rolecast.action=wipe), sourced by /init.
#
# Runs only when the kernel command line also carries rolecast.confirm_wipe=1, which the boot-config
# renderers add only for a machine whose inventory entry confirms the wipe. Every local disk gets
# discarded when the device supports it, otherwise overwritten (random passes, then zeros); the first
# and last MiB are read back to check. busybox 1.35's shred writes nothing to a block device (measured
# on a loop device), so the overwrite is dd with an explicit size.
#
# Knobs: rolecast.wipe_passes=N random passes before the zero pass (default 1),
#        rolecast.wipe=overwrite to skip the discard attempt.

WIPE_PASSES=1 WIPE_MODE=auto
for w in $(cat /proc/cmdline); do
  case "$w" in
    rolecast.wipe_passes=*) WIPE_PASSES=${w#*=} ;;
    rolecast.wipe=*) WIPE_MODE=${w#*=} ;;
  esac
done

# Local disks only: no loop/ram/zram/optical/floppy/network/device-mapper/md devices, nothing
# removable (the USB stick an operator may have booted from) and nothing read-only.
list_disks() {
  local p d
  for p in /sys/block/*; do
    [ -e "$p" ] || continue
    d=${p##*/}
    case "$d" in loop*|ram*|zram*|sr*|fd*|nbd*|dm-*|md*) continue ;; esac
    [ "$(cat "$p/removable" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$p/ro" 2>/dev/null)" = 1 ] && continue
    [ "$(cat "$p/size" 2>/dev/null)" -gt 0 ] 2>/dev/null || continue
    echo "$d"
  done
}

# Disk drivers probe asynchronously: wait until the list is non-empty and stable for a second.
settle_disks() {
  local prev= cur= i=0
  while [ $i -lt 10 ]; do
    cur=$(list_disks | tr '\n' ' ')
    [ -n "$cur" ] && [ "$cur" = "$prev" ] && break
    prev=$cur; i=$((i + 1)); sleep 1
  done
  echo "$cur"
}

# Write $2 (a device under /dev) over disk $1 exactly to its end: whole MiBs, then the remaining sectors.
fill_disk() {
  local bytes mib rest
  bytes=$(( $(cat "/sys/block/$1/size") * 512 ))
  mib=$((bytes / 1048576)) rest=$(( (bytes % 1048576) / 512 ))
  dd if="$2" of="/dev/$1" bs=1048576 count=$mib conv=fsync 2>/dev/null || return 1
  [ $rest -eq 0 ] || dd if="$2" of="/dev/$1" bs=512 seek=$((mib * 2048)) count=$rest conv=fsync 2>/dev/null
}

# Zero check of the first and last MiB (or the whole disk when smaller).
verify_zero() {
  local sectors n a b
  sectors=$(cat "/sys/block/$1/size")
  n=2048; [ "$sectors" -lt $n ] && n=$sectors
  a=$(dd if="/dev/$1" bs=512 count=$n 2>/dev/null | tr -d '\000' | wc -c)
  b=$(dd if="/dev/$1" bs=512 skip=$((sectors - n)) count=$n 2>/dev/null | tr -d '\000' | wc -c)
  [ "$a" = 0 ] && [ "$b" = 0 ]
}

wipe_one() {
  local d=$1 p=0
  if [ "$WIPE_MODE" != overwrite ] && blkdiscard "/dev/$d" 2>/dev/null && verify_zero "$d"; then
    echo discard; return 0
  fi
  while [ $p -lt "$WIPE_PASSES" ]; do
    fill_disk "$d" /dev/urandom || return 1
    p=$((p + 1))
  done
  fill_disk "$d" /dev/zero || return 1
  verify_zero "$d" || return 1
  echo "overwrite passes=$WIPE_PASSES+zero"
}

wipe_all() {
  local disks d how done_list=
  if [ "$CONFIRM_WIPE" != 1 ]; then
    fail "wipe refused: rolecast.confirm_wipe=1 is not on the kernel command line (confirm it in the machine's entry)"
  fi
  stage wipe "start"
  disks=$(settle_disks)
  # Asked to wipe and nothing found is worth a look (a missing driver?), not a silent success.
  [ -n "$disks" ] || fail "wipe: no local disks found ($(ls /sys/block | tr '\n' ' '))"
  for d in $disks; do
    stage wipe "$d $(( $(cat "/sys/block/$d/size") / 2048 )) MiB"
    how=$(wipe_one "$d") || fail "wipe of /dev/$d failed"
    say "wipe $d done method=$how"
    done_list="$done_list $d:$how"
  done
  say "stage booted wipe complete:$done_list"
  phone booted "wipe complete:$done_list"
  sync
  poweroff -f
}
