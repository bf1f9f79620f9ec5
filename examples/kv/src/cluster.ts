/**
 * `npm run kv:cluster`: a local 3-member kv cluster, one child process per member, Raft on
 * 127.0.0.1:7001-7003 and HTTP on 127.0.0.1:8001-8003, data under ./data/n1..n3. Ctrl+C (or SIGTERM) stops
 * every member and waits for them; a member that dies on its own takes the others down too, so a broken
 * cluster is never left half-running.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ids = ['n1', 'n2', 'n3'];
const peers = ids.map((id, i) => `${id}=127.0.0.1:${7001 + i}`).join(',');
const secret = process.env.KV_SECRET ?? 'raftrtc-kv-development-secret';

const children = new Map<string, ChildProcess>();
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) if (child.exitCode === null) child.kill('SIGTERM');
  const done = (): void => { if ([...children.values()].every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(code); };
  for (const child of children.values()) child.once('exit', done);
  done();
}

ids.forEach((id, i) => {
  const child = spawn(process.execPath, [
    '--import', 'tsx', join(here, 'main.ts'),
    '--id', id, '--peers', peers, '--listen', `127.0.0.1:${8001 + i}`, '--data', join('data', id),
  ], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, KV_SECRET: secret } });
  children.set(id, child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${JSON.stringify({ event: 'kv.cluster-member-exited', id, code, signal })}\n`);
      stopAll(1);
    }
  });
});

process.stderr.write(`${JSON.stringify({ event: 'kv.cluster-started', http: ids.map((_, i) => `http://127.0.0.1:${8001 + i}`) })}\n`);
// Ctrl+C reaches the children too (same process group); they stop on their own and we wait for them.
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));
