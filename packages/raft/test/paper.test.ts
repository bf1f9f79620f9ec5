/**
 * RaftCore against the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm", extended version) and Ongaro's thesis, in the manner of etcd's raft_paper_test.go. Each test
 * has three steps: init (a node restored with a chosen log and term, or a small in-process network), act
 * (hand-made messages, ticks, proposals) and check (what the core hands out in its Ready, and its status).
 * Every node's election timeout is fixed (see helpers/core.ts), so tests count ticks, never time.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  CompactionError, ConfChangeError, NotLeaderError, ProposalDroppedError, RaftCore, RaftError, UsageError,
  validateMessage, type Entry, type Message, type NodeId, type Snapshot,
} from '../src/index.js';
import {
  ELECTION, ack, append, elect, logWith, node, ofType, restoreOf, sent, storage, take, tickN,
} from './helpers/core.js';
import { Network } from './helpers/network.js';
import { prng, testSeed, type Prng } from './helpers/prng.js';

const MESSAGE_TYPES: Message['type'][] = [
  'PreVote', 'Vote', 'PreVoteResp', 'VoteResp', 'Append', 'AppendResp', 'Heartbeat', 'HeartbeatResp',
  'Snapshot', 'TimeoutNow', 'ReadIndex', 'ReadIndexResp',
];

/** A well-formed message of `type` that asks nothing in particular of its receiver. */
function sample(type: Message['type'], term: number, from: NodeId = 'b', to: NodeId = 'a'): Message {
  const base = { from, to, term };
  switch (type) {
    case 'PreVote': case 'Vote': return { ...base, type, lastIndex: 1, lastTerm: 1 };
    case 'PreVoteResp': case 'VoteResp': return { ...base, type, reject: false };
    case 'Append': return { ...base, type, prevIndex: 1, prevTerm: 1, entries: [], commit: 1 };
    case 'AppendResp': return { ...base, type, index: 1, reject: false, hintIndex: 0, hintTerm: 0 };
    case 'Heartbeat': return { ...base, type, commit: 0, ctx: 0 };
    case 'HeartbeatResp': return { ...base, type, ctx: 0 };
    case 'Snapshot': return { ...base, type, snapshot: { index: 1, term: 1, conf: { voters: ['a', 'b', 'c'], learners: [] }, data: null } };
    case 'TimeoutNow': return { ...base, type };
    case 'ReadIndex': return { ...base, type, context: 'r' };
    case 'ReadIndexResp': return { ...base, type, index: 1, context: 'r' };
  }
}

const vote = (from: NodeId, to: NodeId, term: number, lastIndex = 1, lastTerm = 1, transfer?: boolean): Message =>
  ({ type: 'Vote', from, to, term, lastIndex, lastTerm, ...(transfer ? { transfer } : {}) });
const preVote = (from: NodeId, to: NodeId, term: number, lastIndex = 1, lastTerm = 1): Message =>
  ({ type: 'PreVote', from, to, term, lastIndex, lastTerm });
const heartbeat = (from: NodeId, to: NodeId, term: number, commit = 0, ctx = 0): Message =>
  ({ type: 'Heartbeat', from, to, term, commit, ctx });
const heartbeatResp = (from: NodeId, to: NodeId, term: number, ctx = 0): Message =>
  ({ type: 'HeartbeatResp', from, to, term, ctx });

/** Messages summarised as `Type→to`, sorted, for comparing traffic without caring about order. */
const summary = (ms: readonly Message[]): string[] => ms.map((m) => `${m.type}→${m.to}`).sort();

const byTo = (ms: readonly Message[]): Message[] => [...ms].sort((x, y) => x.to.localeCompare(y.to));


/**
 * Ticks leader `a` for an election timeout, answering every heartbeat to `from` as a follower that holds
 * nothing new would, and returns every Append the leader sends `from` meanwhile.
 */
function appendsAfterHeartbeats(a: RaftCore, from: NodeId): Message[] {
  const out: Message[] = [];
  for (let i = 0; i < ELECTION; i++) {
    a.tick();
    for (const m of sent(a)) {
      if (m.to !== from) continue;
      if (m.type === 'Heartbeat') a.step(heartbeatResp(from, 'a', m.term, m.ctx));
      if (m.type === 'Append') out.push(m);
    }
    if (a.hasReady()) out.push(...sent(a).filter((m) => m.to === from && m.type === 'Append'));
  }
  return out;
}

/** Leader `a` of a, b, c in term 2 whose empty entry (index 2) both followers have acknowledged. */
function replicating(): RaftCore {
  const a = node('a');
  elect(a);
  a.step(ack('b', 'a', 2, 2));
  a.step(ack('c', 'a', 2, 2));
  take(a);
  assert.equal(a.status().commit, 2);
  return a;
}

/** The only voter of a one-node cluster, leading term 2 with its empty entry committed. */
function soloLeader(): RaftCore {
  const a = node('a', { voters: ['a'] });
  elect(a);
  assert.equal(a.status().commit, 2);
  return a;
}

describe('§5.1 Raft basics', () => {
  it('a new node starts as a follower and persists the bootstrap entry of its cluster', () => {
    const core = new RaftCore({ id: 'a', voters: ['a', 'b', 'c'] });
    const rd = core.ready();
    const bootstrap: Entry = { index: 1, term: 1, type: 'conf', data: { op: 'bootstrap', voters: ['a', 'b', 'c'] } };
    assert.equal(rd.role, 'follower');
    assert.equal(rd.leader, null);
    assert.deepEqual(rd.hardState, { term: 1, vote: null, commit: 1 });
    assert.deepEqual(rd.entries, [bootstrap]);
    assert.deepEqual(rd.committed, [bootstrap]);
    assert.deepEqual(rd.messages, []);
  });

  const roles: { role: string; make: () => RaftCore }[] = [
    { role: 'follower', make: () => node('a', { term: 2 }) },
    { role: 'pre-candidate', make: () => { const a = node('a', { term: 2 }); tickN(a, ELECTION); take(a); return a; } },
    { role: 'candidate', make: () => { const a = node('a', { term: 2 }, { preVote: false }); tickN(a, ELECTION); take(a); return a; } },
    { role: 'leader', make: () => { const a = node('a', { term: 2 }); elect(a); return a; } },
  ];
  for (const { role, make } of roles) {
    it(`a ${role} that sees a higher term adopts it and becomes a follower`, () => {
      const a = make();
      assert.equal(a.status().role, role);
      a.step(heartbeat('b', 'a', 7));
      const rd = take(a);
      assert.equal(rd.role, 'follower');
      assert.equal(rd.leader, 'b');
      assert.deepEqual(rd.hardState, { term: 7, vote: null, commit: a.status().commit });
      assert.deepEqual(rd.messages.map((m) => [m.type, m.term]), [['HeartbeatResp', 7]]);
    });
  }

  const stale: { type: Message['type']; answer: Message['type'] | null }[] = [
    { type: 'Append', answer: 'AppendResp' },
    { type: 'Heartbeat', answer: 'AppendResp' },
    { type: 'PreVote', answer: 'PreVoteResp' },
    ...MESSAGE_TYPES.filter((t) => !['Append', 'Heartbeat', 'PreVote'].includes(t)).map((type) => ({ type, answer: null })),
  ];
  for (const { type, answer } of stale) {
    it(`a ${type} from an older term ${answer ? `is answered with a rejecting ${answer} in the newer term` : 'is dropped as stale'}`, () => {
      const a = node('a', { term: 3 });
      a.step(sample(type, 2));
      const rd = take(a);
      assert.equal(rd.hardState, null);
      assert.deepEqual(rd.entries, []);
      if (answer === null) {
        assert.deepEqual(rd.messages, []);
        assert.equal(a.status().dropped.stale, 1);
      } else {
        assert.equal(rd.messages.length, 1);
        const m = rd.messages[0];
        assert.equal(m.type, answer);
        assert.equal(m.term, 3);
        assert.equal((m as { reject: boolean }).reject, true);
      }
    });
  }

  it('the leader sends a heartbeat to every follower once per heartbeat interval', () => {
    const a = node('a', {}, { heartbeatTicks: 2 });
    elect(a);
    a.tick();
    assert.equal(a.hasReady(), false);
    a.tick();
    const hb = sent(a);
    assert.deepEqual(summary(hb), ['Heartbeat→b', 'Heartbeat→c']);
    // A heartbeat carries no more commit than the follower is known to hold, since its log may differ beyond.
    for (const m of ofType(hb, 'Heartbeat')) assert.deepEqual([m.term, m.commit, m.ctx], [2, 0, 0]);
  });
});

describe('§5.2 Leader election', () => {
  it('a follower that hears nothing for an election timeout becomes a candidate and asks every voter', () => {
    const a = node('a', {}, { preVote: false });
    tickN(a, ELECTION - 1);
    assert.equal(a.hasReady(), false);
    a.tick();
    const rd = take(a);
    assert.equal(rd.role, 'candidate');
    assert.deepEqual(rd.hardState, { term: 2, vote: 'a', commit: 1 });
    assert.deepEqual(byTo(rd.messages), [vote('a', 'b', 2), vote('a', 'c', 2)]);
  });

  it('a candidate that neither wins nor loses within an election timeout starts a new election in the next term', () => {
    const a = node('a', {}, { preVote: false });
    tickN(a, ELECTION);
    take(a);
    a.step({ type: 'VoteResp', from: 'b', to: 'a', term: 2, reject: true });
    tickN(a, ELECTION);
    const rd = take(a);
    assert.equal(rd.role, 'candidate');
    assert.deepEqual(rd.hardState, { term: 3, vote: 'a', commit: 1 });
    assert.deepEqual(byTo(rd.messages), [vote('a', 'b', 3), vote('a', 'c', 3)]);
  });

  const rounds: { voters: number; votes: Record<NodeId, boolean>; want: string }[] = [
    { voters: 1, votes: {}, want: 'leader' },
    { voters: 3, votes: { b: true, c: true }, want: 'leader' },
    { voters: 3, votes: { b: true }, want: 'leader' },
    { voters: 5, votes: { b: true, c: true, d: true, e: true }, want: 'leader' },
    { voters: 5, votes: { b: true, c: true }, want: 'leader' },
    { voters: 3, votes: {}, want: 'candidate' },
    { voters: 3, votes: { b: false }, want: 'candidate' },
    { voters: 5, votes: { b: true }, want: 'candidate' },
    { voters: 5, votes: { b: false, c: false }, want: 'candidate' },
    { voters: 5, votes: { b: true, c: false, d: false }, want: 'candidate' },
    { voters: 3, votes: { b: false, c: false }, want: 'follower' },
    { voters: 5, votes: { b: false, c: false, d: false }, want: 'follower' },
  ];
  for (const { voters, votes, want } of rounds) {
    it(`a candidate among ${voters} voters with votes ${JSON.stringify(votes)} ends the round as ${want}`, () => {
      const a = node('a', { voters: ['a', 'b', 'c', 'd', 'e'].slice(0, voters) }, { preVote: false });
      tickN(a, ELECTION);
      take(a);
      for (const [from, granted] of Object.entries(votes)) a.step({ type: 'VoteResp', from, to: 'a', term: 2, reject: !granted });
      take(a);
      assert.equal(a.status().role, want);
      assert.equal(a.status().term, 2);
    });
  }

  const ballots: { voted: NodeId | null; from: NodeId; granted: boolean }[] = [
    { voted: null, from: 'b', granted: true },
    { voted: null, from: 'c', granted: true },
    { voted: 'b', from: 'b', granted: true },
    { voted: 'c', from: 'c', granted: true },
    { voted: 'b', from: 'c', granted: false },
    { voted: 'c', from: 'b', granted: false },
  ];
  for (const { voted, from, granted } of ballots) {
    it(`a follower that voted for ${voted ?? 'nobody'} in this term ${granted ? 'grants' : 'refuses'} ${from}'s request`, () => {
      const a = node('a', { term: 2, vote: voted });
      a.step(vote(from, 'a', 2));
      const rd = take(a);
      assert.deepEqual(rd.messages, [{ type: 'VoteResp', from: 'a', to: from, term: 2, reject: !granted }]);
      assert.equal(a.status().vote, granted ? from : voted);
      // The vote must be durable before the answer leaves: it comes in the same Ready.
      if (granted && voted === null) assert.deepEqual(rd.hardState, { term: 2, vote: from, commit: 1 });
      else assert.equal(rd.hardState, null);
    });
  }

  for (const term of [2, 3]) {
    it(`a candidate that receives an append from a leader of ${term === 2 ? 'its own' : 'a newer'} term steps down and follows it`, () => {
      const a = node('a', {}, { preVote: false });
      tickN(a, ELECTION);
      take(a);
      a.step(append('b', 'a', term, 1, 1, [], 1));
      const rd = take(a);
      assert.equal(rd.role, 'follower');
      assert.equal(rd.leader, 'b');
      assert.equal(a.status().term, term);
      assert.deepEqual(rd.messages.map((m) => [m.type, (m as { reject?: boolean }).reject]), [['AppendResp', false]]);
    });
  }

  it('a pre-candidate that hears from a leader of its term gives up the campaign', () => {
    const a = node('a');
    tickN(a, ELECTION);
    assert.equal(take(a).role, 'pre-candidate');
    a.step(heartbeat('b', 'a', 1));
    assert.equal(take(a).role, 'follower');
    assert.equal(a.status().leader, 'b');
  });

  for (const r of [0, 0.3, 0.999]) {
    const want = ELECTION + Math.floor(r * ELECTION);
    it(`the election timeout is drawn from [T, 2T): random() = ${r} gives ${want} ticks`, () => {
      const a = node('a', {}, { preVote: false, random: () => r });
      let ticks = 0;
      while (!a.hasReady() && ticks < 3 * ELECTION) { a.tick(); ticks++; }
      assert.equal(ticks, want);
      assert.equal(a.status().role, 'candidate');
    });
  }

  it('a follower that grants a vote waits a full election timeout before campaigning itself', () => {
    const a = node('a', { term: 2 }, { preVote: false });
    tickN(a, ELECTION - 1);
    a.step(vote('b', 'a', 2));
    take(a);
    tickN(a, ELECTION - 1);
    assert.equal(a.hasReady(), false);
    a.tick();
    assert.equal(take(a).role, 'candidate');
  });

  it('a new leader appends an empty entry of its term and sends it to every follower', () => {
    const a = node('a');
    const out = elect(a);
    const empty: Entry = { index: 2, term: 2, type: 'normal', data: null };
    assert.deepEqual(storage(a).entries.at(-1), empty);
    assert.deepEqual(byTo(out), ['b', 'c'].map((to) => ({ type: 'Append', from: 'a', to, term: 2, prevIndex: 1, prevTerm: 1, entries: [empty], commit: 1 })));
  });

  it('a single voter elects itself at its first timeout', () => {
    const a = node('a', { voters: ['a'] });
    tickN(a, ELECTION);
    const rd = take(a);
    assert.equal(rd.role, 'leader');
    assert.deepEqual(rd.messages, []);
    assert.deepEqual(rd.committed.map((e) => e.index), [2]);
  });

  it('three nodes elect exactly one leader, which every node recognises', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    for (const id of ['a', 'b', 'c']) {
      assert.equal(net.get(id).status().leader, 'a');
      assert.equal(net.get(id).status().term, 2);
      assert.equal(net.get(id).status().commit, 2);
    }
  });
});

describe('§5.3 Log replication', () => {
  it('the leader appends a proposal to its log and sends it to every follower', () => {
    const a = replicating();
    assert.deepEqual(a.propose('x'), { index: 3, term: 2 });
    const rd = take(a);
    const x: Entry = { index: 3, term: 2, type: 'normal', data: 'x' };
    assert.deepEqual(rd.entries, [x]);
    assert.deepEqual(rd.committed, []);
    assert.deepEqual(byTo(rd.messages), ['b', 'c'].map((to) => ({ type: 'Append', from: 'a', to, term: 2, prevIndex: 2, prevTerm: 2, entries: [x], commit: 2 })));
  });

  it('the leader commits an entry once a majority stores it, applies it and tells the followers', () => {
    const a = replicating();
    a.propose('x');
    take(a);
    a.step(ack('b', 'a', 2, 3));
    const rd = take(a);
    assert.deepEqual(rd.committed.map((e) => e.data), ['x']);
    assert.equal(rd.hardState?.commit, 3);
    assert.deepEqual(summary(rd.messages), ['Append→b', 'Append→c']);
    for (const m of ofType(rd.messages, 'Append')) assert.equal(m.commit, 3);
  });

  const acks: { voters: number; acks: NodeId[]; commits: boolean }[] = [
    { voters: 1, acks: [], commits: true },
    { voters: 3, acks: [], commits: false },
    { voters: 3, acks: ['b'], commits: true },
    { voters: 3, acks: ['b', 'c'], commits: true },
    { voters: 5, acks: [], commits: false },
    { voters: 5, acks: ['b'], commits: false },
    { voters: 5, acks: ['b', 'c'], commits: true },
    { voters: 5, acks: ['b', 'c', 'd'], commits: true },
  ];
  for (const { voters, acks: from, commits } of acks) {
    it(`an entry acknowledged by [${from}] of ${voters} voters (and the leader) ${commits ? 'commits' : 'does not commit'}`, () => {
      const a = node('a', { voters: ['a', 'b', 'c', 'd', 'e'].slice(0, voters) });
      elect(a);
      for (const id of from) a.step(ack(id, 'a', 2, 2));
      take(a);
      assert.equal(a.status().commit, commits ? 2 : 1);
    });
  }

  it('committing an entry commits every entry before it, including those of earlier terms', () => {
    const a = node('a', { terms: [2, 3], term: 3 });
    elect(a);
    a.step(ack('b', 'a', 4, 4));
    const rd = take(a);
    assert.deepEqual(rd.committed.map((e) => [e.index, e.term]), [[2, 2], [3, 3], [4, 4]]);
  });

  const follow: { terms: number[]; commit: number; want: number[] }[] = [
    { terms: [2], commit: 2, want: [2] },
    { terms: [2, 2], commit: 3, want: [2, 3] },
    { terms: [2, 2], commit: 2, want: [2] },
    { terms: [2], commit: 9, want: [2] },
    { terms: [], commit: 9, want: [] },
  ];
  for (const { terms, commit, want } of follow) {
    it(`a follower appending ${terms.length} entries with leader commit ${commit} applies [${want}]`, () => {
      const b = node('b', { term: 2 });
      b.step(append('a', 'b', 2, 1, 1, terms, commit));
      const rd = take(b);
      assert.deepEqual(rd.committed.map((e) => e.index), want);
      assert.equal(b.status().commit, want.at(-1) ?? 1);
    });
  }

  it('a follower learns the commit index from a heartbeat, up to the end of its log', () => {
    const b = node('b', { terms: [2, 2], term: 2 });
    b.step(heartbeat('a', 'b', 2, 9));
    assert.deepEqual(take(b).committed.map((e) => e.index), [2, 3]);
  });

  // The follower's log: entry 1 (term 1), entry 2 (term 1), entry 3 (term 2); commit 1.
  const consistency: { prevIndex: number; prevTerm: number; want: { index: number; reject: boolean; hintIndex: number; hintTerm: number } }[] = [
    { prevIndex: 0, prevTerm: 0, want: { index: 1, reject: false, hintIndex: 0, hintTerm: 0 } },
    { prevIndex: 1, prevTerm: 1, want: { index: 1, reject: false, hintIndex: 0, hintTerm: 0 } },
    { prevIndex: 2, prevTerm: 1, want: { index: 2, reject: false, hintIndex: 0, hintTerm: 0 } },
    { prevIndex: 3, prevTerm: 2, want: { index: 3, reject: false, hintIndex: 0, hintTerm: 0 } },
    { prevIndex: 2, prevTerm: 2, want: { index: 2, reject: true, hintIndex: 2, hintTerm: 1 } },
    { prevIndex: 3, prevTerm: 1, want: { index: 3, reject: true, hintIndex: 2, hintTerm: 1 } },
    { prevIndex: 4, prevTerm: 2, want: { index: 4, reject: true, hintIndex: 3, hintTerm: 2 } },
  ];
  for (const { prevIndex, prevTerm, want } of consistency) {
    it(`a follower ${want.reject ? 'rejects' : 'accepts'} an append after (index ${prevIndex}, term ${prevTerm})`, () => {
      const b = node('b', { terms: [1, 2], term: 2 });
      b.step(append('a', 'b', 2, prevIndex, prevTerm, []));
      assert.deepEqual(sent(b), [{ type: 'AppendResp', from: 'b', to: 'a', term: 2, ...want }]);
    });
  }

  // The follower's log: entry 1 (term 1), entry 2 (term 2), entry 3 (term 3).
  const conflicts: { prevIndex: number; prevTerm: number; terms: number[]; want: number[]; index: number }[] = [
    { prevIndex: 3, prevTerm: 3, terms: [4], want: [1, 2, 3, 4], index: 4 },
    { prevIndex: 2, prevTerm: 2, terms: [4], want: [1, 2, 4], index: 3 },
    { prevIndex: 1, prevTerm: 1, terms: [3, 4], want: [1, 3, 4], index: 3 },
    { prevIndex: 1, prevTerm: 1, terms: [2, 3], want: [1, 2, 3], index: 3 },
    { prevIndex: 1, prevTerm: 1, terms: [2], want: [1, 2, 3], index: 2 },
    { prevIndex: 1, prevTerm: 1, terms: [], want: [1, 2, 3], index: 1 },
  ];
  for (const { prevIndex, prevTerm, terms, want, index } of conflicts) {
    it(`a follower given terms [${terms}] after index ${prevIndex} keeps the log [${want}]`, () => {
      const b = node('b', { terms: [2, 3], term: 3 });
      b.step(append('a', 'b', 4, prevIndex, prevTerm, terms));
      const rd = take(b);
      assert.deepEqual(storage(b).terms(), want);
      assert.deepEqual(rd.messages.map((m) => (m as { index: number }).index), [index]);
      // Only what changed goes to storage again.
      const changed = want.findIndex((t, i) => t !== [1, 2, 3][i]);
      assert.deepEqual(rd.entries.map((e) => e.index), changed === -1 ? [] : want.slice(changed).map((_, k) => changed + 1 + k));
    });
  }

  it('a burst of proposals goes to each replicating follower as one append', () => {
    const a = replicating();
    for (const x of ['x', 'y', 'z']) a.propose(x);
    const appends = ofType(sent(a), 'Append');
    assert.deepEqual(appends.map((m) => [m.to, m.entries.map((e) => e.index)]).sort(), [['b', [3, 4, 5]], ['c', [3, 4, 5]]]);
  });

  it('the leader splits appends larger than maxMsgBytes, yet always sends at least one entry', () => {
    const a = node('a', {}, { maxMsgBytes: 100 });
    elect(a);
    a.step(ack('b', 'a', 2, 2));
    take(a);
    for (const x of ['x', 'y', 'z']) a.propose(x.repeat(200));
    const toB = ofType(sent(a), 'Append').filter((m) => m.to === 'b');
    assert.deepEqual(toB.map((m) => m.entries.map((e) => e.index)), [[3], [4], [5]]);
  });

  it('the leader sends a probing follower one append at a time', () => {
    const a = node('a');
    elect(a);
    a.propose('x');
    a.propose('y');
    assert.deepEqual(ofType(sent(a), 'Append'), []);
  });

  it('the leader pipelines appends to a replicating follower up to its in-flight limit', () => {
    const a = node('a', {}, { maxInflightMsgs: 2 });
    elect(a);
    a.step(ack('b', 'a', 2, 2));
    take(a);
    const toB = (): number[][] => ofType(sent(a), 'Append').filter((m) => m.to === 'b').map((m) => m.entries.map((e) => e.index));
    a.propose('x');
    assert.deepEqual(toB(), [[3]]);
    a.propose('y');
    assert.deepEqual(toB(), [[4]]);
    a.propose('z');
    assert.deepEqual(toB(), []);
    a.step(ack('b', 'a', 2, 3));
    assert.deepEqual(toB(), [[5]]);
  });

  // Figure 7: the leader's log (entries 2..10; entry 1 is the bootstrap) and six possible follower logs.
  const leaderTerms = [1, 1, 4, 4, 5, 5, 6, 6, 6];
  const figure7: Record<string, number[]> = {
    '(a) missing one entry': [1, 1, 4, 4, 5, 5, 6, 6],
    '(b) missing many entries': [1, 1, 4],
    '(c) one extra entry of the current term': [1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    '(d) extra entries of a later term': [1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    '(e) missing entries and extra ones of an old term': [1, 1, 4, 4, 4, 4],
    '(f) a long run of terms the leader never saw': [1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, terms] of Object.entries(figure7)) {
    it(`the leader brings a follower's log in line with its own — Figure 7 ${name}`, () => {
      const voters = ['l', 'f', 'x'];
      const net = new Network();
      net.add('l', { restore: restoreOf({ voters, terms: leaderTerms, term: 8, commit: 10 }) });
      net.add('f', { restore: restoreOf({ voters, terms, term: 7 }) });
      net.add('x', { restore: restoreOf({ voters, term: 7 }) });
      net.campaign('l');
      assert.equal(net.get('l').status().role, 'leader');
      assert.deepEqual(storage(net.get('f')).entries, storage(net.get('l')).entries);
      assert.equal(net.get('f').status().commit, 11);
    });
  }

  // The leader's log: entry 1 (term 1), entries 2-4 (term 3), entries 5-9 (term 5); it leads term 6.
  const backtracking: { name: string; follower: number[]; probe: number }[] = [
    { name: 'extra entries of a term the leader lacks', follower: [3, 3, 3, 4, 4, 4, 4, 4, 4, 4], probe: 4 },
    { name: 'a shorter log of older terms only', follower: [1, 1, 1, 2, 2], probe: 1 },
    { name: 'a prefix of the leader\'s log', follower: [3, 3], probe: 3 },
  ];
  for (const { name, follower, probe } of backtracking) {
    it(`one rejection takes the leader past every conflicting entry of a term (follower with ${name})`, () => {
      const a = node('a', { terms: [3, 3, 3, 5, 5, 5, 5, 5], term: 5 });
      const b = node('b', { terms: follower, term: 5 });
      const first = ofType(elect(a), 'Append').find((m) => m.to === 'b');
      assert.ok(first);
      assert.equal(first.prevIndex, 9);
      b.step(first);
      const [reject] = sent(b);
      assert.equal((reject as { reject: boolean }).reject, true);
      a.step(reject);
      const [second] = ofType(sent(a), 'Append');
      assert.equal(second.prevIndex, probe);
      b.step(second);
      assert.deepEqual(sent(b).map((m) => [m.type, (m as { reject: boolean }).reject, (m as { index: number }).index]), [['AppendResp', false, 10]]);
      assert.deepEqual(storage(b).terms(), storage(a).terms());
    });
  }

  it('replicated entries are applied in the same order on every node', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    for (const x of ['x', 'y', 'z']) net.get('a').propose(x);
    net.stabilize();
    net.get('a').propose('w');
    net.stabilize();
    for (const id of ['a', 'b', 'c']) assert.deepEqual(net.appliedData(id), ['x', 'y', 'z', 'w']);
  });
});

describe('§5.4.1 Election restriction', () => {
  it('a candidate\'s vote request carries the index and term of its last entry', () => {
    const a = node('a', { terms: [2, 3], term: 3 }, { preVote: false });
    tickN(a, ELECTION);
    assert.deepEqual(byTo(sent(a)), [vote('a', 'b', 4, 3, 3), vote('a', 'c', 4, 3, 3)]);
  });

  // The voter's last entry is (index 3, term 2).
  const restriction: { lastIndex: number; lastTerm: number; granted: boolean }[] = [
    { lastIndex: 3, lastTerm: 2, granted: true },
    { lastIndex: 4, lastTerm: 2, granted: true },
    { lastIndex: 1, lastTerm: 3, granted: true },
    { lastIndex: 2, lastTerm: 3, granted: true },
    { lastIndex: 2, lastTerm: 2, granted: false },
    { lastIndex: 3, lastTerm: 1, granted: false },
    { lastIndex: 9, lastTerm: 1, granted: false },
  ];
  for (const type of ['Vote', 'PreVote'] as const) {
    for (const { lastIndex, lastTerm, granted } of restriction) {
      it(`a ${type} for a log ending at (index ${lastIndex}, term ${lastTerm}) is ${granted ? 'granted' : 'refused'} by a voter ending at (3, 2)`, () => {
        const b = node('b', { terms: [1, 2], term: 2 });
        b.step({ type, from: 'c', to: 'b', term: 3, lastIndex, lastTerm });
        const [resp] = sent(b);
        assert.equal(resp.type, `${type}Resp`);
        assert.equal((resp as { reject: boolean }).reject, !granted);
        assert.equal(b.status().term, type === 'Vote' ? 3 : 2);
      });
    }
  }
});

describe('§5.4.2 Committing entries from previous terms', () => {
  // The leader holds entries 2 and 3 of term 2 and leads term 3 with its empty entry at 4.
  for (const [acked, commit] of [[2, 1], [3, 1], [4, 4]]) {
    it(`a leader of term 3 whose entry ${acked} is on a majority commits up to ${commit} (Figure 8)`, () => {
      const a = node('a', { terms: [2, 2], term: 2 });
      elect(a);
      a.step(ack('b', 'a', 3, acked));
      take(a);
      assert.equal(a.status().commit, commit);
    });
  }

  // Figure 8 (c): a led term 2 and placed X (index 3, term 2) on a, b, c, then led term 4 and appended
  // E (index 4, term 4) locally; e led term 3 alone and holds entries 3 and 4 of term 3. Now a is down.
  const five = ['a', 'b', 'c', 'd', 'e'];
  it('an entry of an older term on a majority is not safe: Figure 8 (d), the next leader overwrites it', () => {
    const net = new Network();
    for (const id of ['b', 'c']) net.add(id, { restore: restoreOf({ voters: five, terms: [2, 2], term: 4, vote: 'a', commit: 2 }) });
    net.add('d', { restore: restoreOf({ voters: five, terms: [2], term: 4, vote: 'a', commit: 2 }) });
    net.add('e', { restore: restoreOf({ voters: five, terms: [2, 3, 3], term: 3, commit: 2 }) });
    // e's first pre-vote only teaches it term 4: every voter there already voted for a.
    net.campaign('e');
    net.campaign('e');
    assert.equal(net.get('e').status().role, 'leader');
    for (const id of ['b', 'c', 'd', 'e']) assert.deepEqual(storage(net.get(id)).terms(), [1, 2, 3, 3, 5]);
  });

  it('once the leader\'s own-term entry is on a majority the older one is safe: Figure 8 (e)', () => {
    const net = new Network();
    for (const id of ['b', 'c']) net.add(id, { restore: restoreOf({ voters: five, terms: [2, 2, 4], term: 4, vote: 'a', commit: 2 }) });
    net.add('d', { restore: restoreOf({ voters: five, terms: [2], term: 4, vote: 'a', commit: 2 }) });
    net.add('e', { restore: restoreOf({ voters: five, terms: [2, 3, 3], term: 3, commit: 2 }) });
    net.campaign('e');
    net.campaign('e');
    assert.notEqual(net.get('e').status().role, 'leader');
    net.campaign('b');
    assert.equal(net.get('b').status().role, 'leader');
    for (const id of ['b', 'c', 'd', 'e']) {
      assert.deepEqual(storage(net.get(id)).terms(), [1, 2, 2, 4, 5]);
      assert.equal(net.get(id).status().commit, 5);
    }
  });
});

describe('§5.5 Follower and candidate crashes', () => {
  it('a restarted node resumes with its durable term, vote and log, and re-applies what it had not applied', () => {
    const restore = { hardState: { term: 3, vote: 'b', commit: 3 }, entries: logWith(['a', 'b', 'c'], [2, 3, 3]), applied: 2 };
    const a = new RaftCore({ id: 'a', restore });
    const st = a.status();
    assert.deepEqual([st.role, st.term, st.vote, st.commit, st.applied, st.lastIndex], ['follower', 3, 'b', 3, 2, 4]);
    const rd = a.ready();
    assert.equal(rd.hardState, null);
    assert.deepEqual(rd.entries, []);
    assert.deepEqual(rd.committed.map((e) => e.index), [3]);
    const again = new RaftCore({ id: 'a', restore: { ...restore, applied: undefined } });
    assert.deepEqual(again.ready().committed.map((e) => e.index), [1, 2, 3]);
  });

  it('a voter that restarts after voting does not vote for another candidate in that term', () => {
    const b = node('b');
    b.step(vote('a', 'b', 2));
    assert.equal((sent(b)[0] as { reject: boolean }).reject, false);
    const restarted = new RaftCore({ id: 'b', electionTicks: ELECTION, restore: storage(b).restore() });
    restarted.step(vote('c', 'b', 2));
    assert.deepEqual(restarted.ready().messages, [{ type: 'VoteResp', from: 'b', to: 'c', term: 2, reject: true }]);
  });

  it('a candidate that restarts keeps its term and its vote for itself', () => {
    const a = node('a', {}, { preVote: false });
    tickN(a, ELECTION);
    take(a);
    const restarted = new RaftCore({ id: 'a', electionTicks: ELECTION, restore: storage(a).restore() });
    assert.deepEqual([restarted.status().term, restarted.status().vote, restarted.status().role], [2, 'a', 'follower']);
    restarted.step(vote('b', 'a', 2));
    assert.equal((restarted.ready().messages[0] as { reject: boolean }).reject, true);
  });

  it('a follower answers a repeated append the same way and stores and applies its entries once', () => {
    const b = node('b', { term: 2 });
    const m = append('a', 'b', 2, 1, 1, [2, 2], 3);
    b.step(m);
    const first = take(b);
    b.step(m);
    const second = take(b);
    assert.deepEqual(first.committed.map((e) => e.index), [2, 3]);
    assert.deepEqual([second.entries, second.committed], [[], []]);
    assert.deepEqual(second.messages, first.messages);
  });

  it('the leader retries a lost append to a probing follower once it answers a heartbeat', () => {
    const a = node('a');
    const lost = ofType(elect(a), 'Append').find((m) => m.to === 'b');
    a.tick();
    assert.deepEqual(summary(sent(a)), ['Heartbeat→b', 'Heartbeat→c']);
    a.step(heartbeatResp('b', 'a', 2));
    assert.deepEqual(ofType(sent(a), 'Append'), [lost]);
  });

  it('the leader sends a replicating follower that lost its last append something that lets it recover', () => {
    const a = replicating();
    a.propose('x');
    take(a);
    assert.notDeepEqual(appendsAfterHeartbeats(a, 'b'), []);
  });

  it('the leader retries entries lost on their way to replicating followers', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.filter = (m) => !(m.type === 'Append' && m.entries.length > 0);
    net.get('a').propose('x');
    net.stabilize();
    net.filter = () => true;
    net.tickAll(ELECTION);
    for (const id of ['a', 'b', 'c']) assert.deepEqual(net.appliedData(id), ['x'], `${id} never applied x`);
  });

  it('a follower that crashes and restarts catches up with what it missed', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.get('a').propose('x');
    net.stabilize();
    net.crash('c');
    net.get('a').propose('y');
    net.stabilize();
    net.restart('c');
    net.tickAll(2);
    assert.deepEqual(net.appliedData('c'), ['x', 'y']);
    assert.equal(net.get('c').status().leader, 'a');
  });
});

describe('§7 Log compaction', () => {
  it('compact() snapshots an applied prefix with the configuration in force there and drops it from the log', () => {
    const a = soloLeader();
    a.propose('x');
    a.propose('y');
    take(a);
    const snap = a.compact(3, { kv: 'x' });
    assert.deepEqual(snap, { index: 3, term: 2, conf: { voters: ['a'], learners: [] }, data: { kv: 'x' } });
    assert.deepEqual([a.status().firstIndex, a.status().lastIndex], [4, 4]);
  });

  const misuse: { name: string; act: (a: RaftCore) => unknown; error: new (...args: never[]) => Error }[] = [
    { name: 'an index already compacted', act: (a) => a.compact(2, 's'), error: CompactionError },
    { name: 'an index before the snapshot', act: (a) => a.compact(1, 's'), error: CompactionError },
    { name: 'index 0', act: (a) => a.compact(0, 's'), error: CompactionError },
    { name: 'an index not yet applied', act: (a) => { a.propose('z'); return a.compact(5, 's'); }, error: CompactionError },
    { name: 'an index beyond the log', act: (a) => a.compact(99, 's'), error: CompactionError },
    { name: 'a fractional index', act: (a) => a.compact(3.5, 's'), error: CompactionError },
    { name: 'NaN', act: (a) => a.compact(Number.NaN, 's'), error: CompactionError },
    { name: 'undefined data', act: (a) => a.compact(4, undefined), error: TypeError },
  ];
  for (const { name, act, error } of misuse) {
    it(`compact() refuses ${name} with ${error.name} and leaves the log as it was`, () => {
      const a = soloLeader();
      a.propose('x');
      a.propose('y');
      take(a);
      a.compact(2, 's');
      const before = a.status();
      assert.throws(() => act(a), error);
      assert.equal(a.status().firstIndex, before.firstIndex);
    });
  }

  it('compact() records the configuration as of its index, not the newest one', () => {
    const a = soloLeader();
    a.propose('x');
    take(a);
    a.proposeConfChange([{ type: 'addLearner', node: 'z' }]);
    take(a);
    assert.deepEqual(a.status().conf, { voters: ['a'], learners: ['z'] });
    assert.deepEqual(a.compact(3, 's').conf, { voters: ['a'], learners: [] });
    assert.deepEqual(a.compact(4, 's').conf, { voters: ['a'], learners: ['z'] });
  });

  it('the leader sends its snapshot to a follower that needs compacted entries, then streams the rest', () => {
    const net = new Network(['a', 'b', 'c']);
    net.isolate('c');
    net.campaign('a');
    const a = net.get('a');
    a.propose('x');
    a.propose('y');
    net.stabilize();
    const snap = a.compact(a.status().applied, net.appliedData('a'));
    storage(a).compacted(snap);
    net.heal();
    net.tickAll(1);
    const c = net.get('c');
    assert.ok(net.delivered.some((m) => m.type === 'Snapshot' && m.to === 'c'));
    assert.deepEqual(storage(c).snapshot, snap);
    assert.equal(c.status().firstIndex, snap.index + 1);
    a.propose('z');
    net.stabilize();
    assert.deepEqual(net.appliedData('c'), ['z']);
    assert.equal(c.status().commit, a.status().commit);
  });

  it('a leader whose snapshot goes unanswered sends it again', () => {
    const a = node('a');
    elect(a);
    a.step(ack('b', 'a', 2, 2));
    a.propose('x');
    take(a);
    a.step(ack('b', 'a', 2, 3));
    take(a);
    const snapshot = a.compact(3, 's');
    a.step(heartbeatResp('c', 'a', 2));
    assert.deepEqual(ofType(sent(a), 'Snapshot').map((m) => [m.to, m.snapshot]), [['c', snapshot]]);
    assert.equal(a.status().progress?.c.state, 'snapshot');
    let resent = 0;
    for (let i = 0; i < 3 * ELECTION && resent === 0; i++) {
      a.tick();
      const out = sent(a);
      // b keeps answering, so check-quorum keeps a in office while c stays silent.
      for (const m of ofType(out, 'Heartbeat')) if (m.to === 'b') a.step(heartbeatResp('b', 'a', 2, m.ctx));
      resent = ofType(out, 'Snapshot').length + (a.hasReady() ? ofType(sent(a), 'Snapshot').length : 0);
    }
    assert.equal(a.status().role, 'leader');
    assert.equal(resent, 1);
    a.step(ack('c', 'a', 2, 3));
    take(a);
    assert.deepEqual(a.status().progress?.c, { match: 3, next: 4, state: 'replicate' });
  });

  const snap: Snapshot = { index: 5, term: 3, conf: { voters: ['a', 'b', 'c'], learners: ['d'] }, data: 'S' };
  it('a follower lacking the snapshot\'s last entry replaces its log with the snapshot', () => {
    const b = node('b', { terms: [1] });
    b.step({ type: 'Snapshot', from: 'a', to: 'b', term: 3, snapshot: snap });
    const rd = take(b);
    assert.deepEqual(rd.snapshot, snap);
    assert.deepEqual([rd.entries, rd.committed], [[], []]);
    assert.deepEqual(rd.hardState, { term: 3, vote: null, commit: 5 });
    assert.deepEqual(rd.messages, [{ type: 'AppendResp', from: 'b', to: 'a', term: 3, index: 5, reject: false, hintIndex: 0, hintTerm: 0 }]);
    const st = b.status();
    assert.deepEqual([st.firstIndex, st.lastIndex, st.applied], [6, 5, 5]);
    assert.deepEqual(st.conf, snap.conf);
    b.step(append('a', 'b', 3, 5, 3, [3], 6));
    const next = take(b);
    assert.deepEqual(next.committed.map((e) => e.index), [6]);
  });

  it('a follower holding the snapshot\'s last entry keeps its log and only learns the commit index', () => {
    const b = node('b', { terms: [2, 2, 2], term: 2 });
    b.step({ type: 'Snapshot', from: 'a', to: 'b', term: 2, snapshot: { ...snap, index: 3, term: 2 } });
    const rd = take(b);
    assert.equal(rd.snapshot, null);
    assert.deepEqual(rd.committed.map((e) => e.index), [2, 3]);
    assert.deepEqual([b.status().firstIndex, b.status().lastIndex], [1, 4]);
  });

  it('a follower answers a snapshot it has already committed past with its commit index', () => {
    const b = node('b', { terms: [1, 1], commit: 3 });
    b.step({ type: 'Snapshot', from: 'a', to: 'b', term: 1, snapshot: { ...snap, index: 2, term: 1 } });
    const rd = take(b);
    assert.equal(rd.snapshot, null);
    assert.deepEqual(rd.messages.map((m) => (m as { index: number }).index), [3]);
    assert.equal(b.status().firstIndex, 1);
  });

  it('a node restarts from a snapshot and the entries stored after it', () => {
    const after: Entry = { index: 6, term: 3, type: 'normal', data: 'y' };
    const b = new RaftCore({ id: 'b', restore: { snapshot: snap, entries: [after], hardState: { term: 3, vote: null, commit: 6 } } });
    const st = b.status();
    assert.deepEqual([st.firstIndex, st.lastIndex, st.applied, st.commit], [6, 6, 5, 6]);
    assert.deepEqual(st.conf, snap.conf);
    assert.deepEqual(b.ready().committed, [after]);
  });

  it('a restored snapshot that is malformed is refused', () => {
    assert.throws(() => new RaftCore({ id: 'b', restore: { snapshot: { ...snap, data: undefined } } }), RaftError);
  });
});

describe('thesis §4 Cluster membership changes', () => {
  it('a single-server change takes effect as soon as it is appended, and the new node learns the history from the log', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    const a = net.get('a');
    net.add('d');
    a.proposeConfChange([{ type: 'addVoter', node: 'd' }]);
    assert.deepEqual(a.status().conf.voters, ['a', 'b', 'c', 'd']);
    net.stabilize();
    for (const id of ['a', 'b', 'c', 'd']) assert.deepEqual(net.get(id).status().conf, { voters: ['a', 'b', 'c', 'd'], learners: [] }, id);
    a.propose('x');
    net.stabilize();
    assert.deepEqual(net.appliedData('d'), ['x']);
    assert.equal(storage(net.get('d')).entries[0].type, 'conf');
  });

  it('a node added while the leader is idle receives the log even if the first append to it is lost', () => {
    const a = replicating();
    a.proposeConfChange([{ type: 'addLearner', node: 'd' }]);
    // The configuration is in force once appended, so d's first append leaves with the change itself.
    assert.deepEqual(summary(ofType(take(a).messages, 'Append')), ['Append→b', 'Append→c', 'Append→d']);
    a.step(ack('b', 'a', 2, 3));
    take(a);
    assert.notDeepEqual(appendsAfterHeartbeats(a, 'd'), []);
  });

  it('a leader refuses a membership change until its own first entry commits, and while another is in flight', () => {
    const a = node('a');
    elect(a);
    assert.throws(() => a.proposeConfChange([{ type: 'addVoter', node: 'd' }]), ConfChangeError);
    a.step(ack('b', 'a', 2, 2));
    take(a);
    assert.deepEqual(a.proposeConfChange([{ type: 'addVoter', node: 'd' }]), { index: 3, term: 2 });
    assert.throws(() => a.proposeConfChange([{ type: 'addVoter', node: 'e' }]), ConfChangeError);
    take(a);
    assert.deepEqual(a.status().conf.voters, ['a', 'b', 'c', 'd']);
    // Three of the four voters now make a quorum.
    a.step(ack('b', 'a', 2, 3));
    take(a);
    assert.throws(() => a.proposeConfChange([{ type: 'addVoter', node: 'e' }]), ConfChangeError);
    a.step(ack('c', 'a', 2, 3));
    take(a);
    assert.deepEqual(a.proposeConfChange([{ type: 'addVoter', node: 'e' }]), { index: 4, term: 2 });
  });

  const invalid: { name: string; changes: unknown[] }[] = [
    { name: 'no change at all', changes: [] },
    { name: 'a change without a node', changes: [{ type: 'addVoter', node: '' }] },
    { name: 'an unknown change type', changes: [{ type: 'promote', node: 'd' }] },
    { name: 'the same node twice', changes: [{ type: 'addVoter', node: 'd' }, { type: 'addLearner', node: 'd' }] },
    { name: 'removing every voter', changes: [{ type: 'remove', node: 'a' }, { type: 'remove', node: 'b' }, { type: 'remove', node: 'c' }] },
  ];
  for (const { name, changes } of invalid) {
    it(`a leader refuses ${name} with ConfChangeError`, () => {
      const a = replicating();
      assert.throws(() => a.proposeConfChange(changes as never), ConfChangeError);
      assert.equal(a.status().lastIndex, 2);
    });
  }

  it('several changes at once go through joint consensus, which the leader leaves by itself', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.add('d');
    net.add('e');
    const a = net.get('a');
    a.proposeConfChange([{ type: 'addVoter', node: 'd' }, { type: 'addVoter', node: 'e' }, { type: 'remove', node: 'c' }]);
    net.stabilize();
    for (const id of ['a', 'b', 'd', 'e']) assert.deepEqual(net.get(id).status().conf, { voters: ['a', 'b', 'd', 'e'], learners: [] }, id);
    const ops = storage(a).entries.filter((e) => e.type === 'conf').map((e) => (e.data as { op: string }).op);
    assert.deepEqual(ops, ['bootstrap', 'change', 'leaveJoint']);
  });

  // a, b, c moved to a, d, e in one step: joint consensus needs a majority of both.
  const joint: Entry = { index: 2, term: 1, type: 'conf', data: { op: 'change', changes: [
    { type: 'addVoter', node: 'd' }, { type: 'addVoter', node: 'e' }, { type: 'remove', node: 'b' }, { type: 'remove', node: 'c' },
  ] } };
  const jointNode = (): RaftCore => node('a', { extra: [joint], commit: 2 }, { preVote: false });
  const jointVotes: { votes: Record<NodeId, boolean>; want: string }[] = [
    { votes: { d: true, b: true }, want: 'leader' },
    { votes: { e: true, c: true }, want: 'leader' },
    { votes: { d: true, e: true }, want: 'candidate' },
    { votes: { b: true, c: true }, want: 'candidate' },
    { votes: { d: false, e: false, b: true, c: true }, want: 'follower' },
    { votes: { b: false, c: false, d: true, e: true }, want: 'follower' },
  ];
  for (const { votes, want } of jointVotes) {
    it(`in joint consensus a candidate with votes ${JSON.stringify(votes)} ends the round as ${want}`, () => {
      const a = jointNode();
      assert.deepEqual(a.status().conf, { voters: ['a', 'd', 'e'], learners: [], outgoing: ['a', 'b', 'c'] });
      tickN(a, ELECTION);
      assert.deepEqual(summary(sent(a)), ['Vote→b', 'Vote→c', 'Vote→d', 'Vote→e']);
      for (const [from, granted] of Object.entries(votes)) a.step({ type: 'VoteResp', from, to: 'a', term: 2, reject: !granted });
      take(a);
      assert.equal(a.status().role, want);
    });
  }

  const jointAcks: { acks: NodeId[]; commits: boolean }[] = [
    { acks: ['d'], commits: false },
    { acks: ['b'], commits: false },
    { acks: ['d', 'e'], commits: false },
    { acks: ['b', 'c'], commits: false },
    { acks: ['b', 'd'], commits: true },
    { acks: ['b', 'c', 'd'], commits: true },
  ];
  for (const { acks: from, commits } of jointAcks) {
    it(`in joint consensus an entry acknowledged by [${from}] ${commits ? 'commits' : 'does not commit'}`, () => {
      const a = jointNode();
      tickN(a, ELECTION);
      take(a);
      a.step({ type: 'VoteResp', from: 'b', to: 'a', term: 2, reject: false });
      a.step({ type: 'VoteResp', from: 'd', to: 'a', term: 2, reject: false });
      take(a);
      assert.deepEqual(storage(a).entries.slice(2).map((e) => [e.index, e.type]), [[3, 'normal']]);
      for (const id of from) a.step(ack(id, 'a', 2, 3));
      take(a);
      assert.equal(a.status().commit, commits ? 3 : 2);
      // Once its own entry commits (and with it the joint configuration), the leader leaves joint consensus.
      assert.deepEqual(storage(a).entries.slice(3).map((e) => [e.index, e.type]), commits ? [[4, 'conf']] : []);
    });
  }

  it('a leader that removes itself steps down once the removal commits, and the others elect a new leader', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.get('a').proposeConfChange([{ type: 'remove', node: 'a' }]);
    net.stabilize();
    for (const id of ['a', 'b', 'c']) assert.deepEqual(net.get(id).status().conf.voters, ['b', 'c'], id);
    assert.equal(net.get('a').status().role, 'follower');
    const removedAt = net.delivered.length;
    net.tickAll(3 * ELECTION);
    const leader = net.get('b').status().leader;
    assert.ok(leader === 'b' || leader === 'c', `leader ${leader}`);
    const fromA = net.delivered.slice(removedAt).filter((m) => m.from === 'a');
    assert.ok(!fromA.some((m) => m.type === 'PreVote' || m.type === 'Vote'), 'a removed node campaigned');
    net.get(leader).propose('x');
    net.stabilize();
    assert.deepEqual(net.appliedData(leader === 'b' ? 'c' : 'b'), ['x']);
  });

  it('a learner receives the log but neither votes in nor counts towards a majority, nor campaigns', () => {
    const learner: Entry = { index: 2, term: 1, type: 'conf', data: { op: 'change', changes: [{ type: 'addLearner', node: 'd' }] } };
    const a = node('a', { extra: [learner], commit: 2 });
    assert.deepEqual(a.status().conf, { voters: ['a', 'b', 'c'], learners: ['d'] });
    tickN(a, ELECTION);
    assert.deepEqual(summary(sent(a)), ['PreVote→b', 'PreVote→c']);
    const leader = node('a', { extra: [learner], commit: 2 });
    assert.deepEqual(summary(elect(leader)), ['Append→b', 'Append→c', 'Append→d']);
    leader.step(ack('d', 'a', 2, 3));
    take(leader);
    assert.equal(leader.status().commit, 2);
    leader.step(ack('b', 'a', 2, 3));
    take(leader);
    assert.equal(leader.status().commit, 3);
    const d = node('d', { extra: [learner], commit: 2 });
    tickN(d, 5 * ELECTION);
    assert.equal(d.hasReady(), false);
  });
});

describe('thesis §6.4 ReadIndex', () => {
  it('a leader answers a read at its commit index once a quorum acknowledges a later heartbeat', () => {
    const a = replicating();
    a.readIndex('r1');
    const hb = ofType(sent(a), 'Heartbeat');
    assert.deepEqual(hb.map((m) => [m.to, m.ctx]).sort(), [['b', 1], ['c', 1]]);
    a.step(heartbeatResp('b', 'a', 2, 1));
    assert.deepEqual(take(a).readStates, [{ index: 2, context: 'r1' }]);
  });

  it('an answer to an older heartbeat round confirms only the reads registered before it', () => {
    const a = replicating();
    a.readIndex('r1');
    take(a);
    a.readIndex('r2');
    take(a);
    a.step(heartbeatResp('b', 'a', 2, 1));
    assert.deepEqual(take(a).readStates.map((r) => r.context), ['r1']);
    a.step(heartbeatResp('c', 'a', 2, 2));
    assert.deepEqual(take(a).readStates.map((r) => r.context), ['r2']);
  });

  it('an answer to a heartbeat sent before the read confirms nothing', () => {
    const a = replicating();
    a.tick();
    take(a);
    a.readIndex('r');
    take(a);
    a.step(heartbeatResp('b', 'a', 2, 0));
    assert.deepEqual(take(a).readStates, []);
  });

  it('a new leader holds reads until an entry of its own term commits', () => {
    const a = node('a');
    elect(a);
    a.readIndex('r');
    assert.ok(ofType(sent(a), 'Heartbeat').every((m) => m.ctx === 0));
    a.step(ack('b', 'a', 2, 2));
    const rd = take(a);
    assert.deepEqual(rd.readStates, []);
    assert.deepEqual(ofType(rd.messages, 'Heartbeat').map((m) => m.ctx), [1, 1]);
    a.step(heartbeatResp('c', 'a', 2, 1));
    assert.deepEqual(take(a).readStates, [{ index: 2, context: 'r' }]);
  });

  it('a leader that loses leadership never answers its pending reads', () => {
    const a = replicating();
    a.readIndex('r');
    take(a);
    a.step(heartbeat('b', 'a', 3));
    a.step(heartbeatResp('c', 'a', 2, 1));
    assert.deepEqual(take(a).readStates, []);
  });

  it('the only voter answers a read at once', () => {
    const a = soloLeader();
    a.readIndex('r');
    assert.deepEqual(take(a).readStates, [{ index: 2, context: 'r' }]);
  });

  it('a follower forwards a read to the leader and receives the read index', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.get('b').readIndex('q');
    net.stabilize();
    assert.deepEqual(net.reads.get('b'), [{ index: 2, context: 'q' }]);
  });

  it('a follower that knows no leader refuses a read; undefined context is a TypeError', () => {
    const b = node('b');
    assert.throws(() => b.readIndex('q'), NotLeaderError);
    assert.throws(() => replicating().readIndex(undefined), TypeError);
  });
});

describe('thesis §3.10 Leadership transfer', () => {
  it('the leader tells an up-to-date transferee to campaign at once, which it wins without pre-vote', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.get('a').transferLeader('b');
    net.stabilize();
    assert.equal(net.get('b').status().role, 'leader');
    assert.equal(net.get('b').status().term, 3);
    const fromB = net.delivered.filter((m) => m.from === 'b');
    assert.ok(net.delivered.some((m) => m.type === 'TimeoutNow' && m.from === 'a' && m.to === 'b'));
    assert.ok(!fromB.some((m) => m.type === 'PreVote'));
    assert.ok(ofType(fromB, 'Vote').every((m) => m.transfer === true));
  });

  it('the leader first sends a lagging transferee what it lacks', () => {
    const net = new Network(['a', 'b', 'c']);
    net.isolate('c');
    net.campaign('a');
    net.get('a').propose('x');
    net.stabilize();
    net.heal();
    net.get('a').transferLeader('c');
    net.stabilize();
    net.tickAll(1);
    const toC = net.delivered.filter((m) => m.to === 'c').map((m) => m.type);
    assert.ok(toC.indexOf('Append') >= 0 && toC.indexOf('Append') < toC.indexOf('TimeoutNow'), toC.join(' '));
    assert.equal(net.get('c').status().role, 'leader');
    assert.deepEqual(net.appliedData('c'), ['x']);
  });

  it('the leader refuses proposals while a transfer is in progress', () => {
    const a = replicating();
    a.transferLeader('b');
    assert.deepEqual(summary(sent(a)), ['TimeoutNow→b']);
    assert.equal(a.status().transferee, 'b');
    assert.throws(() => a.propose('x'), ProposalDroppedError);
    assert.throws(() => a.proposeConfChange([{ type: 'addVoter', node: 'd' }]), ProposalDroppedError);
  });

  it('a transfer that does not finish within an election timeout is abandoned', () => {
    const a = replicating();
    a.propose('x');
    take(a);
    a.transferLeader('b');
    assert.deepEqual(ofType(sent(a), 'TimeoutNow'), []);
    tickN(a, ELECTION - 1);
    assert.equal(a.status().transferee, 'b');
    a.tick();
    assert.equal(a.status().transferee, null);
    assert.equal(a.status().role, 'leader');
    assert.deepEqual(a.propose('y'), { index: 4, term: 2 });
  });

  const refusals: { name: string; act: () => void; error: new (...args: never[]) => Error }[] = [
    { name: 'a follower', act: () => node('b').transferLeader('c'), error: NotLeaderError },
    { name: 'a transfer to an unknown node', act: () => replicating().transferLeader('z'), error: ConfChangeError },
  ];
  for (const { name, act, error } of refusals) {
    it(`${name} is refused with ${error.name}`, () => assert.throws(act, error));
  }

  it('a transfer to the leader itself does nothing', () => {
    const a = replicating();
    a.transferLeader('a');
    assert.equal(a.status().transferee, null);
    assert.equal(a.hasReady(), false);
  });

  it('a transfer to a learner is refused', () => {
    const learner: Entry = { index: 2, term: 1, type: 'conf', data: { op: 'change', changes: [{ type: 'addLearner', node: 'd' }] } };
    const a = node('a', { extra: [learner], commit: 2 });
    elect(a);
    assert.throws(() => a.transferLeader('d'), ConfChangeError);
  });
});

describe('thesis §9.6 Pre-vote', () => {
  it('a follower that times out asks for pre-votes for the next term without changing its own', () => {
    const a = node('a', { terms: [2], term: 2 });
    tickN(a, ELECTION);
    const rd = take(a);
    assert.equal(rd.role, 'pre-candidate');
    assert.equal(rd.hardState, null);
    assert.deepEqual(byTo(rd.messages), [preVote('a', 'b', 3, 2, 2), preVote('a', 'c', 3, 2, 2)]);
    assert.equal(a.status().term, 2);
  });

  it('a pre-candidate granted a quorum of pre-votes starts a real election in the next term', () => {
    const a = node('a');
    tickN(a, ELECTION);
    take(a);
    a.step({ type: 'PreVoteResp', from: 'b', to: 'a', term: 2, reject: false });
    const rd = take(a);
    assert.equal(rd.role, 'candidate');
    assert.deepEqual(rd.hardState, { term: 2, vote: 'a', commit: 1 });
    assert.deepEqual(byTo(rd.messages), [vote('a', 'b', 2), vote('a', 'c', 2)]);
  });

  it('a pre-candidate refused by a quorum returns to follower in the same term', () => {
    const a = node('a');
    tickN(a, ELECTION);
    take(a);
    for (const from of ['b', 'c']) a.step({ type: 'PreVoteResp', from, to: 'a', term: 1, reject: true });
    const rd = take(a);
    assert.equal(rd.role, 'follower');
    assert.equal(rd.hardState, null);
    assert.equal(a.status().term, 1);
  });

  it('a pre-candidate refused by a node of a newer term adopts that term', () => {
    const a = node('a');
    tickN(a, ELECTION);
    take(a);
    a.step({ type: 'PreVoteResp', from: 'b', to: 'a', term: 5, reject: true });
    assert.equal(take(a).role, 'follower');
    assert.equal(a.status().term, 5);
  });

  it('granting a pre-vote changes neither the voter\'s term nor its vote', () => {
    const b = node('b', { term: 2, vote: 'a' });
    b.step(preVote('c', 'b', 3));
    const rd = take(b);
    assert.equal(rd.hardState, null);
    assert.deepEqual(rd.messages, [{ type: 'PreVoteResp', from: 'b', to: 'c', term: 3, reject: false }]);
    assert.deepEqual([b.status().term, b.status().vote], [2, 'a']);
  });

  for (const preVoteOn of [true, false]) {
    it(`a node that rejoins after a partition ${preVoteOn ? 'leaves the leader in place (pre-vote on)' : 'deposes the leader (pre-vote off)'}`, () => {
      const net = new Network(['a', 'b', 'c'], { preVote: preVoteOn });
      net.campaign('a');
      net.isolate('c');
      for (let i = 0; i < 5 * ELECTION; i++) { net.tick('c'); net.stabilize(); }
      const term = net.get('c').status().term;
      assert.ok(preVoteOn ? term === 2 : term > 2, `c reached term ${term}`);
      net.heal();
      net.tick('a');
      net.stabilize();
      assert.equal(net.get('a').status().role === 'leader', preVoteOn);
      assert.equal(net.get('a').status().term, term);
    });
  }
});

describe('thesis §6.2 Check-quorum and leader leases', () => {
  it('a leader that hears from no quorum for an election timeout steps down', () => {
    const a = node('a');
    elect(a);
    tickN(a, ELECTION - 1);
    a.step(heartbeatResp('b', 'a', 2));
    a.tick();
    assert.equal(a.status().role, 'leader');
    tickN(a, ELECTION - 1);
    assert.equal(a.status().role, 'leader');
    a.tick();
    const rd = take(a);
    assert.equal(rd.role, 'follower');
    assert.equal(rd.leader, null);
    assert.equal(a.status().term, 2);
  });

  it('a leader that hears from one follower in every election timeout stays leader', () => {
    const a = node('a');
    elect(a);
    for (let round = 0; round < 5; round++) {
      tickN(a, ELECTION - 1);
      a.step(heartbeatResp(round % 2 ? 'b' : 'c', 'a', 2));
      a.tick();
      assert.equal(a.status().role, 'leader', `round ${round}`);
    }
  });

  it('with check-quorum off a leader stays leader without hearing from anyone', () => {
    const a = node('a', {}, { checkQuorum: false });
    elect(a);
    tickN(a, 5 * ELECTION);
    assert.equal(a.status().role, 'leader');
  });

  // The follower heard from leader a, then `ticks` ticks passed; its own timeout is 2T-1, so it waits.
  const lease: { name: string; checkQuorum: boolean; ticks: number; m: Message; granted: boolean }[] = [
    { name: 'a Vote just after a heartbeat', checkQuorum: true, ticks: 0, m: vote('c', 'b', 3), granted: false },
    { name: 'a PreVote just after a heartbeat', checkQuorum: true, ticks: 0, m: preVote('c', 'b', 3), granted: false },
    { name: 'a Vote one tick before the lease ends', checkQuorum: true, ticks: ELECTION - 1, m: vote('c', 'b', 3), granted: false },
    { name: 'a Vote once the lease has ended', checkQuorum: true, ticks: ELECTION, m: vote('c', 'b', 3), granted: true },
    { name: 'a PreVote once the lease has ended', checkQuorum: true, ticks: ELECTION, m: preVote('c', 'b', 3), granted: true },
    { name: 'a transfer Vote within the lease', checkQuorum: true, ticks: 0, m: vote('c', 'b', 3, 1, 1, true), granted: true },
    { name: 'a Vote with check-quorum off', checkQuorum: false, ticks: 0, m: vote('c', 'b', 3), granted: true },
  ];
  for (const { name, checkQuorum, ticks, m, granted } of lease) {
    it(`a follower of a live leader ${granted ? 'grants' : 'ignores'} ${name}`, () => {
      const b = node('b', { term: 2 }, { checkQuorum, random: () => 0.99 });
      b.step(heartbeat('a', 'b', 2));
      take(b);
      tickN(b, ticks);
      b.step(m);
      const rd = take(b);
      if (granted) {
        assert.deepEqual(rd.messages.map((r) => [r.type, (r as { reject: boolean }).reject]), [[`${m.type}Resp`, false]]);
      } else {
        assert.deepEqual(rd.messages, []);
        assert.equal(b.status().term, 2);
        assert.equal(b.status().leader, 'a');
        assert.equal(b.status().dropped.stale, 1);
      }
    });
  }

  it('a stale leader learns the newer term from an AppendResp and steps down', () => {
    const a = replicating();
    a.step({ type: 'AppendResp', from: 'b', to: 'a', term: 5, index: 0, reject: true, hintIndex: 0, hintTerm: 0 });
    const rd = take(a);
    assert.equal(rd.role, 'follower');
    assert.deepEqual(rd.hardState, { term: 5, vote: null, commit: 2 });
  });

  it('a leader cut off from a newer leader steps down when its heartbeat is answered', () => {
    const net = new Network(['a', 'b', 'c'], { checkQuorum: false });
    net.campaign('a');
    net.isolate('a');
    net.campaign('b');
    assert.equal(net.get('b').status().term, 3);
    assert.equal(net.get('a').status().role, 'leader');
    net.heal();
    net.tick('a');
    net.stabilize();
    assert.equal(net.get('a').status().role, 'follower');
    assert.equal(net.get('a').status().term, 3);
    net.tickAll(1);
    assert.equal(net.get('a').status().leader, 'b');
  });
});

describe('Messages from peers: malformed, foreign and stale ones are dropped, never thrown', () => {
  const malformed: [string, unknown][] = [
    ['null', null],
    ['a number', 42],
    ['a string', 'Append'],
    ['an empty object', {}],
    ['an unknown type', { ...sample('Append', 2), type: 'Appendd' }],
    ['no sender', { ...sample('Heartbeat', 2), from: undefined }],
    ['an empty receiver', { ...sample('Heartbeat', 2), to: '' }],
    ['a negative term', sample('Heartbeat', -1)],
    ['a fractional term', sample('Heartbeat', 1.5)],
    ['a string term', { ...sample('Heartbeat', 2), term: '2' }],
    ['entries that are not an array', { ...sample('Append', 2), entries: {} }],
    ['entries that skip an index', { ...append('b', 'a', 2, 1, 1, []), entries: [{ index: 3, term: 2, type: 'normal', data: 'x' }] }],
    ['an entry of a term above the message', append('b', 'a', 2, 1, 1, [3])],
    ['entries whose terms go down', append('b', 'a', 3, 1, 1, [3, 2])],
    ['a prevTerm above the term', append('b', 'a', 2, 1, 3, [])],
    ['an entry without data', { ...append('b', 'a', 2, 1, 1, []), entries: [{ index: 2, term: 2, type: 'normal' }] }],
    ['a conf entry with bad data', { ...append('b', 'a', 2, 1, 1, []), entries: [{ index: 2, term: 2, type: 'conf', data: { op: 'nuke' } }] }],
    ['a vote without lastTerm', { ...sample('Vote', 2), lastTerm: undefined }],
    ['a transfer flag that is not a boolean', { ...sample('Vote', 2), transfer: 'yes' }],
    ['a response without reject', { ...sample('VoteResp', 2), reject: 0 }],
    ['a heartbeat with a negative ctx', { ...sample('Heartbeat', 2), ctx: -1 }],
    ['a snapshot without data', { ...sample('Snapshot', 2), snapshot: { index: 1, term: 1, conf: { voters: [], learners: [] } } }],
    ['a snapshot with bad voters', { ...sample('Snapshot', 2), snapshot: { index: 1, term: 1, conf: { voters: [1], learners: [] }, data: 0 } }],
    ['a read without context', { ...sample('ReadIndex', 2), context: undefined }],
    ['an unsafe integer index', { ...sample('AppendResp', 2), index: 2 ** 60 }],
  ];
  for (const [name, m] of malformed) {
    it(`a message with ${name} is counted as malformed and has no effect`, () => {
      const a = node('a', { term: 2 });
      assert.doesNotThrow(() => a.step(m as Message));
      assert.equal(a.status().dropped.malformed, 1);
      assert.equal(a.hasReady(), false);
    });
  }

  for (const [name, m] of [['addressed to another node', sample('Heartbeat', 3, 'b', 'c')], ['claiming to come from the receiver', sample('Heartbeat', 3, 'a', 'a')]] as const) {
    it(`a message ${name} is counted as foreign and has no effect`, () => {
      const a = node('a', { term: 2 });
      a.step(m);
      assert.equal(a.status().dropped.foreign, 1);
      assert.equal(a.status().term, 2);
      assert.equal(a.hasReady(), false);
    });
  }

  const misplaced: { role: string; types: Message['type'][] }[] = [
    { role: 'follower', types: ['AppendResp', 'HeartbeatResp', 'PreVoteResp', 'VoteResp'] },
    { role: 'leader', types: ['PreVoteResp', 'VoteResp', 'TimeoutNow', 'ReadIndexResp'] },
  ];
  for (const { role, types } of misplaced) {
    it(`a ${role} drops ${types.join(', ')} of its own term as stale`, () => {
      const a = role === 'leader' ? replicating() : node('a', { term: 2 });
      const before = a.status().dropped.stale;
      for (const type of types) a.step(sample(type, 2));
      assert.equal(a.status().dropped.stale, before + types.length);
      assert.equal(a.status().role, role);
      assert.equal(a.hasReady(), false);
    });
  }

  const KEYS = ['type', 'from', 'to', 'term', 'entries', 'prevIndex', 'prevTerm', 'commit', 'index', 'reject', 'snapshot', 'ctx', 'context'];
  function garbage(r: Prng, depth = 0): unknown {
    switch (r.int(depth > 2 ? 6 : 8)) {
      case 0: return r.pick([null, undefined]);
      case 1: return r.int(20) - 5;
      case 2: return r.pick([Number.NaN, Infinity, -0, 0.5, 2 ** 53, -1]);
      case 3: return r.pick(['', 'a', 'b', 'c', 'z', 'Append', 'Vote', 'x'.repeat(300)]);
      case 4: return r.chance(0.5);
      case 5: return r.pick([() => 1, Symbol('s'), 10n]);
      case 6: return Array.from({ length: r.int(4) }, () => garbage(r, depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let k = r.int(8); k > 0; k--) o[r.pick(KEYS)] = garbage(r, depth + 1);
        return o;
      }
    }
  }
  /** A well-formed message with one field replaced by garbage, or removed. */
  function mutant(r: Prng, term: number): unknown {
    const m: Record<string, unknown> = { ...sample(r.pick(MESSAGE_TYPES), term + r.int(3) - 1, r.pick(['b', 'c']), 'a') };
    const key = r.pick(Object.keys(m));
    if (r.chance(0.2)) delete m[key];
    else m[key] = garbage(r);
    return m;
  }
  /** A well-formed message with random fields: terms around the receiver's, indexes around its log. */
  function plausible(r: Prng, a: RaftCore): Message {
    const { term: now, lastIndex } = a.status();
    const term = Math.max(1, now + r.int(3) - 1);
    const index = (): number => r.int(lastIndex + 3);
    const base = { from: r.pick(['b', 'c', 'd']), to: 'a', term };
    const type = r.pick(MESSAGE_TYPES);
    switch (type) {
      case 'PreVote': case 'Vote': return { ...base, type, lastIndex: index(), lastTerm: r.int(term + 1) };
      case 'PreVoteResp': case 'VoteResp': return { ...base, type, reject: r.chance(0.5) };
      case 'Append': {
        const prevIndex = index();
        const prevTerm = r.int(term + 1);
        const entries: Entry[] = [];
        for (let t = Math.max(1, prevTerm), k = r.int(4); k > 0 && t <= term; k--, t += r.int(2)) {
          entries.push({ index: prevIndex + entries.length + 1, term: t, type: 'normal', data: 'z' });
        }
        return { ...base, type, prevIndex, prevTerm, entries, commit: index() };
      }
      // A correct peer never acknowledges entries the leader does not have (see the hardening test below).
      case 'AppendResp': return { ...base, type, index: r.int(lastIndex + 1), reject: r.chance(0.5), hintIndex: index(), hintTerm: r.int(term + 1) };
      case 'Heartbeat': return { ...base, type, commit: index(), ctx: r.int(3) };
      case 'HeartbeatResp': return { ...base, type, ctx: r.int(4) };
      case 'Snapshot': return { ...base, type, snapshot: { index: index(), term: r.int(term + 1), conf: { voters: ['a', 'b', 'c'], learners: [] }, data: 's' } };
      case 'TimeoutNow': return { ...base, type };
      case 'ReadIndex': return { ...base, type, context: 'r' };
      case 'ReadIndexResp': return { ...base, type, index: index(), context: 'r' };
    }
  }

  const makers: [string, () => RaftCore][] = [
    ['follower', () => node('a', { term: 2 })],
    ['candidate', () => { const a = node('a', { term: 2 }, { preVote: false }); tickN(a, ELECTION); take(a); return a; }],
    ['leader', replicating],
  ];
  for (const [role, make] of makers) {
    it(`a ${role} fed thousands of random objects and mutated messages never throws and counts each malformed one`, () => {
      const seed = testSeed(20240611);
      const r = prng(seed);
      const a = make();
      for (let i = 0; i < 3000; i++) {
        const m = r.chance(0.5) ? garbage(r) : mutant(r, a.status().term);
        const before = a.status().dropped.malformed;
        try {
          a.step(m as Message);
          if (a.hasReady()) take(a);
        } catch (err) {
          assert.fail(`seed ${seed}, message ${i}: ${String(err)} for ${String(JSON.stringify(m))}`);
        }
        const malformed = validateMessage(m) !== null;
        assert.equal(a.status().dropped.malformed, before + (malformed ? 1 : 0), `seed ${seed}, message ${i}`);
      }
    });
  }
  for (const [role, make] of makers) {
    it(`a ${role} fed thousands of random well-formed messages and ticks never throws and sends only well-formed messages`, () => {
      const seed = testSeed(20240612);
      const r = prng(seed);
      const a = make();
      let term = a.status().term;
      for (let i = 0; i < 3000; i++) {
        const m = plausible(r, a);
        const at = `seed ${seed}, message ${i}: ${JSON.stringify(m)}`;
        try {
          if (r.chance(0.1)) a.tick();
          if (r.chance(0.05) && a.status().role === 'leader') a.propose(`p${i}`);
          a.step(m);
          if (a.hasReady()) for (const out of take(a).messages) assert.equal(validateMessage(out), null, `${at} made ${JSON.stringify(out)}`);
        } catch (err) {
          assert.fail(`${at}: ${String(err)}`);
        }
        const st = a.status();
        assert.ok(st.applied <= st.commit && st.commit <= st.lastIndex && st.term >= term, `${at}: ${JSON.stringify(st)}`);
        term = st.term;
      }
    });
  }

  it('a leader ignores an acknowledgement of entries it does not have', () => {
    const a = node('a');
    elect(a);
    a.step(ack('b', 'a', 2, 9));
    const rd = take(a);
    assert.equal(a.status().commit, 1);
    for (const m of rd.messages) assert.equal(validateMessage(m), null, JSON.stringify(m));
  });
});

describe('Client API errors', () => {
  it('propose on a follower throws NotLeaderError naming the leader it follows', () => {
    const b = node('b', { term: 2 });
    b.step(heartbeat('a', 'b', 2));
    take(b);
    assert.throws(() => b.propose('x'), (err: unknown) => err instanceof NotLeaderError && err.leader === 'a');
  });

  it('propose on a candidate throws NotLeaderError with no leader', () => {
    const a = node('a', {}, { preVote: false });
    tickN(a, ELECTION);
    assert.throws(() => a.propose('x'), (err: unknown) => err instanceof NotLeaderError && err.leader === null);
    assert.throws(() => a.proposeConfChange([{ type: 'addVoter', node: 'd' }]), NotLeaderError);
  });

  for (const data of [null, undefined]) {
    it(`propose(${data}) throws TypeError and appends nothing`, () => {
      const a = replicating();
      assert.throws(() => a.propose(data), TypeError);
      assert.equal(a.status().lastIndex, 2);
      assert.equal(a.hasReady(), false);
    });
  }

  it('a RaftCore needs a non-empty id and sane tick settings', () => {
    assert.throws(() => new RaftCore({ id: '' }), TypeError);
    assert.throws(() => new RaftCore({ id: 'a', electionTicks: 1, heartbeatTicks: 1 }), RangeError);
    assert.throws(() => new RaftCore({ id: 'a', heartbeatTicks: 0 }), RangeError);
  });
});

describe('The Ready cycle', () => {
  it('ready() twice without advance() throws UsageError, and so does advance() without ready()', () => {
    const a = new RaftCore({ id: 'a', voters: ['a', 'b', 'c'] });
    assert.throws(() => a.advance(), UsageError);
    a.ready();
    assert.equal(a.hasReady(), false);
    assert.throws(() => a.ready(), UsageError);
    a.advance();
    assert.throws(() => a.advance(), UsageError);
  });

  it('what happens while a Ready is being handled comes out in the next one', () => {
    const b = node('b');
    b.step(heartbeat('a', 'b', 2));
    const rd = b.ready();
    b.step(append('a', 'b', 2, 1, 1, [2], 2));
    assert.equal(b.hasReady(), false);
    storage(b).handle(rd);
    b.advance();
    const next = take(b);
    assert.deepEqual(next.entries.map((e) => e.index), [2]);
    assert.deepEqual(next.committed.map((e) => e.index), [2]);
    assert.deepEqual(summary(next.messages), ['AppendResp→a']);
  });

  it('each committed entry is handed out once, and a quiet node has no Ready', () => {
    const a = soloLeader();
    a.propose('x');
    assert.deepEqual(take(a).committed.map((e) => e.data), ['x']);
    assert.equal(a.hasReady(), false);
    assert.deepEqual(a.ready().committed, []);
  });

  it('a node restarted from exactly what its Readys made durable carries on where it was', () => {
    const net = new Network(['a', 'b', 'c']);
    net.campaign('a');
    net.get('a').propose('x');
    net.stabilize();
    const before = net.get('a').status();
    net.crash('a');
    const a = net.restart('a');
    assert.deepEqual([a.status().term, a.status().vote, a.status().lastIndex, a.status().commit], [before.term, before.vote, before.lastIndex, before.commit]);
    net.tickAll(3 * ELECTION);
    net.get(net.get('b').status().leader ?? 'b').propose('y');
    net.stabilize();
    assert.deepEqual(net.appliedData('a'), ['x', 'y']);
  });
});
