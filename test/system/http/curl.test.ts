/**
 * Real HTTP clients across namespaces: the rootfs holds no secret and goes to anyone; lb1's secret
 * bundle goes to curl on lb1's own address from a port below 1024 with the token of lb1's script, and
 * to nobody else (issue 16); curl resumes an image download with a Range and gets 304 for a matching
 * ETag.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
    cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
    mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
    writeFileSync(join(dir, 'images/build/vmlinuz'), kernel);
    writeFileSync(join(dir, 'images/build/initrd.img'), 'initrd\n'); // a script (and its token) names both
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
    // w101's own address too (its rootfs below is fetched from there).
    lab.addr(a, 'e0', '10.0.0.101/24');
    let log = '';
    const p = lab.spawn(s, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', join(dir, 'rolecast.conf.yaml')], { cwd: ROOT });
    p.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    serverPid = p.pid!; // ip netns exec execs the command: same PID
    await waitFor(() => log.includes('rolecast serving'), 30_000);
  }, 60_000);
  afterAll(async () => { await lab.cleanup(); });

  it('the rootfs holds no secret; lb1\'s bundle goes to root on lb1\'s address with its script\'s token only', async () => {
    const other = await lab.exec(b, 'curl', ['-sS', '-f', '-o', join(dir, 'lb1.tar'), `http://10.0.0.1:8080/rootfs/${LB1}.tar`]);
    expect(other.code, other.stderr).toBe(0);
    expect(spawnSync('tar', ['-tf', join(dir, 'lb1.tar')], { encoding: 'utf8' }).stdout).not.toMatch(/keepalived\.conf/);
    // DHCP is off here: lb1's reserved address is what makes its script carry a token.
    const script = await lab.exec(a, 'curl', ['-sS', '-f', `http://10.0.0.1:8080/boot/${LB1}.ipxe`]);
    const token = /rolecast\.token=(\S+)/.exec(script.stdout)?.[1];
    expect(token, script.stdout).toBeDefined();
    expect((await lab.exec(b, 'curl', ['-sS', '-f', `http://10.0.0.1:8080/boot/${LB1}.ipxe`])).stdout).not.toMatch(/rolecast\.token=/);
    const bundle = (ns: string, extra: string[]) => lab.exec(ns, 'curl', ['-sS', '-o', join(dir, 'bundle.tar'), '-w', '%{http_code}', ...extra, '-H', `authorization: Bearer ${token}`, `http://10.0.0.1:8080/secrets/${LB1}`]);
    expect((await bundle(a, [])).stdout).toBe('403'); // an ordinary source port
    expect(readFileSync(join(dir, 'bundle.tar'), 'utf8')).toMatch(/E_SECRET_PORT/);
    expect((await bundle(b, ['--local-port', '600-1023'])).stdout).toBe('403'); // lb2's address
    const own = await bundle(a, ['--local-port', '600-1023']);
    expect(own.stdout, own.stderr).toBe('200');
    expect(spawnSync('tar', ['-xOf', join(dir, 'bundle.tar'), 'etc/keepalived/keepalived.conf'], { encoding: 'utf8' }).stdout).toMatch(/auth_pass/);
    expect((await bundle(a, ['--local-port', '600-1023'])).stdout).toBe('403'); // spent
  });

  it('a 300 MB base image streams through composition with bounded memory', async () => {
    // w101's role (web) gets a 300 MB base; the server's peak RSS must not grow with it.
    mkdirSync(join(dir, 'big/srv'), { recursive: true });
    spawnSync('dd', ['if=/dev/urandom', `of=${join(dir, 'big/srv/blob')}`, 'bs=1M', 'count=300', 'status=none']);
    spawnSync('tar', ['-C', join(dir, 'big'), '-cf', join(dir, 'images/build/rootfs/web.tar'), '.']);
    const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${serverPid}/status`, 'utf8'))?.[1]) / 1024;
    const before = hwm();
    const out = join(dir, 'w101.tar');
    const r = await lab.exec(a, 'curl', ['-sS', '-f', '-o', out, '-w', '%{size_download}', '--interface', '10.0.0.101', 'http://10.0.0.1:8080/rootfs/52:54:00:00:02:01.tar'], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(Number(r.stdout)).toBeGreaterThan(300 * 1024 * 1024);
    expect(hwm() - before, `peak RSS grew from ${before} MB`).toBeLessThan(100);
    // The 300 MB member came through byte for byte (through sendfile when the engine is built).
    const sha = (args: string[]) => spawnSync('sh', ['-c', `${args.join(' ')} | sha256sum`], { encoding: 'utf8', maxBuffer: 1024 }).stdout.split(' ')[0];
    expect(sha(['tar', '-xOf', out, './srv/blob'])).toBe(sha(['cat', join(dir, 'big/srv/blob')]));
    expect(spawnSync('tar', ['-tf', out], { encoding: 'utf8' }).stdout).toMatch(/\.\/etc\/hostname/);
    // Responses sent through the sendfile engine are counted like any other.
    const metrics = await lab.exec(a, 'curl', ['-sS', 'http://10.0.0.1:8080/metrics']);
    const bytes = Number(/^rolecast_http_bytes_total (\d+)$/m.exec(metrics.stdout)?.[1]);
    expect(bytes, metrics.stdout).toBeGreaterThan(300 * 1024 * 1024);
    expect(metrics.stdout).toMatch(/rolecast_http_responses_total\{route="\/rootfs\/:file",status="2xx"\} \d+/);
  }, 180_000);

  it('uses the sendfile engine when it is built, and a client hanging up mid-transfer harms nothing', async () => {
    const health = await lab.exec(a, 'curl', ['-sS', 'http://10.0.0.1:8080/healthz']);
    const built = existsSync(join(ROOT, 'native/sendfile/build/Release/sendfile.node'));
    if (process.env.CI === 'true') expect(built, 'the sendfile engine must be built in CI (npm run build:native)').toBe(true);
    expect((JSON.parse(health.stdout) as { sendfile: boolean }).sendfile).toBe(built);
    // A slow reader that gives up after a second: the server sees EAGAIN, then the connection reset.
    const quit = await lab.exec(a, 'curl', ['-sS', '-o', '/dev/null', '--limit-rate', '2M', '--max-time', '1', '--interface', '10.0.0.101', 'http://10.0.0.1:8080/rootfs/52:54:00:00:02:01.tar'], { timeoutMs: 20_000 });
    expect(quit.code).toBe(28); // curl: operation timed out
    const r = await lab.exec(a, 'curl', ['-sS', '-f', '-o', join(dir, 'k2'), 'http://10.0.0.1:8080/images/kernel']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'k2')).equals(kernel)).toBe(true);
    // Two images on one keep-alive connection.
    const two = await lab.exec(a, 'curl', ['-sS', '-f', '-o', join(dir, 'k3'), '-o', join(dir, 'k4'), 'http://10.0.0.1:8080/images/kernel', 'http://10.0.0.1:8080/images/kernel', '-w', '%{num_connects}\n']);
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout.trim().split('\n')).toEqual(['1', '0']);
    expect(readFileSync(join(dir, 'k4')).equals(kernel)).toBe(true);
  }, 60_000);

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
