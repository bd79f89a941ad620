/** pino loggers: JSON lines; child loggers carry `mac` (and `xid`) so one machine's boot can be followed. */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export function createLogger(level = 'info', dest?: DestinationStream): Logger {
  return pino({ level, base: { name: 'rolecast' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** A logger that discards everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
