/** The kernel's TCP memory pressure flag (src/http/tcp-pressure.ts): /proc/net/protocols as Linux prints it. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROTOCOLS_FILE, parseTcpPressure, tcpPressureProbe } from '../../../src/http/tcp-pressure.js';

const HEAD = 'protocol  size sockets  memory press maxhdr  slab module     cl co di ac io in de sh ss gs se re bi br ha uh gp em';
const row = (proto: string, press: string) => `${proto.padEnd(9)} 2304      1       0   ${press.padEnd(4)} 192   yes  kernel      y  y  y  y  y  y  y  y  y  y  y  y  n  y  y  y  y  y`;
const protocols = (press: string) => [HEAD, 'PACKET    1600      0      -1   NI       0   no   kernel      n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n  n',
  row('TCPv6', 'no'), row('TCP', press), ''].join('\n');

const dir = mkdtempSync(join(tmpdir(), 'rolecast-tcp-pressure-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseTcpPressure', () => {
  it('reads the TCP row, not TCPv6 or the others', () => {
    expect(parseTcpPressure(protocols('yes'))).toBe(true);
    expect(parseTcpPressure(protocols('no'))).toBe(false);
  });

  it('gives no answer without a press column or a TCP row', () => {
    expect(parseTcpPressure(protocols('NI'))).toBeUndefined();
    expect(parseTcpPressure(protocols('yes').replace(' press ', ' other '))).toBeUndefined();
    expect(parseTcpPressure([HEAD, row('UDP', 'no')].join('\n'))).toBeUndefined();
    expect(parseTcpPressure('')).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('reads this machine\'s own file', () => {
    expect(typeof parseTcpPressure(readFileSync(PROTOCOLS_FILE, 'latin1'))).toBe('boolean');
  });
});

describe('tcpPressureProbe', () => {
  it('reads the file at most every maxAgeMs', () => {
    const file = join(dir, 'protocols');
    writeFileSync(file, protocols('no'));
    let t = 0;
    const probe = tcpPressureProbe({ file, maxAgeMs: 200, now: () => t });
    expect(probe()).toBe(false);
    writeFileSync(file, protocols('yes'));
    t = 199;
    expect(probe()).toBe(false); // the reading of t = 0 still stands
    t = 200;
    expect(probe()).toBe(true);
    writeFileSync(file, protocols('no'));
    t = 450;
    expect(probe()).toBe(false);
  });

  it('says once why it cannot tell, and then never reports pressure', () => {
    const why: string[] = [];
    const missing = tcpPressureProbe({ file: join(dir, 'nope'), maxAgeMs: 0, onUnavailable: (w) => why.push(w) });
    expect([missing(), missing()]).toEqual([false, false]);
    expect(why).toHaveLength(1);
    expect(why[0]).toMatch(/cannot read .*nope/);
    const odd = join(dir, 'odd');
    writeFileSync(odd, 'protocol size\nTCP 2304\n');
    const bad = tcpPressureProbe({ file: odd, maxAgeMs: 0, onUnavailable: (w) => why.push(w) });
    expect(bad()).toBe(false);
    writeFileSync(odd, protocols('yes')); // later readings are not attempted: the format was not understood
    expect(bad()).toBe(false);
    expect(why[1]).toMatch(/no TCP row with a "press" column/);
  });
});
