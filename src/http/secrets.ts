/**
 * The boot-time secret path (issue 16) and signed phone-home.
 *
 *   GET  /secrets/<mac>               the machine's secret files and this boot's phone-home key, as a tar
 *                                     (rolecast-boot.key + each secret file at its path), once per
 *                                     boot: from a source port below 1024, from the machine's own
 *                                     address, with the boot token its script carried, within the window
 *   POST /api/machines/<mac>/events   phone-home; signed (X-Rolecast-Boot, X-Rolecast-Signature: HMAC
 *                                     of the body with the boot key) it is recorded as verified,
 *                                     unsigned as an unverified claim, wrongly signed it is refused
 *
 * Every refusal of a secret fetch is a catalogue error and an `http-secret-denied` event naming the
 * reason; no byte of a secret leaves before every check passed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { RenderContext, RenderedFile } from '../render/types.js';
import type { State } from '../state/types.js';
import type { ImageView } from '../images/view.js';
import { normaliseMac } from '../boot/facts.js';
import { planBoot } from '../boot/plan.js';
import { machineContent } from '../boot/content.js';
import { RolecastError } from '../errors.js';
import { planRootfs } from '../rootfs/compose.js';
import { BootTokens, SecretRefusal } from '../boottokens.js';
import { pathParams, sourceAddress } from './common.js';

/**
 * The bundle's member for the boot key: at the top, outside any path of the root. The initramfs keeps
 * it in /run/rolecast/boot.key (root only, a tmpfs: never in the root filesystem, so never captured
 * into an image) and deletes the member from the new root after unpacking the rest there.
 */
export const BOOT_KEY_MEMBER = '/rolecast-boot.key';

export interface SecretsDeps {
  getInventory: () => Inventory;
  ctx: RenderContext;
  state: State;
  tokens: BootTokens;
  images: (inv: Inventory) => Promise<ImageView>;
}

/** The bundle: the boot key and the secret files, as the tar the initramfs unpacks into the new root. */
export async function secretBundle(files: readonly RenderedFile[], phoneKey: string): Promise<Buffer> {
  const all = [{ path: BOOT_KEY_MEMBER, mode: 0o600, content: `${phoneKey}\n`, secret: true }, ...files.filter((f) => f.secret && f.path !== BOOT_KEY_MEMBER)];
  const plan = await planRootfs({ files: all });
  return Buffer.concat(plan.segments.map((s) => (s.kind === 'buffer' ? s.data : Buffer.alloc(0))));
}

const macParam = { type: 'object', properties: { mac: { type: 'string', maxLength: 32 } }, required: ['mac'] } as const;
const eventBody = {
  type: 'object', required: ['stage'], additionalProperties: false,
  properties: { stage: { enum: ['initramfs', 'booted', 'failed'] }, detail: { type: 'string', maxLength: 1024 } },
} as const;

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7).trim() : undefined;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v.trim() : undefined;
}

export function registerSecrets(app: FastifyInstance, deps: SecretsDeps): void {
  const { state, tokens } = deps;

  app.get<{ Params: { mac: string } }>('/secrets/:mac', { schema: { params: pathParams('mac') } }, async (req, reply) => {
    const mac = normaliseMac(req.params.mac);
    if (!mac) throw new RolecastError('E_BAD_MAC', `"${req.params.mac}" is not a MAC address`);
    const inv = deps.getInventory();
    const from = sourceAddress(req);
    const plan = planBoot({ mac, protocol: 'http', ipxe: true, pxe: true, request: 'files', address: from }, inv, { baseUrl: deps.ctx.baseUrl, images: await deps.images(inv) });
    if (plan.action === 'ignore') throw new RolecastError('E_UNKNOWN_MACHINE', `no secrets for ${mac}: ${plan.reason}`);
    const who = { mac, ...(plan.host ? { host: plan.host } : {}), address: from };
    let admitted;
    try {
      admitted = await tokens.admit({ mac, token: bearer(req), address: from, port: req.socket.remotePort ?? 0, owner: plan.machine?.ip });
    } catch (err) {
      if (err instanceof SecretRefusal) {
        req.log.warn({ ...who, port: req.socket.remotePort, code: err.code }, `secret bundle refused: ${err.message}`);
        state.events.emit({ ...who, stage: 'http-secret-denied', detail: `${err.code}: ${err.message}` });
      }
      throw err;
    }
    const files = machineContent(plan, inv, deps.ctx).files.filter((f) => f.secret);
    state.events.emit({ ...who, stage: 'http-secrets', detail: `boot ${admitted.rec.seq.toString(36)}: ${files.length} secret file(s)` });
    return reply.type('application/x-tar').header('cache-control', 'no-store').send(await secretBundle(files, admitted.phoneKey));
  });

  // Phone-home keeps the raw body: the signature is over the bytes sent, not over a re-serialisation.
  void app.register(async (sub) => {
    sub.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: 4096 }, (req, body, done) => {
      (req as FastifyRequest & { rawBody?: Buffer }).rawBody = body as Buffer;
      try {
        done(null, JSON.parse((body as Buffer).toString('utf8')));
      } catch (err) {
        done(new RolecastError('E_BAD_REQUEST', `body is not JSON: ${(err as Error).message}`), undefined);
      }
    });
    sub.post<{ Params: { mac: string }; Body: { stage: 'initramfs' | 'booted' | 'failed'; detail?: string } }>('/api/machines/:mac/events', {
      bodyLimit: 4096, schema: { params: macParam, body: eventBody },
    }, async (req, reply) => {
      const mac = normaliseMac(req.params.mac);
      if (!mac) throw new RolecastError('E_BAD_MAC', `"${req.params.mac}" is not a MAC address`);
      const raw = (req as FastifyRequest & { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0);
      const trust = tokens.checkEvent(mac, header(req, 'x-rolecast-boot'), header(req, 'x-rolecast-signature'), raw);
      const host = deps.getInventory().byMac.get(mac)?.host;
      state.events.emit({
        mac, stage: req.body.stage, ...(host ? { host } : {}), ...(req.body.detail ? { detail: req.body.detail } : {}), address: sourceAddress(req),
        verified: trust.verified,
      });
      return reply.code(202).send({ ok: true, verified: trust.verified });
    });
  });
}
