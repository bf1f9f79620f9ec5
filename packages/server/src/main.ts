/**
 * CLI: `node --import tsx packages/server/src/main.ts [--port 8080] [--host 127.0.0.1]`.
 * Environment: `RAFTRTC_SECRET` (token secret; random per process if unset), `RAFTRTC_ICE_SERVERS` (JSON
 * array of ICE servers), `RAFTRTC_PUBLIC_URL`, `RAFTRTC_TRUST_PROXY=1`, `RAFTRTC_LOG` (debug|info|warn|error|silent).
 * SIGINT/SIGTERM shut down gracefully.
 * @module
 */
import { parseArgs } from 'node:util';
import { createServer, serverOptionsFromEnv } from './index.js';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: main.ts [--port 8080] [--host 127.0.0.1]\n`);
  process.exit(2);
}

let args: { port?: string; host?: string };
try {
  args = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string' } } }).values;
} catch (err) {
  usage(err instanceof Error ? err.message : String(err));
}
const port = Number(args.port ?? '8080');
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad --port ${args.port}`);
const host = args.host ?? '127.0.0.1';

let options;
try {
  options = serverOptionsFromEnv();
} catch (err) {
  usage(err instanceof Error ? err.message : String(err));
}
const server = createServer(options);
const { port: bound } = await server.listen(port, host);
process.stdout.write(`RaftRTC signaling server on http://${host}:${bound} (WebSocket ${`ws://${host}:${bound}/connection/websocket`})\n`);

const shutdown = (): void => {
  void server.close().then(() => process.exit(0));
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
