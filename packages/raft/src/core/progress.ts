/**
 * What a leader knows about each follower's log (etcd's tracker/progress.go), and the flow control that
 * keeps it from flooding one that is slow or silent.
 *
 *   probe ──(append accepted)──▶ replicate ──(append rejected)──▶ probe
 *     │                              │
 *     └────(next < firstIndex)───────┴──────▶ snapshot ──(acknowledged)──▶ probe
 *
 * In `probe` the leader sends one append and waits for an answer (or a heartbeat answer) before the next.
 * In `replicate` it streams optimistically, bounded by a window of in-flight messages and bytes.
 * @module
 */

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A ring of the last index of each in-flight append, with their byte sizes, freed as acks arrive. */
export class Inflights {
  private readonly idx: Float64Array;
  private readonly size: Float64Array;
  private start = 0;
  count = 0;
  bytes = 0;

  constructor(readonly maxCount: number, readonly maxBytes: number) {
    this.idx = new Float64Array(maxCount);
    this.size = new Float64Array(maxCount);
  }

  full(): boolean { return this.count >= this.maxCount || this.bytes >= this.maxBytes; }

  add(lastIndex: number, bytes: number): void {
    const k = (this.start + this.count) % this.maxCount;
    this.idx[k] = lastIndex;
    this.size[k] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every in-flight append whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.count > 0 && this.idx[this.start] <= index) {
      this.bytes -= this.size[this.start];
      this.start = (this.start + 1) % this.maxCount;
      this.count--;
    }
    if (this.count === 0) { this.start = 0; this.bytes = 0; }
  }

  /** Frees the oldest in-flight append: a follower that answers heartbeats but lost appends gets a retry. */
  freeFirst(): void { if (this.count > 0) this.freeLE(this.idx[this.start]); }

  reset(): void { this.start = 0; this.count = 0; this.bytes = 0; }
}

/** Invariant: `match < next`. Entries up to `match` are known to be on the follower's log. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In `probe`, an append is out and unanswered. */
  probeSent = false;
  /** In `snapshot`, the index of the snapshot sent, and ticks since then (to resend a lost one). */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /** The highest commit index sent to this follower, so idle followers learn new commits promptly. */
  sentCommit = 0;
  /** Send an append even with no new entries or commit (a heartbeat answer showed the follower behind). */
  sendEmpty = false;
  readonly inflights: Inflights;

  constructor(readonly id: string, next: number, maxInflight: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  becomeProbe(): void {
    this.next = this.match + 1;
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  /** Records an accepted append up to `index`; returns false for a stale (duplicate or older) answer. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) { this.match = index; updated = true; this.probeSent = false; }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * Handles a rejection of the append whose prevIndex was `rejected`; `hint` is where to probe next.
   * Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe only the answer to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold back appends to this follower for now. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent;
      case 'replicate': return this.inflights.full();
      case 'snapshot': return true;
    }
  }
}
