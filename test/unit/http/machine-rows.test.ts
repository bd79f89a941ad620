/**
 * GET /api/machines' rows are made once per snapshot up to their live fields, and a request appends
 * those: the text must be what serialising each row whole gives (the definition below), pending or
 * hashed, with served records and stages on some machines and not others, and after they change.
 */
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { loadInventory } from '../../../src/inventory/index.js';
import { backgroundTurn, inForeground, machineApiJson, plannedRow, publishedHash, warmContentHashes, warmMachineRows } from '../../../src/http/machines.js';
import { rootfsPlanOf } from '../../../src/boot/fleet.js';
import type { Inventory, Machine } from '../../../src/inventory/types.js';
import type { RenderContext } from '../../../src/render/types.js';
import type { State } from '../../../src/state/types.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');

type Served = Record<string, { hash: string | null; at: string; role: string }>;

function stateOf(served: Served, stages: Map<string, { stage: string; at: string }>): State {
  return { served: { all: () => served }, events: { last: (mac: string) => stages.get(mac) } } as unknown as State;
}

/** A row as the route defines it, serialised whole. */
function definition(inv: Inventory, ctx: RenderContext, key: Buffer, served: Served, stages: Map<string, { stage: string; at: string }>, pending: boolean): string {
  const pub = (h: string | null | undefined) => (h ? publishedHash(key, h) : null);
  return JSON.stringify(inv.machines.map((m: Machine) => {
    const last = m.macs.map((x) => served[x]).find((x) => x !== undefined);
    const stage = stages.get(m.macs[0]!);
    if (pending) {
      const { role } = rootfsPlanOf(inv, ctx, m);
      return { host: m.host, macs: m.macs, role, homeRole: m.role, ip: m.ip, addresses: m.addresses, hash: null, lastServedHash: pub(last?.hash), changed: null, hashPending: true, lastStage: stage?.stage ?? null, lastStageAt: stage?.at ?? null };
    }
    const row = plannedRow(inv, ctx, m);
    return {
      host: m.host, macs: m.macs, role: row.role, homeRole: m.role, ip: m.ip, addresses: m.addresses, hash: pub(row.hash), lastServedHash: pub(last?.hash),
      changed: last && row.hash !== null ? last.hash !== row.hash : null, lastStage: stage?.stage ?? null, lastStageAt: stage?.at ?? null,
    };
  }));
}

async function text(gen: AsyncGenerator<string>): Promise<string> {
  let s = '';
  for await (const x of gen) s += x;
  return s;
}

describe('GET /api/machines rows', () => {
  it('are the rows serialised whole, pending and hashed, before and after the live fields change', async () => {
    const inv = await loadInventory(PROFILES);
    const key = Buffer.alloc(32, 9);
    const ctx: RenderContext = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1', serverKey: key, images: { current: {}, pins: {} } };
    const served: Served = {};
    const stages = new Map<string, { stage: string; at: string }>();
    const state = stateOf(served, stages);
    await warmMachineRows(inv, ctx, { pending: true });
    expect(await text(machineApiJson(inv, ctx, state, key, true))).toBe(definition(inv, ctx, key, served, stages, true));
    await warmContentHashes(inv, ctx);
    await warmMachineRows(inv, ctx);
    expect(await text(machineApiJson(inv, ctx, state, key, false))).toBe(definition(inv, ctx, key, served, stages, false));
    // Live fields: a served record on a second NIC, one with the current hash, one with no hash, stages.
    const [a, b, c] = inv.machines;
    served[a!.macs[a!.macs.length - 1]!] = { hash: 'deadbeef', at: '2026-01-01T00:00:00Z', role: a!.role };
    served[b!.macs[0]!] = { hash: plannedRow(inv, ctx, b!).hash, at: '2026-01-01T00:00:01Z', role: b!.role };
    served[c!.macs[0]!] = { hash: null, at: '2026-01-01T00:00:02Z', role: c!.role };
    stages.set(a!.macs[0]!, { stage: 'dhcp-ack', at: '2026-01-02T00:00:00Z' });
    stages.set(c!.macs[0]!, { stage: 'booted', at: '2026-01-02T00:00:01Z' });
    for (const pending of [true, false]) {
      const got = await text(machineApiJson(inv, ctx, state, key, pending));
      expect(got).toBe(definition(inv, ctx, key, served, stages, pending));
      expect(JSON.parse(got)).toHaveLength(inv.machines.length);
    }
  });

  it('background slices wait for an answer being written, a bounded while, and go on as soon as it ends', async () => {
    let t = performance.now();
    await backgroundTurn();
    expect(performance.now() - t).toBeLessThan(15); // nothing in the foreground: just a turn of the loop
    async function* answer(ms: number): AsyncGenerator<string> { yield 'a'; await new Promise((r) => setTimeout(r, ms)); yield 'b'; }
    const long = inForeground(answer(200));
    await long.next(); // under way
    t = performance.now();
    await backgroundTurn();
    const waited = performance.now() - t;
    expect(waited).toBeGreaterThanOrEqual(15); // gave the answer the loop...
    expect(waited).toBeLessThan(150); // ...but not for as long as it lasts
    const short = inForeground(answer(5));
    await short.next();
    const turn = backgroundTurn();
    await long.return(undefined); // one answer ends, the other still runs: the turn still waits
    for await (const _ of short) { /* drained: no answer left */ }
    t = performance.now();
    await turn;
    expect(performance.now() - t).toBeLessThan(15);
  });
});

