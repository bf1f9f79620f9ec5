/**
 * `npm run voice -- serve`: the relay from the command line, until SIGINT or SIGTERM.
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseCommandLine, parseHostPort, UsageError } from '../command-line.js';
import { isLogLevel } from '@raftrtc/server/log';
import { startVoiceServer, type VoiceServerOptions } from './voice-server.js';

/** The `serve` command's usage text. */
export const SERVE_USAGE = `usage: npm run voice -- serve [--listen HOST:PORT] --passcode CODE [--max-clients N]
         [--tls-cert FILE --tls-key FILE] [--metrics HOST:PORT] [--queue-frames N] [--stall-ms MS]
         [--log debug|info|warn|error]

  --listen       where to listen (default 127.0.0.1:50051; port 0 picks one)
  --passcode     what clients must send in metadata "passcode" (or env VOICE_PASSCODE)
  --max-clients  clients at once, over all rooms (default 10)
  --tls-cert/--tls-key  serve TLS with this PEM certificate chain and key
  --metrics      serve Prometheus metrics at http://HOST:PORT/metrics
  --queue-frames frames waiting per client before the oldest are dropped (default 256)
  --stall-ms     disconnect a client whose stream accepts nothing for this long (default 5000)
  --log          log level of the JSON lines on stderr (default RAFTRTC_LOG, else warn)`;

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new UsageError(`${flag} takes a positive integer, not ${JSON.stringify(value)}`);
  return n;
}

/**
 * Parses the `serve` command line (with or without the leading `serve`) into server options; throws a
 * {@link UsageError}. `env` supplies VOICE_PASSCODE.
 */
export function parseServeArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): VoiceServerOptions {
  const values = parseCommandLine(argv, 'serve', {
    listen: { type: 'string' }, passcode: { type: 'string' }, 'max-clients': { type: 'string' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, metrics: { type: 'string' },
    'queue-frames': { type: 'string' }, 'stall-ms': { type: 'string' }, log: { type: 'string' },
  });
  const { host, port } = parseHostPort(values.listen ?? '127.0.0.1:50051', '--listen');
  const passcode = values.passcode ?? env.VOICE_PASSCODE;
  if (!passcode) throw new UsageError('a passcode is required: --passcode CODE or env VOICE_PASSCODE');
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (values.log !== undefined && (!isLogLevel(values.log) || values.log === 'silent')) throw new UsageError(`--log takes debug, info, warn or error, not ${JSON.stringify(values.log)}`);
  const readPem = (file: string, flag: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(`${flag}: cannot read ${file}: ${(err as Error).message}`);
    }
  };
  const queueFrames = positiveInt(values['queue-frames'], '--queue-frames');
  const stallMs = positiveInt(values['stall-ms'], '--stall-ms');
  return {
    host, port, passcode,
    maxClients: positiveInt(values['max-clients'], '--max-clients') ?? 10,
    limits: { ...(queueFrames !== undefined && { queueFrames }), ...(stallMs !== undefined && { stallMs }) },
    tls: values['tls-cert'] !== undefined ? { cert: readPem(values['tls-cert'], '--tls-cert'), key: readPem(values['tls-key']!, '--tls-key') } : undefined,
    metrics: values.metrics !== undefined ? parseHostPort(values.metrics, '--metrics') : undefined,
    logLevel: values.log as VoiceServerOptions['logLevel'],
  };
}

/**
 * Runs `serve`: starts the relay, prints `voice relay listening on HOST:PORT` to stderr, and on SIGINT or
 * SIGTERM shuts down gracefully and resolves. A usage error prints the message and usage and sets exit code
 * 2; a failure to start (e.g. the port is taken) prints it and sets exit code 1.
 */
export async function runServe(argv: readonly string[]): Promise<void> {
  let options: VoiceServerOptions;
  try {
    options = parseServeArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${SERVE_USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  let server;
  try {
    server = await startVoiceServer(options);
  } catch (err) {
    process.stderr.write(`error: cannot start the voice relay: ${(err as Error).message}\n`);
    process.exitCode = 1;
    return;
  }
  process.stderr.write(`voice relay listening on ${server.address}${server.metricsUrl ? ` (metrics at ${server.metricsUrl})` : ''}\n`);
  // Only the first signal shuts down gracefully; with the listeners gone, a second Ctrl+C ends at once.
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  process.stderr.write(`${signal}: shutting down\n`);
  await server.close();
  process.exitCode = 0;
}
