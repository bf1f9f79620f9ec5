/**
 * End-to-end scenarios on the deterministic simulator: learners, joint consensus, removing the leader,
 * leadership transfer, ReadIndex under a partition, and a full-cluster restart from durable state. Each
 * runs over a few seeds; the simulator checks Raft's safety properties after every event, and the
 * scenarios assert what safety alone does not: values read, configurations, roles, liveness.
 *
 * Every failure message names the seed; `SEED=7 node --import tsx --test packages/raft/test/scenarios.test.ts`
 * replays one seed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  NotLeaderError, ProposalDroppedError, RaftError,
  type ConfChange, type ConfState, type NodeId, type RaftStatus, type Role,
} from '../src/index.js';
import {
  Simulation, isKvCommand,
  type CoreStatus, type KvCommand, type NodeView, type SimObserver, type SimulationOptions,
} from '../src/testing/index.js';

const SEEDS: number[] = process.env.SEED ? [Number(process.env.SEED)] : [1, 2, 3, 4];

// Timing is fixed here, not left to the simulator's defaults, because the scenarios bound waits in
// election timeouts: a node's timeout is drawn from [ELECTION_MS, 2 * ELECTION_MS).
const TICK_MS = 10;
const ELECTION_TICKS = 10;
const ELECTION_MS = TICK_MS * ELECTION_TICKS;

function simulation(options: Omit<SimulationOptions, 'tickMs' | 'electionTicks' | 'heartbeatTicks'>): Simulation {
  return new Simulation({ tickMs: TICK_MS, electionTicks: ELECTION_TICKS, heartbeatTicks: 1, ...options });
}

// ---- Helpers ---------------------------------------------------------------------------------------

/** Where a run is, for failure messages. */
function at(sim: Simulation): string {
  return `seed ${sim.seed}, t=${sim.now} ms`;
}

/** One line per node, appended to failure messages so a failing seed explains itself. */
function cluster(sim: Simulation): string {
  return sim.all.map((n) => {
    const s = n.status();
    return s
      ? `${n.id} ${s.role} term=${s.term} lead=${s.leader} commit=${s.commit} last=${s.lastIndex} conf=${JSON.stringify(s.conf)}`
      : `${n.id} down`;
  }).join('; ');
}

function status(sim: Simulation, id: NodeId): CoreStatus {
  const s = sim.node(id).status();
  assert.ok(s !== null, `${id} is down (${at(sim)})`);
  return s;
}

/** The leadership transfer a leader has in progress; part of RaftCore's status, not of the simulator's CoreStatus. */
function transferee(sim: Simulation, id: NodeId): NodeId | null {
  return (status(sim, id) as RaftStatus).transferee;
}

let commandSeq = 0;
/** A put with a unique id, so a retried proposal takes effect once (KvStateMachine dedupes by id). */
function put(key: string, value: string): KvCommand {
  return { op: 'put', key, value, id: `c${++commandSeq}` };
}

function value(sim: Simulation, id: NodeId, key: string): string {
  return sim.node(id).stateMachine.get(key);
}

/** The machine's contents in a canonical order, to compare replicas. */
function contents(sim: Simulation, id: NodeId): string {
  return JSON.stringify([...sim.node(id).stateMachine.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** A configuration with sorted lists, to compare with deepEqual regardless of order. */
function conf(voters: NodeId[], learners: NodeId[] = [], outgoing?: NodeId[]): ConfState {
  const c: ConfState = { voters: [...voters].sort(), learners: [...learners].sort() };
  if (outgoing) c.outgoing = [...outgoing].sort();
  return c;
}
function confOf(sim: Simulation, id: NodeId): ConfState {
  const c = status(sim, id).conf;
  return conf(c.voters, c.learners, c.outgoing);
}

/** Runs until a node of `among` leads (the highest-term leader), failing otherwise. */
function elect(sim: Simulation, among: readonly NodeId[] = sim.nodeIds, maxMs = 50 * ELECTION_MS): NodeId {
  const ok = sim.runUntil(() => { const l = sim.leader(); return l !== null && among.includes(l); }, maxMs);
  assert.ok(ok, `no leader among ${among.join(',')} within ${maxMs} ms (${at(sim)}): ${cluster(sim)}`);
  return sim.leader() as NodeId;
}

/**
 * Proposes `cmd` on whoever leads until every live node of `among` has applied it, retrying when there is
 * no leader or the proposal is lost to a leader change. Returns the index it was last proposed at.
 */
function commit(sim: Simulation, cmd: KvCommand, among: readonly NodeId[] = sim.nodeIds, maxMs = 10_000): number {
  const deadline = sim.now + maxMs;
  const live = () => among.filter((id) => sim.node(id).alive);
  while (sim.now < deadline) {
    const leader = sim.leader();
    let index = 0;
    if (leader !== null) {
      try { index = sim.propose(leader, cmd).index; } catch (err) { if (!(err instanceof RaftError)) throw err; }
    }
    if (index === 0) { sim.run(20); continue; }
    // The value is unique, so seeing it means this command (or its earlier copy) took effect.
    const done = () => live().every((id) => sim.node(id).applied >= index && value(sim, id, cmd.key) === cmd.value);
    if (sim.runUntil(done, 1_000)) return index;
  }
  assert.fail(`${JSON.stringify(cmd)} was not applied on ${among.join(',')} within ${maxMs} ms (${at(sim)}): ${cluster(sim)}`);
}

/** Every role change, for "never became leader / never campaigned" checks. */
interface RoleChange { id: NodeId; role: Role; term: number; at: number }
function watchRoles(sim: Simulation, extra: SimObserver = {}): RoleChange[] {
  const changes: RoleChange[] = [];
  sim.observer = { ...extra, onRoleChange: (id, role, term) => changes.push({ id, role, term, at: sim.now }) };
  return changes;
}

// ---- 1. Learners -----------------------------------------------------------------------------------

describe('scenario: learners', () => {
  for (const seed of SEEDS) {
    for (const compacted of [false, true]) {
      it(`a learner catches up${compacted ? ' by snapshot' : ' from the whole log'}, never counts, never campaigns, then counts once promoted [seed ${seed}]`, () => {
        const voters = ['n1', 'n2', 'n3'];
        const sim = simulation({ seed, nodes: 4, voters, snapshotEvery: compacted ? 5 : 0 });
        const campaigns: string[] = [];
        const restoredAt: number[] = [];
        const roles = watchRoles(sim, {
          onRestore: (id, snap) => { if (id === 'n4') restoredAt.push(snap.index); },
          onSend: (m, from) => { if (from === 'n4' && (m.type === 'PreVote' || m.type === 'Vote')) campaigns.push(`${m.type} t${m.term} at ${sim.now}`); },
        });
        elect(sim, voters);
        for (let i = 0; i < 12; i++) commit(sim, put(`k${i}`, `v${i}`), voters);
        assert.equal(status(sim, 'n4').lastIndex, 0, `n4 is in no configuration yet and has heard nothing (${at(sim)})`);

        let leader = sim.leader() as NodeId;
        if (compacted) assert.ok(status(sim, leader).firstIndex > 1, `the leader compacted its log (${at(sim)}): ${cluster(sim)}`);
        sim.proposeConfChange(leader, [{ type: 'addLearner', node: 'n4' }]);
        assert.deepEqual(confOf(sim, leader), conf(voters, ['n4']), `the leader uses the new configuration once appended (${at(sim)})`);
        commit(sim, put('after-add', 'yes'));

        // The learner holds the same state and the same configuration as the leader.
        assert.equal(contents(sim, 'n4'), contents(sim, leader), `learner state differs from the leader's (${at(sim)})`);
        assert.deepEqual(confOf(sim, 'n4'), conf(voters, ['n4']), `learner's configuration (${at(sim)})`);
        const n4 = sim.node('n4');
        const snapshotsToN4 = sim.network.stats.receivedBy('n4').get('Snapshot') ?? 0;
        if (compacted) {
          assert.ok(snapshotsToN4 >= 1 && restoredAt.length >= 1, `a learner behind the leader's first index gets a snapshot (${at(sim)})`);
          assert.ok(n4.appliedEntries.every((e) => e.index > restoredAt[0]), `the learner applied entries the snapshot at ${restoredAt[0]} covers (${at(sim)})`);
        } else {
          assert.equal(snapshotsToN4, 0, `no snapshot is needed without compaction (${at(sim)})`);
          // Whole log: the learner applied exactly the entries the leader applied, from the bootstrap entry on.
          const shape = (v: NodeView) => v.appliedEntries.map((e) => JSON.stringify([e.index, e.term, e.type, e.data]));
          assert.equal(n4.appliedEntries[0]?.index, 1, `the learner starts at index 1 (${at(sim)})`);
          assert.deepEqual(shape(n4), shape(sim.node(leader)).slice(0, n4.appliedEntries.length), `learner log differs (${at(sim)})`);
          assert.equal(n4.applied, sim.node(leader).applied, `learner applied as far as the leader (${at(sim)})`);
        }

        // One voter down: the leader and the other voter still make a majority of the three voters.
        leader = sim.leader() as NodeId;
        const [f1, f2] = voters.filter((id) => id !== leader);
        sim.crash(f1);
        commit(sim, put('one-down', 'ok'), [leader, f2, 'n4']);

        // Two voters down: the leader and the learner are up, but a learner is no vote towards a quorum.
        sim.crash(f2);
        const stuck = sim.propose(leader, put('two-down', 'must-not-commit'));
        sim.run(10 * ELECTION_MS);
        assert.ok(status(sim, leader).commit < stuck.index, `committed ${stuck.index} with one voter of three plus a learner (${at(sim)}): ${cluster(sim)}`);
        assert.ok(sim.node('n4').applied < stuck.index, `the learner applied an entry no voter quorum has (${at(sim)})`);
        assert.equal(sim.leader(), null, `check-quorum must not count the learner: a leader remained (${at(sim)}): ${cluster(sim)}`);

        sim.restart(f1);
        sim.restart(f2);
        elect(sim, voters);
        commit(sim, put('recovered', 'ok'));

        // Isolated for 30 election timeouts, the learner never campaigns: it is no voter in any configuration.
        const term = status(sim, 'n4').term;
        sim.network.isolate('n4');
        for (let i = 0; i < 5; i++) { commit(sim, put(`iso${i}`, 'x'), voters); sim.run(6 * ELECTION_MS); }
        assert.deepEqual(campaigns, [], `the learner asked for votes (${at(sim)})`);
        const n4Roles = roles.filter((r) => r.id === 'n4' && r.role !== 'follower');
        assert.deepEqual(n4Roles, [], `the learner left the follower role (${at(sim)})`);
        assert.equal(status(sim, 'n4').term, term, `an isolated learner's term moved (${at(sim)})`);
        sim.network.heal();
        commit(sim, put('healed', 'ok'));

        // Promoted, it counts: with four voters, the leader, one other voter and n4 are the three a quorum needs.
        leader = sim.leader() as NodeId;
        sim.proposeConfChange(leader, [{ type: 'addVoter', node: 'n4' }]);
        commit(sim, put('promoted', 'ok'));
        for (const id of sim.nodeIds) {
          assert.deepEqual(confOf(sim, id), conf([...voters, 'n4']), `${id}'s configuration after the promotion (${at(sim)})`);
        }
        leader = sim.leader() as NodeId;
        const victim = voters.find((id) => id !== leader) as NodeId;
        sim.crash(victim);
        const live = sim.nodeIds.filter((id) => id !== victim);
        for (let i = 0; i < 3; i++) commit(sim, put(`as-voter${i}`, 'ok'), live);
        assert.equal(sim.leader(), leader, `the leader kept leading with n4's votes (${at(sim)})`);
        for (const id of live) assert.equal(contents(sim, id), contents(sim, leader), `${id} differs from the leader (${at(sim)})`);
      });
    }
  }
});

// ---- 2. Joint consensus ----------------------------------------------------------------------------

describe('scenario: joint consensus', () => {
  for (const seed of SEEDS) {
    for (const reachable of ['new', 'old'] as const) {
      it(`replaces two of three voters at once; with only the ${reachable} majority reachable nothing commits [seed ${seed}]`, () => {
        const voters = ['n1', 'n2', 'n3'];
        // Without check-quorum the leader keeps leading while it lacks one majority, so the joint
        // configuration stays in force long enough to see that it withholds commits (with check-quorum it
        // would step down, and the old voters could elect one of their own and drop the uncommitted change).
        const sim = simulation({ seed, nodes: 5, voters, checkQuorum: false });
        elect(sim, voters);
        for (let i = 0; i < 3; i++) commit(sim, put(`k${i}`, `v${i}`), voters);
        const leader = sim.leader() as NodeId;
        const [a, b] = voters.filter((id) => id !== leader);
        const incoming = [leader, 'n4', 'n5'];
        const changes: ConfChange[] = [
          { type: 'addVoter', node: 'n4' }, { type: 'addVoter', node: 'n5' },
          { type: 'remove', node: a }, { type: 'remove', node: b },
        ];
        const { index: jointIndex } = sim.proposeConfChange(leader, changes);
        assert.deepEqual(confOf(sim, leader), conf(incoming, [], voters), `the leader enters the joint configuration on append (${at(sim)})`);

        // Cut the leader off from one half's other members before the joint entry reaches them (what is
        // in flight is dropped on arrival), and keep those members apart so they cannot elect either.
        const missing = reachable === 'new' ? [a, b] : ['n4', 'n5'];
        const kept = sim.nodeIds.filter((id) => !missing.includes(id));
        sim.network.partition([kept, [missing[0]], [missing[1]]]);
        const { index: writeIndex } = sim.propose(leader, put('during', 'joint'));
        sim.run(10 * ELECTION_MS);
        const s = status(sim, leader);
        assert.equal(s.role, 'leader', `the leader still leads (${at(sim)}): ${cluster(sim)}`);
        assert.ok(s.commit < jointIndex, `the joint entry committed without a majority of the ${reachable === 'new' ? 'old' : 'new'} voters (${at(sim)}): ${cluster(sim)}`);
        assert.ok(sim.all.every((n) => (n.status()?.commit ?? 0) < writeIndex), `a write committed during joint consensus with one majority only (${at(sim)}): ${cluster(sim)}`);
        assert.deepEqual(confOf(sim, leader), conf(incoming, [], voters), `still in joint consensus (${at(sim)})`);
        for (const id of kept) {
          assert.ok(status(sim, id).lastIndex >= writeIndex, `${id} is reachable and holds the entries; only the quorum rule holds the commit back (${at(sim)}): ${cluster(sim)}`);
        }

        // One member of the missing half comes back: both majorities are reachable, so everything commits
        // and the leader leaves the joint configuration on its own.
        sim.network.partition([[...kept, missing[0]], [missing[1]]]);
        const committed = sim.runUntil(() => status(sim, leader).commit >= writeIndex, 5 * ELECTION_MS);
        assert.ok(committed, `nothing committed once both majorities were reachable (${at(sim)}): ${cluster(sim)}`);
        const left = () => sim.node(leader).appliedEntries.some((e) => e.index > jointIndex && e.type === 'conf' && (e.data as { op?: string }).op === 'leaveJoint');
        assert.ok(sim.runUntil(left, 5 * ELECTION_MS), `no leaveJoint entry committed (${at(sim)}): ${cluster(sim)}`);
        assert.deepEqual(confOf(sim, leader), conf(incoming), `the leader left joint consensus (${at(sim)})`);
        assert.equal(status(sim, leader).role, 'leader', `the leader is in the new configuration and keeps leading (${at(sim)})`);

        sim.network.heal();
        commit(sim, put('after', 'leave'), incoming);
        for (const id of incoming) assert.deepEqual(confOf(sim, id), conf(incoming), `${id}'s final configuration (${at(sim)})`);

        // The removed voters are no longer needed.
        sim.crash(a);
        sim.crash(b);
        for (let i = 0; i < 3; i++) commit(sim, put(`w${i}`, 'new-conf'), incoming);
        // And the new voters decide alone: without the old leader, n4 and n5 are a majority of three.
        sim.crash(leader);
        const next = elect(sim, ['n4', 'n5']);
        commit(sim, put('by', next), ['n4', 'n5']);
        assert.equal(contents(sim, 'n4'), contents(sim, 'n5'), `n4 and n5 differ (${at(sim)})`);
        assert.equal(value(sim, 'n4', 'during'), 'joint', `the write made during joint consensus survived (${at(sim)})`);
      });
    }

    it(`a leader replaced through joint consensus leads until the final configuration commits, then hands over [seed ${seed}]`, () => {
      const voters = ['n1', 'n2', 'n3'];
      const incoming = ['n1', 'n4', 'n5'];
      const sim = simulation({ seed, nodes: 5, voters });
      let leader = elect(sim, voters);
      commit(sim, put('k', 'v'), voters);
      if (leader !== 'n2') {
        sim.transferLeader(leader, 'n2');
        leader = elect(sim, ['n2'], 2 * ELECTION_MS);
        commit(sim, put('k', 'on n2'), voters);
      }
      const roles = watchRoles(sim);
      const { index: jointIndex } = sim.proposeConfChange('n2', [
        { type: 'addVoter', node: 'n4' }, { type: 'addVoter', node: 'n5' }, { type: 'remove', node: 'n2' }, { type: 'remove', node: 'n3' },
      ]);
      assert.deepEqual(confOf(sim, 'n2'), conf(incoming, [], voters), `joint configuration on append (${at(sim)})`);
      // Still a voter of the outgoing half, n2 keeps leading through the joint phase and appends leaveJoint.
      const leaveIndex = () => sim.node('n2').durable.entries.find((e) => e.index > jointIndex && e.type === 'conf')?.index ?? 0;
      assert.ok(sim.runUntil(() => leaveIndex() > 0, 5 * ELECTION_MS), `n2 never appended leaveJoint (${at(sim)}): ${cluster(sim)}`);
      assert.equal(status(sim, 'n2').role, 'leader', `n2 left before the final configuration was even appended (${at(sim)})`);
      assert.deepEqual(confOf(sim, 'n2'), conf(incoming), `n2 uses the final configuration once appended (${at(sim)})`);

      assert.ok(sim.runUntil(() => status(sim, 'n2').role !== 'leader', 5 * ELECTION_MS), `n2 kept leading a configuration without it (${at(sim)}): ${cluster(sim)}`);
      assert.ok(status(sim, 'n2').commit >= leaveIndex(), `n2 stepped down before leaveJoint (index ${leaveIndex()}) committed (${at(sim)}): ${cluster(sim)}`);
      const next = elect(sim, incoming);
      for (let i = 0; i < 3; i++) commit(sim, put(`w${i}`, `by ${next}`), incoming);
      for (const id of incoming) assert.deepEqual(confOf(sim, id), conf(incoming), `${id}'s final configuration (${at(sim)})`);
      const n2Roles = roles.filter((r) => r.id === 'n2').map((r) => r.role);
      assert.deepEqual([...new Set(n2Roles)], ['follower'], `once removed, n2 only ever follows (${at(sim)}): ${n2Roles.join(',')}`);
      sim.crash('n2');
      sim.crash('n3');
      commit(sim, put('k', 'without the old voters'), incoming);
    });

    it(`in joint consensus, leadership too needs both majorities [seed ${seed}]`, () => {
      const voters = ['n1', 'n2', 'n3'];
      const sim = simulation({ seed, nodes: 5, voters });
      elect(sim, voters);
      commit(sim, put('k', 'v'), voters);
      const leader = sim.leader() as NodeId;
      const [a, b] = voters.filter((id) => id !== leader);
      const incoming = [leader, 'n4', 'n5'];
      const { index: jointIndex } = sim.proposeConfChange(leader, [
        { type: 'addVoter', node: 'n4' }, { type: 'addVoter', node: 'n5' }, { type: 'remove', node: a }, { type: 'remove', node: b },
      ]);
      // The joint entry reaches the new voters only; the old ones are cut off, each on its own.
      sim.network.partition([incoming, [a], [b]]);
      const partitionedAt = sim.now;

      // Check-quorum counts both majorities: the leader hears only the new one, so it steps down
      // (it looks back over a whole election timeout, hence up to two).
      const stepped = sim.runUntil(() => status(sim, leader).role !== 'leader', 2 * ELECTION_MS + TICK_MS);
      assert.ok(stepped, `a joint leader with only the new majority kept leading for ${sim.now - partitionedAt} ms (${at(sim)}): ${cluster(sim)}`);
      // The leader, n4 and n5 hold the joint entry and are a majority of the new voters, yet none can win
      // without a vote of the old voters.
      for (const id of incoming) assert.ok(status(sim, id).lastIndex >= jointIndex, `${id} holds the joint entry (${at(sim)}): ${cluster(sim)}`);
      const roles = watchRoles(sim);
      sim.run(20 * ELECTION_MS);
      const won = roles.filter((r) => r.role === 'leader');
      assert.deepEqual(won, [], `a leader was elected with one majority of the joint configuration (${at(sim)}): ${cluster(sim)}`);
      assert.ok(sim.all.every((n) => (n.status()?.commit ?? 0) < jointIndex), `the joint entry committed (${at(sim)}): ${cluster(sim)}`);

      // One old voter returns: its log is behind, so it cannot win, but its vote lets a holder of the joint
      // entry win, which then commits it and leaves joint consensus.
      sim.network.partition([[...incoming, a], [b]]);
      const next = elect(sim, incoming);
      const left = () => incoming.every((id) => { const c = confOf(sim, id); return !c.outgoing && c.voters.length === 3; });
      assert.ok(sim.runUntil(left, 10 * ELECTION_MS), `joint consensus was not left (${at(sim)}): ${cluster(sim)}`);
      sim.network.heal();
      commit(sim, put('k', 'after'), incoming);
      for (const id of incoming) assert.deepEqual(confOf(sim, id), conf(incoming), `${id}'s final configuration (${at(sim)})`);
      assert.ok(incoming.includes(sim.leader() as NodeId), `the leader (${sim.leader()}, elected ${next}) is one of the new voters (${at(sim)})`);
    });
  }
});

// ---- 3. Removing the leader ------------------------------------------------------------------------

describe('scenario: the leader removes itself', () => {
  for (const seed of SEEDS) {
    it(`steps down once its removal commits and never leads or disturbs the cluster again [seed ${seed}]`, () => {
      const sim = simulation({ seed, nodes: 3 });
      const roles = watchRoles(sim);
      const old = elect(sim);
      for (let i = 0; i < 3; i++) commit(sim, put(`k${i}`, `v${i}`));
      const rest = sim.nodeIds.filter((id) => id !== old);
      const { index: removal } = sim.proposeConfChange(old, [{ type: 'remove', node: old }]);
      assert.deepEqual(confOf(sim, old), conf(rest), `the removal takes effect on append (${at(sim)})`);
      assert.equal(status(sim, old).role, 'leader', `the leader keeps leading until its removal commits (${at(sim)})`);

      assert.ok(sim.runUntil(() => status(sim, old).role !== 'leader', 10 * ELECTION_MS), `the removed leader never stepped down (${at(sim)}): ${cluster(sim)}`);
      assert.ok(status(sim, old).commit >= removal, `it stepped down before its removal (index ${removal}) committed (${at(sim)}): ${cluster(sim)}`);
      const since = roles.length;

      const next = elect(sim, rest);
      for (let i = 0; i < 3; i++) commit(sim, put(`after${i}`, 'ok'), rest);

      // Restarted from its durable state, the removed node must not campaign its way back nor raise terms.
      sim.crash(old);
      sim.run(ELECTION_MS);
      sim.restart(old);
      const term = status(sim, next).term;
      for (let i = 0; i < 5; i++) {
        commit(sim, put(`restarted${i}`, 'ok'), rest);
        sim.run(3 * ELECTION_MS);
      }
      for (const id of rest) assert.equal(status(sim, id).term, term, `${id}'s term moved while the removed node ran (${at(sim)}): ${cluster(sim)}`);
      assert.equal(sim.leader(), next, `leadership changed while the removed node ran (${at(sim)}): ${cluster(sim)}`);
      const relapses = roles.slice(since).filter((r) => r.id === old && r.role === 'leader');
      assert.deepEqual(relapses, [], `the removed node led again (${at(sim)})`);
      assert.equal(status(sim, old).role, 'follower', `the removed node stays a follower (${at(sim)}): ${cluster(sim)}`);
      assert.equal(contents(sim, rest[0]), contents(sim, rest[1]), `the remaining voters differ (${at(sim)})`);
    });
  }
});

// ---- 4. Leadership transfer ------------------------------------------------------------------------

describe('scenario: leadership transfer', () => {
  for (const seed of SEEDS) {
    it(`to an up-to-date follower: done within an election timeout, nothing committed lost [seed ${seed}]`, () => {
      const sim = simulation({ seed, nodes: 3 });
      const old = elect(sim);
      const written: [string, string][] = [];
      for (let i = 0; i < 5; i++) { const c = put(`k${i}`, `v${i}`); commit(sim, c); written.push([c.key, c.value as string]); }
      const to = sim.nodeIds.find((id) => id !== old) as NodeId;
      assert.equal(status(sim, to).lastIndex, status(sim, old).lastIndex, `precondition: ${to} is up to date (${at(sim)})`);
      const oldTerm = status(sim, old).term;

      const t0 = sim.now;
      sim.transferLeader(old, to);
      assert.ok(sim.runUntil(() => sim.leader() === to, ELECTION_MS), `${to} did not lead within ${ELECTION_MS} ms (${at(sim)}): ${cluster(sim)}`);
      const took = sim.now - t0;
      assert.ok(took < ELECTION_MS, `the transfer took ${took} ms (${at(sim)})`);
      assert.ok(status(sim, to).term > oldTerm, `the new leader's term is newer (${at(sim)})`);
      assert.ok(sim.runUntil(() => status(sim, old).role === 'follower', ELECTION_MS), `the old leader did not step down (${at(sim)}): ${cluster(sim)}`);

      commit(sim, put('after', 'transfer'));
      assert.equal(sim.leader(), to, `leadership moved again (${at(sim)})`);
      for (const id of sim.nodeIds) {
        for (const [k, v] of written) assert.equal(value(sim, id, k), v, `${id} lost ${k}=${v} (${at(sim)})`);
        assert.equal(contents(sim, id), contents(sim, to), `${id} differs from the new leader (${at(sim)})`);
      }
    });

    for (const compacted of [false, true]) {
      it(`to a lagging follower: catches it up first${compacted ? ' (by snapshot)' : ''}, refusing proposals meanwhile [seed ${seed}]`, () => {
        const sim = simulation({ seed, nodes: 3, snapshotEvery: compacted ? 5 : 0 });
        const old = elect(sim);
        commit(sim, put('k', 'start'));
        const to = sim.nodeIds.find((id) => id !== old) as NodeId;
        const others = sim.nodeIds.filter((id) => id !== to);
        sim.network.isolate(to);
        const written: [string, string][] = [];
        for (let i = 0; i < 30; i++) { const c = put(`k${i}`, `v${i}`); commit(sim, c, others); written.push([c.key, c.value as string]); }
        sim.run(2 * ELECTION_MS);
        const target = status(sim, old).lastIndex;
        assert.ok(status(sim, to).lastIndex < target - 20, `precondition: ${to} lags (${at(sim)}): ${cluster(sim)}`);

        // When the transferee is told to campaign, it must hold everything the leader had.
        const timeoutNow: number[] = [];
        sim.observer = { onDeliver: (m) => { if (m.type === 'TimeoutNow' && m.to === to) timeoutNow.push(status(sim, to).lastIndex); } };
        sim.network.heal();
        sim.transferLeader(old, to);
        assert.equal(transferee(sim, old), to, `the transfer is pending (${at(sim)})`);
        assert.throws(() => sim.propose(old, put('during', 'transfer')), ProposalDroppedError, `a proposal during the transfer was accepted (${at(sim)})`);
        assert.ok(sim.runUntil(() => sim.leader() === to, 2 * ELECTION_MS), `${to} did not become leader (${at(sim)}): ${cluster(sim)}`);
        assert.ok(timeoutNow.length >= 1, `${to} led without being told to campaign (${at(sim)})`);
        assert.ok(timeoutNow[0] >= target, `TimeoutNow reached ${to} at log index ${timeoutNow[0]}, before it caught up to ${target} (${at(sim)})`);

        commit(sim, put('after', 'transfer'));
        for (const id of sim.nodeIds) {
          for (const [k, v] of written) assert.equal(value(sim, id, k), v, `${id} lost ${k}=${v} (${at(sim)})`);
          assert.equal(value(sim, id, 'during'), '', `the refused proposal took effect on ${id} (${at(sim)})`);
        }
        if (compacted) assert.ok((sim.network.stats.receivedBy(to).get('Snapshot') ?? 0) >= 1, `${to} was caught up by a snapshot (${at(sim)})`);
      });
    }

    it(`to a crashed node: abandoned after an election timeout, then proposals are accepted again [seed ${seed}]`, () => {
      const sim = simulation({ seed, nodes: 3 });
      const leader = elect(sim);
      commit(sim, put('k', 'v'));
      const to = sim.nodeIds.find((id) => id !== leader) as NodeId;
      const live = sim.nodeIds.filter((id) => id !== to);
      const term = status(sim, leader).term;
      sim.crash(to);

      const t0 = sim.now;
      sim.transferLeader(leader, to);
      assert.equal(transferee(sim, leader), to, `the transfer is pending (${at(sim)})`);
      assert.throws(() => sim.propose(leader, put('x', 'refused')), ProposalDroppedError, `a proposal during the transfer was accepted (${at(sim)})`);
      sim.run(ELECTION_MS / 2);
      assert.equal(transferee(sim, leader), to, `the transfer was abandoned before an election timeout (${at(sim)})`);
      assert.throws(() => sim.propose(leader, put('x', 'refused')), ProposalDroppedError, `a proposal during the transfer was accepted (${at(sim)})`);

      assert.ok(sim.runUntil(() => transferee(sim, leader) === null, 2 * ELECTION_MS), `the transfer to a crashed node was never abandoned (${at(sim)}): ${cluster(sim)}`);
      const took = sim.now - t0;
      assert.ok(took <= ELECTION_MS + TICK_MS, `abandoned only after ${took} ms (${at(sim)})`);
      assert.equal(sim.leader(), leader, `leadership changed (${at(sim)})`);
      assert.equal(status(sim, leader).term, term, `the term changed (${at(sim)})`);
      const { index } = sim.propose(leader, put('x', 'accepted'));
      assert.ok(sim.runUntil(() => live.every((id) => sim.node(id).applied >= index), 5 * ELECTION_MS), `the accepted proposal did not commit (${at(sim)}): ${cluster(sim)}`);
      for (const id of live) assert.equal(value(sim, id, 'x'), 'accepted', `${id} (${at(sim)})`);
    });
  }
});

// ---- 5. ReadIndex ----------------------------------------------------------------------------------

describe('scenario: ReadIndex', () => {
  for (const seed of SEEDS) {
    for (const checkQuorum of [false, true]) {
      it(`a partitioned old leader never serves a stale read${checkQuorum ? ' (check-quorum on)' : ' (check-quorum off: it keeps believing it leads)'} [seed ${seed}]`, () => {
        const sim = simulation({ seed, nodes: 5, checkQuorum });
        const old = elect(sim);
        commit(sim, put('x', 'old'));
        const [buddy, ...majority] = sim.nodeIds.filter((id) => id !== old);
        sim.network.partition([[old, buddy], majority]);
        const partitionedAt = sim.now;

        const served = new Map<string, { value: string; at: number; index: number }>();
        const read = (id: NodeId, ctx: string) => sim.readIndex(id, ctx, (sm, index) => served.set(ctx, { value: sm.get('x'), at: sim.now, index }));
        // Asked while the old leader still believes it leads: directly, and forwarded by its minority follower.
        assert.equal(status(sim, old).role, 'leader', `precondition: ${old} still leads (${at(sim)})`);
        const stale = ['old-leader', 'minority-follower'];
        read(old, 'old-leader');
        read(buddy, 'minority-follower');

        const next = elect(sim, majority);
        assert.ok(status(sim, next).term > status(sim, old).term, `the new leader's term is newer (${at(sim)})`);
        commit(sim, put('x', 'new'), majority);
        if (!checkQuorum) {
          assert.equal(status(sim, old).role, 'leader', `precondition: without check-quorum ${old} still believes it leads (${at(sim)}): ${cluster(sim)}`);
        }
        if (status(sim, old).role === 'leader') {
          // Asked after the new write committed elsewhere: the classic stale read.
          read(old, 'old-leader-late');
          stale.push('old-leader-late');
        }
        if (checkQuorum) {
          // Check-quorum looks back over a whole election timeout, so stepping down takes up to two.
          const stepped = sim.runUntil(() => status(sim, old).role !== 'leader', Math.max(0, partitionedAt + 2 * ELECTION_MS + TICK_MS - sim.now));
          assert.ok(stepped, `with check-quorum the old leader did not step down (${at(sim)}): ${cluster(sim)}`);
          // Now it knows no leader, so it cannot even take a read.
          assert.throws(() => sim.readIndex(old, 'refused'), NotLeaderError, `a leaderless old leader took a read (${at(sim)})`);
        }

        // In the majority, reads on the new leader and through a follower see the new write.
        const follower = majority.find((id) => id !== next) as NodeId;
        read(next, 'new-leader');
        read(follower, 'majority-follower');
        assert.ok(sim.runUntil(() => served.has('new-leader') && served.has('majority-follower'), 5 * ELECTION_MS), `majority reads were not served (${at(sim)}): ${cluster(sim)}`);
        assert.equal(served.get('new-leader')?.value, 'new', `read on the new leader (${at(sim)})`);
        assert.equal(served.get('majority-follower')?.value, 'new', `read forwarded by ${follower} (${at(sim)})`);

        sim.run(20 * ELECTION_MS);
        for (const ctx of stale) assert.equal(served.get(ctx), undefined, `read ${ctx} was served inside the minority (${at(sim)}): ${JSON.stringify(served.get(ctx))}`);

        sim.network.heal();
        sim.run(20 * ELECTION_MS);
        for (const ctx of stale) {
          const r = served.get(ctx);
          if (r) assert.equal(r.value, 'new', `read ${ctx} was served with a stale value after healing (${at(sim)})`);
        }
        // After healing, the old leader follows and forwards reads to the current leader.
        const current = elect(sim);
        assert.ok(sim.runUntil(() => status(sim, old).leader === current, 5 * ELECTION_MS), `${old} never learned the leader (${at(sim)}): ${cluster(sim)}`);
        read(old, 'old-leader-healed');
        assert.ok(sim.runUntil(() => served.has('old-leader-healed'), 5 * ELECTION_MS), `the healed node's read was not served (${at(sim)}): ${cluster(sim)}`);
        assert.equal(served.get('old-leader-healed')?.value, 'new', `read via the healed old leader (${at(sim)})`);
      });
    }

    it(`a read asked right after an election waits for the leader's own-term entry to commit [seed ${seed}]`, () => {
      const sim = simulation({ seed, nodes: 3 });
      const old = elect(sim);
      commit(sim, put('x', 'v1'));
      const { index: written } = sim.propose(old, put('x', 'v2'));
      assert.ok(sim.runUntil(() => status(sim, old).commit >= written, ELECTION_MS), `v2 did not commit (${at(sim)}): ${cluster(sim)}`);
      // Crash the leader at the instant it commits v2: its messages carrying the new commit index are
      // discarded, so v2 is committed but no survivor knows it.
      const rest = sim.nodeIds.filter((id) => id !== old);
      for (const id of rest) assert.ok(status(sim, id).commit < written, `precondition: ${id} does not know v2 committed (${at(sim)}): ${cluster(sim)}`);
      sim.crash(old);

      const next = elect(sim, rest);
      const s = status(sim, next);
      const ownEntry = s.lastIndex;
      assert.ok(s.commit < written && s.commit < ownEntry, `precondition: the new leader's commit index still lags (${at(sim)}): ${cluster(sim)}`);
      const served: { value: string; index: number }[] = [];
      sim.readIndex(next, 'fresh', (sm, index) => served.push({ value: sm.get('x'), index }));
      const record = sim.node(next).reads.at(-1);
      assert.equal(record?.index, null, `the read was answered before the leader's own-term entry committed (${at(sim)})`);

      assert.ok(sim.runUntil(() => served.length > 0, 5 * ELECTION_MS), `the read was never served (${at(sim)}): ${cluster(sim)}`);
      const [r] = served;
      assert.ok(r.index >= ownEntry, `read point ${r.index} precedes the leader's own-term entry ${ownEntry} (${at(sim)})`);
      assert.equal(r.value, 'v2', `the read missed a committed write (${at(sim)})`);
    });
  }
});

// ---- 6. Full restart -------------------------------------------------------------------------------

describe('scenario: every node restarts mid-traffic', () => {
  for (const seed of SEEDS) {
    it(`from durable state with compaction: nothing committed is lost, replicas converge [seed ${seed}]`, () => {
      const sim = simulation({ seed, nodes: 5, snapshotEvery: 5 });
      const rng = sim.fork();
      // The first application anywhere of each command id: the order writes committed in.
      const firstApplied: string[] = [];
      const seen = new Set<string>();
      let restoredAtStart = 0;
      let restarting = false;
      sim.observer = {
        onApply: (_id, e) => {
          if (e.type !== 'normal' || !isKvCommand(e.data) || e.data.id === undefined || seen.has(e.data.id)) return;
          seen.add(e.data.id);
          firstApplied.push(e.data.id);
        },
        onRestore: () => { if (restarting) restoredAtStart++; },
      };
      let seq = 0;
      const burst = (n: number) => {
        const leader = sim.leader();
        if (leader === null) return;
        for (let i = 0; i < n; i++) {
          const id = `w${++seq}`;
          try { sim.propose(leader, { op: 'append', key: 'log', value: `${id};`, id }); } catch (err) { if (!(err instanceof RaftError)) throw err; }
        }
      };
      const holds = (id: NodeId, w: string) => value(sim, id, 'log').split(';').filter((x) => x === w).length;

      elect(sim);
      for (let round = 0; round < 3; round++) {
        for (let k = 0; k < 20; k++) { burst(1 + rng.int(3)); sim.run(rng.range(1, 30)); }
        burst(3);
        sim.run(rng.int(4)); // some of the burst is still on the wire
        const committed = firstApplied.filter((w) => w.startsWith('w'));
        assert.ok(committed.length > 0, `traffic committed (${at(sim)})`);
        const order = [...sim.nodeIds];
        for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
        for (const id of order) { sim.crash(id); sim.run(rng.int(3)); }
        sim.run(ELECTION_MS);
        restarting = true;
        for (const id of order) { sim.restart(id); }
        restarting = false;
        elect(sim);
        // Once the cluster commits something new, every replica has replayed what it committed before.
        commit(sim, { op: 'put', key: 'marker', value: `m${round}`, id: `m${round}` });
        for (const id of sim.nodeIds) {
          for (const w of committed) assert.equal(holds(id, w), 1, `${id} holds committed write ${w} ${holds(id, w)} times after restart ${round} (${at(sim)})`);
        }
      }
      burst(5);
      sim.run(20 * ELECTION_MS);
      const expected = firstApplied.filter((w) => w.startsWith('w')).map((w) => `${w};`).join('');
      for (const id of sim.nodeIds) {
        assert.equal(value(sim, id, 'log'), expected, `${id}'s log is not the committed writes in commit order (${at(sim)})`);
        assert.equal(contents(sim, id), contents(sim, sim.nodeIds[0]), `${id} differs from ${sim.nodeIds[0]} (${at(sim)})`);
        assert.ok(sim.node(id).durable.snapshot !== null, `${id} never compacted (${at(sim)})`);
      }
      assert.ok(restoredAtStart >= 1, `no node restarted from a snapshot (${at(sim)})`);
    });
  }
});
