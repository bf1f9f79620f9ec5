/**
 * MIT 6.824 (Spring 2023) Raft lab tests 2A–2D (`raft/test_test.go`), ported to RaftRTC's deterministic
 * simulator: every test runs in virtual time on `LabConfig` (the port of the lab's `config.go`), and every
 * random choice — the test's own and the simulator's — comes from one seed, so a failure replays exactly.
 *
 * Where our design differs from the lab's Raft, the checks assert the equivalent property:
 *  - A new cluster's entry 1 is a `conf` bootstrap entry and every new leader appends an empty entry
 *    (`data: null`), so commands do not sit at indices 1, 2, 3… Where the lab asserts an exact index we
 *    assert what it stands for: indices strictly increase, each command is committed once at the index
 *    Start() returned, and "nothing beyond" bounds allow one empty entry per leader change.
 *  - The Go tests' goroutines become interleavings: each "goroutine" is a generator that yields the virtual
 *    milliseconds it wants to sleep; {@link Interleaving} resumes the earliest one (ties broken by the
 *    seeded RNG) after advancing the simulator to its wake-up time.
 *  - RPC counts and bytes use the lab's bounds unchanged: LabConfig counts requests only (an answer rides
 *    on its request, as in labrpc), so pre-vote, 100 ms heartbeats and JSON encoding fit within them.
 *  - The log-size bound of the snapshot tests stays the lab's 2000 bytes: with compaction every 10 applied
 *    entries our JSON log stays near 650 bytes, so no conversion to an entry count is needed.
 *
 * Seeds: each test runs for the seeds in LAB_SEEDS (a count, default 3: seeds 1..3). LAB_SEED=n (or a comma
 * list) pins the seed(s). A failure names its seed, the command that replays it and every server's state.
 * LAB_TRACE=1 (or 2, with every message) traces a run to stderr; run the file without `--test` to see it:
 * `LAB_TRACE=1 LAB_SEED=7 node --import tsx --test-name-pattern=TestBackup2B packages/raft/test/lab.test.ts`.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../src/index.js';
import { LabConfig, type Rng } from '../src/testing/index.js';

type StartResult = ReturnType<LabConfig['start']>;

// ---------------------------------------------------------------------------------------------------------
// Constants of the lab.

/** The tester allows an election to complete within one second (RaftElectionTimeout). */
const ELECTION_TIMEOUT = 1000;
/** config.go's SnapShotInterval: the service snapshots every 10 applied entries. */
const SNAPSHOT_INTERVAL = 10;
/** The lab's MAXLOGSIZE: the durable Raft state (snapshot excluded) must stay below it, in bytes. */
const MAX_LOG_SIZE = 2000;

const FILE = 'packages/raft/test/lab.test.ts';

function seeds(): number[] {
  const pinned = process.env.LAB_SEED;
  if (pinned !== undefined && pinned !== '') {
    return pinned.split(',').map((s) => {
      const n = Number(s.trim());
      if (!Number.isSafeInteger(n)) throw new RangeError(`LAB_SEED: not an integer: ${s}`);
      return n;
    });
  }
  const count = Number(process.env.LAB_SEEDS ?? 3);
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`LAB_SEEDS must be a positive integer`);
  return Array.from({ length: count }, (_, i) => i + 1);
}
const SEEDS = seeds();
const PINNED = (process.env.LAB_SEED ?? '') !== '';
/** LAB_TRACE=1 traces roles, crashes and snapshots to stderr; LAB_TRACE=2 adds every message. */
const TRACE = Number(process.env.LAB_TRACE ?? 0);

// ---------------------------------------------------------------------------------------------------------
// The harness: LabConfig plus what the Go tests read from `cfg` directly (cfg.rafts[i] != nil,
// cfg.connected[i]) and a seeded `rand`.

/** A simulated goroutine: yields how many virtual milliseconds it sleeps, returns its result. */
type Proc<T = void> = Generator<number, T, undefined>;

class Lab {
  readonly cfg: LabConfig;
  /** The test's own randomness (the Go tests' `rand.Int()`): a fork of the simulation's seeded stream. */
  readonly rng: Rng;
  /** `cfg.rafts[i] != nil`: the server is running (not crashed). */
  readonly up: boolean[];
  /** `cfg.connected[i]`. */
  readonly connected: boolean[];

  constructor(readonly n: number, options: { unreliable?: boolean; snapshot?: boolean }, run: LabRun) {
    this.cfg = new LabConfig(n, { ...options, seed: run.seed, replay: run.replay });
    this.cfg.begin(run.name);
    run.labs.push(this);
    this.rng = this.cfg.sim.fork();
    this.up = new Array<boolean>(n).fill(true);
    this.connected = new Array<boolean>(n).fill(true);
    if (TRACE) this.trace();
  }

  /** LAB_TRACE=1: logs role changes, crashes, restarts, snapshots and (LAB_TRACE=2) every message to stderr. */
  private trace(): void {
    const sim = this.cfg.sim;
    const inner = sim.observer ?? {};
    const log = (s: string) => process.stderr.write(`[${String(sim.now).padStart(6)}] ${s}\n`);
    const brief = (m: Message) => {
      const { type, from, to, term, ...rest } = m as Message & Record<string, unknown>;
      const body = JSON.stringify(rest, (k, v: unknown) => (k === 'entries' && Array.isArray(v) ? `${v.length} entries` : k === 'snapshot' ? '<snapshot>' : v));
      return `${type} ${from}->${to} t${term} ${body}`;
    };
    sim.observer = {
      ...inner,
      onRoleChange: (id, role, term) => { log(`${id} ${role} t${term}`); inner.onRoleChange?.(id, role, term); },
      onCrash: (id) => { log(`${id} crashed`); inner.onCrash?.(id); },
      onRestart: (id) => { log(`${id} restarted`); inner.onRestart?.(id); },
      onRestore: (id, snap) => { log(`${id} restored snapshot @${snap.index} t${snap.term}`); inner.onRestore?.(id, snap); },
      ...(TRACE > 1 ? {
        onSend: (m: Message, _from: string, _to: string, _at: number, deliverAt: number | null) => log(`send ${brief(m)}${deliverAt === null ? ' (dropped)' : ` @${deliverAt}`}`),
        onDrop: (m: Message, reason: string) => log(`drop(${reason}) ${brief(m)}`),
      } : {}),
    };
  }

  /** Each server's state, for a failure report. */
  dump(): string {
    return this.cfg.sim.all.map((node, i) => {
      const st = node.status();
      const net = this.connected[i] ? 'connected' : 'disconnected';
      if (!st) return `  server ${i}: crashed, ${net}, durable log ${node.durable.snapIndex}..${node.durable.lastIndex}`;
      const progress = (st as { progress?: unknown }).progress;
      return `  server ${i}: ${st.role} t${st.term} leader=${st.leader} commit=${st.commit} applied=${st.applied} ` +
        `log=${st.firstIndex}..${st.lastIndex} ${net}${progress ? ` progress=${JSON.stringify(progress)}` : ''}`;
    }).join('\n');
  }

  get now(): number { return this.cfg.now; }

  /** rand.Int(): a random non-negative safe integer (53 bits). */
  randInt(): number { return this.rng.uint32() * 2 ** 21 + (this.rng.uint32() >>> 11); }

  sleep(ms: number): void { if (ms > 0) this.cfg.sleep(ms); }
  one(cmd: unknown, expectedServers: number, retry: boolean): number { return this.cfg.one(cmd, expectedServers, retry); }
  checkOneLeader(): number { return this.cfg.checkOneLeader(); }
  checkTerms(): number { return this.cfg.checkTerms(); }
  checkNoLeader(): void { this.cfg.checkNoLeader(); }
  nCommitted(index: number): [number, unknown] { return this.cfg.nCommitted(index); }
  wait(index: number, n: number, startTerm: number): unknown { return this.cfg.wait(index, n, startTerm); }
  getState(i: number): { term: number; isLeader: boolean } { return this.cfg.getState(i); }
  setUnreliable(b: boolean): void { this.cfg.setUnreliable(b); }
  setLongReordering(b: boolean): void { this.cfg.setLongReordering(b); }

  /** rf.Start(cmd); a crashed server (`rafts[i] == nil`) is never the leader. */
  start(i: number, cmd: unknown): StartResult {
    if (!this.up[i]) return { index: -1, term: -1, isLeader: false };
    return this.cfg.start(i, cmd);
  }

  connect(i: number): void { this.cfg.connect(i); this.connected[i] = true; }
  disconnect(i: number): void { this.cfg.disconnect(i); this.connected[i] = false; }

  /** crash1: like the lab, a crashed server is also disconnected. */
  crash1(i: number): void {
    this.cfg.crash1(i);
    this.up[i] = false;
    this.connected[i] = false;
  }

  /** start1: restart from durable state (crashing first if running); it stays disconnected until connect(). */
  start1(i: number): void {
    if (this.up[i]) this.crash1(i);
    this.cfg.start1(i);
    this.up[i] = true;
  }

  /** Sum of rpcCount over all servers. */
  rpcs(): number {
    let n = 0;
    for (let j = 0; j < this.n; j++) n += this.cfg.rpcCount(j);
    return n;
  }

  /** The lab's LogSize(): the largest durable Raft state (snapshot excluded) over all servers. */
  maxLogSize(): number {
    let max = 0;
    for (let j = 0; j < this.n; j++) max = Math.max(max, this.cfg.logSize(j));
    return max;
  }

  /** config.go's one() as a goroutine, so that several can run "concurrently" in an {@link Interleaving}. */
  *oneProc(cmd: unknown, expectedServers: number, retry: boolean): Proc<number> {
    return yield* this.cfg.oneSteps(cmd, expectedServers, retry);
  }

  /** Whether `cmd` is committed (by any server) at some index in [from, to]; returns that index or -1. */
  findCommitted(cmd: unknown, from: number, to: number): number {
    for (let index = Math.max(1, from); index <= to; index++) {
      const [nd, c] = this.nCommitted(index);
      if (nd > 0 && c === cmd) return index;
    }
    return -1;
  }

  /** config.go's end(): checks the 120 s limit; returns the closing line (virtual seconds, peers, RPCs, bytes, commands). */
  end(): string {
    const s = this.cfg.end();
    return `${(s.elapsedMs / 1000).toFixed(1)}s virtual, ${s.servers} peers, ${s.rpcs} RPCs, ${s.bytes} bytes, ${s.commands} entries`;
  }
}

/** A handle on a simulated goroutine. */
interface Thread<T> {
  readonly name: string;
  done: boolean;
  result: T | undefined;
}

interface ThreadState extends Thread<unknown> {
  wake: number;
  readonly proc: Proc<unknown>;
}

/**
 * Runs simulated goroutines against the lab's virtual clock. The thread with the earliest wake-up time runs
 * next (ties broken by the seeded RNG, so equal-time "concurrent" actions happen in a seeded random order);
 * the simulator is advanced to that time first. Everything a thread does between two yields is atomic.
 */
class Interleaving {
  private readonly threads: ThreadState[] = [];

  constructor(private readonly lab: Lab) {}

  go<T>(name: string, proc: Proc<T>): Thread<T> {
    const t: ThreadState = { name, done: false, result: undefined, wake: this.lab.now, proc };
    this.threads.push(t);
    return t as Thread<T>;
  }

  /** Runs until every thread has returned. */
  run(): void {
    for (;;) {
      let wake = Infinity;
      for (const t of this.threads) if (!t.done && t.wake < wake) wake = t.wake;
      if (wake === Infinity) return;
      const ready = this.threads.filter((t) => !t.done && t.wake === wake);
      const t = ready[this.lab.rng.int(ready.length)];
      this.lab.sleep(wake - this.lab.now);
      const r = t.proc.next();
      if (r.done) {
        t.done = true;
        t.result = r.value;
      } else {
        assert.ok(r.value >= 0, `thread ${t.name} yielded a negative sleep`);
        t.wake = this.lab.now + r.value;
      }
    }
  }
}

/** wg.Wait(): sleeps until every thread has returned. */
function* join(threads: readonly Thread<unknown>[]): Proc {
  while (!threads.every((t) => t.done)) yield 1;
}

/** One run of a lab test: its seed, how to replay it, and the clusters it made. */
interface LabRun {
  readonly name: string;
  readonly seed: number;
  readonly replay: string;
  readonly t: TestContext;
  readonly labs: Lab[];
}

/** A seed known to fail because of a core bug: it runs as a `todo` test, so the bug stays visible. */
interface KnownFailure {
  seed: number;
  bug: string;
}

/**
 * Registers one lab test for every seed, plus the seeds in `known` (as `todo`: a core bug, reported, not a
 * suite failure). A failure names the seed, how to replay it and each server's state.
 */
function labTest(name: string, body: (run: LabRun) => void, known: readonly KnownFailure[] = []): void {
  const seeds = PINNED ? SEEDS : [...new Set([...SEEDS, ...known.map((k) => k.seed)])];
  for (const seed of seeds) {
    const bug = known.find((k) => k.seed === seed)?.bug;
    it(`${name} seed=${seed}`, { todo: bug === undefined ? undefined : `core bug: ${bug}` }, (t) => {
      const replay = `LAB_SEED=${seed} node --import tsx --test --test-name-pattern="${name}" ${FILE}`;
      const run: LabRun = { name, seed, replay, t, labs: [] };
      try {
        body(run);
        for (const lab of run.labs) t.diagnostic(lab.end());
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        // A LabFailure already carries the seed and the replay line; an assertion of this file does not.
        const where = msg.includes(replay) ? '' : `\n  replay: ${replay}`;
        const state = run.labs.map((lab) => `\n  at ${lab.now} ms:\n${lab.dump()}`).join('');
        throw new Error(`${name} failed with seed=${seed}: ${msg}${where}${state}`, { cause: err });
      }
    });
  }
}

/** A random string of `n` characters, like the lab's randstring (URL-safe base64 alphabet). */
function randString(rng: Rng, n: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[rng.int(64)];
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// 2A: leader election

describe('2A: leader election', () => {
  labTest('TestInitialElection2A', (run) => {
    const lab = new Lab(3, {}, run);

    // is a leader elected?
    lab.checkOneLeader();

    // sleep a bit to avoid racing with followers learning of the election, then check that all peers
    // agree on the term.
    lab.sleep(50);
    const term1 = lab.checkTerms();
    assert.ok(term1 >= 1, `term is ${term1}, but should be at least 1`);

    // does the leader+term stay the same if there is no network failure? The lab only warns (real timers
    // jitter); in virtual time with a reliable network a term change is a real defect, so it is asserted.
    lab.sleep(2 * ELECTION_TIMEOUT);
    const term2 = lab.checkTerms();
    assert.equal(term2, term1, 'term changed even though there were no failures');

    // there should still be a leader.
    lab.checkOneLeader();
  });

  labTest('TestReElection2A', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);
    const leader1 = lab.checkOneLeader();

    // if the leader disconnects, a new one should be elected.
    lab.disconnect(leader1);
    lab.checkOneLeader();

    // if the old leader rejoins, that shouldn't disturb the new leader. and the old leader should switch
    // to follower.
    lab.connect(leader1);
    const leader2 = lab.checkOneLeader();

    // if there's no quorum, no new leader should be elected.
    lab.disconnect(leader2);
    lab.disconnect((leader2 + 1) % servers);
    lab.sleep(2 * ELECTION_TIMEOUT);

    // check that the one connected server does not think it is the leader.
    lab.checkNoLeader();

    // if a quorum arises, it should elect a leader.
    lab.connect((leader2 + 1) % servers);
    lab.checkOneLeader();

    // re-join of last node shouldn't prevent leader from existing.
    lab.connect(leader2);
    lab.checkOneLeader();
  });

  labTest('TestManyElections2A', (run) => {
    const servers = 7;
    const lab = new Lab(servers, {}, run);
    lab.checkOneLeader();

    for (let ii = 1; ii < 10; ii++) {
      // disconnect three nodes (possibly the same one more than once, as in the lab)
      const i1 = lab.rng.int(servers);
      const i2 = lab.rng.int(servers);
      const i3 = lab.rng.int(servers);
      lab.disconnect(i1);
      lab.disconnect(i2);
      lab.disconnect(i3);

      // either the current leader should still be alive, or the remaining four should elect a new one.
      lab.checkOneLeader();

      lab.connect(i1);
      lab.connect(i2);
      lab.connect(i3);
    }

    lab.checkOneLeader();
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2B: log replication

describe('2B: log replication', () => {
  labTest('TestBasicAgree2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    // The lab expects commands at indices 1, 2, 3. Ours follow the bootstrap entry and the leader's empty
    // entry, so: nothing is committed past the last agreed index before Start(), each command lands at a
    // strictly higher index, and (checked at the end) each is committed exactly once, where one() said.
    const cmds: { cmd: number; index: number }[] = [];
    let prev = 0;
    for (let k = 1; k <= 3; k++) {
      const cmd = k * 100;
      if (prev === 0) {
        // Before the first Start() only the bootstrap and empty entries may be committed, no command.
        for (let i = 1; i <= 10; i++) assert.equal(lab.nCommitted(i)[1], null, 'some have committed before Start()');
      } else {
        assert.equal(lab.nCommitted(prev + 1)[0], 0, 'some have committed before Start()');
      }

      const xindex = lab.one(cmd, servers, false);
      assert.ok(xindex > prev, `got index ${xindex}, expected an index above ${prev}`);
      cmds.push({ cmd, index: xindex });
      prev = xindex;
    }
    for (const { cmd, index } of cmds) {
      const [nd, c] = lab.nCommitted(index);
      assert.equal(nd, servers, `index ${index}: ${nd} servers committed it, expected ${servers}`);
      assert.equal(c, cmd, `index ${index} holds ${String(c)}, expected ${cmd}`);
      for (let i = 1; i <= prev; i++) {
        if (i !== index) assert.notEqual(lab.nCommitted(i)[1], cmd, `command ${cmd} committed at ${i} and ${index}`);
      }
    }
  });

  // check, based on counting bytes of RPCs, that each command is sent to each peer just once.
  labTest('TestRPCBytes2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    let prev = lab.one(99, servers, false);
    const bytes0 = lab.cfg.bytesTotal();

    let sent = 0;
    for (let k = 0; k < 10; k++) {
      const cmd = randString(lab.rng, 5000);
      const xindex = lab.one(cmd, servers, false);
      // The lab expects index 2..11 exactly; in a stable cluster ours are consecutive too.
      assert.equal(xindex, prev + 1, `got index ${xindex} but expected ${prev + 1}`);
      prev = xindex;
      sent += cmd.length;
    }

    // The lab's bound, unchanged: each 5000-byte command goes to two followers once (the bound allows
    // three copies) plus 50000 bytes of overhead, which our JSON envelopes and heartbeats fit in easily.
    const got = lab.cfg.bytesTotal() - bytes0;
    const expected = servers * sent;
    assert.ok(got <= expected + 50_000, `too many RPC bytes; got ${got}, expected ${expected}`);
    run.t.diagnostic(`${got} bytes for ${sent} payload bytes`);
  });

  // test just failure of followers.
  labTest('TestFollowerFailure2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    const index1 = lab.one(101, servers, false);
    const [nn] = lab.nCommitted(index1);
    assert.equal(nn, servers, `${nn} committed but no majority`);

    // disconnect one follower from the network.
    const leader1 = lab.checkOneLeader();
    lab.disconnect((leader1 + 1) % servers);

    // the leader and remaining follower should be able to agree despite the disconnected follower.
    lab.one(102, servers - 1, false);
    lab.sleep(ELECTION_TIMEOUT);
    const index3 = lab.one(103, servers - 1, false);

    // disconnect the remaining follower
    const leader2 = lab.checkOneLeader();
    lab.disconnect((leader2 + 1) % servers);
    lab.disconnect((leader2 + 2) % servers);

    // submit a command. (The lab expects index 4: the next index after 103.)
    const { index, isLeader } = lab.start(leader2, 104);
    assert.ok(isLeader, 'leader rejected Start()');
    assert.equal(index, index3 + 1, `expected index ${index3 + 1}, got ${index}`);

    lab.sleep(2 * ELECTION_TIMEOUT);

    // check that command 104 did not commit.
    const [n] = lab.nCommitted(index);
    assert.equal(n, 0, `${n} committed but no majority`);
  });

  // test just failure of leaders.
  labTest('TestLeaderFailure2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    lab.one(101, servers, false);

    // disconnect the first leader.
    const leader1 = lab.checkOneLeader();
    lab.disconnect(leader1);

    // the remaining followers should elect a new leader.
    lab.one(102, servers - 1, false);
    lab.sleep(ELECTION_TIMEOUT);
    const index3 = lab.one(103, servers - 1, false);

    // disconnect the new leader.
    const leader2 = lab.checkOneLeader();
    lab.disconnect(leader2);

    // submit a command to each server.
    let last = index3;
    for (let i = 0; i < servers; i++) {
      const r = lab.start(i, 104);
      if (r.isLeader) last = Math.max(last, r.index);
    }

    lab.sleep(2 * ELECTION_TIMEOUT);

    // check that command 104 did not commit (the lab looks at index 4, the one after 103; we look at every
    // index a server offered it at, and a few beyond).
    const at = lab.findCommitted(104, index3 + 1, last + 3);
    assert.equal(at, -1, `104 committed at ${at} but no majority`);
  });

  // test that a follower participates after disconnect and re-connect.
  labTest('TestFailAgree2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    lab.one(101, servers, false);

    // disconnect one follower from the network.
    const leader = lab.checkOneLeader();
    lab.disconnect((leader + 1) % servers);

    // the leader and remaining follower should be able to agree despite the disconnected follower.
    lab.one(102, servers - 1, false);
    lab.one(103, servers - 1, false);
    lab.sleep(ELECTION_TIMEOUT);
    lab.one(104, servers - 1, false);
    lab.one(105, servers - 1, false);

    // re-connect
    lab.connect((leader + 1) % servers);

    // the full set of servers should preserve previous agreements, and be able to agree on new commands.
    lab.one(106, servers, true);
    lab.sleep(ELECTION_TIMEOUT);
    lab.one(107, servers, true);
  });

  labTest('TestFailNoAgree2B', (run) => {
    const servers = 5;
    const lab = new Lab(servers, {}, run);

    const index1 = lab.one(10, servers, false);

    // 3 of 5 followers disconnect
    const leader = lab.checkOneLeader();
    lab.disconnect((leader + 1) % servers);
    lab.disconnect((leader + 2) % servers);
    lab.disconnect((leader + 3) % servers);

    const { index, term: term1, isLeader } = lab.start(leader, 20);
    assert.ok(isLeader, 'leader rejected Start()');
    // The lab expects index 2: the one after 10's.
    assert.equal(index, index1 + 1, `expected index ${index1 + 1}, got ${index}`);

    lab.sleep(2 * ELECTION_TIMEOUT);

    const [n] = lab.nCommitted(index);
    assert.equal(n, 0, `${n} committed but no majority`);

    // repair
    lab.connect((leader + 1) % servers);
    lab.connect((leader + 2) % servers);
    lab.connect((leader + 3) % servers);

    // the disconnected majority may have chosen a leader from among their own ranks, forgetting index 2.
    // The lab accepts index 2 or 3 for the next command; ours may also follow one empty entry per term
    // since 20 was started (each leader appends one), so index2 is in (index1, index1 + 2 + terms].
    const leader2 = lab.checkOneLeader();
    const r2 = lab.start(leader2, 30);
    assert.ok(r2.isLeader, 'leader2 rejected Start()');
    const hi = index1 + 2 + (r2.term - term1);
    assert.ok(r2.index > index1 && r2.index <= hi, `unexpected index ${r2.index} (expected ${index1 + 1}..${hi})`);

    lab.one(1000, servers, true);
  });

  labTest('TestConcurrentStarts2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);
    const iters = 5;

    let success = false;
    attempts: for (let attempt = 0; attempt < 5; attempt++) {
      // give solution some time to settle
      if (attempt > 0) lab.sleep(3000);

      const leader = lab.checkOneLeader();
      const first = lab.start(leader, 1);
      if (!first.isLeader) continue; // leader moved on really quickly
      const term = first.term;

      // Five "goroutines" call Start() on the leader at once, each after a random 0–2 ms.
      const started: { cmd: number; index: number }[] = [];
      const sched = new Interleaving(lab);
      for (let ii = 0; ii < iters; ii++) {
        sched.go(`start-${100 + ii}`, (function* (): Proc {
          yield lab.rng.int(3);
          const r = lab.start(leader, 100 + ii);
          if (r.term !== term || !r.isLeader) return;
          started.push({ cmd: 100 + ii, index: r.index });
        })());
      }
      sched.run();

      for (let j = 0; j < servers; j++) {
        if (lab.getState(j).term !== term) continue attempts; // term changed -- can't expect low RPC counts
      }

      const cmds: number[] = [];
      for (const { index } of started) {
        const cmd = lab.wait(index, servers, term);
        // peers have moved on to later terms so we can't expect all Start()s to have succeeded
        if (cmd === -1) continue attempts;
        assert.equal(typeof cmd, 'number', `value ${String(cmd)} is not an int`);
        cmds.push(cmd as number);
      }

      for (let ii = 0; ii < iters; ii++) {
        assert.ok(cmds.includes(100 + ii), `cmd ${100 + ii} missing in ${JSON.stringify(cmds)}`);
      }
      // Our equivalent of the lab's index bookkeeping: the indices Start() handed out are distinct, above
      // command 1's, strictly increasing in call order, and each holds exactly the command started there.
      let prev = first.index;
      for (const { cmd, index } of started) {
        assert.ok(index > prev, `Start(${cmd}) returned index ${index}, not above ${prev}`);
        assert.equal(lab.nCommitted(index)[1], cmd, `index ${index} does not hold ${cmd}`);
        prev = index;
      }

      success = true;
      break;
    }
    assert.ok(success, 'term changed too often');
  });

  labTest('TestRejoin2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    lab.one(101, servers, true);

    // leader network failure
    const leader1 = lab.checkOneLeader();
    lab.disconnect(leader1);

    // make old leader try to agree on some entries
    lab.start(leader1, 102);
    lab.start(leader1, 103);
    lab.start(leader1, 104);

    // new leader commits, also for index=2
    lab.one(103, 2, true);

    // new leader network failure
    const leader2 = lab.checkOneLeader();
    lab.disconnect(leader2);

    // old leader connected again
    lab.connect(leader1);

    lab.one(104, 2, true);

    // all together now
    lab.connect(leader2);

    lab.one(105, servers, true);
  });

  labTest('TestBackup2B', (run) => {
    const servers = 5;
    const lab = new Lab(servers, {}, run);

    lab.one(lab.randInt(), servers, true);

    // put leader and one follower in a partition
    const leader1 = lab.checkOneLeader();
    lab.disconnect((leader1 + 2) % servers);
    lab.disconnect((leader1 + 3) % servers);
    lab.disconnect((leader1 + 4) % servers);

    // submit lots of commands that won't commit
    for (let i = 0; i < 50; i++) lab.start(leader1, lab.randInt());

    lab.sleep(ELECTION_TIMEOUT / 2);

    lab.disconnect((leader1 + 0) % servers);
    lab.disconnect((leader1 + 1) % servers);

    // allow other partition to recover
    lab.connect((leader1 + 2) % servers);
    lab.connect((leader1 + 3) % servers);
    lab.connect((leader1 + 4) % servers);

    // lots of successful commands to new group.
    for (let i = 0; i < 50; i++) lab.one(lab.randInt(), 3, true);

    // now another partitioned leader and one follower
    const leader2 = lab.checkOneLeader();
    let other = (leader1 + 2) % servers;
    if (leader2 === other) other = (leader2 + 1) % servers;
    lab.disconnect(other);

    // lots more commands that won't commit
    for (let i = 0; i < 50; i++) lab.start(leader2, lab.randInt());

    lab.sleep(ELECTION_TIMEOUT / 2);

    // bring original leader back to life,
    for (let i = 0; i < servers; i++) lab.disconnect(i);
    lab.connect((leader1 + 0) % servers);
    lab.connect((leader1 + 1) % servers);
    lab.connect(other);

    // lots of successful commands to new group.
    for (let i = 0; i < 50; i++) lab.one(lab.randInt(), 3, true);

    // now everyone
    for (let i = 0; i < servers; i++) lab.connect(i);
    lab.one(lab.randInt(), servers, true);
  });

  labTest('TestCount2B', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    lab.checkOneLeader();
    const total1 = lab.rpcs();
    assert.ok(total1 <= 30 && total1 >= 1, `too many or few RPCs (${total1}) to elect initial leader`);

    let total2 = 0;
    let agreement = 0;
    let success = false;
    attempts: for (let attempt = 0; attempt < 5; attempt++) {
      // give solution some time to settle
      if (attempt > 0) lab.sleep(3000);

      const leader = lab.checkOneLeader();
      const before = lab.rpcs();

      const iters = 10;
      const first = lab.start(leader, 1);
      if (!first.isLeader) continue; // leader moved on really quickly
      const { index: starti, term } = first;
      const cmds: number[] = [];
      for (let i = 1; i < iters + 2; i++) {
        const x = lab.rng.int(2 ** 31);
        cmds.push(x);
        const r = lab.start(leader, x);
        if (r.term !== term || !r.isLeader) continue attempts; // term changed while starting
        assert.equal(r.index, starti + i, 'Start() failed');
      }

      for (let i = 1; i < iters + 1; i++) {
        const cmd = lab.wait(starti + i, servers, term);
        if (cmd === -1) continue attempts; // term changed -- try again
        assert.equal(cmd, cmds[i - 1], `wrong value ${String(cmd)} committed for index ${starti + i}; expected ${JSON.stringify(cmds)}`);
      }

      let failed = false;
      total2 = 0;
      for (let j = 0; j < servers; j++) {
        if (lab.getState(j).term !== term) failed = true; // term changed -- can't expect low RPC counts
        total2 += lab.cfg.rpcCount(j);
      }
      if (failed) continue;

      agreement = total2 - before;
      assert.ok(agreement <= (iters + 1 + 3) * 3, `too many RPCs (${agreement}) for ${iters} entries`);
      success = true;
      break;
    }
    assert.ok(success, 'term changed too often');

    lab.sleep(ELECTION_TIMEOUT);
    const total3 = lab.rpcs();
    assert.ok(total3 - total2 <= 3 * 20, `too many RPCs (${total3 - total2}) for 1 second of idleness`);
    run.t.diagnostic(`RPCs: ${total1} to elect, ${agreement} for ${10} entries, ${total3 - total2} in 1 s idle`);
  });
});

// ---------------------------------------------------------------------------------------------------------
// 2C: persistence

describe('2C: persistence', () => {
  labTest('TestPersist12C', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    lab.one(11, servers, true);

    // crash and re-start all
    for (let i = 0; i < servers; i++) lab.start1(i);
    for (let i = 0; i < servers; i++) {
      lab.disconnect(i);
      lab.connect(i);
    }

    lab.one(12, servers, true);

    const leader1 = lab.checkOneLeader();
    lab.disconnect(leader1);
    lab.start1(leader1);
    lab.connect(leader1);

    lab.one(13, servers, true);

    const leader2 = lab.checkOneLeader();
    lab.disconnect(leader2);
    const index4 = lab.one(14, servers - 1, true);
    lab.start1(leader2);
    lab.connect(leader2);

    lab.wait(index4, servers, -1); // wait for leader2 to join before killing i3

    const i3 = (lab.checkOneLeader() + 1) % servers;
    lab.disconnect(i3);
    lab.one(15, servers - 1, true);
    lab.start1(i3);
    lab.connect(i3);

    lab.one(16, servers, true);
  });

  labTest('TestPersist22C', (run) => {
    const servers = 5;
    const lab = new Lab(servers, {}, run);

    let index = 1;
    for (let iters = 0; iters < 5; iters++) {
      lab.one(10 + index, servers, true);
      index++;

      const leader1 = lab.checkOneLeader();

      lab.disconnect((leader1 + 1) % servers);
      lab.disconnect((leader1 + 2) % servers);

      lab.one(10 + index, servers - 2, true);
      index++;

      lab.disconnect((leader1 + 0) % servers);
      lab.disconnect((leader1 + 3) % servers);
      lab.disconnect((leader1 + 4) % servers);

      lab.start1((leader1 + 1) % servers);
      lab.start1((leader1 + 2) % servers);
      lab.connect((leader1 + 1) % servers);
      lab.connect((leader1 + 2) % servers);

      lab.sleep(ELECTION_TIMEOUT);

      lab.start1((leader1 + 3) % servers);
      lab.connect((leader1 + 3) % servers);

      lab.one(10 + index, servers - 2, true);
      index++;

      lab.connect((leader1 + 4) % servers);
      lab.connect((leader1 + 0) % servers);
    }

    lab.one(1000, servers, true);
  });

  labTest('TestPersist32C', (run) => {
    const servers = 3;
    const lab = new Lab(servers, {}, run);

    lab.one(101, 3, true);

    const leader = lab.checkOneLeader();
    lab.disconnect((leader + 2) % servers);

    lab.one(102, 2, true);

    lab.crash1((leader + 0) % servers);
    lab.crash1((leader + 1) % servers);
    lab.connect((leader + 2) % servers);
    lab.start1((leader + 0) % servers);
    lab.connect((leader + 0) % servers);

    lab.one(103, 2, true);

    lab.start1((leader + 1) % servers);
    lab.connect((leader + 1) % servers);

    lab.one(104, servers, true);
  });

  // Test the scenarios described in Figure 8 of the extended Raft paper. Each iteration asks a leader, if
  // there is one, to insert a command in the Raft log. If there is a leader, that leader will fail quickly
  // with a high probability (perhaps without committing the command), or crash after a while with low
  // probability (most likely committing the command). If the number of alive servers isn't enough to form
  // a majority, perhaps start a new server. The leader in a new term may try to finish replicating log
  // entries that haven't been committed yet.
  labTest('TestFigure82C', (run) => {
    const servers = 5;
    const lab = new Lab(servers, {}, run);

    lab.one(lab.randInt(), 1, true);

    let nup = servers;
    for (let iters = 0; iters < 1000; iters++) {
      let leader = -1;
      for (let i = 0; i < servers; i++) {
        if (lab.up[i] && lab.start(i, lab.randInt()).isLeader) leader = i;
      }

      if (lab.rng.int(1000) < 100) lab.sleep(lab.rng.int(ELECTION_TIMEOUT / 2));
      else lab.sleep(lab.rng.int(13));

      if (leader !== -1) {
        lab.crash1(leader);
        nup -= 1;
      }

      if (nup < 3) {
        const s = lab.rng.int(servers);
        if (!lab.up[s]) {
          lab.start1(s);
          lab.connect(s);
          nup += 1;
        }
      }
    }

    for (let i = 0; i < servers; i++) {
      if (!lab.up[i]) {
        lab.start1(i);
        lab.connect(i);
      }
    }

    lab.one(lab.randInt(), servers, true);
  });

  labTest('TestUnreliableAgree2C', (run) => {
    const servers = 5;
    const lab = new Lab(servers, { unreliable: true }, run);

    // Each round starts four one() "goroutines" and runs a fifth one() itself; the workers of all rounds
    // overlap, interleaved in virtual time.
    const sched = new Interleaving(lab);
    sched.go('main', (function* (): Proc {
      const workers: Thread<number>[] = [];
      for (let iters = 1; iters < 50; iters++) {
        for (let j = 0; j < 4; j++) workers.push(sched.go(`one-${100 * iters + j}`, lab.oneProc(100 * iters + j, 1, true)));
        yield* lab.oneProc(iters, 1, true);
      }
      lab.setUnreliable(false);
      yield* join(workers);
    })());
    sched.run();

    lab.one(100, servers, true);
  });

  labTest('TestFigure8Unreliable2C', (run) => {
    const servers = 5;
    const lab = new Lab(servers, { unreliable: true }, run);

    lab.one(lab.rng.int(10_000), 1, true);

    let nup = servers;
    for (let iters = 0; iters < 1000; iters++) {
      if (iters === 200) lab.setLongReordering(true);
      let leader = -1;
      for (let i = 0; i < servers; i++) {
        if (lab.start(i, lab.rng.int(10_000)).isLeader && lab.connected[i]) leader = i;
      }

      if (lab.rng.int(1000) < 100) lab.sleep(lab.rng.int(ELECTION_TIMEOUT / 2));
      else lab.sleep(lab.rng.int(13));

      if (leader !== -1 && lab.rng.int(1000) < ELECTION_TIMEOUT / 2) {
        lab.disconnect(leader);
        nup -= 1;
      }

      if (nup < 3) {
        const s = lab.rng.int(servers);
        if (!lab.connected[s]) {
          lab.connect(s);
          nup += 1;
        }
      }
    }

    for (let i = 0; i < servers; i++) if (!lab.connected[i]) lab.connect(i);

    lab.one(lab.rng.int(10_000), servers, true);
  });

  /**
   * internalChurn: three clients keep offering random commands to every running server while the main
   * "goroutine" disconnects, crashes and restarts servers at random; every value a client saw committed
   * must be in the final, fully replicated log.
   */
  function churn(run: LabRun, unreliable: boolean): void {
    const servers = 5;
    const lab = new Lab(servers, { unreliable }, run);
    let stop = false;

    function* client(me: number): Proc<number[]> {
      const values: number[] = [];
      while (!stop) {
        const x = lab.randInt();
        let index = -1;
        let ok = false;
        for (let i = 0; i < servers; i++) {
          // try them all, maybe one of them is a leader
          const r = lab.start(i, x);
          if (r.isLeader) {
            ok = true;
            index = r.index;
          }
        }
        if (ok) {
          // maybe leader will commit our value, maybe not. but don't wait forever.
          for (const to of [10, 20, 50, 100, 200]) {
            const [nd, cmd] = lab.nCommitted(index);
            if (nd > 0) {
              // In the lab any other value here is "wrong command type"; ours may be an empty or conf entry.
              if (cmd === x) values.push(x);
              break;
            }
            yield to;
          }
        } else {
          yield 79 + me * 17;
        }
      }
      return values;
    }

    const sched = new Interleaving(lab);
    const clients = [0, 1, 2].map((me) => sched.go(`client-${me}`, client(me)));
    sched.go('main', (function* (): Proc {
      for (let iters = 0; iters < 20; iters++) {
        if (lab.rng.int(1000) < 200) lab.disconnect(lab.rng.int(servers));

        if (lab.rng.int(1000) < 500) {
          const i = lab.rng.int(servers);
          if (!lab.up[i]) lab.start1(i);
          lab.connect(i);
        }

        if (lab.rng.int(1000) < 200) {
          const i = lab.rng.int(servers);
          if (lab.up[i]) lab.crash1(i);
        }

        // Make crash/restart infrequent enough that the peers can often keep up, but not so infrequent
        // that everything has settled down from one change to the next.
        yield (ELECTION_TIMEOUT * 7) / 10;
      }

      yield ELECTION_TIMEOUT;
      lab.setUnreliable(false);
      for (let i = 0; i < servers; i++) {
        if (!lab.up[i]) lab.start1(i);
        lab.connect(i);
      }

      stop = true;
      yield* join(clients);
    })());
    sched.run();

    const values: number[] = [];
    for (const c of clients) {
      assert.ok(c.result !== undefined, 'client failed');
      values.push(...c.result);
    }

    lab.sleep(ELECTION_TIMEOUT);

    const lastIndex = lab.one(lab.randInt(), servers, true);

    const really = new Set<number>();
    for (let index = 1; index <= lastIndex; index++) {
      const v = lab.wait(index, servers, -1);
      // The lab requires an int at every index; ours also holds the bootstrap entry and empty entries.
      if (typeof v === 'number') really.add(v);
    }

    for (const v of values) assert.ok(really.has(v), `didn't find a value (${v})`);
    run.t.diagnostic(`${values.length} client values committed`);
  }

  labTest('TestReliableChurn2C', (run) => churn(run, false));
  labTest('TestUnreliableChurn2C', (run) => churn(run, true));
});

// ---------------------------------------------------------------------------------------------------------
// 2D: log compaction

describe('2D: log compaction', () => {
  /** snapcommon: the sender keeps starting commands while a victim is cut off or crashed, then rejoins. */
  function snapCommon(run: LabRun, disconnect: boolean, reliable: boolean, crash: boolean): void {
    const iters = 30;
    const servers = 3;
    const lab = new Lab(servers, { unreliable: !reliable, snapshot: true }, run);

    lab.one(lab.randInt(), servers, true);
    let leader1 = lab.checkOneLeader();
    let maxLog = 0;

    for (let i = 0; i < iters; i++) {
      let victim = (leader1 + 1) % servers;
      let sender = leader1;
      if (i % 3 === 1) {
        sender = (leader1 + 1) % servers;
        victim = leader1;
      }

      if (disconnect) {
        lab.disconnect(victim);
        lab.one(lab.randInt(), servers - 1, true);
      }
      if (crash) {
        lab.crash1(victim);
        lab.one(lab.randInt(), servers - 1, true);
      }

      // perhaps send enough to get a snapshot
      const nn = SNAPSHOT_INTERVAL / 2 + lab.rng.int(SNAPSHOT_INTERVAL);
      for (let k = 0; k < nn; k++) lab.start(sender, lab.randInt());

      // let applier threads catch up with the Start()'s
      if (!disconnect && !crash) {
        // make sure all followers have caught up, so that an InstallSnapshot RPC isn't required for
        // TestSnapshotBasic2D().
        lab.one(lab.randInt(), servers, true);
      } else {
        lab.one(lab.randInt(), servers - 1, true);
      }

      const size = lab.maxLogSize();
      maxLog = Math.max(maxLog, size);
      assert.ok(size < MAX_LOG_SIZE, `Log size too large: ${size} bytes`);

      if (disconnect) {
        // reconnect a follower, who maybe behind and needs to receive a snapshot to catch up.
        lab.connect(victim);
        lab.one(lab.randInt(), servers, true);
        leader1 = lab.checkOneLeader();
      }
      if (crash) {
        lab.start1(victim);
        lab.connect(victim);
        lab.one(lab.randInt(), servers, true);
        leader1 = lab.checkOneLeader();
      }
    }
    run.t.diagnostic(`largest log ${maxLog} bytes`);
  }

  labTest('TestSnapshotBasic2D', (run) => snapCommon(run, false, true, false));
  labTest('TestSnapshotInstall2D', (run) => snapCommon(run, true, true, false));
  labTest('TestSnapshotInstallUnreliable2D', (run) => snapCommon(run, true, false, false));
  labTest('TestSnapshotInstallCrash2D', (run) => snapCommon(run, false, true, true));
  labTest('TestSnapshotInstallUnCrash2D', (run) => snapCommon(run, false, false, true));

  // crash and restart all servers
  labTest('TestSnapshotAllCrash2D', (run) => {
    const servers = 3;
    const lab = new Lab(servers, { snapshot: true }, run);

    lab.one(lab.randInt(), servers, true);

    for (let i = 0; i < 5; i++) {
      // perhaps enough to get a snapshot
      const nn = SNAPSHOT_INTERVAL / 2 + lab.rng.int(SNAPSHOT_INTERVAL);
      for (let k = 0; k < nn; k++) lab.one(lab.randInt(), servers, true);

      const index1 = lab.one(lab.randInt(), servers, true);

      // crash all
      for (let j = 0; j < servers; j++) lab.crash1(j);

      // revive all
      for (let j = 0; j < servers; j++) {
        lab.start1(j);
        lab.connect(j);
      }

      const index2 = lab.one(lab.randInt(), servers, true);
      assert.ok(index2 >= index1 + 1, `index decreased from ${index1} to ${index2}`);
    }
  });

  // do servers correctly initialize their in-memory copy of the snapshot, making sure that future writes
  // to persistent state don't lose state?
  labTest('TestSnapshotInit2D', (run) => {
    const servers = 3;
    const lab = new Lab(servers, { snapshot: true }, run);

    lab.one(lab.randInt(), servers, true);

    // enough ops to make a snapshot
    for (let i = 0; i < SNAPSHOT_INTERVAL + 1; i++) lab.one(lab.randInt(), servers, true);

    // crash all
    for (let i = 0; i < servers; i++) lab.crash1(i);

    // revive all
    for (let i = 0; i < servers; i++) {
      lab.start1(i);
      lab.connect(i);
    }

    // a single op, to get something to be written back to persistent storage.
    lab.one(lab.randInt(), servers, true);

    // crash all
    for (let i = 0; i < servers; i++) lab.crash1(i);

    // revive all
    for (let i = 0; i < servers; i++) {
      lab.start1(i);
      lab.connect(i);
    }

    // do another op to trigger potential bug
    lab.one(lab.randInt(), servers, true);
  });
});
