/**
 * A node's durable storage in the simulation: exactly what Ready handling made durable, and nothing the
 * core merely held in memory. A restart rebuilds the node from this alone.
 * @module
 */
import type { Entry, HardState, Snapshot } from '../core/types.js';

/** What a restarted core is given: the `restore` option of the RaftCore constructor. */
export interface Restore {
  hardState?: HardState;
  entries: Entry[];
  snapshot: Snapshot | null;
}

/**
 * Invariant: `entries` are consecutive and start right after the snapshot's index (or at 1 without one).
 * The store does not validate what it is given; the invariant checker inspects every write first.
 */
export class DurableStore {
  hardState: HardState | null = null;
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];

  /** Index of the last entry the snapshot covers, 0 without a snapshot. */
  get snapIndex(): number {
    return this.snapshot?.index ?? 0;
  }

  /** Index of the last durable entry, counting the snapshot's. */
  get lastIndex(): number {
    return this.entries.length > 0 ? this.entries[this.entries.length - 1].index : this.snapIndex;
  }

  /** The durable entry at `index`, if it is held as an entry (not folded into the snapshot). */
  entry(index: number): Entry | undefined {
    const e = this.entries[index - this.snapIndex - 1];
    return e !== undefined && e.index === index ? e : undefined;
  }

  /** The term of `index`: from its entry, the snapshot's term at the snapshot's index, 0 at index 0. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    if (index === this.snapIndex) return this.snapshot?.term;
    return this.entry(index)?.term;
  }

  /**
   * Makes one Ready's state durable, as the contract says: the snapshot replaces the whole log, then each
   * entry at index i replaces the stored entry at i and every later one.
   */
  persist(hardState: HardState | null, snapshot: Snapshot | null, entries: readonly Entry[]): void {
    if (hardState) this.hardState = hardState;
    if (snapshot) {
      this.snapshot = snapshot;
      this.entries = [];
    }
    if (entries.length > 0) {
      const keep = Math.max(0, entries[0].index - this.snapIndex - 1);
      this.entries.length = Math.min(this.entries.length, keep);
      for (const e of entries) this.entries.push(e);
    }
  }

  /** Stores a snapshot made by `compact()` and drops the entries it covers. */
  compact(snapshot: Snapshot): void {
    const drop = snapshot.index - this.snapIndex;
    this.snapshot = snapshot;
    this.entries = this.entries.slice(Math.max(0, drop));
  }

  /** A deep copy of the stored state, as a restarted node would read it back from disk. */
  read(): Restore {
    const copy = JSON.parse(JSON.stringify({ hardState: this.hardState, entries: this.entries, snapshot: this.snapshot })) as {
      hardState: HardState | null; entries: Entry[]; snapshot: Snapshot | null;
    };
    return copy.hardState ? { hardState: copy.hardState, entries: copy.entries, snapshot: copy.snapshot } : { entries: copy.entries, snapshot: copy.snapshot };
  }

  /** Whether anything was ever made durable. */
  get empty(): boolean {
    return this.hardState === null && this.snapshot === null && this.entries.length === 0;
  }

  /** Bytes of Raft state (JSON of hard state and entries, snapshot excluded), like the lab's RaftStateSize. */
  logBytes(): number {
    return JSON.stringify({ hardState: this.hardState, entries: this.entries }).length;
  }

  /** Bytes of the snapshot (JSON), 0 without one. */
  snapshotBytes(): number {
    return this.snapshot ? JSON.stringify(this.snapshot).length : 0;
  }
}
