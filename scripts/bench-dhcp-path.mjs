#!/usr/bin/env node
// The DHCP thread's own JS path per exchange, without sockets or perfdhcp: the real listener (startDhcpServer
// with an injected socket), the real file lease store in a temp dir, boot events encoded as the thread does,
// fed the DISCOVER and REQUEST perfdhcp sends in bench:dhcp (relayed: giaddr, hops 1, options 53 55 60 61,
// then 50 54), a batch at a time, for the bench's machines. CPU per exchange (user + system of this process,
// GC included) and the garbage collections. A quick A/B tool for the handler path: bench:dhcp is the figure.
// It runs dist/ (what the server runs: rebuild with `npx tsc -p tsconfig.build.json` after changing src/).
// Usage: node scripts/bench-dhcp-path.mjs [exchanges=200000] [machines=10] [batch=32]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { writeProfiles } from './bench-profiles.mjs';
import { loadInventory } from '../dist/inventory/index.js';
import { FileLeaseStore } from '../dist/state/file/leases.js';
import { silentLogger } from '../dist/log.js';
import { defaultConfig } from '../dist/config.js';
import { startDhcpServer } from '../dist/dhcp/server.js';
import { EventEncoder } from '../dist/dhcp/thread-events.js';
import { encodeDhcp, MSG } from '../dist/dhcp/packet.js';

const [EXCHANGES = 200_000, MACHINES = 10, BATCH = 32] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(join(tmpdir(), 'rolecast-dhcp-path-'));
const machines = writeProfiles(join(dir, 'profiles'), Math.max(2, MACHINES));
const inv = await loadInventory(join(dir, 'profiles'));
const store = await FileLeaseStore.open(join(dir, 'data'), silentLogger());
const events = new EventEncoder();
let eventCount = 0;
const metrics = { requests: {}, seconds: [] };
// As served: bound to 0.0.0.0 with a second socket on the server's address (the reply socket).
const config = { ...defaultConfig().dhcp, bind: '0.0.0.0', port: 67 };
let isoMs = 0;
let iso = '';
const isoNow = () => { const ms = Date.now(); if (ms !== isoMs) { isoMs = ms; iso = new Date(ms).toISOString(); } return iso; };

let onRequest;
let sent = 0;
const out = Buffer.alloc(64 * 1024);
let outAt = 0;
const sock = (onDatagram) => {
  onRequest ??= onDatagram;
  return {
    port: 67,
    sendReply: () => { throw new Error('not used: replies go out as bytes'); },
    sendBytes: (bytes) => { if (outAt + bytes.length > out.length) outAt = 0; out.set(bytes, outAt); outAt += bytes.length; sent++; },
    close: async () => undefined,
  };
};
const server = await startDhcpServer({
  config, address: '10.0.0.1', baseUrl: 'http://10.0.0.1:8080', getInventory: () => inv, leases: store,
  events: { emit: (e) => { events.add(e, e.at ?? isoNow()); eventCount++; } }, logger: silentLogger(),
  metrics: {
    request: (t) => { metrics.requests[t] = (metrics.requests[t] ?? 0) + 1; },
    dropped: (reason) => { if (reason === 'error') throw new Error('the DHCP path failed on a request (the harness is out of step with the listener?)'); },
    handled: (since) => { metrics.seconds.push((performance.now() - since) / 1e3); },
  },
  openSocket: async (_a, _p, onDatagram) => sock(onDatagram),
});

const PXE = Buffer.from('PXEClient:Arch:00000:UNDI:002001');
function packet(type, mac, ip, xid) {
  const chaddr = Buffer.alloc(16);
  mac.split(':').forEach((h, i) => { chaddr[i] = parseInt(h, 16); });
  const options = new Map([[53, Buffer.from([type])]]);
  if (type === MSG.REQUEST) { options.set(50, Buffer.from(ip.split('.').map(Number))); options.set(54, Buffer.from([10, 0, 0, 1])); }
  options.set(55, Buffer.from([1, 28, 2, 3, 15, 6, 12]));
  options.set(60, PXE);
  options.set(61, Buffer.concat([Buffer.from([1]), chaddr.subarray(0, 6)]));
  const p = { op: 1, htype: 1, hlen: 6, hops: 1, xid, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0', giaddr: '10.3.250.1', chaddr, sname: '', file: '', options };
  return encodeDhcp(p);
}
const from = { address: '10.3.250.1', port: 67 };
const turn = () => new Promise((r) => setImmediate(r));
let xid = 1;
let gcs = 0;
let gcMs = 0;
new PerformanceObserver((l) => { for (const e of l.getEntries()) { gcs++; gcMs += e.duration; } }).observe({ entryTypes: ['gc'] });

// Each machine's two requests, made once; a request's xid is written into its bytes as it goes (as a receive
// buffer is reused), so the harness's own cost per request stays out of the figure.
const discovers = machines.map((m) => packet(MSG.DISCOVER, m.mac, m.ip, 0));
const requests = machines.map((m) => packet(MSG.REQUEST, m.mac, m.ip, 0));

async function run(n) {
  for (let done = 0; done < n; done += BATCH) {
    const x0 = xid;
    for (let i = 0; i < BATCH; i++) { const b = discovers[(done + i) % discovers.length]; b.writeUInt32BE(xid++ >>> 0, 4); onRequest(b, from); }
    await turn();
    xid = x0;
    for (let i = 0; i < BATCH; i++) { const b = requests[(done + i) % requests.length]; b.writeUInt32BE(xid++ >>> 0, 4); onRequest(b, from); }
    await turn();
    if (events.length > 2000) events.take();
    if (metrics.seconds.length > 2000) metrics.seconds = [];
  }
}

await run(20_000); // warm, as the thread is after its warm-up and the bench's 1000/s phase
const c0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const g0 = gcs;
const gm0 = gcMs;
const s0 = sent;
await run(EXCHANGES);
const cpu = process.cpuUsage(c0);
const wall = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(`${EXCHANGES} exchanges (${MACHINES} machines, batches of ${BATCH}): ${((cpu.user + cpu.system) / EXCHANGES).toFixed(1)} µs CPU per exchange `
  + `(user ${(cpu.user / EXCHANGES).toFixed(1)}, system ${(cpu.system / EXCHANGES).toFixed(1)}), wall ${(wall * 1000 / EXCHANGES).toFixed(1)} µs; `
  + `${sent - s0} replies; ${gcs - g0} GCs, ${(gcMs - gm0).toFixed(0)} ms in GC; ${eventCount} events`);
await server.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
