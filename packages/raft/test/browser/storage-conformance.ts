/**
 * The Storage conformance suite for a browser page, where neither node:test nor node:assert exists: the
 * shared cases of `../conformance/storage-cases.ts` (the very ones `runStorageConformance` declares under
 * node:test), run with a small assertion stand-in, plus the cases only {@link IndexedDBStorage} has. Every
 * case is a plain async function that throws on failure. `indexeddb-storage.e2e.test.ts` bundles this file
 * (through `indexeddb-page.ts`) and runs each case in Chromium; it also imports it in Node for the names.
 * @module
 */
import { IndexedDBStorage, IndexedDBStorageError, StorageUnavailableError } from '../../src/node/indexeddb-storage.js';
import type { Storage, StorageState } from '../../src/node/storage.js';
import { entry, hs, range, runStorageCase, snapshot, storageCases, type Assertions, type StorageFixture } from '../conformance/storage-cases.js';

/** A case ready to run: no arguments, throws on failure. */
export interface BrowserCase {
  name: string;
  run(): Promise<void>;
}

/** Failed browser assertion; its message carries both values, since there is no diff printer in the page. */
export class AssertionFailed extends Error {
  override name = 'AssertionFailed';
}

const show = (v: unknown): string => {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

/**
 * Deep strict equality for the plain data storage holds (what a structured clone of JSON-like values can
 * be): same prototype, same own enumerable keys, equal values by `Object.is` at the leaves.
 */
function deepStrictEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => deepStrictEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(rb, k) && deepStrictEqual((a as Record<string, unknown>)[k], rb[k]));
}

/** The assertions the shared cases need, for a page. */
export const browserAssert: Assertions = {
  deepEqual(actual, expected, message) {
    if (!deepStrictEqual(actual, expected)) {
      throw new AssertionFailed(`${message ?? 'values differ'}: expected ${show(expected)}, got ${show(actual)}`);
    }
  },
  equal(actual, expected, message) {
    if (!Object.is(actual, expected)) throw new AssertionFailed(`${message ?? 'values differ'}: expected ${show(expected)}, got ${show(actual)}`);
  },
  ok(value, message) {
    if (!value) throw new AssertionFailed(message);
  },
};

/** Asserts that `promise` rejects with an instance of `type`. */
async function rejectsWith(promise: Promise<unknown>, type: new (...args: never[]) => Error, message: string): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    browserAssert.ok(err instanceof type, `${message}: expected a ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : show(err)}`);
    return err as Error;
  }
  throw new AssertionFailed(`${message}: expected a rejection, it resolved`);
}

/** The shared conformance cases, bound to `make`. */
export function storageConformanceCases(make: () => Promise<StorageFixture>): BrowserCase[] {
  return storageCases.map((c) => ({ name: c.name, run: () => runStorageCase(c, make, browserAssert) }));
}

let dbCounter = 0;
/** A database name no other case (nor an earlier run in the same profile) uses. */
export const freshDbName = (what: string): string => `raftrtc-test-${what}-${Date.now().toString(36)}-${++dbCounter}-${Math.random().toString(36).slice(2, 8)}`;

/** A fresh IndexedDBStorage fixture: `reopen()` is a new handle on the same database name, `cleanup()` deletes it. */
export async function indexedDBFixture(): Promise<StorageFixture & { name: string }> {
  const name = freshDbName('conformance');
  return {
    name,
    storage: new IndexedDBStorage({ name }),
    reopen: async () => new IndexedDBStorage({ name }),
    cleanup: () => IndexedDBStorage.destroy(name),
  };
}

/** Runs `body` on a fresh database name and always deletes the database afterwards. */
async function withDb(body: (name: string) => Promise<void>): Promise<void> {
  const name = freshDbName('idb');
  try {
    await body(name);
  } finally {
    await IndexedDBStorage.destroy(name);
  }
}

/** What only IndexedDBStorage has: handles on one database name, atomic refusal, deletion, cloning. */
export function indexedDBOnlyCases(): BrowserCase[] {
  const a = browserAssert;
  return [
    {
      name: 'IndexedDB: a new IndexedDBStorage on the same name, the old handle never closed (a crash), sees exactly what the resolved saves wrote',
      run: () => withDb(async (name) => {
        const s = new IndexedDBStorage({ name });
        await s.load();
        await s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: range(1, 6, 1) });
        await s.save({ hardState: hs(2, 'b', 3), snapshot: null, entries: range(5, 7, 2) });
        await s.compact(snapshot(3, 1));
        // No close(): a crashed tab never gets to; what the resolved calls wrote must be there regardless.
        const expected: StorageState = { hardState: hs(2, 'b', 3), snapshot: snapshot(3, 1), entries: [entry(4, 1), ...range(5, 7, 2)] };
        const t = new IndexedDBStorage({ name });
        a.deepEqual(await t.load(), expected, 'state seen by the second handle');
        // And the new handle writes on from there, as a restarted node does.
        await t.save({ hardState: hs(3, null, 7), snapshot: null, entries: [entry(8, 3)] });
        const u = new IndexedDBStorage({ name });
        a.deepEqual(await u.load(), { ...expected, hardState: hs(3, null, 7), entries: [...expected.entries, entry(8, 3)] }, 'state seen by a third handle');
        await Promise.all([s.close(), t.close(), u.close()]);
      }),
    },
    {
      name: 'IndexedDB: a refused save (a gap, or below the snapshot) rejects with IndexedDBStorageError and writes none of itself',
      run: () => withDb(async (name) => {
        const s = new IndexedDBStorage({ name });
        await s.load();
        await s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: range(1, 3, 1) });
        await rejectsWith(s.save({ hardState: hs(5, 'x', 9), snapshot: null, entries: [entry(7, 5)] }), IndexedDBStorageError, 'save leaving a gap');
        await s.compact(snapshot(2, 1));
        await rejectsWith(s.save({ hardState: hs(6, 'y', 9), snapshot: null, entries: [entry(2, 6)] }), IndexedDBStorageError, 'save below the snapshot');
        await s.close();
        const t = new IndexedDBStorage({ name });
        a.deepEqual(await t.load(), { hardState: hs(1, 'a', 0), snapshot: snapshot(2, 1), entries: [entry(3, 1)] }, 'the refused saves left nothing, not even their hard state');
        await t.close();
      }),
    },
    {
      name: 'IndexedDB: data that cannot be stored is refused with IndexedDBStorageError before anything is written',
      run: () => withDb(async (name) => {
        const s = new IndexedDBStorage({ name });
        await s.load();
        await rejectsWith(s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: [entry(1, 1, () => 1)] }), IndexedDBStorageError, 'a function as entry data');
        a.deepEqual(await new IndexedDBStorage({ name }).load(), { hardState: null, snapshot: null, entries: [] }, 'nothing written');
        await s.close();
      }),
    },
    {
      name: 'IndexedDB: destroy deletes the database even while a handle is open; that handle then refuses writes with StorageUnavailableError',
      run: async () => {
        const name = freshDbName('destroy');
        const s = new IndexedDBStorage({ name });
        await s.load();
        await s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: range(1, 2, 1) });
        // Resolving at all shows the open handle let go (versionchange) instead of blocking the deletion.
        await IndexedDBStorage.destroy(name);
        await rejectsWith(s.save({ hardState: null, snapshot: null, entries: [entry(3, 1)] }), StorageUnavailableError, 'write through the handle of a deleted database');
        const t = new IndexedDBStorage({ name });
        a.deepEqual(await t.load(), { hardState: null, snapshot: null, entries: [] }, 'a database of that name starts empty again');
        await t.close();
        await IndexedDBStorage.destroy(name);
      },
    },
    {
      name: 'IndexedDB: calls after close() are refused with IndexedDBStorageError',
      run: () => withDb(async (name) => {
        const s = new IndexedDBStorage({ name });
        await s.load();
        await s.close();
        await rejectsWith(s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: [] }), IndexedDBStorageError, 'save after close');
        await rejectsWith(s.compact(snapshot(1, 1)), IndexedDBStorageError, 'compact after close');
      }),
    },
  ];
}

/** Every case the page runs: the shared suite on IndexedDBStorage, then the IndexedDB-only ones. Names are unique. */
export function indexedDBStorageCases(): BrowserCase[] {
  return [
    ...storageConformanceCases(indexedDBFixture).map((c) => ({ ...c, name: `conformance: ${c.name}` })),
    ...indexedDBOnlyCases(),
  ];
}

// --- Persistence across a page reload (a new JS context): written by one page, read by the next. ---

/** What {@link writePersisted} saves and a reloaded page must load back. */
export const PERSISTED_STATE: StorageState = {
  hardState: hs(4, 'n2', 11),
  snapshot: snapshot(8, 3, { kv: { a: '1', b: [1, 2, 3] } }),
  entries: [entry(9, 3, { op: 'put', key: 'c' }), entry(10, 4), entry(11, 4, { op: 'del', key: 'a' })],
};

/**
 * Writes {@link PERSISTED_STATE} into database `name` through the Storage calls a node makes. With
 * `close: false` the handle is left open, as a tab that is about to crash leaves it.
 */
export async function writePersisted(name: string, { close = true }: { close?: boolean } = {}): Promise<void> {
  const s: Storage = new IndexedDBStorage({ name });
  await s.load();
  await s.save({ hardState: hs(3, 'n1', 2), snapshot: null, entries: range(1, 9, 3) });
  await s.compact(PERSISTED_STATE.snapshot!);
  await s.save({ hardState: PERSISTED_STATE.hardState, snapshot: null, entries: PERSISTED_STATE.entries });
  if (close) await s.close();
}

/** Loads database `name` through a new handle. */
export async function readPersisted(name: string): Promise<StorageState> {
  const s = new IndexedDBStorage({ name });
  try {
    return await s.load();
  } finally {
    await s.close();
  }
}
