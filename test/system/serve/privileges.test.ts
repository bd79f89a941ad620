/**
 * rolecast needs no privilege but binding ports below 1024 (issue 16 item 8): as the systemd unit runs it
 * (its own user, CAP_NET_BIND_SERVICE as the only capability, here through setpriv) it serves DHCP 67,
 * TFTP 69 and HTTP 80; started as root it becomes its service user once bound, with no capability left;
 * without the capability it stops with the cause and fix. Each in a namespace of its own.
 */
import { afterAll, expect, it } from 'vitest';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';
import { placeholderImages } from '../../helpers/images.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const NOBODY = 65534;

describeSystem('rolecast without root', ['curl', 'setpriv', 'tftp'], () => {
  const lab = new Lab('priv');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-priv-'));
  chmodSync(dir, 0o755); // the unprivileged server reads its config and images here
  afterAll(async () => { await lab.cleanup(); rmSync(dir, { recursive: true, force: true }); });

  /** A server namespace and a client namespace on one veth; a config on the privileged ports. */
  async function setup(tag: string): Promise<{ srv: string; cli: string; cfg: string; data: string }> {
    const srv = lab.ns(`s${tag}`);
    const cli = lab.ns(`c${tag}`);
    lab.veth(srv, 'rc0', cli, 'rc1');
    lab.addr(srv, 'rc0', '10.0.0.1/24');
    lab.addr(cli, 'rc1', '10.0.0.101/24');
    const data = join(dir, `data-${tag}`);
    mkdirSync(data, { recursive: true });
    await placeholderImages(join(ROOT, 'test/fixtures/profiles'), join(dir, 'images'));
    const cfg = join(dir, `rc-${tag}.yaml`);
    writeFileSync(cfg, `profilesDir: ${join(ROOT, 'test/fixtures/profiles')}\ndataDir: ${data}\nimagesDir: ${join(dir, 'images')}\naddress: 10.0.0.1\nhttp:\n  port: 80\n`);
    return { srv, cli, cfg, data };
  }

  function serve(ns: string, prefix: string[], cfg: string, extra: string[] = []): { proc: ChildProcess; log: () => string } {
    let log = '';
    const proc = lab.spawn(ns, prefix[0] ?? process.execPath, [...prefix.slice(1), ...(prefix.length ? [process.execPath] : []), '--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfg, ...extra], { cwd: ROOT });
    proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    return { proc, log: () => log };
  }

  function status(pid: number): Record<string, string> {
    return Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').map((l) => l.split(':\t')).filter((x) => x.length === 2).map(([k, v]) => [k!, v!.trim()]));
  }

  async function checkServes(cli: string): Promise<void> {
    const h = await lab.exec(cli, 'curl', ['-sS', '-f', 'http://10.0.0.1/boot/52:54:00:00:02:01.ipxe']);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^#!ipxe/);
    const t = await lab.exec(cli, 'curl', ['-sS', '-o', join(dir, 'u.kpxe'), 'tftp://10.0.0.1/undionly.kpxe']);
    expect(t.code, t.stderr).toBe(0);
    expect(readFileSync(join(dir, 'u.kpxe')).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe'))).toBe(true);
  }

  it('as its own user with CAP_NET_BIND_SERVICE only (the systemd unit\'s way) it serves DHCP 67, TFTP 69 and HTTP 80', async () => {
    const { srv, cli, cfg, data } = await setup('a');
    chownSync(data, NOBODY, NOBODY);
    const asUnit = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all,+net_bind_service', '--ambient-caps=+net_bind_service', '--bounding-set=-all,+net_bind_service'];
    const s = serve(srv, asUnit, cfg);
    await waitFor(() => s.log().includes('rolecast serving'), 30_000).catch(() => { throw new Error(s.log()); });
    const st = status(s.proc.pid!);
    expect(st.Uid).toBe(`${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`);
    expect(st.CapEff).toBe('0000000000000400'); // CAP_NET_BIND_SERVICE (bit 10) and nothing else
    expect(s.log()).toMatch(/"dhcp":67/);
    await checkServes(cli);
    lab.kill(s.proc);
  }, 90_000);

  it('started as root it drops to the service user after binding, with no capability left', async () => {
    const { srv, cli, cfg, data } = await setup('b');
    const s = serve(srv, [], cfg, ['--user', 'nobody']);
    await waitFor(() => s.log().includes('running as the service user'), 30_000).catch(() => { throw new Error(s.log()); });
    const st = status(s.proc.pid!);
    expect(st.Uid).toBe(`${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`);
    expect(st.Gid).toBe(`${NOBODY}\t${NOBODY}\t${NOBODY}\t${NOBODY}`);
    expect(st.CapEff).toBe('0000000000000000');
    expect(st.CapPrm).toBe('0000000000000000');
    await checkServes(cli);
    // State written after the drop: the timeline file belongs to the service user.
    await waitFor(() => statSync(join(data, 'events.jsonl'), { throwIfNoEntry: false })?.uid === NOBODY, 10_000);
    lab.kill(s.proc);
  }, 90_000);

  it('without the capability it stops naming CAP_NET_BIND_SERVICE, and exits 1', async () => {
    const { srv, cfg, data } = await setup('c');
    chownSync(data, NOBODY, NOBODY);
    const s = serve(srv, ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all'], cfg);
    const code = await new Promise<number | null>((r) => s.proc.on('exit', r));
    expect(code).toBe(1);
    expect(s.log()).toMatch(/rolecast serve: HTTP: binding TCP 0\.0\.0\.0:80 needs CAP_NET_BIND_SERVICE \(ports below 1024\)/);
  }, 60_000);
});
