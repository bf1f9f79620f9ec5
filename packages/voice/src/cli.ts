/**
 * `npm run voice -- serve …` runs the relay; `npm run voice -- call …` joins a call.
 * @module
 */
import { CALL_USAGE, parseCallArgs } from './client/args.js';
import { Call, ExitCode } from './client/call.js';
import { UsageError } from './command-line.js';
import { runServe, SERVE_USAGE } from './server/serve.js';

const USAGE = `usage: npm run voice -- <serve|call> [options]   (--help after a command for its options)

${SERVE_USAGE}

${CALL_USAGE}`;

async function call(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseCallArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`error: ${err.message}\n\n${CALL_USAGE}\n`);
    return ExitCode.Usage;
  }
  const c = new Call(options, {
    commands: process.stdin,
    print: (line) => process.stdout.write(`${line}\n`),
    error: (line) => process.stderr.write(`error: ${line}\n`),
  });
  let interrupts = 0;
  const leave = (signal: NodeJS.Signals): void => {
    // A second Ctrl+C while the call is flushing means "now".
    if (++interrupts > 1) process.exit(130);
    process.stdout.write(`${signal}: leaving the call\n`);
    void c.stop(ExitCode.Ok, signal);
  };
  process.on('SIGINT', leave);
  process.on('SIGTERM', leave);
  const result = await c.run();
  const s = result.stats;
  const line = `call ended: ${result.message}; sent ${s.framesSent} frames, received ${s.framesReceived}, late ${s.late}, concealed ${s.concealed}, overflowed ${s.overflowed}, queue drops ${JSON.stringify(s.queueDrops)}`;
  if (result.code === ExitCode.Ok) process.stdout.write(`${line}\n`);
  else process.stderr.write(`error: ${line}\n`);
  process.stdin.destroy();
  return result.code;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${SERVE_USAGE}\n`);
      return 0;
    }
    await runServe(rest);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  }
  if (command === 'call') {
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${CALL_USAGE}\n`);
      return 0;
    }
    return call(rest);
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) {
    process.stderr.write(`${USAGE}\n`);
    return ExitCode.Usage;
  }
  process.stderr.write(`error: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
  return ExitCode.Usage;
}

process.exitCode = await main(process.argv.slice(2));
// Everything is closed by now; should a handle still linger (a wedged audio program), do not hang on it.
setTimeout(() => process.exit(), 2000).unref();
