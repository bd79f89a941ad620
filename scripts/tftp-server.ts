// A bare rolecast TFTP server over one directory (benchmarks): `node --import tsx scripts/tftp-server.ts DIR PORT`.
import { startTftpServer } from '../src/tftp/server.js';
import { createResolver } from '../src/tftp/resolve.js';
import { defaultConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import type { Inventory } from '../src/inventory/types.js';

const [dir, port] = process.argv.slice(2);
if (!dir || !port) throw new Error('usage: tftp-server.ts DIR PORT');
const inv = { images: {}, machines: [], byIp: new Map() } as unknown as Inventory;
const resolver = createResolver({ roots: [dir], imagesDir: dir, getInventory: () => inv, ctx: { baseUrl: 'http://127.0.0.1', server: '127.0.0.1' } });
const base = defaultConfig().tftp;
const config = { ...base, busyPollUs: Number(process.env.ROLECAST_BUSY_POLL_US ?? base.busyPollUs), port: Number(port), bind: '127.0.0.1', maxTransfers: 5000, maxTransfersPerClient: 5000 };
const server = await startTftpServer({ config, resolver, events: { emit() {} }, logger: silentLogger() });
process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)); });
