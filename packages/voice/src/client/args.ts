/**
 * The `call` command line.
 * @module
 */
import { parseCommandLine, parseHostPort, UsageError } from '../command-line.js';
import type { CallOptions } from './call.js';

/** The `call` command's usage text. */
export const CALL_USAGE = `usage: npm run voice -- call --server HOST:PORT --name NAME --passcode CODE [--room ROOM]
         [--input FILE.wav | --no-mic] [--output FILE.wav] [--jitter-ms MS] [--jitter-max-ms MS] [--tls-ca FILE]
         [--duration SECONDS] [--exit-on-eof]

  --server       the voice relay, HOST:PORT
  --name         your display name (1 to 64 characters)
  --passcode     the relay's passcode (or env VOICE_PASSCODE)
  --room         the room to join (default: the relay's default room)
  --input        play this WAV file (16-bit PCM, any rate) into the call instead of the microphone
  --no-mic       send nothing but files played with the "play" command
  --output       write the call to this WAV file (48 kHz mono, in real time) instead of the speakers
  --jitter-ms    jitter buffer depth per speaker (default 60, a multiple of 20)
  --jitter-max-ms  most audio held per speaker before the oldest is dropped (default jitter-ms + 1000)
  --tls-ca       connect with TLS, trusting this CA certificate (PEM)
  --duration     leave after this many seconds
  --exit-on-eof  leave once the --input file has been sent

Commands on standard input: mute, unmute, deafen, undeafen, play FILE.wav, stop. Ctrl+C leaves.
Exit codes: 0 left, 1 failure, 2 usage, 3 passcode refused, 4 server full, 5 server unreachable,
6 server ended the call, 7 audio device or file problem.`;

const MAX_NAME = 64;

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) throw new UsageError(`${flag} takes a positive number, not ${JSON.stringify(value)}`);
  return n;
}

/** Parses the `call` command line (with or without the leading `call`); throws {@link UsageError}. */
export function parseCallArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CallOptions {
  const values = parseCommandLine(argv, 'call', {
    server: { type: 'string' }, name: { type: 'string' }, passcode: { type: 'string' }, room: { type: 'string' },
    input: { type: 'string' }, 'no-mic': { type: 'boolean' }, output: { type: 'string' }, 'jitter-ms': { type: 'string' }, 'jitter-max-ms': { type: 'string' },
    'tls-ca': { type: 'string' }, duration: { type: 'string' }, 'exit-on-eof': { type: 'boolean' },
  });
  if (!values.server) throw new UsageError('--server HOST:PORT is required');
  parseHostPort(values.server, '--server');
  const name = values.name;
  if (!name || [...name].length > MAX_NAME) throw new UsageError(`--name takes 1 to ${MAX_NAME} characters`);
  const passcode = values.passcode ?? env.VOICE_PASSCODE;
  if (!passcode) throw new UsageError('a passcode is required: --passcode CODE or env VOICE_PASSCODE');
  if (values.input && values['no-mic']) throw new UsageError('--input and --no-mic exclude each other');
  if (values['exit-on-eof'] && !values.input) throw new UsageError('--exit-on-eof needs --input');
  const jitterMs = positiveNumber(values['jitter-ms'], '--jitter-ms');
  if (jitterMs !== undefined && jitterMs % 20 !== 0) throw new UsageError('--jitter-ms takes a multiple of 20 (frames are 20 ms)');
  const jitterMaxMs = positiveNumber(values['jitter-max-ms'], '--jitter-max-ms');
  if (jitterMaxMs !== undefined && jitterMaxMs < (jitterMs ?? 60)) throw new UsageError('--jitter-max-ms must be at least --jitter-ms');
  const duration = positiveNumber(values.duration, '--duration');
  return {
    server: values.server,
    name,
    passcode,
    room: values.room,
    input: values.input,
    noMic: values['no-mic'] ?? false,
    output: values.output,
    jitterMs: jitterMs ?? 60,
    jitterMaxMs,
    tlsCa: values['tls-ca'],
    durationMs: duration !== undefined ? duration * 1000 : undefined,
    exitOnEof: values['exit-on-eof'] ?? false,
  };
}
