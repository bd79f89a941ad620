/**
 * Boot tokens at the edges (issue 16): minted when a boot script or config goes to a machine, checked
 * when its initramfs asks for the secret bundle, and the key its phone-home is signed with. The token
 * codec and the decision whether a request mints one are pure (src/boot/token.ts); this adds the
 * server key, the clock and the boot records of the state layer (State.boots).
 */
import type { BootTargetPlan } from './boot/plan.js';
import { formatBootToken, parseBootToken, phoneKey, signatureMatches, signEvent, tokenDue } from './boot/token.js';
import type { SecretsConfig } from './config.js';
import { RolecastError, type ErrorCode } from './errors.js';
import type { BootRecord, BootTokenStore, LeaseStore } from './state/types.js';

export interface BootTokensDeps {
  key: Buffer;
  boots: BootTokenStore;
  leases: LeaseStore;
  config: SecretsConfig;
  /** rolecast answers DHCP itself (authoritative): the MAC's own bound lease must be the script's source. */
  dhcpAuthoritative: boolean;
  now?: () => number;
}

/** Who asks for a secret bundle: the MAC in the URL, the token presented, the connection's ends. */
export interface SecretAsk {
  mac: string;
  token?: string;
  address: string;
  port: number;
  /** The machine's reserved address (undefined: a MAC no machine owns). */
  owner?: string;
}

/** A refusal: its catalogue code and the reason, for the error and the `http-secret-denied` event. */
export class SecretRefusal extends RolecastError {}

const refuse = (code: ErrorCode, message: string) => new SecretRefusal(code, message);

export type EventTrust = { verified: true; seq: number } | { verified: false };

export class BootTokens {
  private readonly now: () => number;
  constructor(private readonly deps: BootTokensDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** A new token when this request hands out the boot config to the MAC at its own address; else none. */
  async mint(plan: BootTargetPlan, address: string): Promise<string | undefined> {
    if (!tokenDue(plan, address, this.deps.leases.byMacLive(plan.mac), this.deps.dhcpAuthoritative)) return undefined;
    const rec = await this.deps.boots.issue(plan.mac, address, this.now());
    return formatBootToken(this.deps.key, plan.mac, rec.seq);
  }

  /** The address rolecast reserved or leased for this MAC now. */
  private ownAddress(ask: SecretAsk): boolean {
    return ask.address === ask.owner || ask.address === this.deps.leases.addressOf(ask.mac);
  }

  /**
   * Every condition of a secret fetch, cheapest first; the first that fails is thrown (SecretRefusal).
   * On success the token is spent: the bundle goes out once per boot.
   */
  async admit(ask: SecretAsk): Promise<{ rec: BootRecord; phoneKey: string }> {
    const { config, key, boots } = this.deps;
    if (config.requirePrivilegedPort && !(ask.port > 0 && ask.port < 1024)) {
      throw refuse('E_SECRET_PORT', `source port ${ask.port} is not below 1024: only root on the machine may fetch its secrets`);
    }
    if (!this.ownAddress(ask)) throw refuse('E_SECRET', `${ask.address} is not the address reserved or leased for ${ask.mac}`);
    if (!ask.token) throw refuse('E_BOOT_TOKEN', 'no boot token (Authorization: Bearer <rolecast.token>)');
    const seq = parseBootToken(key, ask.mac, ask.token);
    if (seq === undefined) throw refuse('E_BOOT_TOKEN', `not a boot token this server made for ${ask.mac}`);
    const rec = boots.current(ask.mac);
    if (!rec || rec.seq !== seq) throw refuse('E_BOOT_TOKEN_SPENT', `superseded: ${ask.mac} fetched a newer boot script since`);
    if (rec.spent) throw refuse('E_BOOT_TOKEN_SPENT', `spent: this boot's secrets went out at ${rec.spent}`);
    const age = this.now() - seq;
    if (age < 0 || age > config.windowS * 1000) throw refuse('E_BOOT_TOKEN_EXPIRED', `the token is ${Math.round(age / 1000)} s old; the window is ${config.windowS} s (secrets.windowS)`);
    if (ask.address !== rec.address) throw refuse('E_SECRET', `the token went to ${rec.address}, not ${ask.address}`);
    const spend = boots.spend(ask.mac, seq, new Date(this.now()).toISOString());
    if (!spend.won) throw refuse('E_BOOT_TOKEN_SPENT', 'spent: another request took this boot\'s secrets first');
    await spend.durable;
    return { rec, phoneKey: phoneKey(key, ask.mac, seq) };
  }

  /**
   * A phone-home body's standing: verified when signed with the current boot's key, unverified when
   * unsigned; a signature that is not the current boot's is refused (E_EVENT_SIGNATURE).
   */
  checkEvent(mac: string, boot: string | undefined, signature: string | undefined, body: Buffer): EventTrust {
    if (boot === undefined && signature === undefined) return { verified: false };
    const seq = boot !== undefined && /^[0-9a-z]{1,11}$/.test(boot) ? parseInt(boot, 36) : undefined;
    const rec = this.deps.boots.current(mac);
    if (seq === undefined || !signature || !rec || rec.seq !== seq) {
      throw new RolecastError('E_EVENT_SIGNATURE', `${mac}: boot ${boot ?? '(none)'} is not this MAC's current boot`);
    }
    if (!signatureMatches(signEvent(phoneKey(this.deps.key, mac, seq), body), signature)) {
      throw new RolecastError('E_EVENT_SIGNATURE', `${mac}: the signature does not match the body with this boot's key`);
    }
    return { verified: true, seq };
  }
}
