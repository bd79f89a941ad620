// The simulated machine of bench:storm, and how its report is read.
//
// One bash per machine, started in the machine's namespace before the storm. It brings its interface up,
// says "ready", and blocks on a line from the harness on stdin: the harness writes that line at this
// machine's moment of the wave, so the storm's spread is the harness's timer, not how fast 300 processes
// happen to start on a loaded box. From "go" on, the client spawns as little as a PXE boot needs of a
// shell: udhcpc (its script and one `ip addr add`), one curl for the TFTP loader and the iPXE script
// (one process, two transfers), one curl for the kernel, the initrd and the rootfs (one process, one
// keep-alive connection, as iPXE keeps its connection). Times are bash's $EPOCHREALTIME (no `date`
// process per stage); the script is parsed with bash builtins (no awk, sed or tr).
//
// Stage ends inside one curl are its end minus the later transfers' time_total (curl's -w line per
// transfer): the loader's and the kernel's stages include their curl's process start and, for the
// kernel, reading the script.

export const STAGES = ['dhcp', 'loader', 'script', 'kernel', 'initrd', 'rootfs'];

export const CLIENT = `
set -uf
ip -b - >/dev/null <<EOF || { echo "fail setup"; exit 1; }
link set eth0 up
addr flush dev eth0
EOF
echo ready
read -r _ || exit 1
echo "start $EPOCHREALTIME"
busybox udhcpc -i eth0 -n -q -f -t 20 -T 1 -s "$DIR/udhcpc.sh" >/dev/null 2>&1 || { echo "fail dhcp"; exit 1; }
echo "dhcp $EPOCHREALTIME"
W='w %{urlnum} %{exitcode} %{response_code} %{time_total}\\n'
S="$DIR/s/$MAC"
curl -s -f --fail-early --tftp-blksize 1468 --max-time 120 -w "$W" -o /dev/null "tftp://$SERVER/undionly.kpxe" -o "$S" "http://$SERVER:8080/boot/$MAC.ipxe"
rc=$?
echo "c1 $rc $EPOCHREALTIME"
[ "$rc" = 0 ] || exit 1
kernel= initrd= url=
while read -r first rest; do
  for w in $rest; do
    case "$first:$w" in
      kernel:http://*|kernel:https://*) [ -n "$kernel" ] || kernel=$w ;;
      initrd:http://*|initrd:https://*) [ -n "$initrd" ] || initrd=$w ;;
    esac
    case "$w" in rolecast.url=*) [ -n "$url" ] || url=\${w#rolecast.url=} ;; esac
  done
done < "$S"
[ -n "$kernel" ] && [ -n "$initrd" ] && [ -n "$url" ] || { echo "fail parse"; exit 1; }
curl -s -f --fail-early --max-time 600 -w "$W" -o /dev/null "$kernel" -o /dev/null "$initrd" -o /dev/null "$url/rootfs/$MAC.tar"
echo "c2 $? $EPOCHREALTIME"
`;

export const UDHCPC = `#!/bin/sh
[ "$1" = bound ] && ip addr add "$ip/\${mask:-24}" dev "$interface"
exit 0
`;

const ms = (s) => Number(s) * 1000;

/**
 * One machine's report (its stdout) as { failed?, start, stages: {dhcp, ..., rootfs, total} } in ms.
 * `failed` names the first stage that did not complete ('killed' when the client died without saying).
 * `goAt` (epoch ms): when the harness released it. The boot then starts there, not at the client's own
 * "start" stamp: the time its bash took to wake on a loaded box is part of its DHCP stage, not hidden,
 * and is kept as `wake`.
 */
export function parseReport(out, goAt) {
  const at = {};
  const curls = []; // per curl: { rc, end, transfers: [{ exit, code, tt }] }
  let transfers = [];
  let failed;
  let why;
  for (const line of out.split('\n')) {
    const w = line.trim().split(' ');
    if (w[0] === 'fail') failed ??= w[1];
    else if (w[0] === 'start' || w[0] === 'dhcp') at[w[0]] = ms(w[1]);
    else if (w[0] === 'w') transfers.push({ exit: Number(w[2]), code: Number(w[3]), tt: ms(w[4]) });
    else if (w[0] === 'c1' || w[0] === 'c2') { curls.push({ rc: Number(w[1]), end: ms(w[2]), transfers }); transfers = []; }
  }
  // Each curl's transfers end at its end minus the time of the transfers after them.
  const groups = [['loader', 'script'], ['kernel', 'initrd', 'rootfs']];
  for (const [k, names] of groups.entries()) {
    const c = curls[k];
    if (!c) break;
    let end = c.end;
    for (let i = names.length - 1; i >= 0; i--) {
      const t = c.transfers[i];
      if (t && t.exit === 0) at[names[i]] = end;
      if (t) end -= t.tt;
    }
    if (c.rc !== 0) {
      failed ??= names.find((n) => at[n] === undefined) ?? names.at(-1);
      // How: curl's exit code (28 timeout, 18 partial file, 56 receive error, 22 HTTP >= 400) and status.
      const bad = c.transfers.find((t) => t.exit !== 0);
      why = bad ? `curl ${bad.exit} http ${bad.code}` : `curl ${c.rc}`;
      break;
    }
  }
  if (!failed && at.rootfs === undefined) failed = at.start === undefined ? 'start' : 'killed';
  const wake = goAt !== undefined && at.start !== undefined ? at.start - goAt : undefined;
  if (goAt !== undefined && at.start !== undefined) at.start = goAt;
  const rec = { failed, ...(why ? { why } : {}), start: at.start, wake, stages: {} };
  let prev = at.start;
  for (const s of STAGES) {
    if (at[s] === undefined) break;
    rec.stages[s] = at[s] - prev;
    prev = at[s];
  }
  if (!failed) rec.stages.total = at.rootfs - at.start;
  return rec;
}
