/**
 * The room membership's decisions as pure functions of what a peer sees, so every rule is unit-testable
 * without timers or networks. `RoomMembership` gathers the view and carries the decisions out.
 *
 * - {@link planBootstrap}: whether a peer with no Raft state founds the room's cluster or waits to be added.
 * - {@link planMembership}: the one configuration change a leader should make next, if any.
 * - {@link planHandOver}: what a leader that is leaving the room does next.
 * @module
 */
import type { ConfState, NodeId, RaftStatus } from '@raftrtc/raft';
import type { PeerDisconnectReason, RoomPeerState } from './mesh-link.js';

/** What a peer knows when it decides whether to bootstrap. Times are on one monotonic clock, in ms. */
export interface BootstrapView {
  self: NodeId;
  now: number;
  /** When this peer joined the room. */
  joinedAt: number;
  /** How long a peer that does not know who was in the room at join waits before it bootstraps. */
  timeoutMs: number;
  /**
   * The room's other peers according to signaling when this peer joined, read after its own presence was
   * visible (see `docs/rtc-raft.md`); null when unknown. Empty: this peer was first in the room.
   */
  peersAtJoin: readonly NodeId[] | null;
  /** Peers whose channel is open. */
  connected: ReadonlySet<NodeId>;
  /** The last state each connected peer announced. */
  states: ReadonlyMap<NodeId, RoomPeerState>;
  /** Peers whose presence left the room (signaling said so). */
  left: ReadonlySet<NodeId>;
}

/** The outcome of {@link planBootstrap}. */
export type BootstrapDecision =
  | { action: 'bootstrap'; reason: 'first' | 'lowest-id' | 'timeout' }
  | { action: 'wait'; reason: 'cluster-exists' | 'lower-id' | 'unknown-peers' };

/**
 * Decides whether a peer with no Raft state bootstraps a one-voter cluster now. Every rival follows the
 * same rule, so at most one of them bootstraps while they can see each other:
 * 1. A connected peer that is a member means a cluster exists: wait, its leader adds us.
 * 2. Among the peers that could bootstrap (this one, and every connected peer that is `fresh` or has not
 *    said yet), only the lowest id does; the others wait for it.
 * 3. The lowest id bootstraps once it knows every peer listed at join: each is connected and has announced
 *    its state, or its presence left. A listed peer we cannot reach yet may be a member: bootstrapping
 *    beside it would make a second cluster, so we wait for the mesh to connect it or signaling to drop it.
 * 4. Without a list (`peersAtJoin` null) nothing tells us who is there: after `timeoutMs` the peer
 *    bootstraps unless rule 1 or 2 holds. This can split the room if a member's channel opens later than
 *    that; give the list whenever signaling has one. A connected peer still silent by then runs no
 *    membership and stops counting as a rival.
 * A lower-id rival that is `fresh` bootstraps as soon as it knows its own rivals, so waiting for it ends.
 */
export function planBootstrap(v: BootstrapView): BootstrapDecision {
  const expired = v.now >= v.joinedAt + v.timeoutMs;
  const rivals: NodeId[] = [];
  let silent = false;
  for (const p of v.connected) {
    const s = v.states.get(p);
    if (s === 'member') return { action: 'wait', reason: 'cluster-exists' };
    if (s === 'fresh') rivals.push(p);
    else if (s === undefined) {
      silent = true;
      if (!expired || v.peersAtJoin !== null) rivals.push(p);
    }
  }
  if (rivals.some((p) => p < v.self)) return { action: 'wait', reason: 'lower-id' };
  if (v.peersAtJoin === null) return expired ? { action: 'bootstrap', reason: 'timeout' } : { action: 'wait', reason: 'unknown-peers' };
  const known = (p: NodeId): boolean => v.left.has(p) || (v.connected.has(p) && v.states.has(p));
  if (silent || !v.peersAtJoin.every(known)) return { action: 'wait', reason: 'unknown-peers' };
  return { action: 'bootstrap', reason: v.peersAtJoin.length === 0 && rivals.length === 0 ? 'first' : 'lowest-id' };
}

/** A peer whose channel closed, and why; `since` on the driver's clock. */
export interface DownPeer {
  since: number;
  /** `unseen`: a member this peer never had a channel to (it knows of it only from the log). */
  reason: PeerDisconnectReason | 'unseen';
}

/** What a leader knows when it plans the next configuration change. */
export interface MembershipView {
  self: NodeId;
  now: number;
  status: Pick<RaftStatus, 'role' | 'commit' | 'conf' | 'progress' | 'transferee'>;
  connected: ReadonlySet<NodeId>;
  /** The last state each connected peer announced. */
  states: ReadonlyMap<NodeId, RoomPeerState>;
  /** Peers that went away, since when and why. */
  down: ReadonlyMap<NodeId, DownPeer>;
  /** How long an unreachable member keeps its place. */
  graceMs: number;
  /** Action keys ({@link actionKey}) not to propose now: backing off after a failure, or given up on. */
  blocked: ReadonlySet<string>;
}

/** One configuration change, or (for a leaving leader) a leadership transfer. */
export type MembershipAction =
  | { type: 'remove'; node: NodeId; why: 'left' | 'leaving' | 'unreachable' }
  | { type: 'promote'; node: NodeId }
  | { type: 'addLearner'; node: NodeId }
  | { type: 'transfer'; node: NodeId };

/** A stable key for an action: failures are counted and backed off per key. */
export function actionKey(a: MembershipAction): string {
  return `${a.type}:${a.node}`;
}

const members = (conf: ConfState): NodeId[] => [...new Set([...conf.voters, ...conf.learners, ...(conf.outgoing ?? [])])].sort();

/**
 * The next configuration change a leader should propose, or null. Only a leader plans, and only outside
 * joint consensus and leadership transfers (the core would refuse). In order of urgency:
 * 1. Remove a member that left the room (presence leave) or announced it is leaving.
 * 2. Remove a member unreachable for `graceMs` or longer.
 * 3. Promote a connected learner that has caught up (its match reached the leader's commit index).
 * 4. Add a connected peer that announced `fresh` or `waiting` and is not a member, as a learner (a voter
 *    only once caught up: a slow newcomer must not weaken the quorum while it copies the log). A peer that
 *    says `member` while not in our configuration belongs to another cluster: adding it would overwrite its
 *    log with ours, so it is left alone (a member we removed says `waiting`, see `RoomMembership`).
 * Removals come first: they shrink the quorum the later changes need. Peers are taken in id order, so the
 * plan is deterministic.
 */
export function planMembership(v: MembershipView): MembershipAction | null {
  const st = v.status;
  if (st.role !== 'leader' || st.conf.outgoing || st.transferee !== null) return null;
  const ok = (a: MembershipAction): boolean => !v.blocked.has(actionKey(a));
  const others = members(st.conf).filter((m) => m !== v.self);
  const candidates: MembershipAction[] = [];
  for (const m of others) {
    const down = v.down.get(m);
    if (down?.reason === 'left' && !v.connected.has(m)) candidates.push({ type: 'remove', node: m, why: 'left' });
    else if (v.connected.has(m) && v.states.get(m) === 'leaving') candidates.push({ type: 'remove', node: m, why: 'leaving' });
  }
  for (const m of others) {
    const down = v.down.get(m);
    if (!v.connected.has(m) && down !== undefined && down.reason !== 'left' && v.now - down.since >= v.graceMs) {
      candidates.push({ type: 'remove', node: m, why: 'unreachable' });
    }
  }
  for (const m of [...st.conf.learners].sort()) {
    if (m === v.self || !v.connected.has(m) || v.states.get(m) === 'leaving') continue;
    const match = st.progress?.[m]?.match ?? 0;
    if (match >= st.commit) candidates.push({ type: 'promote', node: m });
  }
  const isMember = new Set(others);
  for (const p of [...v.connected].sort()) {
    const s = v.states.get(p);
    if (p === v.self || isMember.has(p) || (s !== 'fresh' && s !== 'waiting')) continue;
    candidates.push({ type: 'addLearner', node: p });
  }
  return candidates.find(ok) ?? null;
}

/**
 * The connected peer among `candidates` (other than `self`) with the highest match in the leader's progress,
 * ties broken by id; null when none is connected. A leaving leader hands leadership to the most caught-up
 * voter: it needs the fewest entries before it can take over.
 */
function mostCaughtUp(self: NodeId, candidates: readonly NodeId[], progress: RaftStatus['progress'], connected: ReadonlySet<NodeId>): NodeId | null {
  let best: NodeId | null = null;
  let bestMatch = -1;
  for (const c of [...candidates].sort()) {
    if (c === self || !connected.has(c)) continue;
    const match = progress?.[c]?.match ?? 0;
    if (match > bestMatch) { best = c; bestMatch = match; }
  }
  return best;
}

/**
 * What a leaving leader does next, or null. It hands leadership to the most caught-up connected voter that
 * is staying (the new leader then removes it, see {@link planMembership}); with no such voter it promotes
 * the most caught-up staying learner, which becomes that voter; with neither, it removes itself, leaving
 * the others (all leaving, or unreachable) to whatever quorum remains. A lone voter has nobody to hand
 * over to and nothing to remove (the core keeps at least one voter): null.
 */
export function planHandOver(v: MembershipView): MembershipAction | null {
  const st = v.status;
  if (st.role !== 'leader' || st.conf.outgoing || st.transferee !== null) return null;
  const staying = (p: NodeId): boolean => v.connected.has(p) && v.states.has(p) && v.states.get(p) !== 'leaving';
  const candidates: MembershipAction[] = [];
  const voter = mostCaughtUp(v.self, st.conf.voters.filter(staying), st.progress, v.connected);
  if (voter !== null) candidates.push({ type: 'transfer', node: voter });
  const learner = mostCaughtUp(v.self, st.conf.learners.filter(staying), st.progress, v.connected);
  if (voter === null && learner !== null) candidates.push({ type: 'promote', node: learner });
  if (st.conf.voters.some((p) => p !== v.self)) candidates.push({ type: 'remove', node: v.self, why: 'leaving' });
  return candidates.find((a) => !v.blocked.has(actionKey(a))) ?? null;
}
