/**
 * Network lab for system and e2e tests: namespaces with unique names, veth pairs and bridges inside
 * them, processes spawned inside and ended by PID. Nothing here touches the host's interfaces: every
 * link is created inside a namespace this lab made, and every namespace is deleted on cleanup (also
 * on failure, and from an exit hook if a test run dies).
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { describe, it } from 'vitest';

export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
export const inCI = process.env.CI === 'true' || process.env.CI === '1';

export function commandExists(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/**
 * describe() for tests that need root and real tools. Without them it skips with a loud message;
 * under CI a skip is a failure (the suite registers one failing test saying what is missing).
 */
export function describeSystem(name: string, needs: string[], fn: () => void): void {
  const missing = needs.filter((c) => !commandExists(c));
  const why = !isRoot ? 'needs root (network namespaces)' : missing.length ? `missing tools: ${missing.join(', ')}` : '';
  if (!why) {
    describe(name, fn);
    return;
  }
  const msg = `SKIPPED system test "${name}": ${why}`;
  console.warn(`\n*** ${msg} ***\n`);
  if (inCI) {
    describe(name, () => {
      it('prerequisites', () => {
        throw new Error(msg);
      });
    });
  } else {
    describe.skip(name, fn);
  }
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let counter = 0;
const liveLabs = new Set<Lab>();
process.on('exit', () => {
  for (const lab of liveLabs) lab.cleanupSync();
});

export class Lab {
  readonly id: string;
  private readonly namespaces: string[] = [];
  private readonly procs = new Set<ChildProcess>();

  constructor(tag = 'lab') {
    // ip netns names: keep short and unique per process and lab.
    // ROLECAST_NS_PREFIX: a prefix for every namespace (several people sharing one machine tell theirs apart).
    this.id = `${process.env.ROLECAST_NS_PREFIX ?? ''}rc${tag.slice(0, 4)}${process.pid}x${counter++}`;
    liveLabs.add(this);
  }

  /** Create a namespace (name is prefixed with the lab id) with loopback up. Returns its full name. */
  ns(name: string): string {
    const full = `${this.id}${name}`;
    run('ip', ['netns', 'add', full]);
    this.namespaces.push(full);
    run('ip', ['-n', full, 'link', 'set', 'lo', 'up']);
    return full;
  }

  /** A veth pair between two of this lab's namespaces (created inside nsA, peer moved to nsB). */
  veth(nsA: string, ifA: string, nsB: string, ifB: string): void {
    this.own(nsA); this.own(nsB);
    run('ip', ['-n', nsA, 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    run('ip', ['-n', nsA, 'link', 'set', ifA, 'up']);
    run('ip', ['-n', nsB, 'link', 'set', ifB, 'up']);
  }

  /** A bridge inside a namespace. */
  bridge(ns: string, name: string): void {
    this.own(ns);
    run('ip', ['-n', ns, 'link', 'add', name, 'type', 'bridge']);
    run('ip', ['-n', ns, 'link', 'set', name, 'up']);
  }

  /** A tap device (for a QEMU NIC) attached to a bridge in a namespace. */
  tap(ns: string, bridge: string, name: string): void {
    this.own(ns);
    run('ip', ['-n', ns, 'tuntap', 'add', 'dev', name, 'mode', 'tap']);
    run('ip', ['-n', ns, 'link', 'set', name, 'master', bridge, 'up']);
  }

  addr(ns: string, dev: string, cidr: string): void {
    this.own(ns);
    run('ip', ['-n', ns, 'addr', 'add', cidr, 'dev', dev]);
    run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }

  /** Run a command inside a namespace to completion. */
  exec(ns: string, cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
    this.own(ns);
    return new Promise((resolve) => {
      const child = this.spawn(ns, cmd, args);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      const timer = setTimeout(() => this.kill(child), opts.timeoutMs ?? 30_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        this.procs.delete(child);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Spawn a long-running process inside a namespace; tracked and ended by PID on cleanup. */
  spawn(ns: string, cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    this.own(ns);
    const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', detached: true, ...opts });
    this.procs.add(child);
    child.on('exit', () => this.procs.delete(child));
    return child;
  }

  /** End one of our processes (its process group, by PID). */
  kill(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): void {
    if (child.pid === undefined || child.exitCode !== null) return;
    try { process.kill(-child.pid, signal); } catch { /* already gone */ }
  }

  async cleanup(): Promise<void> {
    const waits = [...this.procs].map((p) => new Promise<void>((r) => {
      if (p.exitCode !== null || p.signalCode !== null) return r();
      const t = setTimeout(() => { this.kill(p, 'SIGKILL'); r(); }, 2000);
      p.once('exit', () => { clearTimeout(t); r(); });
      this.kill(p);
    }));
    await Promise.all(waits);
    this.cleanupSync();
  }

  cleanupSync(): void {
    for (const p of this.procs) this.kill(p, 'SIGKILL');
    this.procs.clear();
    for (const ns of this.namespaces.splice(0)) spawnSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
    liveLabs.delete(this);
  }

  private own(ns: string): void {
    if (!this.namespaces.includes(ns)) throw new Error(`namespace ${ns} was not created by this lab`);
  }
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

/** Wait until fn() is truthy or the time runs out. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Run a command without blocking the event loop (servers under test run in this process: spawnSync
 * would freeze them). Ended by PID on timeout.
 */
export function runAsync(cmd: string, args: string[], timeoutMs = 60_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}
