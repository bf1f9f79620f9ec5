/**
 * Proposal envelopes and the record of applied proposal ids that makes a retried or duplicated proposal
 * apply once. The record is part of the snapshot, so the guarantee survives compaction and restarts; it
 * keeps the most recent `capacity` ids (a retry older than that many proposals is not expected).
 * @module
 */

/** What a RaftNode writes as a normal entry's data: the proposal id and the application's command. */
export interface ProposalData {
  pid: string;
  cmd: unknown;
}

/** Whether entry data is a RaftNode proposal envelope. */
export function isProposalData(d: unknown): d is ProposalData {
  return typeof d === 'object' && d !== null && typeof (d as ProposalData).pid === 'string' && 'cmd' in d;
}

/** What a RaftNode stores as snapshot data: the application's state and the applied ids. */
export interface NodeSnapshotData {
  state: unknown;
  ids: string[];
}

/** Whether snapshot data was written by a RaftNode. */
export function isNodeSnapshotData(d: unknown): d is NodeSnapshotData {
  return typeof d === 'object' && d !== null && 'state' in d && Array.isArray((d as NodeSnapshotData).ids);
}

/** Applied proposal ids, oldest evicted first (a Set iterates in insertion order). */
export class AppliedIds {
  private ids = new Set<string>();
  /**
   * The same ids in arrival order, as a ring: evicting the oldest must be O(1). (Taking a Set's first value
   * is not: V8 skips every deleted slot before it, so a full window made each add scan up to its capacity.)
   */
  private ring: string[] = [];
  private head = 0;
  constructor(private readonly capacity = 100_000) {}

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    if (this.ids.has(id)) return;
    this.ids.add(id);
    if (this.ring.length < this.capacity) {
      this.ring.push(id);
      return;
    }
    this.ids.delete(this.ring[this.head]!);
    this.ring[this.head] = id;
    this.head = (this.head + 1) % this.capacity;
  }

  /** The ids, oldest first, for a snapshot. */
  toArray(): string[] {
    return [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
  }

  /** Replaces the record with a snapshot's. */
  reset(ids: readonly string[]): void {
    this.ids = new Set();
    this.ring = [];
    this.head = 0;
    for (const id of ids) this.add(id);
  }
}
