/**
 * A real PostgreSQL (Debian's, /usr/lib/postgresql/15) for tests: its own cluster in a temp directory,
 * run as user postgres when we are root (initdb refuses root), reachable only through a unix socket
 * in that directory (no TCP port: nothing can collide, nothing listens on the host's interfaces; a
 * unix socket path also works from inside the lab's network namespaces). Ended by the postmaster's
 * PID and the directory removed on stop, on failure, and from an exit hook if the test run dies.
 */
import { spawnSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, it } from 'vitest';

export const PG_BIN = '/usr/lib/postgresql/15/bin';
export const hasPostgres = existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'pg_ctl'));

const live = new Set<PgCluster>();
process.on('exit', () => { for (const c of live) c.destroySync(); });
// A test run ended by a signal still takes its clusters down (then dies of the same signal).
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of live) c.destroySync();
    process.kill(process.pid, sig);
  });
}

interface Owner { uid: number; gid: number; user: string }

function owner(): Owner {
  if (process.getuid?.() !== 0) return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, user: userInfo().username };
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  if (!Number.isInteger(uid) || uid === 0) throw new Error('PostgreSQL tests as root need the "postgres" user (Debian package postgresql)');
  return { uid, gid: id('-g'), user: 'postgres' };
}

export class PgCluster {
  private constructor(readonly dir: string, private readonly who: Owner) {}

  get dataDir(): string { return join(this.dir, 'data'); }
  /** The socket directory (the cluster's temp dir). */
  get socketDir(): string { return this.dir; }

  /**
   * initdb + start; one database `rolecast`. `settings`: extra postgresql.conf lines (the DHCP bench
   * loads pg_stat_statements this way, only in its own temp cluster).
   */
  static async start(settings: string[] = []): Promise<PgCluster> {
    const who = owner();
    const dir = mkdtempSync('/tmp/rcpg-');
    chownSync(dir, who.uid, who.gid);
    chmodSync(dir, 0o700);
    const c = new PgCluster(dir, who);
    live.add(c);
    try {
      c.run('initdb', ['-D', c.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
      // Unix socket only, in our directory; fsync stays on (the tests are about durability).
      writeFileSync(join(c.dataDir, 'postgresql.auto.conf'), [
        "listen_addresses = ''", `unix_socket_directories = '${dir}'`, 'max_connections = 100',
        'shared_buffers = 32MB', "log_min_messages = 'warning'", ...settings, '',
      ].join('\n'));
      c.pgStart();
      const cl = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
      await cl.connect();
      await cl.query('CREATE DATABASE rolecast');
      await cl.end();
      return c;
    } catch (err) {
      c.destroySync();
      throw err;
    }
  }

  /** A connection URL for the `pg` driver (host = the socket directory). */
  url(db = 'rolecast'): string {
    return `postgres://postgres@${encodeURIComponent(this.dir)}/${db}`;
  }

  /** The postmaster's PID while it runs (first line of postmaster.pid). */
  pid(): number | undefined {
    try {
      const n = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  pgStart(): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  /** Stop (fast: disconnect clients, clean shutdown). */
  pgStop(): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
  }

  /** Start without blocking the event loop (servers under test may run in this process). */
  pgStartAsync(): Promise<void> {
    return this.runAsync('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  pgStopAsync(): Promise<void> {
    return this.runAsync('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
  }

  log(): string {
    try { return readFileSync(join(this.dir, 'server.log'), 'utf8'); } catch { return ''; }
  }

  async destroy(): Promise<void> {
    const pid = this.pid();
    if (pid !== undefined) await this.runAsync('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '20', 'stop']).catch(() => undefined);
    this.destroySync();
  }

  /** Kill the postmaster by PID if it still runs (its children exit with it), remove the directory. */
  destroySync(): void {
    const pid = this.pid();
    if (pid !== undefined) {
      try { process.kill(pid, 'SIGQUIT'); } catch { /* gone */ }
      for (let i = 0; i < 50 && alive(pid); i++) spawnSync('sleep', ['0.1']);
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }

  /** As root, PostgreSQL's tools run as the postgres user (initdb and postgres refuse root). */
  private cmd(bin: string): { cmd: string; opts: { uid?: number; gid?: number; cwd: string } } {
    const asOther = process.getuid?.() === 0;
    return { cmd: join(PG_BIN, bin), opts: { cwd: this.dir, ...(asOther ? { uid: this.who.uid, gid: this.who.gid } : {}) } };
  }

  private run(bin: string, args: string[]): void {
    const { cmd, opts } = this.cmd(bin);
    const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout || r.error?.message}\n${this.log()}`);
  }

  private runAsync(bin: string, args: string[]): Promise<void> {
    const { cmd, opts } = this.cmd(bin);
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} ${args.join(' ')} failed (${code}): ${out}`))));
    });
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

/**
 * describe() for tests that need Debian's PostgreSQL binaries. Without them it skips loudly; under CI a
 * skip is a failure, as for describeSystem.
 */
export function describePg(name: string, fn: () => void): void {
  if (hasPostgres) { describe(name, fn); return; }
  const msg = `SKIPPED PostgreSQL test "${name}": ${PG_BIN}/initdb not found (Debian package postgresql-15)`;
  console.warn(`\n*** ${msg} ***\n`);
  if (process.env.CI === 'true' || process.env.CI === '1') describe(name, () => { it('prerequisites', () => { throw new Error(msg); }); });
  else describe.skip(name, fn);
}
