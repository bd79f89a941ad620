/**
 * Console bytes → screen text, against real serial captures from this lab (SeaBIOS + the QEMU NIC's
 * iPXE ROM, and the common initramfs failing its rootfs download): no escape sequence or control
 * character survives, iPXE's backspace animation and CR overwrites end as the text a terminal shows.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { lastScreen, screenText } from '../../../src/bmc/screen.js';

const FIX = resolve(import.meta.dirname, '../../fixtures/console');
// Controls a screen line must not hold (tab, newline and CR aside).
// eslint-disable-next-line no-control-regex -- control characters are what the screen text must not hold
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;
const ipxe = readFileSync(resolve(FIX, 'seabios-ipxe.serial'), 'latin1');
const failed = readFileSync(resolve(FIX, 'initramfs-failed.serial'), 'latin1');

describe('screenText', () => {
  it('SeaBIOS and iPXE: escapes gone, colours gone, backspace animation and CR overwrite applied', () => {
    const lines = screenText(ipxe).split('\n');
    expect(lines).toContain('SeaBIOS (version 1.16.2-debian-1.16.2-1)');
    expect(lines).toContain('iPXE 1.0.0+git-20190125.36a4c85-5.1 -- Open Source Network Boot Firmware -- http');
    // "Press Ctrl-B for the iPXE command line..." is rubbed out with BS SP BS before net0's line.
    expect(lines).toContain('net0: 52:54:00:00:01:01 using 82540em on 0000:00:03.0 (open)');
    // A line blanked by CR + spaces + CR is blank, as on the screen.
    expect(lines.some((l) => l.startsWith('Press Ctrl-B to configure'))).toBe(false);
    expect(lines.some((l) => l.includes('Linux version 6.1.0'))).toBe(true);
    for (const l of lines) expect(l).not.toMatch(CONTROL);
  });

  it('plain cases', () => {
    expect(screenText('a\x1b[1;31mred\x1b[0m b\r\n')).toBe('ared b\n');
    expect(screenText('progress 10%\rprogress 100%\n')).toBe('progress 100%\n');
    expect(screenText('abc\b\bX\n')).toBe('aXc\n');
    expect(screenText('\x1b]0;title\x07text\x1b(B\x1b[?25h\n')).toBe('text\n');
    expect(screenText('menu\x1b[5;1Hsecond')).toBe('menu\nsecond');
    expect(screenText('a\tb')).toBe('a       b');
  });

  it('never leaves an escape or a control character, whatever the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      const text = screenText(Buffer.from(bytes).toString('latin1'));
      expect(text).not.toMatch(CONTROL);
    }), { numRuns: 500 });
  });
});

describe('lastScreen', () => {
  it('a failed initramfs boot: its last lines, FAILED among them', () => {
    const last = lastScreen(failed, 3);
    expect(last).toHaveLength(3);
    expect(last[1]).toMatch(/^rolecast: FAILED: rootfs download failed after 2 attempts/);
    expect(last[2]).toBe('rolecast: dropping to a shell on the console (exit to reboot)');
  });

  it('skips blank lines and cuts long ones', () => {
    expect(lastScreen('a\n\n\nb\n\n', 5)).toEqual(['a', 'b']);
    expect(lastScreen(`${'x'.repeat(300)}\n`, 1, 10)).toEqual([`${'x'.repeat(9)}…`]);
    expect(lastScreen('', 5)).toEqual([]);
  });
});
