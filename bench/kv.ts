/**
 * `npm run bench -- kv`: the kv example (examples/kv) against etcd, both as 3-member clusters on this
 * machine with fsync on, driven by one load generator with byte-identical `POST /v3/kv/put` requests
 * (256-byte ASCII values, keys drawn from a million, each client one request in flight, client i talks to
 * member i mod 3). Then recovery: the leader of each system is killed with SIGKILL under load and the time
 * until writes succeed again is measured (`recoveryMs`: a fresh write probed every 20 ms on each survivor;
 * `loadRecoveryMs`: the first load write sent after the kill that succeeds, bounded by the 5 s client timeout).
 *
 * Options: `--concurrency=1,16,64,256 --seconds=10 --warmup=2 --repeats=3 --kills=5 --tick-ms=100
 * --election-ticks=10 --recovery-concurrency=16 --snapshot-every=10000 --kv-args="…"` (`--snapshot-every` is
 * etcd's `--snapshot-count`) (extra flags for our members, e.g.
 * `--no-parallel-write`). etcd gets `--heartbeat-interval=<tick-ms>
 * --election-timeout=<tick-ms × election-ticks>`. Installs `etcd-server` with apt-get when `etcd` is not
 * on PATH.
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { emit, listOption, numberOption as numOption, type BenchOptions } from './lib/measure.js';
import { median, quantile } from './lib/stats.js';
import { HOST, etcdArgs, freePort, type EtcdMember } from '../scripts/lib/etcd.js';

const here = dirname(fileURLToPath(import.meta.url));
const KV_MAIN = join(here, '..', 'examples', 'kv', 'src', 'main.ts');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (msg: string): void => { process.stderr.write(`[kv-bench] ${msg}\n`); };

// ---------------------------------------------------------------------------------------------- processes

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

function cleanup(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try { c.kill('SIGKILL'); } catch { /* already gone */ }
    }
  }
  children.clear();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

function onSignal(signal: NodeJS.Signals): void {
  log(`${signal}: stopping every child and removing temp dirs`);
  cleanup();
  process.exit(130);
}

function track(child: ChildProcess, name: string): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => { tail = (tail + d.toString('utf8')).slice(-2000); });
  child.stdout?.on('data', () => { /* drained */ });
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && !stopping) log(`${name} exited ${code}: ${tail.slice(-500)}`);
    void signal;
  });
  return child;
}
let stopping = false;

// ------------------------------------------------------------------------------------------------- http

interface Reply { status: number; body: string }

function post(agent: Agent | false, port: number, path: string, body: string, timeoutMs = 5000, method = 'POST'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: HOST, port, method, path, agent,
      headers: method === 'POST' ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(method === 'POST' ? body : undefined);
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 60_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) { last = err; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------------------------- systems

interface Member { name: string; clientPort: number; args: string[]; cmd: string; child?: ChildProcess }

interface System {
  name: 'kv' | 'etcd';
  members: Member[];
  /** Index of the leader, once every live member agrees on one. */
  leader(): Promise<number | undefined>;
}

function startMember(m: Member): void {
  m.child = track(spawn(m.cmd, m.args, { stdio: ['ignore', 'pipe', 'pipe'] }), m.name);
}

async function kvCluster(root: string, tickMs: number, electionTicks: number, snapshotEvery: number, extraArgs: string[]): Promise<System> {
  const ids = ['n1', 'n2', 'n3'];
  const raft = await Promise.all(ids.map(() => freePort()));
  const http = await Promise.all(ids.map(() => freePort()));
  const peers = ids.map((id, i) => `${id}=${HOST}:${raft[i]}`).join(',');
  const members: Member[] = ids.map((id, i) => ({
    name: `kv-${id}`, clientPort: http[i]!, cmd: process.execPath,
    args: ['--import', 'tsx', KV_MAIN, '--id', id, '--peers', peers, '--listen', `${HOST}:${http[i]}`,
      '--data', join(root, 'kv', id), '--secret', 'kv-bench-secret', '--tick-ms', String(tickMs),
      '--election-ticks', String(electionTicks), '--snapshot-every', String(snapshotEvery), '--quiet', ...extraArgs],
  }));
  members.forEach(startMember);
  return {
    name: 'kv', members,
    async leader() {
      const views = await Promise.all(members.map((m) => post(false, m.clientPort, '/cluster', '', 2000, 'GET')
        .then((r) => (r.status === 200 ? (JSON.parse(r.body) as { leader?: string; stale?: boolean }) : undefined), () => undefined)));
      const live = views.filter((v) => v !== undefined);
      if (live.length < 2 || live.some((v) => v.stale || !v.leader)) return undefined;
      if (new Set(live.map((v) => v.leader)).size !== 1) return undefined;
      const i = ids.indexOf(live[0]!.leader!);
      return i >= 0 && views[i] !== undefined ? i : undefined;
    },
  };
}

function ensureEtcd(): void {
  if (spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).status === 0) return;
  log('etcd is not on PATH: apt-get update -qq && apt-get install -y -qq etcd-server');
  const r = spawnSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq etcd-server'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0 || spawnSync('sh', ['-c', 'command -v etcd']).status !== 0) throw new Error('could not install etcd-server');
}

async function etcdCluster(root: string, tickMs: number, electionTicks: number, snapshotEvery: number): Promise<System> {
  const names = ['e1', 'e2', 'e3'];
  const client = await Promise.all(names.map(() => freePort()));
  const peer = await Promise.all(names.map(() => freePort()));
  const etcds: EtcdMember[] = names.map((n, i) => ({ name: n, dataDir: join(root, 'etcd', n), clientPort: client[i]!, peerPort: peer[i]! }));
  const members: Member[] = etcds.map((e) => ({
    name: `etcd-${e.name}`, clientPort: e.clientPort, cmd: 'etcd',
    args: etcdArgs(e, etcds, 'kv-bench', ['--heartbeat-interval', String(tickMs), '--election-timeout', String(tickMs * electionTicks),
      '--snapshot-count', String(snapshotEvery)]),
  }));
  members.forEach(startMember);
  return {
    name: 'etcd', members,
    async leader() {
      const st = await Promise.all(members.map((m) => post(false, m.clientPort, '/v3/maintenance/status', '{}', 2000)
        .then((r) => (r.status === 200 ? (JSON.parse(r.body) as { leader?: string; header?: { member_id?: string } }) : undefined), () => undefined)));
      const live = st.filter((s) => s !== undefined);
      if (live.length < 2 || new Set(live.map((s) => s.leader)).size !== 1) return undefined;
      const i = st.findIndex((s) => s !== undefined && s.leader !== undefined && s.leader === s.header?.member_id);
      return i >= 0 ? i : undefined;
    },
  };
}

async function waitHealthy(sys: System): Promise<number> {
  return waitFor(`${sys.name}: every member up and agreeing on a leader`, async () => {
    const up = await Promise.all(sys.members.map((m) => post(false, m.clientPort, '/v3/kv/put',
      JSON.stringify({ key: Buffer.from('health').toString('base64'), value: Buffer.from('ok').toString('base64') }), 3000)
      .then((r) => r.status === 200, () => false)));
    if (!up.every(Boolean)) return undefined;
    return sys.leader();
  });
}

// ------------------------------------------------------------------------------------------------- load

/** Seeded so both systems get the same bodies (xorshift32). */
function makeBodies(n: number): string[] {
  let s = 0x9e3779b9;
  const next = (): number => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s; };
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const bodies: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `key-${String(next() % 1_000_000).padStart(7, '0')}`;
    let value = '';
    for (let j = 0; j < 256; j++) value += alphabet[next() % alphabet.length];
    bodies.push(JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }));
  }
  return bodies;
}
const BODIES = makeBodies(8192);

interface Load {
  /** Completed-write timestamps and latencies (ms, performance.now based). */
  done: { at: number; ms: number; sentAt: number }[];
  errors: number;
  stop(): Promise<void>;
}

function startLoad(sys: System, concurrency: number, onDone?: (at: number, sentAt: number) => void): Load {
  const agents = sys.members.map(() => new Agent({ keepAlive: true, maxSockets: Math.ceil(concurrency / 3) + 1 }));
  const load: Load = { done: [], errors: 0, stop: async () => {} };
  let running = true;
  let cursor = 0;
  const client = async (i: number): Promise<void> => {
    const m = i % sys.members.length;
    while (running) {
      const body = BODIES[cursor++ % BODIES.length]!;
      const t0 = performance.now();
      let ok = false;
      try {
        const r = await post(agents[m]!, sys.members[m]!.clientPort, '/v3/kv/put', body, 5000);
        ok = r.status === 200;
      } catch { ok = false; }
      const t1 = performance.now();
      if (ok) {
        load.done.push({ at: t1, ms: t1 - t0, sentAt: t0 });
        onDone?.(t1, t0);
      } else {
        load.errors++;
        if (running) await sleep(10);
      }
    }
  };
  const clients = Array.from({ length: concurrency }, (_, i) => client(i));
  load.stop = async () => {
    running = false;
    await Promise.all(clients);
    for (const a of agents) a.destroy();
  };
  return load;
}

const round = (x: number, d = 2): number => Math.round(x * 10 ** d) / 10 ** d;

const CLOCK_TICKS_PER_SEC = 100;

/**
 * CPU time (user + system, ms) the system's member processes have used, from /proc/<pid>/stat. Unlike
 * throughput it barely moves when other jobs share the machine, so it shows the cost of a write even on a
 * noisy run.
 */
function cpuMs(sys: System): number {
  let ticks = 0;
  for (const m of sys.members) {
    const pid = m.child?.pid;
    if (pid === undefined) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch { /* the process is gone: it used nothing more */ }
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_SEC;
}

interface Measured { writesPerSec: number; p50Ms: number; p99Ms: number; cpuMsPerKWrite: number; errors: number }

async function measure(sys: System, concurrency: number, seconds: number, warmup: number): Promise<Measured> {
  const load = startLoad(sys, concurrency);
  const start = performance.now() + warmup * 1000;
  const end = start + seconds * 1000;
  await sleep(start - performance.now());
  const cpuStart = cpuMs(sys);
  await sleep(end - performance.now());
  const cpuUsed = cpuMs(sys) - cpuStart;
  const errorsAtEnd = load.errors;
  await load.stop();
  const window = load.done.filter((d) => d.at >= start && d.at < end);
  const lat = window.map((d) => d.ms);
  return {
    writesPerSec: window.length / seconds, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99),
    cpuMsPerKWrite: window.length > 0 ? (cpuUsed * 1000) / window.length : NaN, errors: errorsAtEnd,
  };
}

// ------------------------------------------------------------------------------------------------ recovery

async function recovery(sys: System, concurrency: number, kill: number): Promise<number | null> {
  const leader = await waitHealthy(sys);
  const victim = sys.members[leader]!;
  let killedAt = Infinity;
  let recoveredAt: number | undefined;
  let resolveRecovered: () => void = () => {};
  const recovered = new Promise<void>((r) => { resolveRecovered = r; });
  const load = startLoad(sys, concurrency, (at, sentAt) => {
    if (recoveredAt === undefined && sentAt >= killedAt) { recoveredAt = at; resolveRecovered(); }
  });
  await sleep(1000);
  killedAt = performance.now();
  victim.child?.kill('SIGKILL');
  // Besides the load's clients (each pinned to one member, so bounded by how long a member holds a request it
  // cannot commit), a probe sends a fresh write to each surviving member every 20 ms: the first one sent after
  // the kill that succeeds marks when the cluster accepts writes again, independent of client timeouts.
  let probeAt: number | undefined;
  let probing = true;
  const probes: Promise<void>[] = [];
  const probeLoop = (async () => {
    let n = 0;
    while (probing && probeAt === undefined) {
      for (const m of sys.members) {
        if (m === victim) continue;
        const body = BODIES[n++ % BODIES.length]!;
        probes.push(post(false, m.clientPort, '/v3/kv/put', body, 10_000).then((r) => {
          if (r.status === 200 && probeAt === undefined) probeAt = performance.now() - killedAt;
        }, () => {}));
      }
      await sleep(20);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([recovered, new Promise<void>((r) => { timer = setTimeout(r, 60_000); })]);
  clearTimeout(timer);
  await waitFor('probe success', async () => (probeAt !== undefined ? true : undefined), 60_000).catch(() => {});
  probing = false;
  await probeLoop;
  await Promise.all(probes);
  const errors = load.errors;
  await load.stop();
  const record = { bench: 'kv', phase: 'recovery', system: sys.name, kill, killed: victim.name, concurrency,
    recoveryMs: probeAt === undefined ? null : round(probeAt, 1),
    loadRecoveryMs: recoveredAt === undefined ? null : round(recoveredAt - killedAt, 1), errors };
  emit(record);
  // Bring the victim back (same data dir) and wait for a full, healthy cluster before the next kill.
  await new Promise<void>((r) => (victim.child && victim.child.exitCode === null && victim.child.signalCode === null ? victim.child.once('exit', () => r()) : r()));
  startMember(victim);
  await waitHealthy(sys);
  await sleep(1000);
  return record.recoveryMs;
}

// ------------------------------------------------------------------------------------------------ run

export async function run(options: BenchOptions): Promise<void> {
  const concurrencies = listOption(options, 'concurrency', [1, 16, 64, 256]);
  const seconds = numOption(options, 'seconds', 10);
  const warmup = numOption(options, 'warmup', 2);
  const repeats = numOption(options, 'repeats', 3);
  const kills = numOption(options, 'kills', 5);
  const tickMs = numOption(options, 'tick-ms', 100);
  const electionTicks = numOption(options, 'election-ticks', 10);
  const recoveryConcurrency = numOption(options, 'recovery-concurrency', 16);
  // Both compact as often: RaftNode's default, a tenth of etcd 3.4's default --snapshot-count.
  const snapshotEvery = numOption(options, 'snapshot-every', 10_000);
  const kvArgs = (options['kv-args'] ?? '').split(/\s+/).filter(Boolean);

  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', cleanup);
  try {
    ensureEtcd();
    log(spawnSync('etcd', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? 'etcd');
    const root = mkdtempSync(join(tmpdir(), 'kv-bench-'));
    tempDirs.push(root);
    mkdirSync(join(root, 'kv'));
    mkdirSync(join(root, 'etcd'));
    const systems = [await kvCluster(root, tickMs, electionTicks, snapshotEvery, kvArgs), await etcdCluster(root, tickMs, electionTicks, snapshotEvery)];
    for (const s of systems) log(`${s.name}: leader ${s.members[await waitHealthy(s)]!.name}`);

    for (const concurrency of concurrencies) {
      const results: Record<string, Measured[]> = { kv: [], etcd: [] };
      for (let repeat = 0; repeat < repeats; repeat++) {
        // Interleaved, alternating which system goes first.
        const order = repeat % 2 === 0 ? systems : [...systems].reverse();
        for (const sys of order) {
          const r = await measure(sys, concurrency, seconds, warmup);
          emit({ bench: 'kv', system: sys.name, concurrency, repeat, writesPerSec: round(r.writesPerSec, 1),
            p50Ms: round(r.p50Ms), p99Ms: round(r.p99Ms), cpuMsPerKWrite: round(r.cpuMsPerKWrite, 1), errors: r.errors });
          results[sys.name]!.push(r);
        }
      }
      const med = (name: string, key: keyof Measured): number => median(results[name]!.map((r) => r[key]));
      const keys = ['writesPerSec', 'p50Ms', 'p99Ms', 'cpuMsPerKWrite'] as const;
      const pick = (name: string) => Object.fromEntries(keys.map((k) => [k, round(med(name, k), k === 'writesPerSec' ? 1 : 2)]));
      emit({ bench: 'kv', summary: true, concurrency, repeats, kv: pick('kv'), etcd: pick('etcd'),
        ratio: Object.fromEntries(keys.map((k) => [k, round(med('kv', k) / med('etcd', k), 3)])) });
    }

    const recoveries: Record<string, number[]> = { kv: [], etcd: [] };
    for (let kill = 0; kill < kills; kill++) {
      const order = kill % 2 === 0 ? systems : [...systems].reverse();
      for (const sys of order) {
        const ms = await recovery(sys, recoveryConcurrency, kill);
        if (ms !== null) recoveries[sys.name]!.push(ms);
      }
    }
    if (kills > 0) {
      emit({ bench: 'kv', summary: true, phase: 'recovery', kills,
        kv: { medianMs: round(median(recoveries.kv!), 1), maxMs: Math.max(...recoveries.kv!), failed: kills - recoveries.kv!.length },
        etcd: { medianMs: round(median(recoveries.etcd!), 1), maxMs: Math.max(...recoveries.etcd!), failed: kills - recoveries.etcd!.length },
        ratio: round(median(recoveries.kv!) / median(recoveries.etcd!), 3) });
    }
  } finally {
    stopping = true;
    cleanup();
  }
}
