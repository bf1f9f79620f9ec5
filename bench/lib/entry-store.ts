/**
 * In-memory "durable" log storage for benches: entries by reference, in fixed-size chunks.
 *
 * One growing array would do, but a large array lives in old space, and every store of a young entry into
 * it takes the write barrier's slow path, besides the copies each growth makes; profiled, that cost more
 * than parts of the core. A fresh chunk is young and fills before the next scavenge, so its stores are
 * cheap, and compaction drops whole chunks without copying.
 * @module
 */
import type { Entry } from '../../packages/raft/src/index.js';

const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
const MASK = CHUNK - 1;

export class EntryStore {
  private chunks: (Entry | undefined)[][] = [];
  /** The index held by `chunks[0][0]`. */
  private origin = 1;
  /** First index still held: everything before it is compacted into a snapshot. */
  first = 1;
  /** Last index held (`first - 1` when empty). */
  last = 0;

  /** Persists per the contract: an entry at index i replaces the stored entry at i and every later one. */
  write(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0].index;
    if (from < this.first) throw new RangeError(`entry ${from} is before the first stored index ${this.first}`);
    if (from <= this.last) this.last = from - 1;
    for (let i = 0; i < entries.length; i++) this.append(entries[i]);
  }

  /** Adds the entry after the last one. */
  append(e: Entry): void {
    if (e.index !== this.last + 1) throw new RangeError(`entry ${e.index} does not follow ${this.last}`);
    const k = e.index - this.origin;
    const c = k >>> CHUNK_BITS;
    let chunk = this.chunks[c];
    if (chunk === undefined) {
      chunk = new Array<Entry | undefined>(CHUNK);
      this.chunks.push(chunk);
    }
    chunk[k & MASK] = e;
    this.last = e.index;
  }

  get(index: number): Entry | undefined {
    if (index < this.first || index > this.last) return undefined;
    const k = index - this.origin;
    return this.chunks[k >>> CHUNK_BITS][k & MASK];
  }

  /** Drops entries up to `index`, as after persisting a snapshot at `index`. */
  compactTo(index: number): void {
    if (index < this.first) return;
    this.first = index + 1;
    if (this.last < index) this.last = index;
    while (this.chunks.length > 0 && this.origin + CHUNK <= this.first) {
      this.chunks.shift();
      this.origin += CHUNK;
    }
  }

  /** Replaces everything with a snapshot's base. */
  restore(index: number): void {
    this.chunks = [];
    this.origin = index + 1;
    this.first = index + 1;
    this.last = index;
  }
}
