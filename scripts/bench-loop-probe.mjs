// Preloaded into a benchmarked `rolecast serve` (node --import): measures event-loop delay with
// perf_hooks.monitorEventLoopDelay; on SIGUSR2 prints the stalls since the last report on stderr as
// `LOOP {"cpuS":..,"maxMs":..,"p99Ms":..,"rssMB":..,"peakRssMB":..}` (cpuS: CPU time since start) and starts again.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';

const h = monitorEventLoopDelay({ resolution: 5 });
h.enable();
const peakRss = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024;
process.on('SIGUSR2', () => {
  const cpu = process.cpuUsage();
  const r = { cpuS: (cpu.user + cpu.system) / 1e6, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, rssMB: process.memoryUsage().rss / 2 ** 20, peakRssMB: peakRss() };
  process.stderr.write(`LOOP ${JSON.stringify(r)}\n`);
  h.reset();
});
