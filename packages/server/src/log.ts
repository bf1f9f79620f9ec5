/**
 * Structured logs: one JSON object per line on stderr. Quiet by default (`warn`), because a signaling server's
 * normal life (connects, subscribes) is what metrics are for; `RAFTRTC_LOG=debug` shows every connection.
 * @module
 */

/** Log levels, most verbose first; `silent` logs nothing. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** Whether `value` names a log level. */
export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && Object.hasOwn(RANK, value);
}

/** Fields attached to a log line. */
export type LogFields = Record<string, unknown>;

/** A leveled JSON logger. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

/**
 * A logger writing lines at `level` and above to `write` (stderr by default). An explicit `level` wins over
 * `RAFTRTC_LOG`; an unknown `RAFTRTC_LOG` value falls back to `warn`.
 */
export function createLogger(level?: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line + '\n')): Logger {
  const env = process.env.RAFTRTC_LOG;
  const effective: LogLevel = level ?? (isLogLevel(env) ? env : 'warn');
  const min = RANK[effective];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }));
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}
