/**
 * /metrics from prom-client as Prometheus scrapes it, checked by Prometheus's own promtool: DHCP messages by
 * type and drops (sent to a loopback listener: malformed, a reply, a RELEASE — none of them answered), a real
 * TFTP transfer, HTTP responses and latency, boot events, inventory size and version, leases per network,
 * reload failures, whether sendfile is in use.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { startServer, type Running } from '../../../src/main.js';
import { silentLogger } from '../../../src/log.js';
import { encodeDhcp } from '../../../src/dhcp/packet.js';
import { tftpGet } from '../../helpers/tftp-client.js';
import { placeholderImages } from '../../helpers/images.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-metrics-'));
const READ = 'm'.repeat(32);
let running: Running;

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  await placeholderImages(join(dir, 'profiles'), join(dir, 'images'));
  const base = defaultConfig();
  const cfg: ServerConfig = {
    ...base, profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '127.0.0.1',
    http: { ...base.http, host: '127.0.0.1', port: 0, tokens: { read: [READ] } },
    tftp: { ...base.tftp, bind: '127.0.0.1', port: 0 },
    dhcp: { ...base.dhcp, bind: '127.0.0.1', port: 0 },
  };
  running = await startServer(cfg, silentLogger());
});
afterAll(async () => { await running?.close(); rmSync(dir, { recursive: true, force: true }); });

function dhcp(op: number, type: number): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from('525400aa0001', 'hex').copy(chaddr);
  return encodeDhcp({ op, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options: new Map([[53, Buffer.from([type])], [54, Buffer.from([127, 0, 0, 1])]]) });
}

async function metrics(): Promise<string> {
  return (await fetch(`http://127.0.0.1:${running.httpPort}/metrics`)).text();
}

it('counts DHCP, TFTP, HTTP, boots, inventory, leases, reloads and passes promtool check metrics', async () => {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  for (const pkt of [Buffer.from('not dhcp'), dhcp(2, 2), dhcp(1, 7), dhcp(1, 7)]) await new Promise<void>((r) => sock.send(pkt, running.dhcpPort!, '127.0.0.1', () => r()));
  sock.close();
  const got = await tftpGet(running.tftpPort!, 'undionly.kpxe');
  expect(got.data?.length ?? 0).toBeGreaterThan(0);
  await fetch(`http://127.0.0.1:${running.httpPort}/boot/52:54:00:00:02:01.ipxe`);
  await fetch(`http://127.0.0.1:${running.httpPort}/images/nope`);
  // A broken edit: refused, counted.
  appendFileSync(join(dir, 'profiles/machines.yaml'), '\n- { host: broken\n');
  await running.store.reload();

  let m = '';
  for (let i = 0; i < 50; i++) {
    m = await metrics();
    if (/^rolecast_dhcp_requests_total\{type="release"\} 2$/m.test(m) && /^rolecast_tftp_requests_total\{result="completed"\} [1-9]/m.test(m)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(m).toMatch(/^rolecast_dhcp_requests_total\{type="release"\} 2$/m);
  expect(m).toMatch(/^rolecast_dhcp_dropped_total\{reason="malformed"\} 1$/m);
  expect(m).toMatch(/^rolecast_dhcp_dropped_total\{reason="not_request"\} 1$/m);
  expect(m).toMatch(/^rolecast_dhcp_handle_seconds_count 2$/m);
  expect(m).toMatch(/^rolecast_tftp_requests_total\{result="completed"\} 1$/m);
  expect(m).toMatch(/^rolecast_tftp_bytes_total [1-9]\d*$/m);
  expect(m).toMatch(/^rolecast_tftp_transfer_seconds_count 1$/m);
  expect(m).toMatch(/^rolecast_http_responses_total\{route="\/boot\/:file",status="2xx"\} 1$/m);
  expect(m).toMatch(/^rolecast_http_errors_total\{route="\/images\/:name",code="404"\} 1$/m);
  expect(m).toMatch(/^rolecast_http_request_duration_seconds_count\{route="\/boot\/:file"\} 1$/m);
  expect(m).toMatch(/^rolecast_boot_events_total\{stage="http-script"\} 1$/m);
  expect(m).toMatch(/^rolecast_inventory_machines 10$/m);
  expect(m).toMatch(new RegExp(`^rolecast_inventory_info\\{version="${running.store.current().version.slice(0, 12)}"\\} 1$`, 'm'));
  expect(m).toMatch(/^rolecast_leases_in_use\{network="prov"\} \d+$/m);
  expect(m).toMatch(/^rolecast_reload_failures_total [1-9]$/m);
  expect(m).toMatch(/^rolecast_sendfile_in_use [01]$/m);
  expect(m).toMatch(/^rolecast_http_bulk_sends\{state="queued"\} 0$/m);
  expect(m).toMatch(/^rolecast_http_bulk_overran_total 0$/m);
  expect(m).toMatch(/^rolecast_http_bulk_closed_total \d+$/m);
  expect(m).toMatch(/^rolecast_tcp_memory_pressure [01]$/m); // the host's real flag (bulkWhen: pressure by default)
  expect(m).toMatch(/^rolecast_process_cpu_seconds_total /m);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: m, encoding: 'utf8' });
  expect(check.stdout + check.stderr).toBe('');
  expect(check.status).toBe(0);
}, 60_000);
