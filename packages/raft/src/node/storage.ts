/**
 * What a {@link RaftNode} needs from durable storage. Every implementation runs the shared conformance
 * suite (`packages/raft/test/conformance/storage.ts`).
 * @module
 */
import type { Entry, HardState, Snapshot } from '../core/types.js';

/** Everything storage holds: what `RaftCore`'s `restore` option takes. */
export interface StorageState {
  hardState: HardState | null;
  /** The newest snapshot, or null. */
  snapshot: Snapshot | null;
  /** The entries after the snapshot, consecutive. */
  entries: Entry[];
}

/** One Ready's worth of state to make durable. */
export interface StorageUpdate {
  hardState: HardState | null;
  /** Replace the stored log with this snapshot's base (applied before `entries`). */
  snapshot: Snapshot | null;
  /** An entry at index i replaces the stored entry at i and every later one. */
  entries: readonly Entry[];
}

/**
 * Durable storage for one node. Calls are made one at a time, in order; each promise resolves only once
 * what it wrote would survive a crash (a real implementation fsyncs), so one `save()` per Ready is a group
 * commit of everything that Ready carries.
 */
export interface Storage {
  /** Reads back everything durable; called once, before any write. */
  load(): Promise<StorageState>;
  /** Makes one Ready's hard state, snapshot and entries durable. */
  save(update: StorageUpdate): Promise<void>;
  /** Stores a snapshot made by `RaftCore.compact()` and drops the entries it covers. */
  compact(snapshot: Snapshot): Promise<void>;
  /** Releases resources; no call follows. */
  close(): Promise<void>;
  /**
   * Optional: bytes written to the log since the newest snapshot, and that snapshot's size. With it, a node
   * compacts only once the log has grown as large as its last snapshot (see `RaftNodeOptions.snapshotEvery`).
   */
  sizes?(): StorageSizes;
}

/** What {@link Storage.sizes} reports. */
export interface StorageSizes {
  /** Bytes of log records written since the newest snapshot was installed (or since the start). */
  logBytes: number;
  /** Bytes of the newest snapshot; 0 when there is none. */
  snapshotBytes: number;
}
