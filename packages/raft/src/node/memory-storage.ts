/**
 * `MemoryStorage`: a {@link Storage} kept in memory, for tests and for nodes that need no durability. It
 * copies what it is given and what it hands back, as a real store would, so a caller that mutates an
 * object after `save()` cannot change what was "written", and a node restarted from it (crash tests) sees
 * exactly what the resolved saves held.
 * @module
 */
import { RaftError } from '../core/errors.js';
import type { Entry, HardState, Snapshot } from '../core/types.js';
import type { Storage, StorageState, StorageUpdate } from './storage.js';

/** Options of {@link MemoryStorage}. */
export interface MemoryStorageOptions {
  /** Milliseconds each call takes, to mimic a disk in tests (default 0: resolves in a microtask). */
  latencyMs?: number;
}

const clone = <T>(v: T): T => structuredClone(v);

/** The "disk": shared by every handle `reopen()` makes, as a file is shared by successive processes. */
interface Disk {
  hardState: HardState | null;
  snapshot: Snapshot | null;
  entries: Entry[];
}

/** An in-memory {@link Storage}. Its state survives `close()`: `reopen()` gives a new handle on it, as a restarted process would open the same files. */
export class MemoryStorage implements Storage {
  private readonly disk: Disk;
  private closed = false;
  /** How many `save()` calls completed, for tests of group commit. */
  saves = 0;
  private readonly latencyMs: number;

  constructor(options: MemoryStorageOptions = {}, disk?: Disk) {
    this.latencyMs = options.latencyMs ?? 0;
    this.disk = disk ?? { hardState: null, snapshot: null, entries: [] };
  }

  /** A storage that shares this one's durable state but is open again: what a restarted process would see. */
  reopen(): MemoryStorage {
    return new MemoryStorage({ latencyMs: this.latencyMs }, this.disk);
  }

  async load(): Promise<StorageState> {
    await this.delay();
    const d = this.disk;
    return clone({ hardState: d.hardState, snapshot: d.snapshot, entries: d.entries });
  }

  async save(update: StorageUpdate): Promise<void> {
    this.checkOpen();
    // Copied before the delay: what is saved is what the caller passed, not what it holds when we resolve.
    const u = clone({ hardState: update.hardState, snapshot: update.snapshot, entries: [...update.entries] });
    await this.delay();
    if (this.closed) return;
    const d = this.disk;
    let entries = d.entries;
    let snapshot = d.snapshot;
    if (u.snapshot) {
      snapshot = u.snapshot;
      entries = [];
    }
    if (u.entries.length > 0) {
      const first = u.entries[0]!.index;
      const base = snapshot?.index ?? 0;
      const start = entries.length > 0 ? entries[0]!.index : base + 1;
      if (first > start + entries.length) throw new RaftError(`save would leave a gap before index ${first}`);
      if (first <= base) throw new RaftError(`save of index ${first} at or below the snapshot ${base}`);
      entries = entries.slice(0, first - start).concat(u.entries);
    }
    // Replaced as a whole, never mutated in place, so a crash between two lines cannot tear the log.
    d.entries = entries;
    d.snapshot = snapshot;
    if (u.hardState) d.hardState = u.hardState;
    this.saves++;
  }

  async compact(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    const snap = clone(snapshot);
    await this.delay();
    if (this.closed) return;
    const d = this.disk;
    if (d.snapshot && snap.index <= d.snapshot.index) return;
    d.entries = d.entries.filter((e) => e.index > snap.index);
    d.snapshot = snap;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new RaftError('storage is closed');
  }

  private delay(): Promise<void> {
    if (this.latencyMs <= 0) return Promise.resolve();
    return new Promise((resolve) => globalThis.setTimeout(resolve, this.latencyMs));
  }
}
