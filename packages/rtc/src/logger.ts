/**
 * The logging hook of `@raftrtc/rtc`: structured (message + fields), silent unless the application passes one.
 * @module
 */

/** Where the manager reports what it does; every method is optional. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that discards everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Fills the methods a partial logger leaves out with no-ops. */
export function completeLogger(partial: Partial<Logger> | undefined): Logger {
  return { ...silentLogger, ...partial };
}
