/**
 * Real HTTP clients across namespaces: lb1's own address gets its rootfs (with the keepalived secret),
 * lb2's address gets 403 for it; curl resumes an image download with a Range and gets 304 for a
 * matching ETag.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const LB1 = '52:54:00:00:01:01';

describeSystem('HTTP with curl from two namespaces', ['curl', 'tar'], () => {
  const lab = new Lab('http');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-curl-'));
  const kernel = randomBytes(3 * 1024 * 1024 + 17);
  let a: string;
  let b: string;
  let serverPid = 0;

  beforeAll(async () => {
    cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
    mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
    writeFileSync(join(dir, 'images/build/vmlinuz'), kernel);
    mkdirSync(join(dir, 'base/etc'), { recursive: true });
    writeFileSync(join(dir, 'base/etc/motd'), 'base\n');
    spawnSync('tar', ['-C', join(dir, 'base'), '-cf', join(dir, 'images/build/rootfs/lb.tar'), '.']);
    writeFileSync(join(dir, 'rolecast.conf.yaml'), `profilesDir: ${join(dir, 'profiles')}\ndataDir: ${join(dir, 'data')}\nimagesDir: ${join(dir, 'images')}\naddress: 10.0.0.1\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\n`);
    const br = lab.ns('b');
    lab.bridge(br, 'br0');
    const s = lab.ns('s');
    a = lab.ns('a');
    b = lab.ns('x');
    for (const [ns, ip, port] of [[s, '10.0.0.1/24', 'ps'], [a, '10.0.0.11/24', 'pa'], [b, '10.0.0.12/24', 'pb']] as const) {
      lab.veth(br, port, ns, 'e0');
      spawnSync('ip', ['-n', br, 'link', 'set', port, 'master', 'br0']);
      lab.addr(ns, 'e0', ip);
    }
    let log = '';
    const p = lab.spawn(s, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', join(dir, 'rolecast.conf.yaml')], { cwd: ROOT });
    p.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    serverPid = p.pid!; // ip netns exec execs the command: same PID
    await waitFor(() => log.includes('rolecast serving'), 30_000);
  }, 60_000);
  afterAll(async () => { await lab.cleanup(); });

  it('the secret-bearing rootfs goes to lb1 only', async () => {
    const own = await lab.exec(a, 'curl', ['-sS', '-f', '-o', join(dir, 'lb1.tar'), `http://10.0.0.1:8080/rootfs/${LB1}.tar`]);
    expect(own.code, own.stderr).toBe(0);
    const list = spawnSync('tar', ['-tf', join(dir, 'lb1.tar')], { encoding: 'utf8' }).stdout;
    expect(list).toMatch(/etc\/keepalived\/keepalived\.conf/);
    const other = await lab.exec(b, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `http://10.0.0.1:8080/rootfs/${LB1}.tar`]);
    expect(other.stdout).toBe('403');
  });

  it('a 300 MB base image streams through composition with bounded memory', async () => {
    // w101's role (web) gets a 300 MB base; the server's peak RSS must not grow with it.
    mkdirSync(join(dir, 'big/srv'), { recursive: true });
    spawnSync('dd', ['if=/dev/urandom', `of=${join(dir, 'big/srv/blob')}`, 'bs=1M', 'count=300', 'status=none']);
    spawnSync('tar', ['-C', join(dir, 'big'), '-cf', join(dir, 'images/build/rootfs/web.tar'), '.']);
    const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${serverPid}/status`, 'utf8'))?.[1]) / 1024;
    const before = hwm();
    const r = await lab.exec(a, 'curl', ['-sS', '-f', '-o', '/dev/null', '-w', '%{size_download}', 'http://10.0.0.1:8080/rootfs/52:54:00:00:02:01.tar'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(Number(r.stdout)).toBeGreaterThan(300 * 1024 * 1024);
    expect(hwm() - before, `peak RSS grew from ${before} MB`).toBeLessThan(100);
  }, 180_000);

  it('images resume with Range and revalidate with ETag', async () => {
    const url = 'http://10.0.0.1:8080/images/kernel';
    const part = join(dir, 'kernel.part');
    writeFileSync(part, kernel.subarray(0, 1_000_000));
    const r = await lab.exec(a, 'curl', ['-sS', '-f', '-C', '-', '-o', part, '-D', join(dir, 'h.txt'), url]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'h.txt'), 'utf8')).toMatch(/^HTTP\/1\.1 206/);
    expect(readFileSync(part).equals(kernel)).toBe(true);
    const head = await lab.exec(a, 'curl', ['-sS', '-I', url]);
    const etag = /etag: (.+)\r/i.exec(head.stdout)?.[1];
    expect(etag).toBeDefined();
    const again = await lab.exec(a, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, url]);
    expect(again.stdout).toBe('304');
  });
});
