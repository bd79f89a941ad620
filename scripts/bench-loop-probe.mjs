// Preloaded into a benchmarked `rolecast serve` (node --import): measures event-loop delay with
// perf_hooks.monitorEventLoopDelay; on SIGUSR2 prints the stalls since the last report on stderr as
// `LOOP {"cpuS":..,"mainCpuS":..,"maxMs":..,"p99Ms":..,"cpuMaxMs":..,"rssMB":..,"peakRssMB":..}` (cpuS: CPU time since start, every thread; mainCpuS: the main thread's) and starts again.
// cpuMaxMs: the longest the main thread itself ran between two turns of a 2 ms timer, from its own
// on-CPU time (/proc/self/task/<tid>/schedstat, ns): the stall as it would be on an idle host. On a
// shared 2-core machine the wall-clock delay (maxMs) also counts the time the thread waited for a core.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';

const h = monitorEventLoopDelay({ resolution: 5 });
h.enable();
const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
const SCHED = `/proc/self/task/${process.pid}/schedstat`;
const onCpuNs = () => { try { return Number(readFileSync(SCHED, 'utf8').split(' ')[0]); } catch { return NaN; } };
let lastCpu = onCpuNs();
let cpuMax = 0;
const tick = () => {
  const now = onCpuNs();
  cpuMax = Math.max(cpuMax, (now - lastCpu) / 1e6);
  lastCpu = now;
  setTimeout(tick, 2).unref();
};
tick();
process.on('SIGUSR2', () => {
  const cpu = process.cpuUsage();
  const r = { cpuS: (cpu.user + cpu.system) / 1e6, mainCpuS: onCpuNs() / 1e9, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, cpuMaxMs: cpuMax, rssMB: process.memoryUsage().rss / 2 ** 20, peakRssMB: peakRss() };
  process.stderr.write(`LOOP ${JSON.stringify(r)}\n`);
  h.reset();
  cpuMax = 0;
});
