/**
 * pino loggers: child loggers carry `mac` (and `xid`) so one machine's boot can be followed. JSON lines for
 * journald and log shippers; on a terminal, pino-pretty's readable lines instead (ROLECAST_LOG_FORMAT=json or
 * pretty forces one).
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

/** pino-pretty, loaded only for a terminal: the service logs JSON and need not load it (~25 ms of a start). */
const prettyStream = () => (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty')).PinoPretty;

/** Pretty when stdout is a terminal, unless ROLECAST_LOG_FORMAT says otherwise. */
export function wantPretty(env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): boolean {
  const f = env.ROLECAST_LOG_FORMAT;
  return f === 'pretty' || (f !== 'json' && isTTY);
}

/**
 * The terminal format (pino-pretty, synchronous: nothing lost when the process exits right after a fatal
 * line). `fd` writes straight to that descriptor: a worker thread's process.stdout goes through the main thread.
 */
export function prettyDestination(fd?: number): DestinationStream {
  return prettyStream()({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', sync: true, ...(fd !== undefined ? { destination: fd } : {}) });
}

export function createLogger(level = 'info', dest?: DestinationStream): Logger {
  const opts = { level, base: { name: 'rolecast' }, timestamp: pino.stdTimeFunctions.isoTime };
  // The synchronous stream form: no worker thread, and nothing lost when the process exits right after a fatal line.
  if (!dest && wantPretty()) return pino(opts, prettyDestination());
  return pino(opts, dest);
}

/** A logger that discards everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
