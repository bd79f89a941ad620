import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { CONFIG_SCHEMA, parseConfig } from '../../../src/configfile.js';
import { ProfileError } from '../../../src/errors.js';

function issues(text: string): string[] {
  try {
    parseConfig(text, 'rolecast.conf.yaml');
  } catch (err) {
    if (err instanceof ProfileError) return err.issues.map((i) => `${i.file}:${i.line}:${i.col}: ${i.path}: ${i.message}`);
    throw err;
  }
  return [];
}

describe('server config file', () => {
  it('has a schema that is valid draft-07 (the server compiles it without checking)', () => {
    const ajv = new Ajv({ strict: true });
    expect(ajv.validateSchema(CONFIG_SCHEMA), JSON.stringify(ajv.errors)).toBe(true);
  });

  it('merges over the defaults', () => {
    const { cfg, raw } = parseConfig('address: 10.0.0.1\ndhcp:\n  mode: proxy\nhttp:\n  port: 8081\n  token: s3\n', 'c.yaml');
    expect(cfg.address).toBe('10.0.0.1');
    expect(cfg.dhcp.mode).toBe('proxy');
    expect(cfg.dhcp.port).toBe(67);
    expect(cfg.http).toMatchObject({ port: 8081, token: 's3', enabled: true });
    expect(cfg.tftp.maxBlksize).toBe(1468);
    expect(raw.http?.port).toBe(8081);
  });

  it('reads API tokens at two levels; a token that is not a string list is an error', () => {
    const { cfg } = parseConfig('http:\n  tokens:\n    admin: [a1]\n    read: [r1, r2]\n', 'c.yaml');
    expect(cfg.http.tokens).toEqual({ admin: ['a1'], read: ['r1', 'r2'] });
    expect(issues('http:\n  tokens:\n    read: r1\n    write: [x]\n')).toEqual([
      'rolecast.conf.yaml:3:11: http.tokens.read: must be a list of strings',
      'rolecast.conf.yaml:4:5: http.tokens.write: unknown key "write" (expected one of: admin, read)',
    ]);
  });

  it('empty file is the defaults', () => {
    expect(parseConfig('', 'c.yaml').cfg.http.port).toBe(8080);
  });

  it('reports every unknown key, wrong type and bad enum with file:line:col', () => {
    expect(issues('adress: 10.0.0.1\ndhcp:\n  mode: sometimes\n  port: "67"\ntftp:\n  roots: [1, 2]\n')).toEqual([
      'rolecast.conf.yaml:1:1: adress: unknown key "adress" (expected one of: profilesDir, dataDir, imagesDir, address, baseUrl, logLevel, user, dhcp, tftp, http, state, ra, bmc, reload, secrets)',
      'rolecast.conf.yaml:3:9: dhcp.mode: must be one of: authoritative, proxy, off',
      'rolecast.conf.yaml:4:9: dhcp.port: must be a number',
      'rolecast.conf.yaml:6:10: tftp.roots: must be a list of strings',
    ]);
  });

  it('a bounded number outside its range names the range (http.rtoMaxMs: 1000-120000 ms)', () => {
    expect(parseConfig('http:\n  rtoMaxMs: 5000\n', 'c.yaml').cfg.http.rtoMaxMs).toBe(5000);
    expect(parseConfig('', 'c.yaml').cfg.http.rtoMaxMs).toBe(2000);
    expect(issues('http:\n  rtoMaxMs: 200\n')).toEqual(['rolecast.conf.yaml:2:13: http.rtoMaxMs: must be a number from 1000 to 120000']);
    expect(issues('http:\n  rtoMaxMs: 600000\n')).toEqual(['rolecast.conf.yaml:2:13: http.rtoMaxMs: must be a number from 1000 to 120000']);
  });

  it('http.bulkSlots is a whole number in its range, http.bulkHoldMs a number in its own', () => {
    expect(parseConfig('', 'c.yaml').cfg.http).toMatchObject({ bulkSlots: 24, bulkWhen: 'pressure', bulkHoldMs: 5000 });
    expect(parseConfig('http:\n  bulkWhen: always\n', 'c.yaml').cfg.http.bulkWhen).toBe('always');
    expect(issues('http:\n  bulkWhen: sometimes\n')).toEqual(['rolecast.conf.yaml:2:13: http.bulkWhen: must be one of: pressure, always']);
    expect(parseConfig('http:\n  bulkSlots: 24\n  bulkHoldMs: 800\n', 'c.yaml').cfg.http).toMatchObject({ bulkSlots: 24, bulkHoldMs: 800 });
    expect(issues('http:\n  bulkSlots: 2.5\n')).toEqual(['rolecast.conf.yaml:2:14: http.bulkSlots: must be a whole number']);
    expect(issues('http:\n  bulkSlots: -1\n')).toEqual(['rolecast.conf.yaml:2:14: http.bulkSlots: must be a whole number from 0 to 65536']);
    expect(issues('http:\n  bulkSlots: many\n')).toEqual(['rolecast.conf.yaml:2:14: http.bulkSlots: must be a whole number']);
    expect(issues('http:\n  bulkHoldMs: 10\n')).toEqual(['rolecast.conf.yaml:2:15: http.bulkHoldMs: must be a number from 100 to 3600000']);
  });

  it('reports YAML syntax errors with their position', () => {
    const got = issues('http:\n  port: [1\n');
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/^rolecast\.conf\.yaml:\d+:\d+: \(yaml\): /);
  });

  it('a section that is not a mapping is an error', () => {
    expect(issues('http: 8080\n')).toEqual(['rolecast.conf.yaml:1:7: http: must be a mapping']);
  });
});
