// CPU time of benchmark servers from private cpuacct cgroups (shared by bench-http and bench-tftp): a
// loaded machine's wall clock hides the per-request cost, the CPU a server and its threads and children
// used does not.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * CPU ms of each process (threads and children included) from a cpuacct cgroup of its own. `ip netns exec`
 * hides /sys/fs/cgroup, so the v1 hierarchy is mounted privately (this mount namespace is ours).
 */
export function cpuGroups(pids, cleanups, label) {
  const root = mkdtempSync(join(tmpdir(), 'rolecast-bench-cg-'));
  const mounted = ['cpu,cpuacct', 'cpuacct'].some((o) => spawnSync('mount', ['-t', 'cgroup', '-o', o, 'none', root], { stdio: 'ignore' }).status === 0);
  const groups = {};
  for (const [name, pid] of Object.entries(pids)) {
    if (!mounted) break;
    const g = join(root, `rolecast-bench-${label}-${process.pid}-${name}`);
    try {
      mkdirSync(g);
      for (const p of processTree(pid)) writeFileSync(join(g, 'cgroup.procs'), String(p)); // every thread, and children
      groups[name] = g;
    } catch { try { rmdirSync(g); } catch { /* not made */ } }
  }
  cleanups.push(() => {
    for (const g of Object.values(groups)) { try { rmdirSync(g); } catch { /* still busy */ } }
    if (mounted) spawnSync('umount', [root]);
    try { rmdirSync(root); } catch { /* left mounted */ }
  });
  return (name) => (groups[name] ? Number(readFileSync(join(groups[name], 'cpuacct.usage'), 'utf8')) / 1e6 : NaN);
}

/** A process and its descendants (nginx's workers), from /proc. */
export function processTree(pid) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  const out = [];
  const walk = (p) => { out.push(p); for (const k of kids.get(p) ?? []) walk(k); };
  walk(pid);
  return out;
}

/**
 * The box's CPU time so far, ms over all cores, from /proc/stat's first line (USER_HZ 100): user (with
 * nice), system, irq, softirq, idle (with iowait) and the host's steal.
 */
export function boxCpuMs() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const tick = 10;
  return { user: (user + nice) * tick, system: system * tick, irq: irq * tick, softirq: softirq * tick, idle: (idle + iowait) * tick, steal: steal * tick };
}

/**
 * CPU ms of the kernel's threads (children of kthreadd) by kind: ksoftirqd (network work deferred out of
 * whoever raised it, charged to no group), kworker, the others.
 */
export function kthreadsCpuMs() {
  const out = { ksoftirqd: 0, kworker: 0, other: 0 };
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try { stat = readFileSync(`/proc/${d}/stat`, 'utf8'); } catch { continue; }
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    if (f[1] !== '2') continue; // ppid: kthreadd
    const name = stat.slice(stat.indexOf('(') + 1, close);
    const ms = (Number(f[11]) + Number(f[12])) * 10; // utime + stime, clock ticks of 10 ms
    out[name.startsWith('ksoftirqd') ? 'ksoftirqd' : name.startsWith('kworker') ? 'kworker' : 'other'] += ms;
  }
  return out;
}
