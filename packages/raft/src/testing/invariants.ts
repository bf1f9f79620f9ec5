/**
 * The safety properties of Raft (Figure 3 of the paper), checked as a simulated run goes. Every check is
 * incremental: the checker remembers fingerprints of what it has seen (each (index, term)'s data and
 * predecessor, every leader by term, every committed index) and compares each new write, apply or
 * election against them, so checking after every event costs little.
 *
 * Memory grows with the log: one small record per (index, term) ever persisted.
 * @module
 */
import type { Entry, NodeId, ReadState, Ready, Role, Snapshot } from '../core/types.js';
import { canonicalJson, hashString } from './digest.js';
import { InvariantViolation, type RunInfo } from './errors.js';
import type { DurableStore } from './storage.js';

/** The properties checked, each with where Raft states it. */
export const PROPERTIES = {
  electionSafety: ['Election Safety', 'Raft §5.2'],
  leaderAppendOnly: ['Leader Append-Only', 'Raft §5.3'],
  logMatching: ['Log Matching', 'Raft §5.3'],
  leaderCompleteness: ['Leader Completeness', 'Raft §5.4'],
  stateMachineSafety: ['State Machine Safety', 'Raft §5.4.3'],
  appliedInOrder: ['Each index applied once, in order', 'Raft Figure 2, lastApplied'],
  durableState: ['Durable state', 'Raft Figure 2, persistent state'],
  readLinearizability: ['Linearizable reads', 'Raft thesis §6.4'],
} as const satisfies Record<string, readonly [string, string]>;

type PropertyKey = keyof typeof PROPERTIES;

/** What is known of a committed index: its term, and its data's fingerprint when an entry was seen. */
interface Committed {
  term: number;
  digest: number | undefined;
  source: string;
}

/** What was first seen at one (index, term): every later copy must agree (Log Matching). */
interface Seen {
  digest: number;
  prevTerm: number;
  node: NodeId;
}

interface NodeTrack {
  /** Index of the last entry the node's state machine holds (applied or restored from a snapshot). */
  applied: number;
  /** The term in which the node currently leads, null when it does not. */
  leaderTerm: number | null;
  /** ReadIndex requests and the committed index at the moment each was made. */
  reads: { key: string; minIndex: number }[];
}

/** Checks Raft's safety properties incrementally; the simulation calls it around every Ready. */
export class InvariantChecker {
  private readonly leaders = new Map<number, NodeId>();
  private readonly seen = new Map<number, Map<number, Seen>>();
  private readonly committed: (Committed | undefined)[] = [];
  /** The highest index any node has known to be committed. */
  private maxCommit = 0;
  private readonly snapshots = new Map<number, { term: number; digest: number; node: NodeId }>();
  private readonly nodes = new Map<NodeId, NodeTrack>();
  private readonly digests = new WeakMap<Entry, number>();

  /** `run` tells where the simulation is, for the violation message. */
  constructor(private readonly run: () => RunInfo) {}

  /** The highest index known committed so far. */
  get commitIndex(): number {
    return this.maxCommit;
  }

  /** A node (re)starts: its state machine holds what its durable snapshot holds, and it leads nothing. */
  onStart(id: NodeId, store: DurableStore): void {
    this.nodes.set(id, { applied: store.snapIndex, leaderTerm: null, reads: [] });
  }

  /** Before a Ready is persisted: checks the write against what is already durable. */
  beforePersist(id: NodeId, rd: Ready, term: number, store: DurableStore): void {
    const hs = rd.hardState;
    const old = store.hardState;
    if (hs && old) {
      if (hs.term < old.term) this.fail('durableState', `${id}'s term went back from ${old.term} to ${hs.term}`);
      if (hs.term === old.term && old.vote !== null && hs.vote !== old.vote) {
        this.fail('electionSafety', `${id} voted for ${old.vote} and then for ${hs.vote ?? 'nobody'} in term ${hs.term}`);
      }
      if (hs.commit < old.commit) this.fail('durableState', `${id}'s commit index went back from ${old.commit} to ${hs.commit}`);
    }
    const track = this.track(id);
    const leading = track.leaderTerm === term && rd.role === 'leader';
    if (rd.snapshot && leading) this.fail('leaderAppendOnly', `${id}, leader in term ${term}, replaced its log with a snapshot at ${rd.snapshot.index}`);
    const es = rd.entries;
    if (es.length === 0) return;
    const snapIndex = rd.snapshot ? rd.snapshot.index : store.snapIndex;
    const lastIndex = rd.snapshot ? rd.snapshot.index : store.lastIndex;
    const first = es[0].index;
    if (first > lastIndex + 1) this.fail('durableState', `${id} persisted entry ${first} after its last entry ${lastIndex}, leaving a gap`);
    if (first <= snapIndex) this.fail('durableState', `${id} persisted entry ${first}, which its snapshot at ${snapIndex} already covers`);
    if (leading && first <= lastIndex) {
      this.fail('leaderAppendOnly', `${id}, leader in term ${term}, overwrote its entries from index ${first} (it held up to ${lastIndex})`);
    }
    let prevTerm = rd.snapshot && first === snapIndex + 1 ? rd.snapshot.term : store.term(first - 1) ?? 0;
    for (let k = 0; k < es.length; k++) {
      const e = es[k];
      if (e.index !== first + k) this.fail('durableState', `${id} was asked to persist non-consecutive entries (${first + k} expected, got ${e.index})`);
      if (e.term < prevTerm) this.fail('durableState', `${id} persisted entry ${e.index} of term ${e.term} after one of term ${prevTerm}`);
      prevTerm = e.term;
    }
  }

  /** After a Ready was persisted: fingerprints the new entries and learns what the durable commit covers. */
  afterPersist(id: NodeId, rd: Ready, store: DurableStore): void {
    if (rd.snapshot) {
      this.noteSnapshot(id, rd.snapshot);
      this.noteCommitted(id, rd.snapshot.index, rd.snapshot.term, undefined, 'a snapshot');
    }
    for (const e of rd.entries) this.noteEntry(id, e, store.term(e.index - 1) ?? 0);
    const hs = rd.hardState;
    if (!hs) return;
    if (hs.commit > store.lastIndex) this.fail('durableState', `${id} made commit index ${hs.commit} durable, beyond its last durable entry ${store.lastIndex}`);
    for (let i = this.maxCommit + 1; i <= hs.commit; i++) {
      const e = store.entry(i);
      if (e) this.noteCommitted(id, i, e.term, this.digest(e), 'its durable commit index');
    }
    if (hs.commit > this.maxCommit) this.maxCommit = hs.commit;
  }

  /** A node's state machine was restored from a snapshot (a Ready's, or its durable one at restart). */
  onRestore(id: NodeId, snapshot: Snapshot): void {
    const track = this.track(id);
    if (snapshot.index < track.applied) {
      this.fail('appliedInOrder', `${id} restored a snapshot at ${snapshot.index} after applying up to ${track.applied}; entries after it would apply twice`);
    }
    track.applied = snapshot.index;
  }

  /** A node applied one committed entry. */
  onApply(id: NodeId, e: Entry): void {
    const track = this.track(id);
    if (e.index !== track.applied + 1) this.fail('appliedInOrder', `${id} applied index ${e.index} after ${track.applied}`);
    track.applied = e.index;
    this.noteCommitted(id, e.index, e.term, this.digest(e), 'an applied entry');
    if (e.index > this.maxCommit) this.maxCommit = e.index;
  }

  /** A node compacted its log into `snapshot` at its applied index. */
  onCompact(id: NodeId, snapshot: Snapshot): void {
    const track = this.track(id);
    if (snapshot.index !== track.applied) this.fail('stateMachineSafety', `${id}'s compact(${track.applied}) returned a snapshot at ${snapshot.index}`);
    this.noteSnapshot(id, snapshot);
    this.noteCommitted(id, snapshot.index, snapshot.term, undefined, 'a snapshot');
  }

  /**
   * A node's role and term as of now. Call after its Ready is persisted, so a new leader's log is durable
   * and can be compared with everything committed.
   */
  onRole(id: NodeId, role: Role, term: number, store: DurableStore): void {
    const track = this.track(id);
    if (role !== 'leader') {
      track.leaderTerm = null;
      return;
    }
    if (track.leaderTerm === term) return;
    const other = this.leaders.get(term);
    if (other !== undefined && other !== id) this.fail('electionSafety', `${other} and ${id} were both leader in term ${term}`);
    this.leaders.set(term, id);
    track.leaderTerm = term;
    this.checkCompleteness(id, term, store);
  }

  /** A node was asked for a linearizable read point; `key` identifies the request's context. */
  onReadRequest(id: NodeId, key: string): void {
    this.track(id).reads.push({ key, minIndex: this.maxCommit });
  }

  /** A node answered a read: the point must cover every index committed before the read was asked for. */
  onReadState(id: NodeId, key: string, rs: ReadState): void {
    const reads = this.track(id).reads;
    const k = reads.findIndex((r) => r.key === key);
    if (k < 0) return;
    const [req] = reads.splice(k, 1);
    if (rs.index < req.minIndex) {
      this.fail('readLinearizability', `${id} answered read ${key} at index ${rs.index}, but ${req.minIndex} was committed before it was asked`);
    }
  }

  private checkCompleteness(id: NodeId, term: number, store: DurableStore): void {
    const snap = store.snapshot;
    if (snap) {
      const c = this.committed[snap.index];
      if (c && c.term !== snap.term) this.fail('leaderCompleteness', `${id} became leader in term ${term} with a snapshot at ${snap.index} of term ${snap.term}, but that index committed in term ${c.term}`);
    }
    for (let i = store.snapIndex + 1; i <= this.maxCommit; i++) {
      const c = this.committed[i];
      if (!c) continue;
      const held = store.term(i);
      if (held !== c.term) {
        const has = held === undefined ? 'does not hold it' : `holds term ${held} there`;
        this.fail('leaderCompleteness', `${id} became leader in term ${term} but index ${i}, committed in term ${c.term}, is missing: it ${has}`);
      }
    }
  }

  private noteEntry(id: NodeId, e: Entry, prevTerm: number): void {
    let byTerm = this.seen.get(e.index);
    if (!byTerm) this.seen.set(e.index, (byTerm = new Map()));
    const digest = this.digest(e);
    const s = byTerm.get(e.term);
    if (!s) {
      byTerm.set(e.term, { digest, prevTerm, node: id });
      return;
    }
    if (s.digest !== digest) this.fail('logMatching', `${id} and ${s.node} hold different entries at index ${e.index}, term ${e.term}`);
    if (s.prevTerm !== prevTerm) {
      this.fail('logMatching', `${id} and ${s.node} agree on index ${e.index}, term ${e.term} but not on the entry before it (terms ${prevTerm} and ${s.prevTerm})`);
    }
  }

  private noteCommitted(id: NodeId, index: number, term: number, digest: number | undefined, source: string): void {
    const c = this.committed[index];
    if (!c) {
      this.committed[index] = { term, digest, source: `${id} (${source})` };
      return;
    }
    if (c.term !== term || (digest !== undefined && c.digest !== undefined && digest !== c.digest)) {
      this.fail('stateMachineSafety', `index ${index} is committed as term ${term} by ${id} (${source}) but as term ${c.term} with other data by ${c.source}`);
    }
    if (c.digest === undefined) c.digest = digest;
  }

  private noteSnapshot(id: NodeId, s: Snapshot): void {
    const digest = hashString(canonicalJson(s.data));
    const prev = this.snapshots.get(s.index);
    if (!prev) {
      this.snapshots.set(s.index, { term: s.term, digest, node: id });
      return;
    }
    if (prev.term !== s.term || prev.digest !== digest) {
      this.fail('stateMachineSafety', `${id} and ${prev.node} have different snapshots at index ${s.index}`);
    }
  }

  private digest(e: Entry): number {
    let d = this.digests.get(e);
    if (d === undefined) {
      d = hashString(`${e.type}:${JSON.stringify(e.data)}`);
      this.digests.set(e, d);
    }
    return d;
  }

  private track(id: NodeId): NodeTrack {
    const t = this.nodes.get(id);
    if (!t) throw new RangeError(`the invariant checker was not told that ${id} started`);
    return t;
  }

  private fail(key: PropertyKey, detail: string): never {
    const [property, section] = PROPERTIES[key];
    throw new InvariantViolation(property, section, detail, this.run());
  }
}
