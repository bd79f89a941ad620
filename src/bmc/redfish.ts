/**
 * Redfish (DMTF DSP0266) power driver. Schema names it follows: ServiceRoot, ComputerSystemCollection
 * (`/redfish/v1/Systems`, first member), ComputerSystem (`PowerState`, `Boot.BootSourceOverrideTarget`
 * = `Pxe` with `Boot.BootSourceOverrideEnabled` = `Once`, `Actions/#ComputerSystem.Reset` with
 * `ResetType` On | ForceOff | PowerCycle | ForceRestart and its `ResetType@Redfish.AllowableValues`),
 * SessionService / SessionCollection (`/redfish/v1/SessionService/Sessions`, `X-Auth-Token`).
 *
 * Every call logs in with a session and deletes it afterwards, also when the call failed or timed
 * out: BMCs have a handful of session slots, and sessions left to expire lock everyone out until they
 * do (theforeman smart-proxy#895, gofish#75). A BMC without a session service (404/405/501 on login)
 * gets HTTP Basic auth instead. PATCH carries If-Match when the BMC gave an ETag (DSP0266 §
 * "Modification requests": some BMCs answer 428 without it).
 */
import { BmcError, bmcLabel, type BmcTarget, type PowerDriver, type PowerReading } from './types.js';
import { httpJson, type HttpAnswer } from './http.js';

const SESSIONS = '/redfish/v1/SessionService/Sessions';
type Auth = Record<string, string>;
type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Sessions still being deleted after their call was aborted (the process waits for them before exiting). */
const closing = new Set<Promise<void>>();
export function sessionsClosing(): Promise<void> {
  return Promise.all([...closing]).then(() => undefined);
}

interface System { path: string; body: Record<string, unknown>; etag?: string }

const NET_UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export class RedfishDriver implements PowerDriver {
  private readonly label: string;
  private readonly base: string;
  constructor(private readonly t: BmcTarget) {
    this.label = bmcLabel(t);
    this.base = `${t.scheme}://${t.host.includes(':') ? `[${t.host}]` : t.host}${t.port ? `:${t.port}` : ''}`;
  }

  async status(signal: AbortSignal): Promise<PowerReading> {
    return this.withAuth(signal, async (auth) => {
      const sys = await this.system(auth, signal);
      return reading(sys.body.PowerState);
    });
  }

  async on(signal: AbortSignal): Promise<void> { await this.resetTo(signal, 'On'); }
  async off(signal: AbortSignal): Promise<void> { await this.resetTo(signal, 'ForceOff'); }
  async reset(signal: AbortSignal): Promise<void> { await this.resetTo(signal, 'ForceRestart'); }
  async cycle(signal: AbortSignal): Promise<void> { await this.resetTo(signal, 'PowerCycle'); }

  async pxeOnce(signal: AbortSignal): Promise<void> {
    await this.withAuth(signal, async (auth) => {
      const sys = await this.system(auth, signal);
      const headers: Auth = { ...auth, ...(sys.etag ? { 'if-match': sys.etag } : {}) };
      const r = await this.req('PATCH', sys.path, headers, signal, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } });
      this.check(r, 'setting the next boot to Pxe');
    });
  }

  /**
   * ComputerSystem.Reset with `type`. On and ForceOff on a system already in that state succeed without
   * a request (some BMCs answer 409 there). PowerCycle falls back to ForceRestart when the BMC lists
   * its allowed ResetTypes without it (several do).
   */
  private async resetTo(signal: AbortSignal, type: 'On' | 'ForceOff' | 'PowerCycle' | 'ForceRestart'): Promise<void> {
    await this.withAuth(signal, async (auth) => {
      const sys = await this.system(auth, signal);
      const power = reading(sys.body.PowerState).state;
      if ((type === 'On' && power === 'on') || (type === 'ForceOff' && power === 'off')) return;
      const action = (sys.body.Actions as Record<string, { target?: string; 'ResetType@Redfish.AllowableValues'?: string[] }> | undefined)?.['#ComputerSystem.Reset'];
      if (!action?.target) throw new BmcError('protocol', `BMC ${this.label}: ${sys.path} has no #ComputerSystem.Reset action`);
      const allowed = action['ResetType@Redfish.AllowableValues'];
      let want: string = type;
      if (allowed && !allowed.includes(type)) {
        if (type === 'PowerCycle' && allowed.includes('ForceRestart')) want = 'ForceRestart';
        else throw new BmcError('refused', `BMC ${this.label} does not offer ResetType ${type} (allowed: ${allowed.join(', ')})`);
      }
      const r = await this.req('POST', action.target, auth, signal, { ResetType: want });
      this.check(r, `ComputerSystem.Reset ${want}`);
    });
  }

  private async system(auth: Auth, signal: AbortSignal): Promise<System> {
    const list = await this.req('GET', '/redfish/v1/Systems', auth, signal);
    this.check(list, 'reading /redfish/v1/Systems');
    const first = (list.json as { Members?: Array<{ '@odata.id'?: string }> } | undefined)?.Members?.[0]?.['@odata.id'];
    if (!first) throw new BmcError('protocol', `BMC ${this.label}: /redfish/v1/Systems lists no ComputerSystem`);
    const sys = await this.req('GET', first, auth, signal);
    this.check(sys, `reading ${first}`);
    if (typeof sys.json !== 'object' || sys.json === null) throw new BmcError('protocol', `BMC ${this.label}: ${first} is not JSON`);
    const body = sys.json as Record<string, unknown>;
    const etag = typeof sys.headers.etag === 'string' ? sys.headers.etag : typeof body['@odata.etag'] === 'string' ? body['@odata.etag'] : undefined;
    return { path: first, body, ...(etag ? { etag } : {}) };
  }

  /** Log in, run `fn`, log out — the logout also after a failure or an abort. */
  private async withAuth<T>(signal: AbortSignal, fn: (auth: Auth) => Promise<T>): Promise<T> {
    const login = await this.req('POST', SESSIONS, {}, signal, { UserName: this.t.user, Password: this.t.password });
    if (login.status === 404 || login.status === 405 || login.status === 501) {
      // No SessionService: HTTP Basic on every request (DSP0266 allows either).
      return fn({ authorization: `Basic ${Buffer.from(`${this.t.user}:${this.t.password}`).toString('base64')}` });
    }
    this.check(login, 'logging in');
    const token = header(login, 'x-auth-token');
    const where = header(login, 'location') ?? (login.json as { '@odata.id'?: string } | undefined)?.['@odata.id'];
    if (!token) throw new BmcError('protocol', `BMC ${this.label}: session login answered ${login.status} without X-Auth-Token`);
    try {
      return await fn({ 'x-auth-token': token });
    } finally {
      if (where) {
        const done = this.logout(where, token);
        if (signal.aborted) {
          closing.add(done);
          void done.finally(() => closing.delete(done));
        } else {
          await done;
        }
      }
    }
  }

  /** DELETE the session with its own short timeout: the call's own signal may have fired already. */
  private async logout(where: string, token: string): Promise<void> {
    try {
      await this.req('DELETE', where, { 'x-auth-token': token }, AbortSignal.timeout(5000));
    } catch {
      // Nothing more to do: the BMC will expire it. The call's own result stands.
    }
  }

  private async req(method: Method, path: string, headers: Auth, signal: AbortSignal, body?: unknown): Promise<HttpAnswer> {
    const url = new URL(path, this.base);
    try {
      return await httpJson({ method, url, headers, body, signal, tlsVerify: this.t.tlsVerify });
    } catch (err) {
      if (signal.aborted) throw err;
      const code = (err as { code?: string }).code ?? '';
      if (NET_UNREACHABLE.has(code)) throw new BmcError('unreachable', `BMC ${this.label} unreachable (${code})`, true, { cause: err });
      if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) throw new BmcError('unreachable', `BMC ${this.label}: TLS certificate not trusted (${code}); set tls_verify: false for a self-signed BMC certificate`, false, { cause: err });
      // A reset connection may come after the BMC acted: only reads are safe to repeat.
      throw new BmcError('unreachable', `BMC ${this.label}: connection failed (${code || (err as Error).message})`, method === 'GET', { cause: err });
    }
  }

  private check(r: HttpAnswer, what: string): void {
    if (r.status >= 200 && r.status < 300) return;
    const msg = redfishMessage(r);
    if (r.status === 401 || r.status === 403) throw new BmcError('auth', `BMC ${this.label}: authentication refused while ${what} (HTTP ${r.status})`);
    if (r.status === 503 || r.status === 429) throw new BmcError('busy', `BMC ${this.label} is busy (HTTP ${r.status}) while ${what}${msg}`, true);
    if (r.status >= 500) throw new BmcError('protocol', `BMC ${this.label}: HTTP ${r.status} while ${what}${msg}`);
    throw new BmcError('refused', `BMC ${this.label} refused ${what} (HTTP ${r.status})${msg}`);
  }
}

function header(r: HttpAnswer, name: string): string | undefined {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The Redfish error's own message (error.@Message.ExtendedInfo[0].Message or error.message). */
function redfishMessage(r: HttpAnswer): string {
  const e = (r.json as { error?: { message?: string; '@Message.ExtendedInfo'?: Array<{ Message?: string }> } } | undefined)?.error;
  const m = e?.['@Message.ExtendedInfo']?.[0]?.Message ?? e?.message;
  return m ? `: ${m}` : '';
}

/** PowerState On/Off is a state; PoweringOn, PoweringOff, Paused or a missing value is reported as said. */
export function reading(p: unknown): PowerReading {
  if (p === 'On') return { state: 'on', detail: 'PowerState On' };
  if (p === 'Off') return { state: 'off', detail: 'PowerState Off' };
  return { detail: `PowerState ${typeof p === 'string' ? p : 'missing'}` };
}
