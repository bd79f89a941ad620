/**
 * Read and act routes the web UI needs beside the API (same tokens, same error shape):
 *
 *   GET  /api/fleet                    every machine, compact: role, MACs, address, firmware seen, stage
 *   GET  /api/machines/:host/files     the files it gets — path, mode, secret flag; size and sha256 only of
 *                                      files that are not secret (both derive from the secret); contents never
 *   POST /api/machines/:host/boot-once {target|null, confirm?}: a maintenance target once (admin)
 *   GET  /api/profiles/status          snapshot version and the last reload, with its errors if refused
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Inventory, Machine } from '../inventory/types.js';
import type { BootEvent } from '../events/types.js';
import type { RenderContext } from '../render/types.js';
import { firmwareOf, normaliseMac } from '../boot/facts.js';
import type { PowerAction, State } from '../state/types.js';
import { planBoot } from '../boot/plan.js';
import { machineContent } from '../boot/content.js';
import { fleetRow } from '../boot/fleet.js';
import type { ImageView } from '../images/view.js';
import { RolecastError } from '../errors.js';
import { inForeground, plannedRow, publishedHash, sliced, slicedArray } from './machines.js';
import { Readable } from 'node:stream';
import { requireToken, type TokenSet } from './auth.js';
import { serverKey } from '../serverkey.js';
import { pathParams } from './common.js';

/** The last reload of the profiles as the inventory store saw it (src/inventory/watch.ts). */
export interface ReloadStatus {
  at: string;
  ok: boolean;
  issues?: string[];
}

export interface FleetDeps {
  getInventory: () => Inventory;
  state: State;
  ctx: RenderContext;
  dataDir: string;
  tokens: TokenSet;
  lastReload?: () => ReloadStatus | undefined;
  setBootOnce?: (host: string, target: string | null) => Promise<void>;
  /** The image store's view now (current and staged role image versions): part of "next boot changes". */
  images?: (inv: Inventory) => Promise<ImageView>;
}

/** Firmware from the last PXE DISCOVER's vendor class ("PXEClient:Arch:00007:..."; RFC 4578 §2.1). */
export function firmwareSeen(timeline: readonly BootEvent[]): string | null {
  for (let i = timeline.length - 1; i >= 0; i--) {
    const e = timeline[i]!;
    if (e.stage !== 'dhcp-discover' || !e.detail) continue;
    const arch = /Arch:(\d{5})/.exec(e.detail)?.[1];
    if (arch !== undefined) return firmwareOf(Number(arch));
  }
  return null;
}

/** The last power state a BMC reported for a host (never guessed: null when none was read), and when. */
export function lastPower(actions: readonly PowerAction[]): { state: 'on' | 'off'; at: string } | null {
  for (let i = actions.length - 1; i >= 0; i--) {
    const a = actions[i]!;
    if (a.ok && a.state) return { state: a.state, at: a.at };
  }
  return null;
}

/** Line n (1-based) of a text, without splitting all of it (machines.yaml is 10,000 lines at scale). */
export function lineOf(text: string, n: number): string | undefined {
  let at = 0;
  for (let i = 1; i < n; i++) {
    at = text.indexOf('\n', at) + 1;
    if (at === 0) return undefined;
  }
  const end = text.indexOf('\n', at);
  return end < 0 ? text.slice(at) : text.slice(at, end);
}

function findMachine(inv: Inventory, key: string): Machine | undefined {
  return inv.byHost.get(key) ?? inv.byMac.get(normaliseMac(key) ?? '');
}

const bootOnceBody = {
  type: 'object', required: ['target'], additionalProperties: false,
  properties: { target: { type: ['string', 'null'], pattern: '^[A-Za-z0-9_-]+$', maxLength: 64 }, confirm: { type: 'string', maxLength: 255 } },
} as const;

// Each machine's /api/fleet row as JSON text up to its live fields (host, macs, role, homeRole, bootOnce,
// ip: the snapshot's alone), made once per snapshot in slices; a request appends changed, stage,
// stageAt, firmware and power (all null for a machine with no record, event or power action).
const fleetHeads = new WeakMap<Inventory, Promise<string[]>>();
const QUIET_FLEET = ',"changed":null,"stage":null,"stageAt":null,"firmware":null,"power":null}';

/** Makes this snapshot's GET /api/fleet rows ready (at start and before a reload's swap). */
export async function warmFleetRows(inv: Inventory): Promise<void> {
  await fleetHeadsOf(inv);
}

function fleetHeadsOf(inv: Inventory): Promise<string[]> {
  let p = fleetHeads.get(inv);
  if (!p) {
    const texts = new Array<string>(inv.machines.length);
    let i = 0;
    p = sliced(inv.machines, (m) => {
      texts[i++] = JSON.stringify({ host: m.host, macs: m.macs, role: m.bootOnce ?? m.role, homeRole: m.role, bootOnce: m.bootOnce ?? null, ip: m.ip }).slice(0, -1);
    }).then(() => texts);
    fleetHeads.set(inv, p);
  }
  return p;
}

export function registerFleet(app: FastifyInstance, deps: FleetDeps): void {
  const read = requireToken(deps.tokens, 'read');
  const admin = requireToken(deps.tokens, 'admin');
  const { events, served } = deps.state;

  // "Next boot changes" only for machines that were served once (it compares with that), from the
  // per-snapshot planned rows /api/machines keeps (same render context and image view). Streamed in
  // slices like /api/machines: 10,000 rows built and serialised at once held the event loop ~50-100 ms.
  app.get('/api/fleet', { preHandler: read }, async (_req, reply) => {
    const inv = deps.getInventory();
    const all = served.all();
    const ctx = deps.images ? { ...deps.ctx, images: await deps.images(inv) } : deps.ctx;
    const heads = await fleetHeadsOf(inv);
    // Each row: its head (made once per snapshot), then what is live. Most machines have nothing live.
    const row = (m: Machine, i: number) => {
      let last: ReturnType<typeof served.all>[string] | undefined;
      for (const x of m.macs) { last = all[x]; if (last !== undefined) break; }
      const mac = m.macs[0]!;
      const e = events.last(mac);
      const timeline = events.timeline(mac);
      const actions = deps.state.power.list(m.host);
      if (!last && !e && timeline.length === 0 && actions.length === 0) return heads[i]! + QUIET_FLEET;
      const planned = last ? plannedRow(inv, ctx, m) : undefined;
      const live = {
        changed: last && planned ? planned.hash !== null && last.hash !== planned.hash : null, stage: e?.stage ?? null, stageAt: e?.at ?? null,
        firmware: firmwareSeen(timeline), power: lastPower(actions),
      };
      return `${heads[i]!},${JSON.stringify(live).slice(1)}`;
    };
    const head = `{"version":${JSON.stringify(inv.version.slice(0, 12))},"roles":${JSON.stringify(Object.keys(inv.roles).sort())},"machines":[`;
    return reply.type('application/json; charset=utf-8').send(Readable.from(inForeground(slicedArray(head, inv.machines, row, ']}'))));
  });

  app.get<{ Params: { host: string } }>('/api/machines/:host/files', { schema: { params: pathParams('host') }, preHandler: read }, async (req) => {
    const inv = deps.getInventory();
    const m = findMachine(inv, req.params.host);
    if (!m) throw new RolecastError('E_UNKNOWN_MACHINE', `no machine ${req.params.host}`);
    // What its next rootfs fetch would get: the plan's answer, exactly as /rootfs and /files give it.
    const plan = planBoot({ mac: m.macs[0]!, protocol: 'http', ipxe: true, pxe: true, request: 'files' }, inv, { baseUrl: deps.ctx.baseUrl });
    const content = plan.action === 'boot' ? machineContent(plan, inv, deps.ctx) : undefined;
    // A secret file is listed by path and mode only: its size (a password's length) and any hash of it
    // are derived from the secret (issue 16).
    const files = (content?.files ?? []).map((f) => (f.secret
      ? { path: f.path, mode: f.mode.toString(8).padStart(4, '0'), secret: true }
      : { path: f.path, mode: f.mode.toString(8).padStart(4, '0'), size: Buffer.byteLength(f.content), secret: false, sha256: createHash('sha256').update(f.content).digest('hex') }));
    // Through the state's profile store: the profiles directory, or the database's current version.
    // Unreadable (the database is down): no line, the rest of the answer stands.
    const src = await deps.state.profiles.read(m.source.file).catch(() => undefined);
    const line = src ? lineOf(src.text, m.source.line) : undefined;
    const row = fleetRow(inv, deps.images ? { ...deps.ctx, images: await deps.images(inv) } : deps.ctx, m, served.all());
    const last = row.served;
    const key = await serverKey(deps.dataDir);
    return {
      host: m.host, role: m.role, bootOnce: m.bootOnce ?? null, confirmWipe: m.confirmWipe,
      source: { file: m.source.file, line: m.source.line, text: line ?? null },
      // Keyed like /api/machines: a plain hash over files holding secrets would be an oracle for them.
      files, changed: last && row.hash ? last.hash !== row.hash : null, lastServedHash: last ? publishedHash(key, last.hash) : null, lastServedAt: last?.at ?? null,
      lastServedRole: last?.role ?? null, hash: row.hash ? publishedHash(key, row.hash) : null,
      // Maintenance targets first: they are what boot-once is for.
      targets: Object.values(inv.roles).map((r) => ({ name: r.name, kind: r.kind, destructive: r.destructive }))
        .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'maintenance' ? -1 : 1)),
    };
  });

  app.post<{ Params: { host: string }; Body: { target: string | null; confirm?: string } }>('/api/machines/:host/boot-once', { schema: { params: pathParams('host'), body: bootOnceBody }, preHandler: admin }, async (req) => {
    if (!deps.setBootOnce) throw new RolecastError('E_OFF', 'boot-once changes are off in this server');
    const inv = deps.getInventory();
    const m = inv.byHost.get(req.params.host);
    if (!m) throw new RolecastError('E_UNKNOWN_MACHINE', `no machine ${req.params.host}`);
    const { target, confirm } = req.body;
    const role = target === null ? undefined : inv.roles[target];
    if (target !== null && !role) throw new RolecastError('E_NO_SUCH_ROLE', `no role "${target}" (roles: ${Object.keys(inv.roles).sort().join(', ')})`);
    if (role?.destructive) {
      // planBoot refuses a destructive target without confirm_wipe; refuse here too rather than set a dead end.
      if (!m.confirmWipe) throw new RolecastError('E_NO_CONFIRM_WIPE', `${m.host}: "${target}" destroys disks; set confirm_wipe: true on its line in machines.yaml first`);
      if (confirm !== m.host) throw new RolecastError('E_CONFIRM', `"${target}" destroys ${m.host}'s disks: send confirm: "${m.host}"`);
    }
    await deps.setBootOnce(m.host, target);
    req.log.info({ host: m.host, target }, 'boot-once set from the API');
    return { host: m.host, bootOnce: target };
  });

  app.get('/api/profiles/status', { preHandler: read }, async () => ({ version: deps.getInventory().version.slice(0, 12), lastReload: deps.lastReload?.() ?? null }));
}
