/**
 * Crash test: three `main.ts` processes with FileStorage (fsync on) in temporary directories; concurrent
 * clients write unique values and read while the test SIGKILLs a random member (the leader on every other
 * kill, so it is always among them) at random moments and restarts it. At the end every write a client saw
 * acknowledged is readable on every member, and the clients' history is linearizable.
 *
 * KV_CRASH_KILLS sets the number of kills (default 5, so `npm test` stays quick; the issue asks for 20);
 * KV_CRASH_SEED the seed of the choices (printed, so a failure can be replayed in the same order).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkOperations, kvModel, Rng, type KvInput, type KvOutput, type Operation } from '@raftrtc/raft/testing';
import { waitFor as waitForShared } from './helpers.js';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'main.ts');
const HOST = '127.0.0.1';
const IDS = ['n1', 'n2', 'n3'];
const KILLS = Number(process.env.KV_CRASH_KILLS ?? 5);
const SEED = Number(process.env.KV_CRASH_SEED ?? 20261122);
const CLIENTS = 4;
/** Few shared keys, so clients really race on them and the checker has something to decide. */
const SHARED_KEYS = ['s0', 's1', 's2'];
/** Bounds a hang only; outcomes are awaited, never timed. */
const WAIT_MS = 60_000;
/** A request with no answer by then counts as unknown (the member may be dead or cut off). */
const REQUEST_TIMEOUT_MS = 15_000;

/** A free port picked by the OS (Raft ports must be known before the members start). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Reply { status: number; body: Record<string, unknown> }

function http(port: number, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const req = request({ host: HOST, port, method, path, agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  return waitForShared(what, probe, WAIT_MS);
}

class Member {
  child: ChildProcess | null = null;
  /** The HTTP port of the running process (0 while down); it changes on every restart. */
  port = 0;
  private stderr = '';
  constructor(readonly id: string, private readonly args: string[]) {}

  async start(): Promise<void> {
    this.stderr = '';
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...this.args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, KV_SECRET: 'crash-test-secret' } });
    this.child = child;
    child.stderr!.on('data', (c: Buffer) => { this.stderr += c.toString('utf8'); });
    this.port = await waitFor(`${this.id} to start`, async () => {
      if (child.exitCode !== null) throw new Error(`${this.id} exited: ${this.stderr}`);
      for (const line of this.stderr.split('\n')) {
        if (!line.includes('"kv.started"')) continue;
        return Number(String((JSON.parse(line) as { http: string }).http).split(':').pop());
      }
      return undefined;
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.port = 0;
    this.child = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

type Op = Operation<KvInput, KvOutput>;

describe('examples/kv crash test: kill -9 under concurrent writes', () => {
  let dir: string;
  let members: Member[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftrtc-kv-crash-'));
    const ports = await Promise.all(IDS.map(() => freePort()));
    const peers = IDS.map((id, i) => `${id}=${HOST}:${ports[i]}`).join(',');
    members = IDS.map((id) => new Member(id, [
      '--id', id, '--peers', peers, '--listen', `${HOST}:0`, '--data', join(dir, id),
      // Quicker elections than the 1-2 s default keep the test short; fsync stays on.
      '--tick-ms', '20', '--quiet',
    ]));
    await Promise.all(members.map((m) => m.start()));
  });

  after(async () => {
    for (const m of members) await m.kill();
    await rm(dir, { recursive: true, force: true });
  });

  it(`${KILLS} kills: acknowledged writes survive and the history is linearizable (seed ${SEED})`, { timeout: 60_000 + KILLS * 60_000 }, async () => {
    const rng = new Rng(SEED);
    const clientRngs = Array.from({ length: CLIENTS }, () => rng.fork());
    const history: Op[] = [];
    /** Unique keys whose write was acknowledged, with the value written. */
    const acknowledged = new Map<string, string>();
    let clock = 0;
    let stop = false;
    let acked = 0;
    let unknown = 0;
    const started = Date.now();

    const alive = (): Member[] => members.filter((m) => m.port !== 0);
    const client = async (c: number): Promise<void> => {
      const r = clientRngs[c]!;
      for (let n = 0; !stop; n++) {
        const up = alive();
        if (up.length === 0) { await new Promise((res) => setTimeout(res, 20)); continue; }
        const port = up[r.int(up.length)]!.port;
        const pick = r.next();
        if (pick < 0.3) {
          // A unique key: it is never overwritten, so its acknowledged value must be there at the end.
          const key = `u-${c}-${n}`;
          const value = `c${c}-${n}`;
          const op: Op = { clientId: c, input: { op: 'put', key, value }, call: clock++, return: Infinity };
          history.push(op);
          const res = await http(port, 'PUT', `/kv/${key}`, JSON.stringify({ value })).catch(() => null);
          // Anything but a 200 may still have been applied: the outcome stays unknown (return Infinity).
          if (res?.status === 200) { op.return = clock++; acknowledged.set(key, value); acked++; } else unknown++;
        } else if (pick < 0.7) {
          const key = SHARED_KEYS[r.int(SHARED_KEYS.length)]!;
          const value = `c${c}-${n}`;
          const op: Op = { clientId: c, input: { op: 'put', key, value }, call: clock++, return: Infinity };
          history.push(op);
          const res = await http(port, 'PUT', `/kv/${key}`, JSON.stringify({ value })).catch(() => null);
          if (res?.status === 200) { op.return = clock++; acked++; } else unknown++;
        } else {
          const key = SHARED_KEYS[r.int(SHARED_KEYS.length)]!;
          const call = clock++;
          const res = await http(port, 'GET', `/kv/${key}`).catch(() => null);
          // A failed read constrains nothing; only answered ones enter the history.
          if (res?.status === 200) history.push({ clientId: c, input: { op: 'get', key }, output: { value: String(res.body.value) }, call, return: clock++ });
          else if (res?.status === 404) history.push({ clientId: c, input: { op: 'get', key }, output: { value: '' }, call, return: clock++ });
        }
      }
    };

    const leaderId = (): Promise<string> => waitFor('a leader', async () => {
      const up = alive();
      const views = await Promise.all(up.map((m) => http(m.port, 'GET', '/cluster')));
      const leaders = new Set(views.map((v) => v.body.leader));
      const id = views[0]?.body.leader;
      return leaders.size === 1 && typeof id === 'string' ? id : undefined;
    });

    const clients = Array.from({ length: CLIENTS }, (_, c) => client(c));
    let leaderKills = 0;
    try {
      for (let k = 0; k < KILLS; k++) {
        await new Promise((res) => setTimeout(res, rng.range(100, 1200)));
        // Every other kill takes the leader, so leaders are always among the victims; the rest are random.
        const victimId = k % 2 === 0 ? await leaderId() : IDS[rng.int(IDS.length)]!;
        const victim = members.find((m) => m.id === victimId)!;
        if (k % 2 === 0) leaderKills++;
        await victim.kill();
        await new Promise((res) => setTimeout(res, rng.range(0, 800)));
        await victim.start();
        // Let the cluster recover (a write through the restarted member succeeds) before the next kill, so
        // two members are never down together and the run keeps making progress.
        await waitFor(`a write through the restarted ${victim.id}`, async () => {
          const res = await http(victim.port, 'PUT', `/kv/probe-${k}`, JSON.stringify({ value: 'x' }));
          return res.status === 200 ? true : undefined;
        });
      }
    } finally {
      stop = true;
      await Promise.all(clients);
    }

    // Every acknowledged unique write is on every member (each read is linearizable, so this is also what
    // any client would see from now on).
    for (const m of members) {
      for (const [key, value] of acknowledged) {
        const res = await waitFor(`GET /kv/${key} on ${m.id}`, async () => {
          const x = await http(m.port, 'GET', `/kv/${key}`);
          return x.status === 503 ? undefined : x;
        });
        assert.equal(res.status, 200, `acknowledged ${key} is missing on ${m.id}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.value, value, `acknowledged ${key} has another value on ${m.id}`);
      }
    }
    // Final reads of the shared keys join the history: whatever an unknown write did is decided by now.
    for (const key of SHARED_KEYS) {
      const call = clock++;
      const res = await waitFor(`GET /kv/${key}`, async () => {
        const x = await http(members[0]!.port, 'GET', `/kv/${key}`);
        return x.status === 503 ? undefined : x;
      });
      history.push({ clientId: 'final', input: { op: 'get', key }, output: { value: res.status === 404 ? '' : String(res.body.value) }, call, return: clock++ });
    }

    const check = checkOperations(kvModel, history);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    // The figures, for the record (a failure replays with KV_CRASH_SEED).
    console.log(`crash test: seed ${SEED}, ${KILLS} kills (${leaderKills} of the leader), ${seconds} s, ${history.length} ops checked ` +
      `(${acked} writes acknowledged, ${unknown} unknown, ${acknowledged.size} unique keys verified on 3 members), checker ${check.result} in ${check.steps} steps`);
    assert.ok(acked > 0, 'some writes were acknowledged');
    assert.equal(check.result, 'ok', `the history is not linearizable: ${JSON.stringify(check).slice(0, 2000)}`);
    // The check is not vacuous: the same history with one answered read changed to a value never written fails.
    const read = history.findIndex((op) => op.input.op === 'get' && op.return !== Infinity);
    assert.ok(read >= 0, 'the history has answered reads');
    const tampered = history.map((op, i) => (i === read ? { ...op, output: { value: 'never-written' } } : op));
    assert.equal(checkOperations(kvModel, tampered).result, 'illegal', 'a read of a value never written is caught');
  });
});
