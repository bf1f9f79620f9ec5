/**
 * Tests of the deterministic simulator (`@raftrtc/raft/testing`): its random stream and event queue, the
 * network's faults, crash and restart from durable state, replay by seed, the invariant checker against
 * deliberately broken cores, and `LabConfig`.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RaftCore } from '../src/index.js';
import type { Message } from '../src/core/messages.js';
import type { Entry, HardState, NodeId, Ready, Role, Snapshot } from '../src/core/types.js';
import {
  EventQueue, InvariantViolation, KvStateMachine, LabConfig, Rng, Simulation, SimulationError,
  type CoreConstructor, type CoreLike, type CoreOptions, type CoreStatus, type NodeView, type SimObserver,
} from '../src/testing/index.js';

const put = (key: string, value: string) => ({ op: 'put', key, value });

/** Runs until some node leads, failing the test otherwise. */
function elect(sim: Simulation, maxMs = 5_000): NodeId {
  assert.ok(sim.runUntil(() => sim.leader() !== null, maxMs), `no leader within ${maxMs} ms (seed ${sim.seed})`);
  return sim.leader() as NodeId;
}

/** Proposes on whoever leads until it commits on every live node (of `among`), or throws. */
function commitEverywhere(sim: Simulation, data: unknown, maxMs = 10_000, among = sim.nodeIds): number {
  const deadline = sim.now + maxMs;
  while (sim.now < deadline) {
    const p = sim.proposeOnLeader(data);
    if (p) {
      const live = () => sim.all.filter((n) => n.alive && among.includes(n.id));
      const want = JSON.stringify(data);
      // Searched from the end: the entry is recent, and a snapshot received mid-run leaves a gap before it.
      const holds = (n: NodeView) => {
        for (let k = n.appliedEntries.length - 1; k >= 0 && n.appliedEntries[k].index >= p.index; k--) {
          if (n.appliedEntries[k].index === p.index) return JSON.stringify(n.appliedEntries[k].data) === want;
        }
        return false;
      };
      if (sim.runUntil(() => live().every((n) => n.applied >= p.index), 1_000) && live().every(holds)) return p.index;
    } else {
      sim.run(50);
    }
  }
  throw new Error(`${JSON.stringify(data)} did not commit everywhere (seed ${sim.seed})`);
}

/** Records everything observable in order: two runs with the same trace behaved identically. */
function recorder(): { trace: string[]; observer: SimObserver } {
  const trace: string[] = [];
  return {
    trace,
    observer: {
      onSend: (m, from, to, at, deliverAt) => trace.push(`${at} send ${m.type} ${from}>${to} t${m.term} @${deliverAt}`),
      onDeliver: (m, at) => trace.push(`${at} deliver ${m.type} ${m.from}>${m.to}`),
      onDrop: (m, reason, at) => trace.push(`${at} drop ${m.type} ${m.from}>${m.to} ${reason}`),
      onRoleChange: (id, role, term) => trace.push(`role ${id} ${role} ${term}`),
      onApply: (id, e) => trace.push(`apply ${id} ${e.index} ${JSON.stringify(e.data)}`),
      onRestore: (id, s) => trace.push(`restore ${id} ${s.index}`),
      onCrash: (id) => trace.push(`crash ${id}`),
      onRestart: (id) => trace.push(`restart ${id}`),
    },
  };
}

/** A chaotic but fixed scenario: lossy, duplicating, reordering network, partitions, crashes, snapshots. */
function chaos(seed: number, observer?: SimObserver, core?: CoreConstructor, ms = 20_000): Simulation {
  const sim = new Simulation({
    seed, nodes: 5, snapshotEvery: 7, observer, core, replay: `chaos seed ${seed}`,
    network: { dropRate: 0.05, duplicateRate: 0.05, minDelayMs: 1, maxDelayMs: 40 },
  });
  const rng = sim.fork();
  let k = 0;
  while (sim.now < ms) {
    sim.run(rng.range(10, 200));
    const r = rng.next();
    const id = rng.pick(sim.nodeIds);
    if (r < 0.5) {
      try { sim.proposeOnLeader(put(`k${rng.int(5)}`, `v${k++}`)); } catch { /* a leader refusing during a transfer is fine */ }
    } else if (r < 0.6) sim.crash(id);
    else if (r < 0.75) sim.restart(rng.pick(sim.nodeIds.filter((n) => !sim.node(n).alive).concat(id)));
    else if (r < 0.8) sim.network.partition([sim.nodeIds.slice(0, 2), sim.nodeIds.slice(2)]);
    else if (r < 0.85) sim.network.isolate(id);
    else if (r < 0.95) sim.network.heal();
    else sim.network.block(id, rng.pick(sim.nodeIds));
  }
  return sim;
}

describe('Rng', () => {
  it('replays the same sequence for a seed and a different one for another', () => {
    const draw = (seed: number) => { const r = new Rng(seed); return Array.from({ length: 50 }, () => r.uint32()); };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(42), draw(43));
    assert.notDeepEqual(draw(1), draw(1 + 2 ** 32), 'bits above 32 are part of the seed');
  });

  it('keeps int, range, chance and pick within bounds', () => {
    const r = new Rng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2_000; i++) {
      const x = r.int(6);
      assert.ok(Number.isInteger(x) && x >= 0 && x < 6, 'int(6) in [0, 6)');
      seen.add(x);
      const y = r.range(-3, 3);
      assert.ok(y >= -3 && y <= 3, 'range(-3, 3) in bounds');
      assert.ok(r.next() < 1, 'next() below 1');
      assert.equal(r.chance(0), false);
      assert.equal(r.chance(1), true);
    }
    assert.equal(seen.size, 6, 'every value of int(6) comes up');
    assert.equal(r.pick(['only']), 'only');
    assert.throws(() => r.pick([]), RangeError);
    assert.throws(() => r.int(0), RangeError);
    assert.throws(() => new Rng(0.5), RangeError);
  });

  it('forks streams that do not disturb each other', () => {
    const a = new Rng(9);
    const b = new Rng(9);
    const fa = a.fork();
    const fb = b.fork();
    for (let i = 0; i < 100; i++) fa.next(); // one consumer draws a lot…
    assert.deepEqual([a.next(), a.next()], [b.next(), b.next()], '…and the parent stream does not notice');
    assert.notEqual(fb.next(), b.next(), 'a fork is not a copy of its parent');
  });
});

describe('EventQueue', () => {
  it('pops by time, and in insertion order within one millisecond', () => {
    const q = new EventQueue<number>();
    const rng = new Rng(3);
    const pushed: { at: number; n: number }[] = [];
    for (let n = 0; n < 500; n++) {
      const at = rng.int(20);
      q.push(at, n);
      pushed.push({ at, n });
    }
    const expected = [...pushed].sort((x, y) => x.at - y.at || x.n - y.n).map((p) => p.n);
    const popped: number[] = [];
    for (let ev = q.pop(); ev; ev = q.pop()) popped.push(ev.item);
    assert.deepEqual(popped, expected);
    assert.equal(q.size, 0);
  });
});

describe('Simulation: replay', () => {
  it('gives the identical event trace for the same seed, and a different one for another seed', () => {
    const runs = [11, 11, 12].map((seed) => {
      const { trace, observer } = recorder();
      chaos(seed, observer, undefined, 8_000);
      return trace;
    });
    assert.ok(runs[0].length > 1_000, 'the scenario does something');
    assert.deepEqual(runs[0], runs[1]);
    assert.notDeepEqual(runs[0], runs[2]);
  });

  it('step() runs one event at a time and matches run()', () => {
    const a = new Simulation({ seed: 5, nodes: 3 });
    const b = new Simulation({ seed: 5, nodes: 3 });
    const steps: string[] = [];
    while (a.now < 1_000) {
      const s = a.step();
      assert.ok(s, 'an event was left');
      steps.push(`${s.at} ${s.kind}`);
    }
    b.run(a.now);
    assert.ok(steps.some((s) => s.endsWith('tick')) && steps.some((s) => s.endsWith('deliver')), 'ticks and deliveries both ran');
    assert.equal(a.leader(), b.leader());
    assert.deepEqual(a.all.map((n) => n.status()), b.all.map((n) => n.status()));
  });

  it('runUntil stops at the event that makes the predicate true, or after maxMs', () => {
    const sim = new Simulation({ seed: 2, nodes: 3 });
    assert.equal(sim.runUntil(() => false, 300), false);
    assert.equal(sim.now, 300);
    assert.equal(sim.runUntil(() => sim.leader() !== null, 10_000), true);
    assert.ok(sim.now < 10_300 && sim.leader() !== null, 'a leader, well before the limit');
  });
});

describe('Simulation: network', () => {
  it('delivers nothing between the groups of a partition, and heals', () => {
    const crossed: string[] = [];
    const groups = [['n1', 'n2'], ['n3', 'n4', 'n5']];
    const side = (id: NodeId) => (groups[0].includes(id) ? 0 : 1);
    let watching = false;
    const sim = new Simulation({
      seed: 21, nodes: 5,
      observer: { onDeliver: (m) => { if (watching && side(m.from) !== side(m.to)) crossed.push(`${m.type} ${m.from}>${m.to}`); } },
    });
    elect(sim);
    sim.network.partition(groups);
    watching = true;
    sim.run(3_000);
    assert.deepEqual(crossed, []);
    const leader = sim.leader();
    assert.ok(leader !== null && side(leader) === 1, 'only the majority side can have a leader');
    watching = false;
    sim.network.heal();
    commitEverywhere(sim, put('after', 'heal'));
  });

  it('drops on arrival what was in flight when the partition formed', () => {
    const sim = new Simulation({ seed: 4, nodes: 3, network: { minDelayMs: 50, maxDelayMs: 50 } });
    elect(sim, 10_000);
    const dropped: string[] = [];
    sim.observer = { onDrop: (m, reason) => dropped.push(`${m.from}>${m.to} ${reason}`) };
    const leader = sim.leader() as NodeId;
    sim.propose(leader, put('a', '1'));
    sim.network.isolate(leader);
    sim.run(60);
    assert.ok(dropped.some((d) => d.startsWith(`${leader}>`) && d.endsWith('partition')), dropped.join(', '));
  });

  it('blocks one direction only', () => {
    const seen = new Set<string>();
    const sim = new Simulation({ seed: 8, nodes: 3, observer: { onDeliver: (m) => seen.add(`${m.from}>${m.to}`) } });
    elect(sim);
    const leader = sim.leader() as NodeId;
    const follower = sim.nodeIds.find((id) => id !== leader) as NodeId;
    sim.network.block(leader, follower);
    seen.clear();
    sim.run(200);
    assert.ok(!seen.has(`${leader}>${follower}`), 'nothing crossed the blocked direction');
    assert.ok(seen.has(`${follower}>${leader}`) || sim.node(follower).role !== 'follower', 'the other direction still works');
    sim.network.unblock(leader, follower);
    seen.clear();
    sim.run(500);
    assert.ok(seen.has(`${sim.leader()}>${follower}`) || seen.has(`${leader}>${follower}`), 'the link works again after unblock');
  });

  it('loses everything at drop rate 1 and doubles everything at duplicate rate 1', () => {
    const sim = new Simulation({ seed: 3, nodes: 3, network: { dropRate: 1 } });
    sim.run(2_000);
    assert.equal(sim.network.stats.delivered, 0);
    assert.equal(sim.leader(), null);
    assert.ok((sim.network.stats.dropped.get('loss') ?? 0) > 0, 'the drops were losses');

    const dup = new Simulation({ seed: 3, nodes: 3, network: { duplicateRate: 1, maxDelayMs: 1 } });
    dup.run(1_000);
    const s = dup.network.stats;
    assert.ok(s.messages > 0, 'messages were sent');
    assert.equal(s.duplicated, s.messages);
    const inFlight = 2 * s.messages - s.delivered;
    assert.ok(inFlight >= 0 && inFlight < 20, `${s.delivered} deliveries of ${s.messages} messages sent twice`);
  });

  it('sends JSON copies and counts messages and bytes per type', () => {
    const sent: Message[] = [];
    const sim = new Simulation({ seed: 6, nodes: 3, observer: { onSend: (m) => sent.push(m) } });
    const leader = elect(sim);
    sim.propose(leader, put('x', 'y'.repeat(1_000)));
    sim.run(500);
    const s = sim.network.stats;
    let messages = 0;
    let bytes = 0;
    for (const t of s.byType.values()) { messages += t.messages; bytes += t.bytes; }
    assert.equal(messages, s.messages);
    assert.equal(bytes, s.bytes);
    assert.equal(s.messages, sent.length, 'one copy per message without duplication');
    assert.equal(s.bytes, sent.reduce((n, m) => n + JSON.stringify(m).length, 0));
    assert.ok((s.byType.get('Append')?.bytes ?? 0) > 2_000, 'the big entry went to both followers');
  });

  it('delays only replies with long reordering', () => {
    const late: string[] = [];
    const sim = new Simulation({
      seed: 10, nodes: 3, network: { longReordering: true, minDelayMs: 1, maxDelayMs: 5 },
      observer: { onSend: (m, _f, _t, at, deliverAt) => { if (deliverAt !== null && deliverAt - at > 5) late.push(m.type); } },
    });
    sim.run(5_000);
    assert.ok(late.length > 0, 'some replies were held back');
    assert.ok(late.every((t) => t.endsWith('Resp')), late.join(', '));
  });

  it('rejects unknown nodes and bad settings', () => {
    const sim = new Simulation({ seed: 1, nodes: ['a', 'b', 'c'] });
    assert.throws(() => sim.network.isolate('z'), RangeError);
    assert.throws(() => sim.network.configure({ dropRate: 2 }), RangeError);
    assert.throws(() => sim.network.configure({ minDelayMs: 5, maxDelayMs: 1 }), RangeError);
    assert.throws(() => sim.node('z'), SimulationError);
    assert.throws(() => new Simulation({ seed: 1, nodes: ['a', 'a'] }), RangeError);
    assert.throws(() => new Simulation({ seed: 1, nodes: 3, voters: ['n9'] }), RangeError);
  });
});

describe('Simulation: crash and restart', () => {
  it('rebuilds a node from exactly what was durable at the crash', () => {
    const given: NonNullable<CoreOptions['restore']>[] = [];
    class Recording extends RaftCore {
      constructor(o: CoreOptions) {
        if (o.restore) given.push(JSON.parse(JSON.stringify(o.restore)));
        super(o);
      }
    }
    const sim = new Simulation({ seed: 31, nodes: 3, core: Recording, snapshotEvery: 4 });
    for (let i = 0; i < 10; i++) commitEverywhere(sim, put('k', `v${i}`));
    const victim = sim.nodeIds.find((id) => id !== sim.leader()) as NodeId;
    const durable = JSON.parse(JSON.stringify({ ...sim.node(victim).durable }));
    sim.crash(victim);
    assert.equal(sim.node(victim).alive, false);
    assert.throws(() => sim.propose(victim, put('a', 'b')), SimulationError);
    sim.run(500);
    sim.restart(victim);
    assert.equal(given.length, 1);
    assert.deepEqual(given[0], { hardState: durable.hardState, entries: durable.entries, snapshot: durable.snapshot });
    assert.ok(durable.snapshot, 'the victim had compacted');

    const node = sim.node(victim);
    const machine = node.stateMachine as KvStateMachine;
    assert.equal(node.appliedEntries[0]?.index ?? node.applied + 1, durable.snapshot.index + 1, 'replays from the snapshot');
    commitEverywhere(sim, put('k', 'final'));
    assert.equal(machine.get('k'), 'final');
    const leaderMachine = sim.node(sim.leader() as NodeId).stateMachine as KvStateMachine;
    assert.deepEqual([...machine.data], [...leaderMachine.data]);
  });

  it('discards messages to and from an old incarnation', () => {
    const drops: string[] = [];
    const sim = new Simulation({
      seed: 12, nodes: 3, network: { minDelayMs: 30, maxDelayMs: 30 },
      observer: { onDrop: (m, reason) => drops.push(`${m.from}>${m.to} ${reason}`) },
    });
    const leader = elect(sim, 10_000);
    sim.propose(leader, put('a', '1'));
    const follower = sim.nodeIds.find((id) => id !== leader) as NodeId;
    sim.restart(follower); // the Append to it is still on the wire
    sim.run(31);
    assert.ok(drops.includes(`${leader}>${follower} crashed`), drops.join(', '));
  });

  it('keeps every safety property through random crashes, partitions and loss', () => {
    for (const seed of [1, 2, 3, 4]) {
      const sim = chaos(seed);
      sim.network.heal();
      for (const id of sim.nodeIds) if (!sim.node(id).alive) sim.restart(id);
      commitEverywhere(sim, put('end', String(seed)), 30_000);
      const machines = sim.all.map((n) => JSON.stringify([...(n.stateMachine as KvStateMachine).data].sort()));
      assert.equal(new Set(machines).size, 1, `replicas differ (seed ${seed})`);
    }
  });
});

describe('Simulation: client operations', () => {
  it('serves a linearizable read once the state machine reaches the read point', () => {
    const sim = new Simulation({ seed: 14, nodes: 3 });
    commitEverywhere(sim, put('x', '1'));
    const follower = sim.nodeIds.find((id) => id !== sim.leader()) as NodeId;
    let value: string | null = null;
    sim.readIndex(follower, 'read-1', (sm) => { value = sm.get('x'); });
    sim.run(500);
    assert.equal(value, '1');
    const [read] = sim.node(follower).reads;
    assert.ok(read.index !== null && read.servedAt !== null, 'the read was answered and served');
  });

  it('throws what the core throws', () => {
    const sim = new Simulation({ seed: 15, nodes: 3 });
    const leader = elect(sim);
    const follower = sim.nodeIds.find((id) => id !== leader) as NodeId;
    assert.throws(() => sim.propose(follower, put('a', 'b')), { name: 'NotLeaderError' });
    assert.throws(() => sim.propose(leader, null), TypeError);
  });

  it('adds a learner and promotes it to voter', () => {
    const sim = new Simulation({ seed: 16, nodes: 4, voters: ['n1', 'n2', 'n3'] });
    // A new leader takes no membership change until its first entry commits.
    commitEverywhere(sim, put('a', '0'), 10_000, sim.voters);
    assert.equal(sim.node('n4').status()?.conf.voters.length, 0);
    sim.proposeConfChange(sim.leader() as NodeId, [{ type: 'addLearner', node: 'n4' }]);
    commitEverywhere(sim, put('a', '1'));
    assert.equal((sim.node('n4').stateMachine as KvStateMachine).get('a'), '1', 'the learner replicates');
    sim.proposeConfChange(sim.leader() as NodeId, [{ type: 'addVoter', node: 'n4' }]);
    assert.ok(sim.runUntil(() => sim.node('n4').status()?.conf.voters.includes('n4') ?? false, 5_000));
  });

  it('hands leadership over', () => {
    const sim = new Simulation({ seed: 17, nodes: 3 });
    const leader = elect(sim);
    commitEverywhere(sim, put('a', '1'));
    const to = sim.nodeIds.find((id) => id !== leader) as NodeId;
    sim.transferLeader(leader, to);
    assert.ok(sim.runUntil(() => sim.leader() === to, 2_000));
  });
});

// ---- Broken cores: the checker must catch each one ---------------------------------------------------

/** What a scripted core does on one tick: hand out this Ready (missing fields empty), `term` being its term now. */
type Act = (Partial<Ready> & { term?: number }) | null;

/**
 * A fake core that ignores messages and, on its k-th tick, hands out the k-th Ready of its node's script:
 * the shortest way to make a core break exactly one rule.
 */
function scripted(scripts: Record<NodeId, Act[]>): CoreConstructor {
  return class Scripted implements CoreLike {
    private readonly id: NodeId;
    private readonly acts: Act[];
    private role: Role = 'follower';
    private term = 0;
    private pending: Ready | null = null;
    constructor(o: CoreOptions) {
      this.id = o.id;
      this.acts = [...(scripts[o.id] ?? [])];
    }
    tick(): void {
      const act = this.acts.shift();
      if (!act) return;
      const { term, ...rd } = act;
      this.pending = { role: this.role, leader: null, hardState: null, entries: [], snapshot: null, committed: [], messages: [], readStates: [], ...rd };
      this.role = this.pending.role;
      if (term !== undefined) this.term = term;
    }
    step(): void {}
    propose(): never { throw new Error('scripted'); }
    proposeConfChange(): never { throw new Error('scripted'); }
    transferLeader(): void {}
    readIndex(): void {}
    compact(): never { throw new Error('scripted'); }
    hasReady(): boolean { return this.pending !== null; }
    ready(): Ready { const rd = this.pending as Ready; this.pending = null; return rd; }
    advance(): void {}
    status(): CoreStatus {
      return { id: this.id, term: this.term, vote: null, role: this.role, leader: null, commit: 0, applied: 0, firstIndex: 1, lastIndex: 0, conf: { voters: [], learners: [] } };
    }
  };
}

const hs = (term: number, vote: NodeId | null, commit = 0): HardState => ({ term, vote, commit });
const entry = (index: number, term: number, data: unknown = `e${index}`): Entry => ({ index, term, type: 'normal', data });

/** Runs a scripted cluster and returns the violation it must raise. */
function violation(scripts: Record<NodeId, Act[]>, nodes = Object.keys(scripts)): InvariantViolation {
  const sim = new Simulation({ seed: 99, nodes, core: scripted(scripts), replay: 'npm run chaos -- --seed 99' });
  try {
    sim.run(1_000);
  } catch (err) {
    assert.ok(err instanceof InvariantViolation, `expected an InvariantViolation, got ${String(err)}`);
    return err;
  }
  assert.fail('the broken core went unnoticed');
}

describe('InvariantChecker catches broken cores', () => {
  it('two leaders in one term (election safety), with seed and replay hint in the message', () => {
    const lead: Act[] = [{ role: 'leader', term: 2, hardState: hs(2, null) }];
    const v = violation({ a: lead, b: [null, ...lead] });
    assert.equal(v.property, 'Election Safety');
    assert.match(v.message, /Election Safety \(Raft §5\.2\) violated: a and b were both leader in term 2/);
    assert.match(v.message, /seed 99/);
    assert.match(v.message, /replay: npm run chaos -- --seed 99/);
    assert.equal(v.seed, 99);
  });

  it('a vote changed within a term (election safety)', () => {
    const v = violation({ a: [{ hardState: hs(3, 'b') }, { hardState: hs(3, 'c') }] });
    assert.equal(v.property, 'Election Safety');
    assert.match(v.detail, /voted for b and then for c in term 3/);
  });

  it('a real core made to vote twice per term', () => {
    // Forgetting the vote whenever a vote request arrives lets a node vote for two candidates in one term.
    class Forgetful extends RaftCore {
      override step(m: Message): void {
        if (m.type === 'Vote') Object.assign(this, { vote: null, leader: null });
        super.step(m);
      }
    }
    let caught: InvariantViolation | null = null;
    for (let seed = 1; seed <= 40 && !caught; seed++) {
      const sim = new Simulation({ seed, nodes: 5, core: Forgetful, preVote: false, checkQuorum: false, electionTicks: 3, network: { maxDelayMs: 30 } });
      try { sim.run(5_000); } catch (err) { if (err instanceof InvariantViolation) caught = err; else throw err; }
    }
    assert.ok(caught, 'some schedule makes a node vote twice');
    assert.equal(caught.property, 'Election Safety');
    for (let seed = 1; seed <= 5; seed++) new Simulation({ seed, nodes: 5, preVote: false, checkQuorum: false, electionTicks: 3, network: { maxDelayMs: 30 } }).run(5_000);
  });

  it('a leader overwriting its own entries (leader append-only)', () => {
    const v = violation({
      a: [
        { role: 'leader', term: 1, hardState: hs(1, 'a'), entries: [entry(1, 1), entry(2, 1)] },
        { entries: [entry(2, 1, 'rewritten')] },
      ],
    });
    assert.equal(v.property, 'Leader Append-Only');
  });

  it('different data at one (index, term) (log matching)', () => {
    const v = violation({ a: [{ entries: [entry(1, 1, 'x')] }], b: [null, { entries: [entry(1, 1, 'y')] }] });
    assert.equal(v.property, 'Log Matching');
  });

  it('the same (index, term) after different predecessors (log matching)', () => {
    const v = violation({
      a: [{ entries: [entry(1, 1), entry(2, 2)] }],
      b: [null, { entries: [entry(1, 2, 'other'), entry(2, 2)] }],
    });
    assert.equal(v.property, 'Log Matching');
    assert.match(v.detail, /not on the entry before it/);
  });

  it('a new leader missing a committed entry (leader completeness)', () => {
    const v = violation({
      a: [{ entries: [entry(1, 1), entry(2, 1)], hardState: hs(1, null, 2) }],
      b: [null, null, { role: 'leader', term: 2, hardState: hs(2, 'b'), entries: [entry(1, 1)] }],
    });
    assert.equal(v.property, 'Leader Completeness');
    assert.match(v.detail, /index 2, committed in term 1/);
  });

  it('a real core applying different data on one node (state machine safety)', () => {
    class Tampering extends RaftCore {
      override ready(): Ready {
        const rd = super.ready();
        if (this.id !== 'n2') return rd;
        return { ...rd, committed: rd.committed.map((e) => (e.index >= 4 && e.data !== null ? { ...e, data: 'evil' } : e)) };
      }
    }
    const sim = new Simulation({ seed: 5, nodes: 3, core: Tampering });
    assert.throws(() => { for (let i = 0; i < 5; i++) commitEverywhere(sim, put('k', String(i))); }, (err: unknown) => {
      assert.ok(err instanceof InvariantViolation, `expected an InvariantViolation, got ${String(err)}`);
      assert.equal(err.property, 'State Machine Safety');
      return true;
    });
  });

  it('an index applied twice or out of order', () => {
    const v = violation({ a: [{ committed: [entry(1, 1)] }, { committed: [entry(1, 1)] }] });
    assert.equal(v.property, 'Each index applied once, in order');
  });

  it('a snapshot older than what was applied', () => {
    const snap: Snapshot = { index: 1, term: 1, conf: { voters: ['a'], learners: [] }, data: { data: [], results: [] } };
    const v = violation({ a: [{ entries: [entry(1, 1), entry(2, 1)], committed: [entry(1, 1), entry(2, 1)] }, { snapshot: snap }] });
    assert.equal(v.property, 'Each index applied once, in order');
  });

  it('a gap in the durable log and a term going back', () => {
    assert.equal(violation({ a: [{ entries: [entry(1, 1)] }, { entries: [entry(3, 1)] }] }).property, 'Durable state');
    assert.equal(violation({ a: [{ hardState: hs(3, null) }, { hardState: hs(2, null) }] }).property, 'Durable state');
  });

  it('a step() that throws is reported with the seed', () => {
    class Throwing extends RaftCore {
      override step(): void { throw new Error('boom'); }
    }
    const sim = new Simulation({ seed: 77, nodes: 3, core: Throwing });
    assert.throws(() => sim.run(2_000), (err: unknown) => err instanceof SimulationError && /step\(.*\) threw: boom/.test(err.message) && err.seed === 77);
  });
});

describe('LabConfig', () => {
  it('elects, agrees, and counts commands from index 3', () => {
    const cfg = new LabConfig(3, { seed: 1 });
    const leader = cfg.checkOneLeader();
    assert.equal(cfg.getState(leader).isLeader, true);
    const term = cfg.checkTerms();
    assert.ok(term >= 2, `term ${term} is past the bootstrap term`);
    const i1 = cfg.one(101, 3, false);
    assert.ok(i1 >= 3, `first command at ${i1}, after bootstrap and empty entries`);
    assert.deepEqual(cfg.nCommitted(i1), [3, 101]);
    assert.deepEqual(cfg.nCommitted(1), [3, null], 'the bootstrap entry counts but is no command');
    assert.equal(cfg.wait(i1, 3, -1), 101);
    assert.ok(cfg.rpcTotal() > 0 && cfg.bytesTotal() > 0, 'traffic was counted');
  });

  it('a disconnected server neither sends nor receives', () => {
    const cfg = new LabConfig(3, { seed: 2 });
    const leader = cfg.checkOneLeader();
    const other = (leader + 1) % 3;
    cfg.disconnect(other);
    const before = cfg.rpcCount(other);
    cfg.one(5, 2, false);
    cfg.sleep(2_000);
    assert.equal(cfg.rpcCount(other), before);
    cfg.connect(other);
    cfg.one(6, 3, true);
    assert.ok(cfg.rpcCount(other) > before, 'requests reach the server again');
  });

  it('survives crash1/start1 of every server and compacts with snapshot: true', () => {
    const cfg = new LabConfig(3, { seed: 3, snapshot: true });
    for (let k = 0; k < 30; k++) cfg.one(k + 1000, 3, true);
    for (let i = 0; i < 3; i++) cfg.crash1(i);
    for (let i = 0; i < 3; i++) { cfg.start1(i); cfg.connect(i); }
    const idx = cfg.one(2000, 3, true);
    assert.equal(cfg.nCommitted(idx)[1], 2000);
    for (let i = 0; i < 3; i++) {
      assert.ok(cfg.snapshotSize(i) > 0, `server ${i} has a snapshot`);
      assert.ok(cfg.logSize(i) < 2_000, `server ${i} log is ${cfg.logSize(i)} bytes`);
    }
  });

  it('fails one() within its virtual time limit when no majority is connected', () => {
    const cfg = new LabConfig(3, { seed: 4 });
    cfg.checkOneLeader();
    cfg.disconnect(0);
    cfg.disconnect(1);
    cfg.disconnect(2);
    const t0 = cfg.now;
    assert.throws(() => cfg.one(1, 3, true), { name: 'LabFailure', message: /failed to reach agreement[\s\S]*lab seed 4/ });
    assert.ok(cfg.now - t0 >= 10_000 && cfg.now - t0 < 11_000, `one() gave up after ${cfg.now - t0} ms`);
  });

  it('wait() gives -1 once a term moves past startTerm', () => {
    const cfg = new LabConfig(3, { seed: 5 });
    const leader = cfg.checkOneLeader();
    const { index, term } = cfg.start(leader, 77);
    cfg.disconnect(leader);
    cfg.disconnect((leader + 1) % 3);
    cfg.connect((leader + 1) % 3);
    cfg.crash1(leader);
    assert.equal(cfg.wait(index + 5, 3, term), -1);
  });
});

describe('core findings', () => {
  // Found with this simulator; fixed in the core by 58baed3.
  it('an entry whose Appends were all lost still commits on an idle, healthy network (Raft §5.3: the leader retries indefinitely)', () => {
    const sim = new Simulation({ seed: 1, nodes: 3 });
    const leader = elect(sim);
    commitEverywhere(sim, put('a', '1'));
    for (const id of sim.nodeIds) if (id !== leader) sim.network.block(leader, id);
    const { index } = sim.propose(leader, put('b', '2'));
    sim.network.heal();
    assert.ok(sim.runUntil(() => sim.all.every((n) => n.applied >= index), 5_000), `index ${index} still uncommitted after 5 s of heartbeats`);
  });

  it('a leader that demoted itself and crashed before the change committed does not deadlock the cluster (thesis §4.2.2)', () => {
    // Two voters. The leader demotes itself to learner; only it holds that entry, so its latest configuration
    // is {follower} while the follower's is still {leader, follower}. The follower cannot win: the old leader,
    // whose log is longer, refuses its vote. So the old leader, still a voter in its committed configuration,
    // must campaign after its restart, commit the change and step down.
    const sim = new Simulation({ seed: 1, nodes: 2 });
    commitEverywhere(sim, put('a', '1'));
    const leader = sim.leader() as NodeId;
    const follower = sim.nodeIds.find((id) => id !== leader) as NodeId;
    sim.network.block(leader, follower);
    sim.proposeConfChange(leader, [{ type: 'addLearner', node: leader }]);
    sim.run(10);
    sim.crash(leader);
    sim.network.heal();
    sim.restart(leader);
    assert.ok(sim.runUntil(() => sim.leader() !== null, 20_000), 'no leader within 20 s');
  });
});
