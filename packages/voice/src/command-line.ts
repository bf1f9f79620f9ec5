/**
 * What `voice serve` and `voice call` share of command-line parsing: the error type, strict option parsing
 * and `HOST:PORT`.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad command line; its message says what is wrong. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Splits `HOST:PORT` (IPv6 as `[::1]:PORT`). */
export function parseHostPort(value: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`${flag} takes HOST:PORT (e.g. 127.0.0.1:50051), not ${JSON.stringify(value)}`);
  return { host: m[1] ?? m[2]!, port };
}

/** What {@link parseCommandLine} gives for `options`: each option's value, typed by its declaration. */
export type OptionValues<T extends NonNullable<ParseArgsConfig['options']>> =
  ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: T }>>['values'];

/**
 * Parses `argv` (with or without its leading `command`) strictly against `options`: an unknown flag or a
 * missing value is a {@link UsageError}.
 */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(argv: readonly string[], command: string, options: T): OptionValues<T> {
  const args = argv[0] === command ? argv.slice(1) : [...argv];
  try {
    return parseArgs({ args, strict: true, allowPositionals: false, options }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
