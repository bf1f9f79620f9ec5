/**
 * quorum.ts against naive versions written straight from the definitions, on thousands of random simple
 * and joint configurations (after etcd's quorum/quick_test.go). The naive versions share no code with the
 * real ones: commit indexes are found by trying every index, vote results by trying every way the missing
 * votes could still go. A failure names its seed; `SEED=<n>` replays it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { committedIndex, isQuorum, isVoter, majority, majorityIndex, members, voteResult, type VoteResult } from '../src/core/quorum.js';
import type { ConfState, NodeId } from '../src/core/types.js';
import { prng, testSeed, type Prng } from './helpers/prng.js';

const CASES = 5000;
const POOL: NodeId[] = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7', 'n8', 'n9'];

/** A set S is a quorum of voters V when it holds more than half of them; no voters need no one. */
function naiveQuorumOf(voters: readonly NodeId[], has: (id: NodeId) => boolean): boolean {
  return voters.length === 0 || 2 * voters.filter(has).length > voters.length;
}

function naiveIsQuorum(conf: ConfState, has: (id: NodeId) => boolean): boolean {
  return naiveQuorumOf(conf.voters, has) && (conf.outgoing === undefined || naiveQuorumOf(conf.outgoing, has));
}

/** The highest index whose holders form a quorum, found by trying every index from the top. */
function naiveCommitted(conf: ConfState, match: ReadonlyMap<NodeId, number>): number {
  const at = (id: NodeId): number => match.get(id) ?? 0;
  if (naiveIsQuorum(conf, () => false)) return Infinity;
  for (let i = Math.max(0, ...match.values()); i > 0; i--) if (naiveIsQuorum(conf, (id) => at(id) >= i)) return i;
  return 0;
}

/** Won if every way the missing votes could go wins, lost if none does, pending otherwise. */
function naiveVoteResult(conf: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const everyone = [...new Set([...conf.voters, ...(conf.outgoing ?? [])])];
  const missing = everyone.filter((id) => !votes.has(id));
  let wins = 0;
  for (let mask = 0; mask < 1 << missing.length; mask++) {
    const yes = (id: NodeId): boolean => {
      const k = missing.indexOf(id);
      return k >= 0 ? (mask & (1 << k)) !== 0 : votes.get(id) === true;
    };
    if (naiveIsQuorum(conf, yes)) wins++;
  }
  return wins === 1 << missing.length ? 'won' : wins === 0 ? 'lost' : 'pending';
}

function subset(r: Prng, max: number): NodeId[] {
  const ids = POOL.filter(() => r.chance(0.5));
  for (let i = ids.length - 1; i > 0; i--) { const j = r.int(i + 1); [ids[i], ids[j]] = [ids[j], ids[i]]; }
  return ids.slice(0, r.int(max + 1));
}

/** A configuration: mostly small and non-empty, joint about half the time, sometimes with an empty half. */
function randomConf(r: Prng): ConfState {
  const conf: ConfState = { voters: subset(r, r.chance(0.05) ? 0 : 7), learners: [] };
  if (r.chance(0.5)) conf.outgoing = subset(r, r.chance(0.05) ? 0 : 7);
  return conf;
}

/** Match indexes with many ties, for every node of the pool (non-voters' must be ignored). */
function randomMatch(r: Prng): Map<NodeId, number> {
  const top = 1 + r.int(8);
  return new Map(POOL.map((id) => [id, r.int(top + 1)]));
}

/** Votes from some voters and some non-voters; the rest have not answered. */
function randomVotes(r: Prng): Map<NodeId, boolean> {
  const votes = new Map<NodeId, boolean>();
  for (const id of POOL) if (r.chance(0.6)) votes.set(id, r.chance(0.5));
  return votes;
}

/** Runs `check` on `n` random cases drawn by `gen`; a failure names the seed and the case. */
function forAll<T>(seed: number, gen: (r: Prng) => T, check: (c: T) => void, n = CASES): void {
  const r = prng(seed);
  for (let i = 0; i < n; i++) {
    const c = gen(r);
    try {
      check(c);
    } catch (err) {
      const shown = JSON.stringify(c, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v));
      throw new assert.AssertionError({ message: `seed ${seed}, case ${i}: ${shown}\n${(err as Error).message}` });
    }
  }
}

describe('quorum: majorities (Raft §5.2)', () => {
  it('majority(n) is the smallest count above half of n', () => {
    for (let n = 0; n <= 20; n++) {
      const q = majority(n);
      assert.ok(2 * q > n && 2 * (q - 1) <= n, `majority(${n}) = ${q}`);
    }
  });

  const examples: { voters: NodeId[]; match: Record<NodeId, number>; want: number }[] = [
    { voters: ['a'], match: { a: 7 }, want: 7 },
    { voters: ['a', 'b'], match: { a: 7, b: 3 }, want: 3 },
    { voters: ['a', 'b', 'c'], match: { a: 5, b: 3, c: 1 }, want: 3 },
    { voters: ['a', 'b', 'c', 'd'], match: { a: 5, b: 4, c: 3, d: 1 }, want: 3 },
    { voters: ['a', 'b', 'c', 'd', 'e'], match: { a: 9, b: 9, c: 2, d: 2, e: 0 }, want: 2 },
    { voters: ['a', 'b', 'c'], match: { a: 4 }, want: 0 },
    { voters: [], match: {}, want: Infinity },
  ];
  for (const { voters, match, want } of examples) {
    it(`majorityIndex of ${JSON.stringify(match)} over [${voters}] is ${want}`, () => {
      assert.equal(majorityIndex(voters, (id) => match[id] ?? 0), want);
    });
  }

  it(`majorityIndex and committedIndex agree with trying every index, on ${CASES} random configurations`, () => {
    forAll(testSeed(1001), (r) => ({ conf: randomConf(r), match: randomMatch(r) }), ({ conf, match }) => {
      const at = (id: NodeId): number => match.get(id) ?? 0;
      assert.equal(committedIndex(conf, at), naiveCommitted(conf, match));
      assert.equal(majorityIndex(conf.voters, at), naiveCommitted({ voters: conf.voters, learners: [] }, match));
    });
  });

  it('a joint configuration never commits beyond either of its halves', () => {
    forAll(testSeed(1002), (r) => ({ conf: randomConf(r), match: randomMatch(r) }), ({ conf, match }) => {
      const at = (id: NodeId): number => match.get(id) ?? 0;
      const joint = committedIndex(conf, at);
      assert.ok(joint <= majorityIndex(conf.voters, at));
      if (conf.outgoing) assert.ok(joint <= majorityIndex(conf.outgoing, at));
    });
  });

  it('raising one voter\'s match never lowers the committed index', () => {
    forAll(testSeed(1003), (r) => ({ conf: randomConf(r), match: randomMatch(r), who: r.pick(POOL), by: 1 + r.int(3) }), ({ conf, match, who, by }) => {
      const before = committedIndex(conf, (id) => match.get(id) ?? 0);
      const after = committedIndex(conf, (id) => (match.get(id) ?? 0) + (id === who ? by : 0));
      assert.ok(after >= before, `${before} → ${after}`);
    });
  });
});

describe('quorum: elections and quorums (Raft §5.2, thesis §4.3)', () => {
  const examples: { conf: ConfState; votes: Record<NodeId, boolean>; want: VoteResult }[] = [
    { conf: { voters: ['a'], learners: [] }, votes: { a: true }, want: 'won' },
    { conf: { voters: ['a', 'b', 'c'], learners: [] }, votes: { a: true }, want: 'pending' },
    { conf: { voters: ['a', 'b', 'c'], learners: [] }, votes: { a: true, b: true }, want: 'won' },
    { conf: { voters: ['a', 'b', 'c'], learners: [] }, votes: { a: true, b: false, c: false }, want: 'lost' },
    { conf: { voters: ['a', 'b', 'c', 'd'], learners: [] }, votes: { a: true, b: true, c: false }, want: 'pending' },
    { conf: { voters: ['a', 'b', 'c', 'd'], learners: [] }, votes: { a: true, c: false, d: false }, want: 'lost' },
    { conf: { voters: ['a', 'b', 'c'], learners: [] }, votes: { a: true, x: true, y: true }, want: 'pending' },
    { conf: { voters: ['a', 'd', 'e'], learners: [], outgoing: ['a', 'b', 'c'] }, votes: { a: true, d: true }, want: 'pending' },
    { conf: { voters: ['a', 'd', 'e'], learners: [], outgoing: ['a', 'b', 'c'] }, votes: { a: true, d: true, b: true }, want: 'won' },
    { conf: { voters: ['a', 'd', 'e'], learners: [], outgoing: ['a', 'b', 'c'] }, votes: { a: true, b: false, c: false }, want: 'lost' },
    { conf: { voters: [], learners: [] }, votes: {}, want: 'won' },
  ];
  for (const { conf, votes, want } of examples) {
    it(`votes ${JSON.stringify(votes)} in ${JSON.stringify(conf)} are ${want}`, () => {
      assert.equal(voteResult(conf, new Map(Object.entries(votes))), want);
    });
  }

  it(`voteResult agrees with trying every way the missing votes could go, on ${CASES} random configurations`, () => {
    forAll(testSeed(2001), (r) => ({ conf: randomConf(r), votes: randomVotes(r) }), ({ conf, votes }) => {
      assert.equal(voteResult(conf, votes), naiveVoteResult(conf, votes));
    });
  });

  it(`isQuorum agrees with counting each half, on ${CASES} random configurations`, () => {
    forAll(testSeed(2002), (r) => ({ conf: randomConf(r), set: subset(r, 9) }), ({ conf, set }) => {
      const has = (id: NodeId): boolean => set.includes(id);
      assert.equal(isQuorum(conf, has), naiveIsQuorum(conf, has));
    });
  });

  it('an election is won exactly when the voters that granted form a quorum', () => {
    forAll(testSeed(2003), (r) => ({ conf: randomConf(r), votes: randomVotes(r) }), ({ conf, votes }) => {
      const won = voteResult(conf, votes) === 'won';
      assert.equal(won, isQuorum(conf, (id) => votes.get(id) === true));
    });
  });

  it('votes from nodes outside the configuration never change the result', () => {
    forAll(testSeed(2004), (r) => ({ conf: randomConf(r), votes: randomVotes(r) }), ({ conf, votes }) => {
      const inside = new Map([...votes].filter(([id]) => isVoter(conf, id)));
      assert.equal(voteResult(conf, votes), voteResult(conf, inside));
    });
  });
});

describe('quorum: membership helpers (thesis §4)', () => {
  it('members lists voters first, then outgoing voters and learners, each once', () => {
    const conf: ConfState = { voters: ['a', 'd'], learners: ['e', 'a'], outgoing: ['a', 'b', 'c'] };
    assert.deepEqual(members(conf), ['a', 'd', 'b', 'c', 'e']);
  });

  const voters: [NodeId, boolean][] = [['a', true], ['d', true], ['b', true], ['e', false], ['z', false]];
  for (const [id, want] of voters) {
    it(`${id} ${want ? 'is' : 'is not'} a voter of a joint configuration with incoming [a, d], outgoing [a, b] and learner e`, () => {
      assert.equal(isVoter({ voters: ['a', 'd'], learners: ['e'], outgoing: ['a', 'b'] }, id), want);
    });
  }
});
