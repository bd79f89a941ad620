import { describe, expect, it } from 'vitest';
import { interfaceOf, radvdConfig } from '../../../src/ra.js';

describe('radvd config', () => {
  it('advertises lifetime 0, no prefix, M and O off, on one interface', () => {
    const c = radvdConfig('br0');
    expect(c).toContain('interface br0 {');
    expect(c).toContain('AdvDefaultLifetime 0;');
    expect(c).toContain('AdvManagedFlag off;');
    expect(c).toContain('AdvOtherConfigFlag off;');
    expect(c).not.toMatch(/^\s*(prefix|route|RDNSS)\b/im);
  });

  it('refuses a name that could break out of the config', () => {
    expect(() => radvdConfig('br0 { AdvSendAdvert on; }; interface eth0')).toThrow(/not an interface name/);
  });

  it('finds no interface for loopback or an address nobody holds', () => {
    expect(interfaceOf('127.0.0.1')).toBeUndefined();
    expect(interfaceOf('192.0.2.254')).toBeUndefined();
  });
});
