/**
 * Quorum arithmetic for simple and joint configurations (Raft §5.2, thesis §4.3). Pure functions over
 * voter lists; `quorum.test.ts` checks them against a naive version on random inputs.
 * @module
 */
import type { ConfState, NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** floor(n/2) + 1. */
export function majority(n: number): number { return (n >> 1) + 1; }

/**
 * The highest index acknowledged by a majority of `voters` (`match` gives each voter's index). An empty
 * voter set places no constraint, so it returns +Infinity, which lets a joint configuration defer to its
 * other half.
 */
export function majorityIndex(voters: readonly NodeId[], match: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return Infinity;
  if (n === 1) return match(voters[0]);
  // Runs once per Ready on the leader: insertion sort (descending) into reused scratch, since clusters are
  // small and Array.prototype.sort allocates.
  const xs = n <= scratch.length ? scratch : (scratch = new Float64Array(n));
  for (let i = 0; i < n; i++) {
    const v = match(voters[i]);
    let j = i;
    while (j > 0 && xs[j - 1] < v) { xs[j] = xs[j - 1]; j--; }
    xs[j] = v;
  }
  return xs[majority(n) - 1];
}
let scratch = new Float64Array(16);

/** The committed index under `conf`: in joint consensus, both majorities must agree. */
export function committedIndex(conf: ConfState, match: (id: NodeId) => number): number {
  const a = majorityIndex(conf.voters, match);
  if (!conf.outgoing) return a;
  return Math.min(a, majorityIndex(conf.outgoing, match));
}

function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let yes = 0, no = 0;
  for (const v of voters) {
    const g = votes.get(v);
    if (g === true) yes++; else if (g === false) no++;
  }
  const q = majority(voters.length);
  if (yes >= q) return 'won';
  if (voters.length - no < q) return 'lost';
  return 'pending';
}

/** The outcome of an election from the votes received so far. */
export function voteResult(conf: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(conf.voters, votes);
  if (!conf.outgoing) return a;
  const b = majorityVote(conf.outgoing, votes);
  if (a === 'lost' || b === 'lost') return 'lost';
  return a === 'won' && b === 'won' ? 'won' : 'pending';
}

/** Whether the nodes for which `has` holds form a quorum of `conf`. */
export function isQuorum(conf: ConfState, has: (id: NodeId) => boolean): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const v of conf.voters) votes.set(v, has(v));
  if (conf.outgoing) for (const v of conf.outgoing) votes.set(v, has(v));
  return voteResult(conf, votes) === 'won';
}

/** Every node the configuration names, voters first, without duplicates. */
export function members(conf: ConfState): NodeId[] {
  const out = new Set<NodeId>(conf.voters);
  if (conf.outgoing) for (const v of conf.outgoing) out.add(v);
  for (const l of conf.learners) out.add(l);
  return [...out];
}

/** Whether `id` may vote (and so campaign) under `conf`. */
export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || (conf.outgoing?.includes(id) ?? false);
}
