/**
 * `RaftCore`: the deterministic Raft state machine (etcd's RawNode design). It reads no clock, sets no
 * timer and does no I/O: time enters through {@link RaftCore.tick}, peers' messages through
 * {@link RaftCore.step}, and everything it wants done leaves through {@link RaftCore.ready}.
 *
 * Layout of this file, after etcd's raft.go: the public API; `step`, which checks terms once and handles
 * votes, then dispatches to `stepLeader` / `stepCandidate` / `stepFollower`; the message handlers; the
 * `becomeX` functions, the only code that changes the role; replication and commit; the Ready cycle.
 * @module
 */
import { applyConfEntry, validateConfChanges } from './confchange.js';
import {
  CompactionError, ConfChangeError, NotLeaderError, ProposalDroppedError, RaftError, UsageError, assert,
} from './errors.js';
import { RaftLog } from './log.js';
import {
  validateMessage, validateSnapshot,
  type AppendMsg, type AppendRespMsg, type HeartbeatMsg, type HeartbeatRespMsg, type Message,
  type SnapshotMsg,
} from './messages.js';
import { Progress } from './progress.js';
import { committedIndex, isQuorum, isVoter, members, voteResult } from './quorum.js';
import { ReadIndexQueue, type PendingRead } from './read-index.js';
import type {
  ConfChange, ConfEntryData, ConfState, Entry, HardState, NodeId, Ready, ReadState, Role, Snapshot,
} from './types.js';

/** Options of {@link RaftCore}. The first group is fixed by the contract; the rest tune flow control. */
export interface RaftCoreOptions {
  id: NodeId;
  /** Initial voters of a new cluster (including `id`). Empty or absent: wait to be added by a leader. */
  voters?: NodeId[];
  /** What storage held at restart. `applied` defaults to the snapshot's index (or 0). */
  restore?: { hardState?: HardState; entries?: Entry[]; snapshot?: Snapshot | null; applied?: number };
  /** Default 10; each election timeout is drawn from [electionTicks, 2 * electionTicks). */
  electionTicks?: number;
  /** Default 1. */
  heartbeatTicks?: number;
  /** Default true: campaign only after a pre-vote round shows a quorum would vote (thesis §9.6). */
  preVote?: boolean;
  /** Default true: a leader steps down without a quorum's answers in an election timeout (thesis §6.2). */
  checkQuorum?: boolean;
  /** The only source of randomness (default Math.random); with it fixed, runs replay exactly. */
  random?: () => number;
  /** Approximate byte limit of the entries in one Append (at least one entry is always sent). Default 1 MiB. */
  maxMsgBytes?: number;
  /** Appends in flight per follower while replicating. Default 256. */
  maxInflightMsgs?: number;
  /** Approximate bytes in flight per follower. Default 16 MiB. */
  maxInflightBytes?: number;
}

/** Counters of incoming messages dropped without effect. */
export interface DropCounts {
  /** Failed shape validation. */
  malformed: number;
  /** Addressed to another node, or claiming to come from this one. */
  foreign: number;
  /** From an older term, or no longer relevant in the current role. */
  stale: number;
}

/** A snapshot of the node's state for monitoring and tests. */
export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  role: Role;
  leader: NodeId | null;
  commit: number;
  applied: number;
  firstIndex: number;
  lastIndex: number;
  conf: ConfState;
  dropped: DropCounts;
  /** Leadership transfer in progress (leader only). */
  transferee: NodeId | null;
  /** The leader's view of each follower. */
  progress?: Record<NodeId, { match: number; next: number; state: string }>;
}

type StepFn = (m: Message) => void;

/** Rough encoded size of a value, cheap for the common cases (strings, numbers, small objects). */
function approxSize(v: unknown, depth = 0): number {
  switch (typeof v) {
    case 'string': return v.length + 2;
    case 'number': return 8;
    case 'boolean': return 5;
    case 'object': {
      if (v === null) return 4;
      if (depth > 4) return 64;
      let n = 2;
      if (Array.isArray(v)) { for (const x of v) n += approxSize(x, depth + 1) + 1; return n; }
      for (const k in v as Record<string, unknown>) n += k.length + 4 + approxSize((v as Record<string, unknown>)[k], depth + 1);
      return n;
    }
    default: return 8;
  }
}
const ENTRY_OVERHEAD = 48;

/** The deterministic Raft state machine. See the module comment and `docs/raft-core.md`. */
export class RaftCore {
  readonly id: NodeId;
  private term = 0;
  private vote: NodeId | null = null;
  private role: Role = 'follower';
  private leader: NodeId | null = null;
  private readonly log = new RaftLog();

  /**
   * The configuration in force: the one after the newest conf entry in the log, committed or not (thesis
   * §4.1). A node must act on a configuration as soon as it holds it: were it to wait for the commit, a
   * removed leader that steps down before the others learn the commit would leave them unable to elect.
   */
  private conf: ConfState = { voters: [], learners: [] };
  /** The configuration at the snapshot base, and after each conf entry in the log since (ascending). */
  private confBase: ConfState = { voters: [], learners: [] };
  private confHistory: { index: number; conf: ConfState }[] = [];
  /** Index of the last conf entry proposed by this leader; a new one waits until it commits. */
  private pendingConfIndex = 0;
  /** The newest snapshot, kept to send to followers that fall behind the first index. */
  private snapshot: Snapshot | null = null;

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly random: () => number;
  private readonly maxMsgBytes: number;
  private readonly maxInflightMsgs: number;
  private readonly maxInflightBytes: number;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private stepRole: StepFn = this.stepFollower;
  private tickRole: () => void = this.tickElection;

  private votes = new Map<NodeId, boolean>();
  /** Leader only: each other member's progress, by id and as a list (iterated on every Ready). */
  private prs = new Map<NodeId, Progress>();
  private followers: Progress[] = [];
  private transferee: NodeId | null = null;
  private readonly reads = new ReadIndexQueue();
  /** ReadIndex requests waiting until this leader commits an entry of its own term (thesis §6.4 step 1). */
  private readsBeforeCommit: { from: NodeId; context: unknown }[] = [];
  private sliceCache: { lo: number; hi: number; entries: Entry[] } | null = null;
  /** Leader only: appends or commit may need to go out; settled once per Ready by `flush()`. */
  private dirty = false;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  private snapshotToPersist: Snapshot | null = null;
  private lastHardState: HardState = { term: 0, vote: null, commit: 0 };
  private lastRole: Role | null = null;
  private lastLeader: NodeId | null = null;
  private readyInFlight = false;
  private readonly dropped: DropCounts = { malformed: 0, foreign: 0, stale: 0 };

  constructor(options: RaftCoreOptions) {
    if (typeof options?.id !== 'string' || options.id.length === 0) throw new TypeError('RaftCore needs a non-empty id');
    this.id = options.id;
    this.electionTicks = options.electionTicks ?? 10;
    this.heartbeatTicks = options.heartbeatTicks ?? 1;
    if (!(this.electionTicks > this.heartbeatTicks && this.heartbeatTicks >= 1)) {
      throw new RangeError('electionTicks must exceed heartbeatTicks, which must be at least 1');
    }
    this.preVote = options.preVote ?? true;
    this.checkQuorum = options.checkQuorum ?? true;
    this.random = options.random ?? Math.random;
    this.maxMsgBytes = options.maxMsgBytes ?? 1 << 20;
    this.maxInflightMsgs = options.maxInflightMsgs ?? 256;
    this.maxInflightBytes = options.maxInflightBytes ?? 16 << 20;
    this.restore(options.restore ?? {}, options.voters ?? []);
    this.becomeFollower(this.term, null);
  }

  /** Rebuilds state from storage, or bootstraps a new cluster when storage is empty. */
  private restore(r: NonNullable<RaftCoreOptions['restore']>, voters: NodeId[]): void {
    const log = this.log;
    if (r.snapshot) {
      const bad = validateSnapshot(r.snapshot);
      if (bad) throw new RaftError(`restored snapshot is malformed: ${bad}`);
      log.restore(r.snapshot);
      this.snapshot = r.snapshot;
      this.confBase = r.snapshot.conf;
    }
    const entries = (r.entries ?? []).filter((e) => e.index > log.snapIndex);
    for (const e of entries) {
      if (e.index !== log.lastIndex() + 1) throw new RaftError(`restored log has a gap before index ${e.index}`);
      log.push(e);
    }
    log.stabled = log.lastIndex();
    const hs = r.hardState;
    if (hs) {
      this.term = hs.term;
      this.vote = hs.vote;
      log.commit = Math.min(Math.max(hs.commit, log.snapIndex), log.lastIndex());
      this.lastHardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    }
    const fresh = !r.snapshot && entries.length === 0 && !hs;
    if (fresh && voters.length > 0) {
      // Like etcd's bootstrap: every initial voter writes the same entry 1, so a node added later learns the
      // initial configuration from the log like any other change. Sorted: every voter must write it identically.
      const data: ConfEntryData = { op: 'bootstrap', voters: [...new Set(voters)].sort() };
      log.push({ index: 1, term: 1, type: 'conf', data });
      this.term = 1;
      log.commit = 1;
    }
    log.applied = Math.min(Math.max(r.applied ?? log.snapIndex, log.snapIndex), log.commit);
    this.syncConf(0);
  }

  // ---- Public API ------------------------------------------------------------------------------------

  /** Advances logical time by one tick: elections and heartbeats are counted in ticks. */
  tick(): void { this.tickRole(); }

  /**
   * Feeds a message from another node. A malformed, foreign or stale message is dropped and counted in
   * `status().dropped`; this never throws for anything a peer sends.
   */
  step(m: Message): void {
    if (validateMessage(m) !== null) { this.dropped.malformed++; return; }
    if (m.to !== this.id || m.from === this.id) { this.dropped.foreign++; return; }
    if (m.term > this.term) {
      if (m.type === 'PreVote' || m.type === 'Vote') {
        // A follower that heard from a live leader ignores campaigns (thesis §4.2.3), unless the leader
        // itself asked for one by transferring leadership.
        const inLease = this.checkQuorum && this.leader !== null && this.electionElapsed < this.electionTicks;
        if (inLease && !(m.type === 'Vote' && m.transfer)) { this.dropped.stale++; return; }
      }
      if (m.type === 'PreVote' || (m.type === 'PreVoteResp' && !m.reject)) {
        // Pre-votes travel in the term the sender would campaign in; they change nobody's term.
      } else {
        const fromLeader = m.type === 'Append' || m.type === 'Heartbeat' || m.type === 'Snapshot';
        this.becomeFollower(m.term, fromLeader ? m.from : null);
      }
    } else if (m.term < this.term) {
      if (m.type === 'Append' || m.type === 'Heartbeat') {
        // A leader cut off by a partition would never learn the newer term otherwise: with pre-vote and
        // check-quorum nobody campaigns against it. Our answer carries our term and makes it step down.
        this.send({ type: 'AppendResp', from: this.id, term: this.term, to: m.from, index: 0, reject: true, hintIndex: 0, hintTerm: 0 });
      } else if (m.type === 'PreVote') {
        this.send({ type: 'PreVoteResp', from: this.id, term: this.term, to: m.from, reject: true });
      } else {
        this.dropped.stale++;
      }
      return;
    }

    if (m.type === 'PreVote' || m.type === 'Vote') {
      this.handleVoteRequest(m);
      return;
    }
    this.stepRole(m);
  }

  /**
   * Appends `data` to the log as a normal entry. Throws {@link NotLeaderError} unless leader,
   * {@link ProposalDroppedError} during a leadership transfer, and TypeError for null or undefined data.
   */
  propose(data: unknown): { index: number; term: number } {
    if (data === null || data === undefined) throw new TypeError('proposal data must not be null or undefined');
    this.checkCanPropose();
    const index = this.log.lastIndex() + 1;
    this.appendEntry({ index, term: this.term, type: 'normal', data });
    return { index, term: this.term };
  }

  /**
   * Proposes a membership change: one change is a single-server change, several go through joint
   * consensus, left automatically once the joint configuration commits. Throws {@link ConfChangeError}
   * while another change is in flight or when the change is invalid.
   */
  proposeConfChange(changes: ConfChange[]): { index: number; term: number } {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.commit) throw new ConfChangeError('another membership change is still in flight');
    validateConfChanges(this.conf, changes);
    const index = this.log.lastIndex() + 1;
    const data: ConfEntryData = { op: 'change', changes: changes.map((c) => ({ type: c.type, node: c.node })) };
    this.appendConf(data);
    return { index, term: this.term };
  }

  /**
   * Hands leadership to `to` (thesis §3.10): the leader brings it up to date, then tells it to campaign.
   * Proposals are refused meanwhile; a transfer not done within an election timeout is abandoned.
   */
  transferLeader(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (to === this.id) return;
    const pr = this.prs.get(to);
    if (!pr || !isVoter(this.conf, to)) throw new ConfChangeError(`cannot transfer leadership to ${to}: not a voter`);
    if (this.transferee === to) return;
    this.transferee = to;
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.send({ type: 'TimeoutNow', from: this.id, term: this.term, to });
    else this.dirty = true;
  }

  /**
   * Asks for a linearizable read point. The answer arrives as a `Ready.readStates` item carrying `context`;
   * serve the read once the state machine has applied its index. A follower forwards the request to the
   * leader; with no known leader this throws {@link NotLeaderError}.
   */
  readIndex(context: unknown): void {
    if (context === undefined) throw new TypeError('readIndex context must not be undefined');
    if (this.role === 'leader') { this.handleReadRequest(this.id, context); return; }
    if (this.leader === null) throw new NotLeaderError(null);
    this.send({ type: 'ReadIndex', from: this.id, term: this.term, to: this.leader, context });
  }

  /**
   * Makes a snapshot at applied index `index` with the application's state `data`, and drops the log up
   * to it. Persist the returned snapshot and drop stored entries up to its index.
   */
  compact(index: number, data: unknown): Snapshot {
    const log = this.log;
    if (!Number.isSafeInteger(index) || index <= log.snapIndex) throw new CompactionError(`index ${index} is already compacted (first index ${log.firstIndex()})`);
    if (index > log.applied) throw new CompactionError(`index ${index} is not applied yet (applied ${log.applied})`);
    if (data === undefined) throw new TypeError('snapshot data must not be undefined');
    const snap: Snapshot = { index, term: log.term(index), conf: this.confAt(index), data };
    log.compactTo(index, snap.term);
    this.confBase = snap.conf;
    this.confHistory = this.confHistory.filter((h) => h.index > index);
    this.snapshot = snap;
    return snap;
  }

  /** Whether `ready()` has anything to hand out. False while a Ready is being handled. */
  hasReady(): boolean {
    if (this.readyInFlight) return false;
    if (this.dirty) this.flush();
    const log = this.log;
    return this.msgs.length > 0 || log.hasUnstable() || log.hasUnapplied() || this.snapshotToPersist !== null
      || this.readStates.length > 0 || this.role !== this.lastRole || this.leader !== this.lastLeader
      || this.hardStateChanged();
  }

  /** Takes everything pending. Handle it in the contract's order, then call {@link advance}. */
  ready(): Ready {
    if (this.readyInFlight) throw new UsageError('ready() called again before advance()');
    if (this.dirty) this.flush();
    const log = this.log;
    let hardState: HardState | null = null;
    if (this.hardStateChanged()) {
      hardState = { term: this.term, vote: this.vote, commit: log.commit };
      this.lastHardState = hardState;
    }
    const last = log.lastIndex();
    const entries = log.stabled < last ? log.slice(log.stabled + 1, last) : EMPTY;
    log.stabled = last;
    const committed = log.applied < log.commit ? log.slice(log.applied + 1, log.commit) : EMPTY;
    log.applied = log.commit;
    const rd: Ready = {
      role: this.role, leader: this.leader, hardState, entries, snapshot: this.snapshotToPersist,
      committed, messages: this.msgs, readStates: this.readStates.length ? this.readStates : EMPTY,
    };
    this.snapshotToPersist = null;
    this.msgs = [];
    if (this.readStates.length) this.readStates = [];
    this.lastRole = this.role;
    this.lastLeader = this.leader;
    this.readyInFlight = true;
    return rd;
  }

  /** Acknowledges that the last Ready was fully handled (persisted, applied, sent). */
  advance(): void {
    if (!this.readyInFlight) throw new UsageError('advance() called without a ready()');
    this.readyInFlight = false;
  }

  /** The node's state, for monitoring and tests. */
  status(): RaftStatus {
    const log = this.log;
    const st: RaftStatus = {
      id: this.id, term: this.term, vote: this.vote, role: this.role, leader: this.leader,
      commit: log.commit, applied: log.applied, firstIndex: log.firstIndex(), lastIndex: log.lastIndex(),
      conf: structuredCloneConf(this.conf), dropped: { ...this.dropped }, transferee: this.transferee,
    };
    if (this.role === 'leader') {
      st.progress = {};
      for (const [id, pr] of this.prs) st.progress[id] = { match: pr.match, next: pr.next, state: pr.state };
    }
    return st;
  }

  // ---- Votes (Raft §5.2, §5.4.1; thesis §9.6) --------------------------------------------------------

  private handleVoteRequest(m: Extract<Message, { type: 'PreVote' | 'Vote' }>): void {
    const pre = m.type === 'PreVote';
    // We may vote again for the one we voted for (a retried request), vote when we have no vote and know
    // no leader, and always pre-vote for a future term.
    const canVote = this.vote === m.from || (this.vote === null && this.leader === null) || (pre && m.term > this.term);
    const type = pre ? 'PreVoteResp' : 'VoteResp';
    if (canVote && this.log.isUpToDate(m.lastIndex, m.lastTerm)) {
      // A granted pre-vote answers in the term it was asked for, so the pre-candidate can count it.
      this.send({ type, from: this.id, term: m.term, to: m.from, reject: false });
      if (!pre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type, from: this.id, term: this.term, to: m.from, reject: true });
    }
  }

  // ---- Role step functions -------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'AppendResp': this.handleAppendResp(m); return;
      case 'HeartbeatResp': this.handleHeartbeatResp(m); return;
      case 'ReadIndex': this.handleReadRequest(m.from, m.context); return;
      case 'Append': case 'Heartbeat': case 'Snapshot':
      case 'PreVoteResp': case 'VoteResp': case 'TimeoutNow': case 'ReadIndexResp':
      case 'PreVote': case 'Vote':
        this.dropped.stale++;
        return;
      default: unreachable(m);
    }
  }

  /** Shared by pre-candidates and candidates (etcd's stepCandidate). */
  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'Append': case 'Heartbeat': case 'Snapshot':
        // A leader of our term exists (Raft §5.2): give up the campaign and follow it.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case 'PreVoteResp': case 'VoteResp': {
        if ((m.type === 'PreVoteResp') !== (this.role === 'pre-candidate')) { this.dropped.stale++; return; }
        this.votes.set(m.from, !m.reject);
        const result = voteResult(this.conf, this.votes);
        if (result === 'won') {
          if (this.role === 'pre-candidate') this.campaign(false);
          else this.becomeLeader();
        } else if (result === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      case 'AppendResp': case 'HeartbeatResp': case 'TimeoutNow': case 'ReadIndex': case 'ReadIndexResp':
      case 'PreVote': case 'Vote':
        this.dropped.stale++;
        return;
      default: unreachable(m);
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'Append': this.heardFromLeader(m.from); this.handleAppend(m); return;
      case 'Heartbeat': this.heardFromLeader(m.from); this.handleHeartbeat(m); return;
      case 'Snapshot': this.heardFromLeader(m.from); this.handleSnapshot(m); return;
      case 'TimeoutNow':
        if (this.promotable()) this.campaign(false, true);
        else this.dropped.stale++;
        return;
      case 'ReadIndexResp': this.readStates.push({ index: m.index, context: m.context }); return;
      case 'ReadIndex':
        // The asker believes we lead; pass it on if we know who does.
        if (this.leader !== null && this.leader !== m.from) this.send({ type: 'ReadIndex', from: this.id, term: this.term, to: this.leader, context: m.context });
        else this.dropped.stale++;
        return;
      case 'AppendResp': case 'HeartbeatResp': case 'PreVoteResp': case 'VoteResp':
      case 'PreVote': case 'Vote':
        this.dropped.stale++;
        return;
      default: unreachable(m);
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.leader = from;
  }

  // ---- Follower handlers (Raft §5.3, §7) -----------------------------------------------------------

  private handleAppend(m: AppendMsg): void {
    const log = this.log;
    let prevIndex = m.prevIndex, prevTerm = m.prevTerm, entries = m.entries;
    if (prevIndex < log.commit) {
      // Entries up to our commit index match the leader's (committed entries never change), so continue
      // from there: a reordered, older Append may still carry entries we lack.
      const skip = log.commit - prevIndex;
      if (skip >= entries.length) {
        this.send({ type: 'AppendResp', from: this.id, term: this.term, to: m.from, index: log.commit, reject: false, hintIndex: 0, hintTerm: 0 });
        return;
      }
      prevIndex = log.commit;
      prevTerm = entries[skip - 1].term;
      entries = entries.slice(skip);
    }
    if (log.matchTerm(prevIndex, prevTerm)) {
      if (!this.conflictIsSafe(entries)) { this.dropped.malformed++; return; }
      this.syncConf(log.appendAfter(entries));
      const lastNew = prevIndex + entries.length;
      this.commitTo(Math.min(m.commit, lastNew));
      this.send({ type: 'AppendResp', from: this.id, term: this.term, to: m.from, index: lastNew, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    // Fast backtracking: name the last index whose term is at most the leader's prevTerm, so the leader can
    // skip past all entries of a term we do not share (thesis §5.3 optimisation, as in etcd).
    const hint = log.findConflictByTerm(Math.min(prevIndex, log.lastIndex()), prevTerm);
    this.send({ type: 'AppendResp', from: this.id, term: this.term, to: m.from, index: m.prevIndex, reject: true, hintIndex: hint.index, hintTerm: Math.max(hint.term, 0) });
  }

  /** A leader never asks to overwrite committed entries; a message that would is garbage. */
  private conflictIsSafe(entries: readonly Entry[]): boolean {
    const log = this.log;
    for (const e of entries) {
      if (e.index > log.commit) return true;
      const t = log.term(e.index);
      if (t !== -1 && t !== e.term) return false;
    }
    return true;
  }

  private handleHeartbeat(m: HeartbeatMsg): void {
    this.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send({ type: 'HeartbeatResp', from: this.id, term: this.term, to: m.from, ctx: m.ctx });
  }

  private handleSnapshot(m: SnapshotMsg): void {
    const s = m.snapshot;
    const log = this.log;
    if (s.index <= log.commit) {
      this.send({ type: 'AppendResp', from: this.id, term: this.term, to: m.from, index: log.commit, reject: false, hintIndex: 0, hintTerm: 0 });
      return;
    }
    if (log.matchTerm(s.index, s.term)) {
      // We already hold the snapshot's last entry, hence (log matching) everything before it: keep the log
      // and just learn that it is committed.
      this.commitTo(s.index);
    } else {
      log.restore(s);
      this.snapshot = s;
      this.snapshotToPersist = s;
      this.confBase = s.conf;
      this.confHistory = [];
      this.syncConf(0);
    }
    this.send({ type: 'AppendResp', from: this.id, term: this.term, to: m.from, index: log.commit, reject: false, hintIndex: 0, hintTerm: 0 });
  }

  // ---- Leader handlers -----------------------------------------------------------------------------

  private handleAppendResp(m: AppendRespMsg): void {
    const pr = this.prs.get(m.from);
    if (!pr) { this.dropped.stale++; return; }
    pr.recentActive = true;
    const log = this.log;
    if (m.reject) {
      const next = m.hintTerm > 0 ? log.findConflictByTerm(m.hintIndex, m.hintTerm).index : m.hintIndex;
      if (pr.maybeDecrTo(m.index, next)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.dirty = true;
      } else {
        this.dropped.stale++;
      }
      return;
    }
    if (m.index > log.lastIndex()) { this.dropped.malformed++; return; }
    if (!pr.maybeUpdate(m.index)) {
      if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
      return;
    }
    switch (pr.state) {
      case 'probe': pr.becomeReplicate(); break;
      case 'snapshot': if (pr.match >= pr.pendingSnapshot) { pr.becomeProbe(); pr.becomeReplicate(); } break;
      case 'replicate': pr.inflights.freeLE(m.index); break;
    }
    this.dirty = true;
    if (m.from === this.transferee && pr.match === log.lastIndex()) this.send({ type: 'TimeoutNow', from: this.id, term: this.term, to: m.from });
  }

  private handleHeartbeatResp(m: HeartbeatRespMsg): void {
    const pr = this.prs.get(m.from);
    if (!pr) { this.dropped.stale++; return; }
    pr.recentActive = true;
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirst();
    if (pr.match < this.log.lastIndex()) {
      // Our last append may have been lost: with nothing new to send, nothing else would ever retry it.
      pr.sendEmpty = true;
      this.dirty = true;
    } else if (pr.sentCommit < this.log.commit) {
      this.dirty = true;
    }
    if (m.ctx > 0) for (const r of this.reads.ack(m.from, m.ctx, this.conf, this.id)) this.answerRead(r);
  }

  private handleReadRequest(from: NodeId, context: unknown): void {
    if (this.log.term(this.log.commit) !== this.term) {
      // Until an entry of this term commits, our commit index may lag the true one (thesis §6.4 step 1).
      this.readsBeforeCommit.push({ from, context });
      return;
    }
    const index = this.log.commit;
    if (isQuorum(this.conf, (v) => v === this.id)) {
      this.answerRead({ seq: 0, index, from, context });
      return;
    }
    this.reads.add(index, from, context);
    this.bcastHeartbeat();
  }

  private answerRead(r: PendingRead): void {
    if (r.from === this.id) this.readStates.push({ index: r.index, context: r.context });
    else this.send({ type: 'ReadIndexResp', from: this.id, term: this.term, to: r.from, index: r.index, context: r.context });
  }

  // ---- Ticks -----------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.preVote);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        const active = isQuorum(this.conf, (v) => v === this.id || (this.prs.get(v)?.recentActive ?? false));
        if (!active) { this.becomeFollower(this.term, null); return; }
        for (const pr of this.followers) pr.recentActive = false;
      }
      this.transferee = null;
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  // ---- Role changes: the only code that sets `role` -----------------------------------------------

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + Math.floor(this.random() * this.electionTicks);
    this.votes.clear();
    this.prs.clear();
    this.followers = [];
    this.transferee = null;
    this.reads.clear();
    this.readsBeforeCommit = [];
    this.dirty = false;
  }

  private becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
  }

  private becomePreCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a pre-candidate');
    // Pre-candidates keep their term and vote: a pre-vote round changes nothing durable.
    this.votes.clear();
    this.leader = null;
    this.role = 'pre-candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeCandidate(): void {
    assert(this.role !== 'leader', 'a leader cannot become a candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
  }

  private becomeLeader(): void {
    assert(this.role === 'candidate', `only a candidate can become leader, not a ${this.role}`);
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    const last = this.log.lastIndex();
    this.trackMembers();
    // Raft §5.4.2: an entry of our own term must commit before earlier ones count as committed; it also
    // fences membership changes until then (the single-server change fix, thesis §4.1 errata).
    this.appendEntry({ index: last + 1, term: this.term, type: 'normal', data: null });
    this.pendingConfIndex = last + 1;
  }

  /** Gives every member of the configuration a progress record (new ones probe from the end of our log). */
  private trackMembers(): void {
    const keep = new Set(members(this.conf));
    keep.delete(this.id);
    for (const id of this.prs.keys()) if (!keep.has(id)) this.prs.delete(id);
    const next = this.log.lastIndex() + 1;
    for (const id of keep) if (!this.prs.has(id)) this.prs.set(id, new Progress(id, next, this.maxInflightMsgs, this.maxInflightBytes));
    this.followers = [...this.prs.values()];
  }

  /** Starts an election: a pre-vote round first when `pre`, otherwise a real one (Raft §5.2). */
  private campaign(pre: boolean, transfer = false): void {
    if (pre) this.becomePreCandidate();
    else this.becomeCandidate();
    const term = pre ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (voteResult(this.conf, this.votes) === 'won') {
      if (pre) this.campaign(false);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex(), lastTerm = this.log.lastTerm();
    for (const id of members(this.conf)) {
      if (id === this.id || !isVoter(this.conf, id)) continue;
      if (pre) this.send({ type: 'PreVote', from: this.id, term, to: id, lastIndex, lastTerm });
      else this.send({ type: 'Vote', from: this.id, term, to: id, lastIndex, lastTerm, ...(transfer ? { transfer } : {}) });
    }
  }

  /**
   * Whether this node may campaign: no snapshot waits to be persisted, and it is a voter in its newest
   * configuration or in its committed one. The second case matters for a leader that proposed its own
   * removal and lost leadership before the change committed: its log may be the only one holding the
   * change, so no other node can win without its vote, which it must refuse to a shorter log. It
   * campaigns, counting votes under its newest configuration, commits the change, then steps down.
   */
  private promotable(): boolean {
    if (this.snapshotToPersist !== null) return false;
    return isVoter(this.conf, this.id) || isVoter(this.confAt(this.log.commit), this.id);
  }

  // ---- Replication and commit (Raft §5.3, §5.4) ----------------------------------------------------

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (this.transferee !== null) throw new ProposalDroppedError(`leadership is being transferred to ${this.transferee}`);
  }

  private appendEntry(e: Entry): void {
    this.log.push(e);
    this.dirty = true;
  }

  /** Appends a conf entry as leader; it takes effect at once. */
  private appendConf(data: ConfEntryData): void {
    const index = this.log.lastIndex() + 1;
    this.appendEntry({ index, term: this.term, type: 'conf', data });
    this.pendingConfIndex = index;
    this.syncConf(0);
  }

  /**
   * Settles what the leader owes: advances the commit index, then sends every follower what it lacks.
   * Run once per Ready, so a burst of proposals goes out as one batch per follower.
   */
  private flush(): void {
    this.dirty = false;
    this.sliceCache = null;
    if (this.role !== 'leader') return;
    this.maybeCommit();
    if (this.role !== 'leader') return;
    for (const pr of this.followers) this.sendAppends(pr);
  }

  private matchOf = (id: NodeId): number => (id === this.id ? this.log.lastIndex() : this.prs.get(id)?.match ?? 0);

  private maybeCommit(): void {
    const log = this.log;
    const index = committedIndex(this.conf, this.matchOf);
    // Raft §5.4.2: count replicas only for entries of the current term.
    if (index > log.commit && index !== Infinity && log.term(index) === this.term) this.commitTo(index);
  }

  /** Raises the commit index and brings committed membership changes into force. */
  private commitTo(index: number): void {
    const log = this.log;
    if (index <= log.commit) return;
    log.commit = index;
    if (this.role !== 'leader') return;
    if (this.pendingConfIndex <= index && this.lastConfIndex() <= index) {
      if (!isVoter(this.conf, this.id)) { this.stepDownRemoved(); return; }
      if (this.conf.outgoing) this.appendConf({ op: 'leaveJoint' });
    }
    if (this.readsBeforeCommit.length && log.term(index) === this.term) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const r of waiting) this.handleReadRequest(r.from, r.context);
    }
  }

  /**
   * Brings the configuration in line with the log after it changed: forgets what a truncation at
   * `conflict` (0: none) removed, then applies conf entries appended since.
   */
  private syncConf(conflict: number): void {
    const h = this.confHistory;
    let changed = false;
    if (conflict > 0) while (h.length && h[h.length - 1].index >= conflict) { h.pop(); changed = true; }
    const known = h.length ? h[h.length - 1].index : this.log.snapIndex;
    const conf0 = h.length ? h[h.length - 1].conf : this.confBase;
    let conf = conf0;
    for (const i of this.log.confIndices) {
      if (i <= known) continue;
      conf = applyConfEntry(conf, this.log.entry(i).data as ConfEntryData);
      h.push({ index: i, conf });
      changed = true;
    }
    if (!changed && this.conf === conf0) return;
    this.conf = h.length ? h[h.length - 1].conf : this.confBase;
    if (this.role === 'leader') {
      this.trackMembers();
      if (this.transferee !== null && !isVoter(this.conf, this.transferee)) this.transferee = null;
    }
  }

  private lastConfIndex(): number {
    const h = this.confHistory;
    return h.length ? h[h.length - 1].index : this.log.snapIndex;
  }

  private confAt(index: number): ConfState {
    for (let k = this.confHistory.length - 1; k >= 0; k--) if (this.confHistory[k].index <= index) return this.confHistory[k].conf;
    return this.confBase;
  }

  /**
   * The configuration that removed (or demoted) this leader has committed: it steps down (thesis §4.2.2),
   * telling the others the commit index first so they need not wait for another leader to learn it.
   */
  private stepDownRemoved(): void {
    for (const pr of this.followers) { pr.probeSent = false; pr.sendEmpty = true; this.sendAppends(pr); }
    this.becomeFollower(this.term, null);
  }

  /** Sends `to` the entries it lacks, within its flow-control window (or the snapshot when it is too far behind). */
  private sendAppends(pr: Progress): void {
    const log = this.log;
    const to = pr.id;
    if (pr.isPaused()) return;
    if (pr.next - 1 < log.snapIndex) { this.sendSnapshot(pr); return; }
    const last = log.lastIndex();
    for (;;) {
      const prevIndex = pr.next - 1;
      const commit = log.commit;
      let hi = prevIndex;
      let bytes = 0;
      while (hi < last) {
        const size = ENTRY_OVERHEAD + approxSize(log.entry(hi + 1).data);
        if (hi > prevIndex && bytes + size > this.maxMsgBytes) break;
        hi++;
        bytes += size;
      }
      if (hi === prevIndex && pr.sentCommit >= commit && !pr.sendEmpty) return;
      const entries = this.entriesFor(prevIndex + 1, hi);
      this.send({ type: 'Append', from: this.id, term: this.term, to, prevIndex, prevTerm: log.term(prevIndex), entries, commit });
      pr.sentCommit = Math.min(commit, hi);
      pr.sendEmpty = false;
      if (pr.state === 'replicate' && hi > prevIndex) {
        pr.next = hi + 1;
        pr.inflights.add(hi, bytes);
        if (pr.inflights.full() || hi === last) return;
      } else {
        if (pr.state === 'probe') pr.probeSent = true;
        return;
      }
    }
  }

  /**
   * Entries [lo, hi] for an Append. Followers in step need the same range, so one flush hands them all the
   * same (immutable) array.
   */
  private entriesFor(lo: number, hi: number): Entry[] {
    if (hi < lo) return EMPTY;
    const c = this.sliceCache;
    if (c !== null && c.lo === lo && c.hi === hi) return c.entries;
    const entries = this.log.slice(lo, hi);
    this.sliceCache = { lo, hi, entries };
    return entries;
  }

  private sendSnapshot(pr: Progress): void {
    assert(this.snapshot !== null && this.snapshot.index === this.log.snapIndex, 'a compacted log must keep its snapshot');
    this.send({ type: 'Snapshot', from: this.id, term: this.term, to: pr.id, snapshot: this.snapshot });
    pr.becomeSnapshot(this.snapshot.index);
  }

  private bcastHeartbeat(): void {
    const ctx = this.reads.currentRound();
    const commit = this.log.commit;
    for (const pr of this.followers) {
      if (pr.state === 'snapshot' && ++pr.snapshotTicks * this.heartbeatTicks >= 2 * this.electionTicks) {
        // The snapshot (or its answer) was probably lost: probe again, which resends it if still needed.
        pr.becomeProbe();
        this.dirty = true;
      }
      this.send({ type: 'Heartbeat', from: this.id, term: this.term, to: pr.id, commit: Math.min(pr.match, commit), ctx });
    }
  }

  // ---- Outbox and Ready ------------------------------------------------------------------------------

  /**
   * The only outbox. Messages are built whole, sender and term included, so every message of a type shares
   * one object shape (stamping fields on afterwards would give each a slower, larger layout).
   */
  private send(m: Message): void {
    this.msgs.push(m);
  }

  private hardStateChanged(): boolean {
    const h = this.lastHardState;
    return h.term !== this.term || h.vote !== this.vote || h.commit !== this.log.commit;
  }
}

/** Shared empty array for empty Ready fields: everything handed out is immutable by contract. */
const EMPTY = Object.freeze([]) as unknown as never[];

function structuredCloneConf(c: ConfState): ConfState {
  const out: ConfState = { voters: [...c.voters], learners: [...c.learners] };
  if (c.outgoing) out.outgoing = [...c.outgoing];
  return out;
}

function unreachable(m: never): never {
  throw new RaftError(`unhandled message ${JSON.stringify(m)}`);
}
