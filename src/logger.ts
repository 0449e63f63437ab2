import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs, one logger per process, children per component: on stdout, or on stderr
 * for a process whose stdout carries something else (a benchmark's one JSON line of figures).
 */
export function createLogger(level: string, to: 'stdout' | 'stderr' = 'stdout'): Logger {
  const options = { level, base: { service: 'switchyard' }, timestamp: pino.stdTimeFunctions.isoTime };
  return to === 'stdout' ? pino(options) : pino(options, pino.destination({ fd: 2, sync: true }));
}
