/**
 * The DHCP thread on the postgres backend (issue 13): the PgLeaseStore runs on the thread, on a link of
 * its own, and the main thread's mirror (state.leases: TFTP, HTTP and the API read it) follows every
 * change its cache takes — this server's grants, another server's (NOTIFY), and the whole table again
 * after an outage. A real PostgreSQL 15; the DHCP socket on 127.0.0.1 (replies go nowhere: what the
 * thread decided is read from the table and the mirror).
 * - a pool client's DORA: the grant is in the table, as bound, and in the mirror;
 * - another server's grant reaches the mirror;
 * - the database stopped: a new pool client gets nothing (no split brain), a reserved machine is still
 *   answered (its grant queued); started again: the queued grant is written and the mirror is the
 *   table again, by itself.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { describePg, PgCluster } from '../../helpers/pg.js';
import { waitFor } from '../../helpers/netns.js';
import { DhcpThread } from '../../../src/dhcp/thread.js';
import { encodeDhcp, MSG } from '../../../src/dhcp/packet.js';
import { OPT } from '../../../src/dhcp/options.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { openPgState, type PgState } from '../../../src/state/pg/index.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const W106 = '52:54:00:00:02:06';
const POOL_A = '52:54:00:ee:13:01';
const POOL_B = '52:54:00:ee:13:02';
const OTHER = '52:54:00:ee:13:03';
const ipb = (a: string) => Buffer.from(a.split('.').map(Number));

describePg('the DHCP thread with its leases in PostgreSQL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-dhcp-thread-pg-'));
  let db: PgCluster;
  let main: PgState | undefined;
  let thread: DhcpThread | undefined;
  let port = 0;
  let sock: Socket;
  let xid = 1;

  const sql = async <T>(q: string, params: unknown[] = []): Promise<T[]> => {
    const c = new pg.Client({ connectionString: db.url() });
    await c.connect();
    try { return (await c.query(q, params)).rows as T[]; } finally { await c.end(); }
  };
  const rowOf = async (mac: string) => (await sql<{ ip: string; state: string }>('SELECT ip, state FROM leases WHERE mac = $1', [mac]))[0];

  function send(type: number, mac: string, requested?: string): Promise<void> {
    const chaddr = Buffer.alloc(16);
    Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
    const options = new Map<number, Buffer>([[OPT.MSG_TYPE, Buffer.from([type])], [OPT.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001')]]);
    if (requested) {
      options.set(OPT.REQUESTED_IP, ipb(requested));
      options.set(OPT.SERVER_ID, ipb('127.0.0.1'));
    }
    const bytes = encodeDhcp({ op: 1, htype: 1, hlen: 6, hops: 0, xid: xid++, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options }, [...options.keys()]);
    return new Promise((r) => sock.send(bytes, port, '127.0.0.1', () => r()));
  }

  /** DISCOVER, then REQUEST of the address offered: a reservation's (no lease for its offer), else read from the mirror. */
  async function dora(mac: string, reserved?: string): Promise<string> {
    const leases = thread!.leases;
    await send(MSG.DISCOVER, mac);
    if (!reserved) await waitFor(() => leases.addressOf(mac) !== undefined, 10_000, 20);
    const ip = reserved ?? leases.addressOf(mac)!;
    await send(MSG.REQUEST, mac, ip);
    await waitFor(() => leases.byMacLive(mac)?.state === 'bound', 10_000, 20);
    return ip;
  }

  beforeAll(async () => {
    db = await PgCluster.start();
    // The main thread's state first (it migrates the schema), without leases: the thread holds them.
    main = await openPgState(db.url(), silentLogger(), { parts: ['events'] });
    const m = main;
    thread = await DhcpThread.open({ dataDir: dir, log: { level: process.env.H13_DEBUG ? 'debug' : 'silent', pretty: false }, pg: { url: db.url() } }, silentLogger(), { canAllocate: () => m.link.up });
    const server = await thread.listen({
      config: { ...defaultConfig().dhcp, mode: 'authoritative', bind: '127.0.0.1', port: 0 }, address: '127.0.0.1', baseUrl: 'http://127.0.0.1:8080',
      inventory: await loadInventory(join(ROOT, 'test/fixtures/profiles')), sinks: { events: { emit: () => undefined }, metrics: { add: () => undefined } },
    });
    port = server.port;
    sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  }, 60_000);

  afterAll(async () => {
    sock?.close();
    await thread?.close();
    await main?.close();
    await db?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it("commits the thread's grants in the shared table and mirrors them, and another server's", async () => {
    const ip = await dora(POOL_A);
    // The ACK went out after the commit: the table has it, as bound, before the mirror does.
    expect(await rowOf(POOL_A)).toEqual({ ip, state: 'bound' });
    expect(thread!.leases.holder(ip)?.mac).toBe(POOL_A);

    const other = await openPgState(db.url(), silentLogger(), { parts: ['leases'] });
    try {
      const expiresAt = new Date(Date.now() + 3600_000).toISOString();
      expect(await other.leases.commit({ mac: OTHER, ip: '10.0.0.240', state: 'bound', expiresAt }, { network: 'prov' })).toBe(true);
    } finally {
      await other.close();
    }
    await waitFor(() => thread!.leases.holder('10.0.0.240')?.mac === OTHER, 10_000, 20);
  }, 60_000);

  it('database stopped: no pool grant, a reserved machine still answered; started: the queue written, the mirror the table again', async () => {
    await db.pgStopAsync();
    await waitFor(() => !main!.link.up, 15_000, 50);
    expect(thread!.leases.canAllocate()).toBe(false);
    await send(MSG.DISCOVER, POOL_B);
    await dora(W106, '10.0.0.106');
    expect(thread!.leases.addressOf(W106)).toBe('10.0.0.106');
    // The pool client's DISCOVER came first and was refused (no address offered, none mirrored).
    expect(thread!.leases.addressOf(POOL_B)).toBeUndefined();

    await db.pgStartAsync();
    await waitFor(async () => (await rowOf(W106).catch(() => undefined))?.state === 'bound', 20_000, 200);
    expect(await rowOf(POOL_B)).toBeUndefined();
    // After the reload the mirror holds the table: the grants from before the outage and the queued one.
    await waitFor(() => main!.link.up, 20_000, 50);
    await waitFor(() => thread!.leases.byMacLive(POOL_A)?.state === 'bound' && thread!.leases.holder('10.0.0.240')?.mac === OTHER
      && thread!.leases.byMacLive(W106)?.state === 'bound', 10_000, 20);
    // And it is a pool server again.
    await dora(POOL_B);
    expect((await rowOf(POOL_B))?.state).toBe('bound');
  }, 90_000);
});
