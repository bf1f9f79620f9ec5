/**
 * Shared by the kv example's cluster tests: HTTP requests to a member, waiting for an outcome (never for a
 * duration), and an in-process 3-member cluster on ephemeral ports with FileStorage in a temporary directory.
 * @module
 */
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TcpAddress } from '@raftrtc/raft-node';
import { KvMember, type KvMemberOptions } from '../src/member.js';

export const HOST = '127.0.0.1';
/** Generous: the outcomes are awaited, never timed; this only bounds a hang. */
export const WAIT_MS = 30_000;

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON, checked field by field by the tests
  body: any;
}

/** One HTTP request with node:http (no keep-alive, so stopping a member never strands a pooled socket). */
export function http(to: KvMember | TcpAddress, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Reply> {
  const { host, port } = to instanceof KvMember ? to.http : to;
  return new Promise<Reply>((resolve, reject) => {
    const req = request({ host, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          reject(new Error(`${method} ${path}: the answer is not JSON: ${text.slice(0, 200)}`));
          return;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Polls `probe` until it gives a value (errors count as "not yet"), for at most `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every running member reports the same leader, which is one of them. */
export async function agreedLeader(members: KvMember[]): Promise<KvMember> {
  return waitFor('an agreed leader', async () => {
    const views = await Promise.all(members.map((m) => http(m, 'GET', '/cluster')));
    const leaders = new Set(views.map((v) => v.body.leader));
    if (leaders.size !== 1) return undefined;
    return members.find((m) => m.id === views[0]!.body.leader);
  });
}

export interface TestCluster {
  dir: string;
  members: KvMember[];
  leader: KvMember;
  stop(): Promise<void>;
}

/** Three members in this process on ephemeral ports; resolves once they agree on a leader. */
export async function startCluster(prefix: string, extra: Partial<KvMemberOptions> = {}): Promise<TestCluster> {
  const ids = ['n1', 'n2', 'n3'];
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const members = ids.map((id) => new KvMember({
    id,
    // Ports are picked by the OS; peers learn each other's addresses once everyone listens.
    peers: {},
    voters: ids,
    raftListen: { host: HOST, port: 0 },
    httpListen: { host: HOST, port: 0 },
    dataDir: join(dir, id),
    secret: 'kv-test-secret',
    tickMs: 20,
    ...extra,
  }));
  await Promise.all(members.map((m) => m.start()));
  for (const m of members) for (const p of members) if (p !== m) m.transport.addPeer(p.id, p.raft);
  const leader = await agreedLeader(members);
  return {
    dir, members, leader,
    async stop() {
      await Promise.all(members.map((m) => m.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
