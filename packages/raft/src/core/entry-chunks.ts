/**
 * The storage under `RaftLog`: a sequence of entries kept in fixed-size chunks. One growing array would
 * copy itself whole each time it outgrows its capacity, and once it is old every store into it costs the
 * garbage collector a remembered-set entry; profiles put that at a third of the leader's time. Chunks are
 * filled once, never moved, and compaction drops whole chunks.
 * @module
 */
import type { Entry } from './types.js';

const SHIFT = 10;
const SIZE = 1 << SHIFT;
const MASK = SIZE - 1;

/** Entries at positions 0..length-1. Position p lives at chunks[(p + head) >> SHIFT][(p + head) & MASK]. */
export class EntryChunks {
  private chunks: Entry[][] = [[]];
  /** Slots of the first chunk already dropped by compaction. */
  private head = 0;
  length = 0;

  at(p: number): Entry {
    const q = p + this.head;
    return this.chunks[q >> SHIFT][q & MASK];
  }

  push(e: Entry): void {
    let last = this.chunks[this.chunks.length - 1];
    if (last.length === SIZE) this.chunks.push((last = []));
    last.push(e);
    this.length++;
  }

  /** Keeps the first `n` entries. */
  truncate(n: number): void {
    if (n >= this.length) return;
    const end = n + this.head;
    const k = end >> SHIFT;
    this.chunks.length = k + 1;
    this.chunks[k].length = end & MASK;
    this.length = n;
  }

  /** Drops the first `n` entries. */
  dropFront(n: number): void {
    if (n <= 0) return;
    if (n >= this.length) { this.clear(); return; }
    const start = n + this.head;
    const k = start >> SHIFT;
    if (k > 0) this.chunks = this.chunks.slice(k);
    this.head = start & MASK;
    this.length -= n;
  }

  clear(): void {
    this.chunks = [[]];
    this.head = 0;
    this.length = 0;
  }

  /** Entries at positions [a, b) as a new array. */
  slice(a: number, b: number): Entry[] {
    const qa = a + this.head, qb = b + this.head;
    if (qb <= qa) return [];
    const ka = qa >> SHIFT, kb = (qb - 1) >> SHIFT;
    if (ka === kb) return this.chunks[ka].slice(qa & MASK, ((qb - 1) & MASK) + 1);
    const out = new Array<Entry>(b - a);
    for (let p = a, i = 0; p < b; p++, i++) out[i] = this.at(p);
    return out;
  }
}
