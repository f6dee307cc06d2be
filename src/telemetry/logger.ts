/**
 * The pino root logger. There is exactly one per process; components take children
 * (`logger.child({ component: 'hbone' })`) and connections take grandchildren carrying their id.
 * JSON is the default format because logs are read by machines; `pretty` is a compact line format
 * for humans at a terminal, implemented here without an extra transport thread.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { MeshError } from '../errors.js';

export type { Logger } from 'pino';
export type LogFormat = 'json' | 'pretty';

export const LOG_LEVELS: readonly LevelWithSilent[] = [
  'fatal',
  'error',
  'warn',
  'info',
  'debug',
  'trace',
  'silent',
];

export function isLogLevel(s: string): s is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

export interface LoggerOptions {
  level?: string;
  format?: LogFormat;
  /** Where to write; defaults to stdout (fd 1). */
  destination?: NodeJS.WritableStream | number;
  base?: Record<string, unknown>;
}

function prettyLine(obj: Record<string, unknown>): string {
  const { level, time, msg, pid: _pid, hostname: _host, ...rest } = obj;
  const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const lvl = typeof level === 'string' ? level.toUpperCase().padEnd(5) : String(level);
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${t} ${lvl} ${typeof msg === 'string' ? msg : ''}${fields ? ' ' + fields : ''}\n`;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  if (!isLogLevel(level)) {
    throw new MeshError('MESH_ERR_INVALID_ARGUMENT', `unknown log level "${level}"`, {
      hint: `use one of ${LOG_LEVELS.join(', ')}`,
    });
  }
  const dest = opts.destination ?? 1;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  const options: pino.LoggerOptions = {
    level,
    base: opts.base ?? { pid: process.pid },
    formatters: { level: (label) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.epochTime,
  };
  if (opts.format === 'pretty') {
    const out = stream as NodeJS.WritableStream;
    return pino(options, {
      write(chunk: string) {
        try {
          out.write(prettyLine(JSON.parse(chunk) as Record<string, unknown>));
        } catch {
          out.write(chunk);
        }
      },
    });
  }
  return pino(options, stream);
}

/** A logger that drops everything: for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
