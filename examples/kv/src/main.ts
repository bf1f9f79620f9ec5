/**
 * Runs one kv member:
 *
 *   npm run kv -- --id n1 --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003 \
 *     --listen 127.0.0.1:8001 --data ./data/n1 [--secret S] [--join]
 *
 * `--peers` are Raft addresses, `--listen` the HTTP API's. The secret defaults to $KV_SECRET, then to a
 * fixed development value (with a warning): every member must use the same one. `--join` starts a member
 * that waits to be added (`POST /cluster/members`) instead of bootstrapping a new cluster.
 * Logs are one JSON object per line on stderr.
 * @module
 */
import { parseArgs } from 'node:util';
import type { TcpAddress } from '@raftrtc/raft-node';
import { KvMember, parseHostPort } from './member.js';

const DEV_SECRET = 'raftrtc-kv-development-secret';

/** A bad command line; printed with the usage and exit code 2. */
class UsageError extends Error {}

const USAGE = 'usage: kv --id <id> --peers <id=host:port,...> --listen <host:port> --data <dir> [--secret <s>] [--join] [--no-fsync] [--no-parallel-write] [--tick-ms <ms>] [--election-ticks <n>] [--snapshot-every <entries>] [--quiet]';

function log(event: string, fields: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), event, ...fields })}\n`);
}

function parsePeers(text: string): Record<string, TcpAddress> {
  const peers: Record<string, TcpAddress> = {};
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--peers: "${part}" is not id=host:port`);
    const id = part.slice(0, eq).trim();
    if (peers[id]) throw new UsageError(`--peers: ${id} appears twice`);
    try {
      peers[id] = parseHostPort(part.slice(eq + 1));
    } catch (err) {
      throw new UsageError(`--peers: ${(err as Error).message}`);
    }
  }
  return peers;
}

function parseCommandLine(argv: string[]): { member: ConstructorParameters<typeof KvMember>[0]; quiet: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      id: { type: 'string' }, peers: { type: 'string' }, listen: { type: 'string' }, data: { type: 'string' },
      secret: { type: 'string' }, join: { type: 'boolean' }, 'no-fsync': { type: 'boolean' }, 'no-parallel-write': { type: 'boolean' }, quiet: { type: 'boolean' },
      'tick-ms': { type: 'string' }, 'election-ticks': { type: 'string' }, 'snapshot-every': { type: 'string' },
    },
    strict: true,
  });
  for (const name of ['id', 'peers', 'listen', 'data'] as const) if (!values[name]) throw new UsageError(`--${name} is required`);
  const peers = parsePeers(values.peers!);
  if (!peers[values.id!]) throw new UsageError(`--peers must include this member (${values.id})`);
  let httpListen: TcpAddress;
  try {
    httpListen = parseHostPort(values.listen!);
  } catch (err) {
    throw new UsageError(`--listen: ${(err as Error).message}`);
  }
  // Timing knobs: tests speed elections up, and the etcd benchmark sets election timeouts equal to etcd's.
  const positive = (name: 'tick-ms' | 'election-ticks' | 'snapshot-every'): number | undefined => {
    const text = values[name];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer`);
    return n;
  };
  const tickMs = positive('tick-ms');
  const electionTicks = positive('election-ticks');
  const snapshotEvery = positive('snapshot-every');
  let secret = values.secret ?? process.env.KV_SECRET;
  if (!secret) {
    log('kv.dev-secret', { warning: 'no --secret or $KV_SECRET: using the public development secret; do not expose these ports' });
    secret = DEV_SECRET;
  }
  return {
    quiet: values.quiet ?? false,
    member: {
      id: values.id!, peers, httpListen, dataDir: values.data!, secret,
      ...(values.join ? { voters: [] } : {}),
      ...(values['no-fsync'] ? { fsync: false } : {}),
      ...(values['no-parallel-write'] ? { parallelWrite: false } : {}),
      ...(tickMs !== undefined ? { tickMs } : {}),
      ...(electionTicks !== undefined ? { electionTicks } : {}),
      ...(snapshotEvery !== undefined ? { snapshotEvery } : {}),
    },
  };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  // Transport chatter (dials, reconnects) is noise for an operator; state changes and errors are not.
  const quietEvents = (event: string): boolean => event.startsWith('tcp.') && event !== 'tcp.listening';
  const member = new KvMember({
    ...parsed.member,
    log: (event, fields) => { if (!parsed.quiet && !quietEvents(event)) log(event, fields); },
  });
  await member.start();
  log('kv.started', { id: member.id, http: `${member.http.host}:${member.http.port}`, raft: `${member.raft.host}:${member.raft.port}` });

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log('kv.stopping', { id: member.id, signal });
    member.stop().then(() => process.exit(0), (err: unknown) => {
      log('kv.stop-failed', { id: member.id, error: err instanceof Error ? err.message : String(err) });
      process.exit(1);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  log('kv.fatal', { error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
