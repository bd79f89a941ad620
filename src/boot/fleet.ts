/**
 * Every machine's content hash against what it was last served: `rolecast diff` and GET /api/machines.
 * Asks the plan like every route (as the rootfs request of the machine's first NIC would), so "next
 * boot changes" means exactly what the next rootfs fetch would get.
 */
import type { Inventory, Machine } from '../inventory/types.js';
import type { RenderContext } from '../render/types.js';
import type { ServedEntry, ServedRecord } from '../state/types.js';
import { planBoot, type BootTargetPlan } from './plan.js';
import { machineContentHashOf } from './content.js';

export interface FleetRow {
  host: string;
  mac: string;
  role: string;
  homeRole: string;
  /** Content hash of what the next rootfs fetch would get (null: the machine gets no boot answer). */
  hash: string | null;
  served?: ServedEntry;
  status: 'changed' | 'unchanged' | 'never-served' | 'no-boot';
}

/** The plan of the machine's next rootfs fetch (its first NIC's), and the role it names. */
export function rootfsPlanOf(inv: Inventory, ctx: RenderContext, m: Machine): { mac: string; role: string; plan?: BootTargetPlan } {
  const mac = m.macs[0]!;
  const plan = planBoot({ mac, protocol: 'http', request: 'rootfs', ipxe: true, pxe: true }, inv, { baseUrl: ctx.baseUrl, ...(ctx.images ? { images: ctx.images } : {}) });
  return plan.action === 'ignore' ? { mac, role: m.bootOnce ?? m.role } : { mac, role: plan.role.name, plan };
}

export function fleetRow(inv: Inventory, ctx: RenderContext, m: Machine, served: Readonly<ServedRecord>): FleetRow {
  const { mac, plan } = rootfsPlanOf(inv, ctx, m);
  const last = m.macs.map((x) => served[x]).find((x) => x !== undefined);
  if (!plan) return { host: m.host, mac, role: m.bootOnce ?? m.role, homeRole: m.role, hash: null, ...(last ? { served: last } : {}), status: 'no-boot' };
  const hash = machineContentHashOf(plan, inv, ctx);
  const status = !last ? 'never-served' : last.hash === hash ? 'unchanged' : 'changed';
  return { host: m.host, mac, role: plan.role.name, homeRole: m.role, hash, ...(last ? { served: last } : {}), status };
}

export function fleet(inv: Inventory, ctx: RenderContext, served: Readonly<ServedRecord>): FleetRow[] {
  return inv.machines.map((m) => fleetRow(inv, ctx, m, served));
}
