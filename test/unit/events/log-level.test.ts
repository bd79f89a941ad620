import { describe, expect, it } from 'vitest';
import { EventLogLevels, REPEAT_MS } from '../../../src/events/log-level.js';

const A = '52:54:00:00:00:01';
const B = '52:54:00:00:00:02';

describe('EventLogLevels', () => {
  it('one info line per boot stage: per-packet DHCP steps and a stage repeated within a second are debug', () => {
    const l = new EventLogLevels();
    expect(l.level({ mac: A, stage: 'dhcp-discover' }, 0)).toBe('debug');
    expect(l.level({ mac: A, stage: 'dhcp-ack' }, 0)).toBe('info');
    expect(l.level({ mac: A, stage: 'dhcp-ack' }, REPEAT_MS - 1)).toBe('debug'); // a load test's next DORA
    expect(l.level({ mac: B, stage: 'dhcp-ack' }, 10)).toBe('info'); // another machine
    expect(l.level({ mac: A, stage: 'dhcp-nak' }, 20)).toBe('info'); // another stage
    expect(l.level({ mac: A, stage: 'dhcp-ack' }, 30)).toBe('info');
    expect(l.level({ mac: A, stage: 'dhcp-ack' }, 30 + REPEAT_MS)).toBe('info'); // iPXE's DHCP, seconds after the ROM's
    expect(l.level({ mac: A, stage: 'tftp-loader' }, 30 + REPEAT_MS)).toBe('info'); // not DHCP: every one
    expect(l.level({ mac: A, stage: 'tftp-loader' }, 31 + REPEAT_MS)).toBe('info');
  });
});
