/**
 * `IndexedDBStorage`: a durable {@link Storage} for browsers, on the IndexedDB web API. One database per
 * node (its `name`), with two object stores: `meta` (the hard state and the snapshot, under fixed keys) and
 * `entries` (each entry under its index, so key order is log order). Every `save()` and `compact()` is one
 * readwrite transaction, and its promise resolves on the transaction's `complete` event, asked for with
 * `durability: 'strict'` (the browser flushes to disk before `complete`; browsers that do not know the
 * option ignore it and use their default). A crash therefore leaves each call entirely applied or not at all.
 *
 * The package compiles without the DOM lib (it also runs in Node.js), so the few IndexedDB types used here
 * are declared locally, as the subset of the standard API they describe.
 * @module
 */
import { RaftError } from '../core/errors.js';
import type { Entry, HardState, Snapshot } from '../core/types.js';
import type { Storage, StorageState, StorageUpdate } from './storage.js';

/** IndexedDB is not available here (not a browser, a worker without it, or the browser refused to open the database). */
export class StorageUnavailableError extends RaftError {}

/** An IndexedDB transaction failed or was refused (a save that would leave a gap, quota exceeded, closed storage). */
export class IndexedDBStorageError extends RaftError {}

// --- The subset of the IndexedDB API this file uses (standard names, minimal members). ---

/** A request: `result` once `onsuccess` fired, `error` once `onerror` did. */
export interface IdbRequestLike<T> {
  readonly result: T;
  readonly error: unknown;
  onsuccess: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

interface IdbOpenRequestLike extends IdbRequestLike<IdbDatabaseLike> {
  onupgradeneeded: ((ev: unknown) => void) | null;
  onblocked: ((ev: unknown) => void) | null;
}

interface IdbCursorLike {
  readonly key: unknown;
}

interface IdbObjectStoreLike {
  get(key: string): IdbRequestLike<unknown>;
  getAll(): IdbRequestLike<unknown[]>;
  put(value: unknown, key: string | number): IdbRequestLike<unknown>;
  delete(range: unknown): IdbRequestLike<undefined>;
  clear(): IdbRequestLike<undefined>;
  openKeyCursor(range: null, direction: 'prev'): IdbRequestLike<IdbCursorLike | null>;
}

interface IdbTransactionLike {
  readonly error: unknown;
  objectStore(name: string): IdbObjectStoreLike;
  abort(): void;
  oncomplete: ((ev: unknown) => void) | null;
  onabort: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

interface IdbDatabaseLike {
  transaction(stores: string[], mode: 'readonly' | 'readwrite', options?: { durability?: 'strict' | 'relaxed' | 'default' }): IdbTransactionLike;
  createObjectStore(name: string): unknown;
  readonly objectStoreNames: { contains(name: string): boolean };
  onversionchange: ((ev: unknown) => void) | null;
  close(): void;
}

/** `indexedDB`'s type, as far as this file uses it. */
export interface IdbFactoryLike {
  open(name: string, version?: number): IdbOpenRequestLike;
  deleteDatabase(name: string): IdbOpenRequestLike;
}

/** `IDBKeyRange`'s static side, as far as this file uses it. */
export interface IdbKeyRangeLike {
  lowerBound(lower: number): unknown;
  upperBound(upper: number): unknown;
}

/** Options of {@link IndexedDBStorage}. */
export interface IndexedDBStorageOptions {
  /** The database's name: one per node, e.g. `raft-${clusterId}-${nodeId}`. */
  name: string;
  /** The factory to use; default `globalThis.indexedDB` (a polyfill such as fake-indexeddb can be passed for tests). */
  indexedDB?: IdbFactoryLike;
  /** `IDBKeyRange`; default `globalThis.IDBKeyRange`. */
  keyRange?: IdbKeyRangeLike;
}

const VERSION = 1;
const META = 'meta';
const ENTRIES = 'entries';
const HARD_STATE_KEY = 'hardState';
const SNAPSHOT_KEY = 'snapshot';

interface Api {
  factory: IdbFactoryLike;
  keyRange: IdbKeyRangeLike;
}

/** The IndexedDB globals, or a {@link StorageUnavailableError} saying which one is missing. */
function resolveApi(options: { indexedDB?: IdbFactoryLike; keyRange?: IdbKeyRangeLike }): Api {
  const g = globalThis as unknown as { indexedDB?: IdbFactoryLike; IDBKeyRange?: IdbKeyRangeLike };
  const factory = options.indexedDB ?? g.indexedDB;
  const keyRange = options.keyRange ?? g.IDBKeyRange;
  if (!factory || !keyRange) {
    throw new StorageUnavailableError(`IndexedDB is not available in this environment (${factory ? 'IDBKeyRange' : 'indexedDB'} is missing)`);
  }
  return { factory, keyRange };
}

const describeError = (err: unknown): string =>
  err instanceof Error || (typeof err === 'object' && err !== null && 'message' in err) ? String((err as { message: unknown }).message) : String(err);

/**
 * A {@link Storage} on IndexedDB. Its state outlives the page: a new `IndexedDBStorage` with the same
 * `name` (after a reload, or in a restarted worker) loads exactly what the resolved saves wrote.
 */
export class IndexedDBStorage implements Storage {
  readonly name: string;
  private readonly api: Api;
  private db: Promise<IdbDatabaseLike> | null = null;
  private closed = false;
  /** Set when another connection deletes or upgrades the database: this one had to let go of it. */
  private lost = false;

  /** Throws {@link StorageUnavailableError} at once when there is no IndexedDB, so a caller can fall back (e.g. to `MemoryStorage`). */
  constructor(options: IndexedDBStorageOptions) {
    this.name = options.name;
    this.api = resolveApi(options);
  }

  /** Deletes a node's database (e.g. when it leaves the cluster for good). Open handles on it are closed first, through `versionchange`. */
  static destroy(name: string, options: { indexedDB?: IdbFactoryLike } = {}): Promise<void> {
    // Only the factory is needed here; resolveApi would also demand IDBKeyRange.
    const factory = options.indexedDB ?? (globalThis as unknown as { indexedDB?: IdbFactoryLike }).indexedDB;
    if (!factory) return Promise.reject(new StorageUnavailableError('IndexedDB is not available in this environment (indexedDB is missing)'));
    return new Promise((resolve, reject) => {
      const req = factory.deleteDatabase(name);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(new IndexedDBStorageError(`could not delete database "${name}": ${describeError(req.error)}`, { cause: req.error }));
    });
  }

  async load(): Promise<StorageState> {
    const db = await this.open();
    const out: StorageState = { hardState: null, snapshot: null, entries: [] };
    await this.transact(db, 'readonly', (tx) => {
      const meta = tx.objectStore(META);
      const hs = meta.get(HARD_STATE_KEY);
      hs.onsuccess = () => { out.hardState = (hs.result as HardState | undefined) ?? null; };
      const snap = meta.get(SNAPSHOT_KEY);
      snap.onsuccess = () => { out.snapshot = (snap.result as Snapshot | undefined) ?? null; };
      // Keys are the indexes, so getAll returns the log in order.
      const all = tx.objectStore(ENTRIES).getAll();
      all.onsuccess = () => { out.entries = all.result as Entry[]; };
    });
    return out;
  }

  async save(update: StorageUpdate): Promise<void> {
    this.checkOpen();
    // Copied now: the writes wait for a read inside the transaction, and what is saved must be what the
    // caller passed, not what its objects hold by then.
    const u = this.clone({ hardState: update.hardState, snapshot: update.snapshot, entries: [...update.entries] });
    const db = await this.open();
    const { keyRange } = this.api;
    await this.transact(db, 'readwrite', (tx, fail) => {
      const meta = tx.objectStore(META);
      const entries = tx.objectStore(ENTRIES);
      const write = (base: number, last: number): void => {
        if (u.entries.length > 0) {
          const first = u.entries[0]!.index;
          // Checked before writing anything, so a refused save leaves the store as it was.
          if (first <= base) return fail(new IndexedDBStorageError(`save of index ${first} at or below the snapshot ${base}`));
          if (first > last + 1) return fail(new IndexedDBStorageError(`save would leave a gap before index ${first} (last stored ${last})`));
        }
        if (u.snapshot) {
          // The snapshot replaces the whole stored log (the Storage contract), not only the entries it covers.
          entries.clear();
          meta.put(u.snapshot, SNAPSHOT_KEY);
        }
        if (u.entries.length > 0) {
          // An entry at index i replaces the stored one at i and every later one.
          entries.delete(keyRange.lowerBound(u.entries[0]!.index));
          for (const e of u.entries) entries.put(e, e.index);
        }
        if (u.hardState) meta.put(u.hardState, HARD_STATE_KEY);
      };
      if (u.entries.length === 0) return write(0, Infinity);
      if (u.snapshot) return write(u.snapshot.index, u.snapshot.index);
      // Where the stored log ends decides whether the new entries fit; read in this transaction, so no
      // other write can slip between the check and the writes.
      const snap = meta.get(SNAPSHOT_KEY);
      const lastKey = entries.openKeyCursor(null, 'prev');
      lastKey.onsuccess = () => {
        try {
          const base = (snap.result as Snapshot | undefined)?.index ?? 0;
          const cursor = lastKey.result;
          write(base, cursor ? Number(cursor.key) : base);
        } catch (err) {
          // E.g. a DataCloneError from put(): abort with the real cause rather than a bare AbortError.
          fail(err instanceof Error ? err : new IndexedDBStorageError(String(err)));
        }
      };
    });
  }

  async compact(snapshot: Snapshot): Promise<void> {
    this.checkOpen();
    const snap = this.clone(snapshot);
    const db = await this.open();
    const { keyRange } = this.api;
    await this.transact(db, 'readwrite', (tx) => {
      const meta = tx.objectStore(META);
      const current = meta.get(SNAPSHOT_KEY);
      current.onsuccess = () => {
        const old = current.result as Snapshot | undefined;
        // An older snapshot than the stored one would bring back entries it no longer has.
        if (old && snap.index <= old.index) return;
        tx.objectStore(ENTRIES).delete(keyRange.upperBound(snap.index));
        meta.put(snap, SNAPSHOT_KEY);
      };
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const db = this.db;
    this.db = null;
    if (!db) return;
    try {
      // close() lets transactions already started finish: a save that resolved stays written.
      (await db).close();
    } catch {
      // The database never opened: nothing to release.
    }
  }

  /** A structured clone, as IndexedDB would store it; what cannot be stored is refused here with a typed error. */
  private clone<T>(value: T): T {
    try {
      return structuredClone(value);
    } catch (err) {
      throw new IndexedDBStorageError(`cannot store in "${this.name}": ${describeError(err)}`, { cause: err });
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new IndexedDBStorageError('storage is closed');
    if (this.lost) throw new StorageUnavailableError(`database "${this.name}" was deleted or upgraded by another connection`);
  }

  /** Opens the database once, creating its stores on first use. */
  private open(): Promise<IdbDatabaseLike> {
    this.checkOpen();
    this.db ??= new Promise<IdbDatabaseLike>((resolve, reject) => {
      let req: IdbOpenRequestLike;
      try {
        req = this.api.factory.open(this.name, VERSION);
      } catch (err) {
        // Some browsers throw here in private mode or for an opaque origin (about:blank, file:).
        reject(new StorageUnavailableError(`cannot open IndexedDB database "${this.name}": ${describeError(err)}`, { cause: err }));
        return;
      }
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains(META)) db.createObjectStore(META);
        if (!db.objectStoreNames.contains(ENTRIES)) db.createObjectStore(ENTRIES);
      };
      req.onsuccess = () => {
        const db = req.result;
        // Let a deletion or upgrade from elsewhere (another tab, IndexedDBStorage.destroy) proceed instead of
        // blocking it forever; this handle then refuses further calls.
        db.onversionchange = () => {
          this.lost = true;
          db.close();
        };
        resolve(db);
      };
      req.onerror = () => reject(new StorageUnavailableError(`cannot open IndexedDB database "${this.name}": ${describeError(req.error)}`, { cause: req.error }));
    });
    // A failed open is not cached: the next call tries again.
    this.db.catch(() => { this.db = null; });
    return this.db;
  }

  /**
   * Runs `body` in one transaction over both stores and resolves once it has committed (`complete`).
   * `fail(err)` aborts it, and the promise rejects with `err`; an exception thrown by `body` or a failed
   * request does the same, so nothing of a failed call is written.
   */
  private transact(db: IdbDatabaseLike, mode: 'readonly' | 'readwrite', body: (tx: IdbTransactionLike, fail: (err: Error) => void) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let tx: IdbTransactionLike;
      try {
        tx = mode === 'readwrite' ? db.transaction([META, ENTRIES], mode, { durability: 'strict' }) : db.transaction([META, ENTRIES], mode);
      } catch (err) {
        // The connection was closed under us (versionchange) or the stores are missing.
        reject(new IndexedDBStorageError(`cannot start a transaction on "${this.name}": ${describeError(err)}`, { cause: err }));
        return;
      }
      let failure: Error | null = null;
      const fail = (err: Error): void => {
        failure ??= err;
        try {
          tx.abort();
        } catch {
          // Already finishing: onabort or oncomplete reports the outcome.
        }
      };
      tx.oncomplete = () => (failure ? reject(failure) : resolve());
      // A failed request aborts the transaction by default (no onerror handler prevents it), so onabort
      // reports every failure, with tx.error as the cause (e.g. QuotaExceededError).
      tx.onabort = () => reject(failure ?? new IndexedDBStorageError(`transaction on "${this.name}" aborted: ${describeError(tx.error)}`, { cause: tx.error }));
      try {
        body(tx, (err) => fail(err));
      } catch (err) {
        fail(err instanceof Error ? err : new IndexedDBStorageError(String(err)));
      }
    });
  }
}
