import { describe, expect, it } from 'vitest';
import { mmdebstrapArgs, ROLE_PACKAGES, COMMON_PACKAGES } from '../../../src/images/role.js';
import { buildImageTarget } from '../../../src/images/index.js';

describe('role image build arguments', () => {
  it('minbase tar with the role packages, an init and the network tools, sources given explicitly', () => {
    const args = mmdebstrapArgs('lb', '/tmp/x.tar', { out: '/tmp' }, '6.1.0-56-amd64');
    expect(args.slice(0, 3)).toEqual(['--variant=minbase', '--mode=root', '--format=tar']);
    const include = args.find((a) => a.startsWith('--include='))!.slice('--include='.length).split(',');
    for (const p of ['keepalived', 'ipvsadm', 'systemd-sysv', 'ifupdown', 'iproute2', 'ifenslave', 'vlan']) expect(include).toContain(p);
    expect(args.slice(-3)).toEqual(['bookworm', '/tmp/x.tar', 'http://deb.debian.org/debian']);
    expect(args.find((a) => a.includes('depmod'))).toContain('depmod -b "$1" 6.1.0-56-amd64');
  });

  it('every DSAS role has its service package', () => {
    expect(ROLE_PACKAGES).toEqual({ lb: ['keepalived', 'ipvsadm'], web: ['nginx'], db: ['mariadb-server'], file: ['nfs-kernel-server'] });
    expect(COMMON_PACKAGES).toContain('systemd-sysv');
  });

  it('an unknown role or target is a typed error naming the known ones', async () => {
    expect(() => mmdebstrapArgs('mail', '/tmp/x.tar', { out: '/tmp' }, 'k')).toThrow(/no package list for role "mail" \(known: lb, web, db, file\)/);
    await expect(buildImageTarget('mail', { out: '/tmp' })).rejects.toMatchObject({ code: 'E_UNKNOWN_IMAGE_TARGET' });
  });
});
