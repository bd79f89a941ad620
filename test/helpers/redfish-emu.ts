/**
 * A small Redfish BMC emulator for tests. Debian packages no Redfish emulator (sushy-tools and
 * virtualbmc are not in Debian), so this stands in for the BMC; the clients talking to it are real
 * (rolecast's driver and Debian's redfishtool). It serves the DMTF schema pieces a power driver uses:
 * ServiceRoot, ComputerSystemCollection with one ComputerSystem (PowerState, Boot override,
 * #ComputerSystem.Reset with its AllowableValues, an ETag it checks on PATCH), SessionService with
 * X-Auth-Token sessions (counted, so tests can check every session was deleted) and HTTP Basic.
 * The power itself is a backend: a variable, or a QEMU VM driven through QMP (QemuPower).
 * Failure modes for tests: a number of 503 answers, a delay, a BMC that accepts and never answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';

export interface PowerBackend {
  state(): Promise<'On' | 'Off'>;
  on(): Promise<void>;
  off(): Promise<void>;
  restart(): Promise<void>;
}

/** Power as a variable: for tests of the protocol and of many BMCs at once. */
export class MemoryPower implements PowerBackend {
  constructor(public power: 'On' | 'Off' = 'Off') {}
  async state() { return this.power; }
  async on() { this.power = 'On'; }
  async off() { this.power = 'Off'; }
  async restart() { this.power = 'On'; }
}

export interface EmuOptions {
  user?: string;
  password?: string;
  backend?: PowerBackend;
  /** Answer this many requests with 503 before serving. */
  fail503?: number;
  /** Delay every answer (ms). */
  delayMs?: number;
  /** Accept connections and never answer. */
  silent?: boolean;
  /** Never answer requests whose path matches (the session login and logout still work). */
  hang?: RegExp;
  /** No SessionService: session login answers 404 (Basic auth only). */
  noSessions?: boolean;
  maxSessions?: number;
  allowedResets?: string[];
}

const SYS = '/redfish/v1/Systems/1';
const SESSIONS = '/redfish/v1/SessionService/Sessions';

export class RedfishEmu {
  readonly backend: PowerBackend;
  readonly sessions = new Map<string, string>(); // id → token
  created = 0;
  deleted = 0;
  requests: string[] = [];
  boot = { BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None' };
  resets: string[] = [];
  private etag = 1;
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(readonly o: EmuOptions = {}) {
    this.backend = o.backend ?? new MemoryPower();
  }

  async listen(host = '127.0.0.1', port = 0): Promise<number> {
    this.server = createServer((req, res) => { void this.handle(req, res); });
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)); });
    await new Promise<void>((r) => this.server.listen(port, host, r));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    this.requests.push(`${req.method} ${req.url}`);
    if (this.o.silent) return; // never answer: the socket stays open until the client gives up
    if (this.o.hang?.test(req.url ?? '')) return;
    if (this.o.delayMs) await new Promise((r) => setTimeout(r, this.o.delayMs));
    if ((this.o.fail503 ?? 0) > 0) {
      this.o.fail503!--;
      return send(res, 503, error('Base.1.8.ServiceTemporarilyUnavailable', 'The service is temporarily unavailable.'), { 'retry-after': '1' });
    }
    let body: Record<string, unknown> = {};
    try { body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> : {}; } catch { return send(res, 400, error('Base.1.8.MalformedJSON', 'The request body is not JSON.')); }
    const path = (req.url ?? '/').replace(/\/+$/, '') || '/';
    if (req.method === 'GET' && (path === '/redfish')) return send(res, 200, { v1: '/redfish/v1/' });
    if (req.method === 'GET' && path === '/redfish/v1') return send(res, 200, this.root());
    if (req.method === 'POST' && path === SESSIONS) return this.login(body, res);
    if (!this.authorised(req)) return send(res, 401, error('Base.1.8.NoValidSession', 'There is no valid session established with the implementation.'), { 'www-authenticate': 'Basic realm="emu"' });
    if (req.method === 'DELETE' && path.startsWith(`${SESSIONS}/`)) {
      const id = path.slice(SESSIONS.length + 1);
      if (!this.sessions.delete(id)) return send(res, 404, error('Base.1.8.ResourceMissingAtURI', 'No such session.'));
      this.deleted++;
      return send(res, 204);
    }
    if (req.method === 'GET' && path === SESSIONS) return send(res, 200, { '@odata.id': SESSIONS, Members: [...this.sessions.keys()].map((id) => ({ '@odata.id': `${SESSIONS}/${id}` })), 'Members@odata.count': this.sessions.size });
    if (req.method === 'GET' && path === '/redfish/v1/SessionService') return send(res, 200, { '@odata.id': '/redfish/v1/SessionService', '@odata.type': '#SessionService.v1_1_8.SessionService', Id: 'SessionService', ServiceEnabled: !this.o.noSessions, Sessions: { '@odata.id': SESSIONS } });
    if (req.method === 'GET' && path === '/redfish/v1/Systems') return send(res, 200, { '@odata.id': '/redfish/v1/Systems', '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection', Name: 'Computer System Collection', Members: [{ '@odata.id': SYS }], 'Members@odata.count': 1 });
    if (req.method === 'GET' && path === SYS) return send(res, 200, await this.system(), { etag: `W/"${this.etag}"` });
    if (req.method === 'PATCH' && path === SYS) return this.patch(req, body, res);
    if (req.method === 'POST' && path === `${SYS}/Actions/ComputerSystem.Reset`) return this.reset(body, res);
    return send(res, 404, error('Base.1.8.ResourceMissingAtURI', `${path} is not here.`));
  }

  private root() {
    return {
      '@odata.id': '/redfish/v1', '@odata.type': '#ServiceRoot.v1_5_0.ServiceRoot', Id: 'RootService', Name: 'rolecast test BMC', RedfishVersion: '1.6.0',
      Systems: { '@odata.id': '/redfish/v1/Systems' }, SessionService: { '@odata.id': '/redfish/v1/SessionService' }, Links: { Sessions: { '@odata.id': SESSIONS } },
    };
  }

  private async system() {
    return {
      '@odata.id': SYS, '@odata.type': '#ComputerSystem.v1_10_0.ComputerSystem', Id: '1', Name: 'emulated system', PowerState: await this.backend.state(),
      Boot: { ...this.boot, 'BootSourceOverrideTarget@Redfish.AllowableValues': ['None', 'Pxe', 'Hdd', 'Cd', 'BiosSetup'] },
      Actions: { '#ComputerSystem.Reset': { target: `${SYS}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': this.o.allowedResets ?? ['On', 'ForceOff', 'ForceRestart', 'PowerCycle'] } },
    };
  }

  private login(body: Record<string, unknown>, res: ServerResponse) {
    if (this.o.noSessions) return send(res, 404, error('Base.1.8.ResourceMissingAtURI', 'No SessionService.'));
    if (body.UserName !== (this.o.user ?? 'admin') || body.Password !== (this.o.password ?? 'secret')) return send(res, 401, error('Base.1.8.InsufficientPrivilege', 'Invalid username or password.'));
    if (this.sessions.size >= (this.o.maxSessions ?? 4)) return send(res, 503, error('Base.1.8.SessionLimitExceeded', 'The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.'));
    const id = String(++this.created);
    const token = randomBytes(16).toString('hex');
    this.sessions.set(id, token);
    return send(res, 201, { '@odata.id': `${SESSIONS}/${id}`, Id: id, UserName: body.UserName }, { 'x-auth-token': token, location: `${SESSIONS}/${id}` });
  }

  private authorised(req: IncomingMessage): boolean {
    const token = req.headers['x-auth-token'];
    if (typeof token === 'string' && [...this.sessions.values()].includes(token)) return true;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    return basic !== undefined && Buffer.from(basic, 'base64').toString() === `${this.o.user ?? 'admin'}:${this.o.password ?? 'secret'}`;
  }

  private patch(req: IncomingMessage, body: Record<string, unknown>, res: ServerResponse) {
    const match = req.headers['if-match'];
    if (match !== undefined && match !== `W/"${this.etag}"`) return send(res, 412, error('Base.1.8.PreconditionFailed', 'The ETag does not match.'));
    const b = body.Boot as Record<string, string> | undefined;
    if (!b || Object.keys(body).length !== 1) return send(res, 400, error('Base.1.8.PropertyUnknown', 'Only Boot can be changed here.'));
    if (b.BootSourceOverrideEnabled && !['Disabled', 'Once', 'Continuous'].includes(b.BootSourceOverrideEnabled)) return send(res, 400, error('Base.1.8.PropertyValueNotInList', 'BootSourceOverrideEnabled'));
    Object.assign(this.boot, b);
    this.etag++;
    return send(res, 204);
  }

  private async reset(body: Record<string, unknown>, res: ServerResponse) {
    const t = String(body.ResetType);
    const allowed = this.o.allowedResets ?? ['On', 'ForceOff', 'ForceRestart', 'PowerCycle'];
    if (!allowed.includes(t)) return send(res, 400, error('Base.1.8.ActionParameterValueNotInList', `ResetType ${t} is not allowed.`));
    this.resets.push(t);
    const power = await this.backend.state();
    if (t === 'On') await this.backend.on();
    else if (t === 'ForceOff') await this.backend.off();
    else if (power === 'Off') return send(res, 409, error('Base.1.8.ActionNotSupported', `${t} needs the system on.`));
    else if (t === 'ForceRestart') await this.backend.restart();
    else { await this.backend.off(); await this.backend.on(); }
    // A boot override "Once" is used up by the boot that follows (DSP2046 BootSourceOverrideEnabled).
    if (t !== 'ForceOff' && this.boot.BootSourceOverrideEnabled === 'Once') this.boot = { BootSourceOverrideEnabled: 'Disabled', BootSourceOverrideTarget: 'None' };
    this.etag++;
    return send(res, 204);
  }
}

function error(id: string, message: string) {
  return { error: { code: id, message, '@Message.ExtendedInfo': [{ MessageId: id, Message: message }] } };
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { ...(text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}), 'odata-version': '4.0', ...headers });
  res.end(text);
}

/**
 * Power as a QEMU VM driven through QMP (QEMU's JSON monitor, on a unix socket): On = the QEMU process
 * runs (started by `start`), ForceOff = QMP `quit`, ForceRestart = QMP `system_reset`; PowerState is
 * On only while QMP answers `query-status`.
 */
export class QemuPower implements PowerBackend {
  private child: import('node:child_process').ChildProcess | undefined;
  resets = 0;
  constructor(private readonly cmd: string[], readonly qmpPath: string) {}

  private alive(): boolean { return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null; }

  async state(): Promise<'On' | 'Off'> {
    if (!this.alive()) return 'Off';
    const r = await qmp(this.qmpPath, 'query-status').catch(() => undefined);
    return r ? 'On' : 'Off';
  }

  async on(): Promise<void> {
    if (this.alive()) return;
    const { spawn } = await import('node:child_process');
    const { existsSync, rmSync } = await import('node:fs');
    rmSync(this.qmpPath, { force: true });
    this.child = spawn(this.cmd[0]!, [...this.cmd.slice(1), '-qmp', `unix:${this.qmpPath},server=on,wait=off`], { stdio: 'ignore', detached: true });
    const end = Date.now() + 10_000;
    while (!existsSync(this.qmpPath) && Date.now() < end && this.alive()) await new Promise((r) => setTimeout(r, 50));
  }

  async off(): Promise<void> {
    if (!this.alive()) return;
    const child = this.child!;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    await qmp(this.qmpPath, 'quit').catch(() => undefined);
    const t = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await gone;
    clearTimeout(t);
  }

  async restart(): Promise<void> {
    await qmp(this.qmpPath, 'system_reset');
    this.resets++;
  }

  /** End the VM whatever its state (test cleanup). */
  kill(): void {
    if (this.alive()) try { process.kill(-this.child!.pid!, 'SIGKILL'); } catch { /* gone */ }
  }
}

/** One QMP command: greeting, qmp_capabilities, the command; its `return` (events are skipped). */
export async function qmp(path: string, command: string): Promise<unknown> {
  const { connect } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    let step = 0;
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`QMP ${command}: no answer`)); }, 5000);
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        buf = buf.slice(nl + 1);
        if (msg.event) continue;
        if (msg.error) { clearTimeout(timer); s.destroy(); reject(new Error(`QMP ${command}: ${msg.error.desc}`)); return; }
        if (step === 0 && msg.QMP) { step = 1; s.write('{"execute":"qmp_capabilities"}\n'); continue; }
        if (step === 1 && 'return' in msg) { step = 2; s.write(`${JSON.stringify({ execute: command })}\n`); continue; }
        if (step === 2 && 'return' in msg) { clearTimeout(timer); s.end(); resolve(msg.return); return; }
      }
    });
  });
}
