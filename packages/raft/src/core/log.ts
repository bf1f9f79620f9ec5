/**
 * The in-memory Raft log: a snapshot base followed by consecutive entries, with the three cursors that say
 * how far each entry has travelled (handed out for persistence, committed, handed out for applying).
 * @module
 */
import { assert } from './errors.js';
import { EntryChunks } from './entry-chunks.js';
import type { Entry, Snapshot } from './types.js';

/**
 * Invariant: `snapIndex <= applied <= commit <= lastIndex()` and `snapIndex <= stabled <= lastIndex()`.
 * Entry `i` (for `snapIndex < i <= lastIndex()`) lives at position `i - snapIndex - 1` of `entries`.
 */
export class RaftLog {
  /** Index and term of the last entry covered by the snapshot (0, 0 for none). */
  snapIndex = 0;
  snapTerm = 0;
  /** Entries after the snapshot, shared by reference with messages and Readys: never mutated once placed. */
  private entries = new EntryChunks();
  /** Highest index known committed. */
  commit = 0;
  /** Highest index handed to the application through `Ready.committed` (or covered by a snapshot). */
  applied = 0;
  /** Highest index handed out through `Ready.entries`: later entries still need persisting. */
  stabled = 0;

  firstIndex(): number { return this.snapIndex + 1; }
  lastIndex(): number { return this.snapIndex + this.entries.length; }
  lastTerm(): number { return this.entries.length ? this.entries.at(this.entries.length - 1).term : this.snapTerm; }

  /** The term of entry `i`, or -1 when `i` is compacted away or beyond the end. */
  term(i: number): number {
    if (i === this.snapIndex) return this.snapTerm;
    const k = i - this.snapIndex - 1;
    return k >= 0 && k < this.entries.length ? this.entries.at(k).term : -1;
  }

  entry(i: number): Entry { return this.entries.at(i - this.snapIndex - 1); }

  matchTerm(i: number, term: number): boolean { return this.term(i) === term; }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const t = this.lastTerm();
    return lastTerm > t || (lastTerm === t && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi] (inclusive), sharing the entry objects. Immutable: it may be the last batch itself. */
  slice(lo: number, hi: number): Entry[] {
    const b = this.lastBatch;
    if (b !== null && b.length === hi - lo + 1 && b[0].index === lo && hi === this.lastIndex()) return b as Entry[];
    return this.entries.slice(lo - this.snapIndex - 1, hi - this.snapIndex);
  }

  /** Indices of the conf entries in `entries`, ascending, so commit need not scan every entry for them. */
  confIndices: number[] = [];

  /**
   * The entries array of the latest Append taken whole, if nothing else was appended since: Ready.entries
   * can then hand out that very array instead of a copy.
   */
  lastBatch: readonly Entry[] | null = null;

  /** Appends the entry that follows the last one. */
  push(e: Entry): void {
    this.lastBatch = null;
    this.entries.push(e);
    if (e.type === 'conf') this.confIndices.push(e.index);
  }

  /**
   * Appends entries received in an Append whose prevIndex/prevTerm matched, skipping those already held and truncating at
   * the first conflict (Raft §5.3). Returns the index of the first conflict, or 0 when nothing was replaced.
   */
  appendAfter(es: readonly Entry[]): number {
    let k = 0;
    // Skip the prefix we already hold; the common case of a pure append has last === prevIndex.
    const last = this.lastIndex();
    while (k < es.length && es[k].index <= last && this.term(es[k].index) === es[k].term) k++;
    if (k === es.length) return 0;
    const first = es[k].index;
    let conflict = 0;
    if (first <= last) {
      assert(first > this.commit, `conflict at ${first} would overwrite committed entries (commit ${this.commit})`);
      this.entries.truncate(first - this.snapIndex - 1);
      this.lastBatch = null;
      while (this.confIndices.length && this.confIndices[this.confIndices.length - 1] >= first) this.confIndices.pop();
      if (this.stabled >= first) this.stabled = first - 1;
      conflict = first;
    }
    for (let i = k; i < es.length; i++) this.push(es[i]);
    if (k === 0) this.lastBatch = es;
    return conflict;
  }

  /**
   * Fast conflict backtracking (etcd's findConflictByTerm): the largest index <= `index` whose term is
   * <= `term`. A leader that learns the follower's (index, term) can skip every entry of a term the
   * follower lacks in one round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i > this.snapIndex; i--) {
      const t = this.term(i);
      if (t <= term) return { index: i, term: t };
    }
    return { index: i, term: this.term(i) };
  }

  /** Drops entries up to `index` (inclusive), which becomes the new snapshot base. */
  compactTo(index: number, term: number): void {
    this.entries.dropFront(index - this.snapIndex);
    this.lastBatch = null;
    let k = 0;
    while (k < this.confIndices.length && this.confIndices[k] <= index) k++;
    if (k) this.confIndices = this.confIndices.slice(k);
    this.snapIndex = index;
    this.snapTerm = term;
  }

  /** Replaces the whole log with a snapshot's base (Raft §7). */
  restore(s: Snapshot): void {
    this.entries.clear();
    this.confIndices = [];
    this.lastBatch = null;
    this.snapIndex = s.index;
    this.snapTerm = s.term;
    this.commit = s.index;
    this.applied = s.index;
    this.stabled = s.index;
  }

  /** Committed entries not yet handed to the application. */
  hasUnapplied(): boolean { return this.commit > this.applied; }

  /** Unpersisted entries. */
  hasUnstable(): boolean { return this.lastIndex() > this.stabled; }
}
