/**
 * The entry point `indexeddb-storage.e2e.test.ts` bundles for the page: it puts the browser conformance
 * cases on `globalThis.raftStorageTests`, where the test calls them by name through `page.evaluate`.
 * @module
 */
import { indexedDBStorageCases, readPersisted, writePersisted } from './storage-conformance.js';
import { IndexedDBStorage } from '../../src/node/indexeddb-storage.js';
import type { StorageState } from '../../src/node/storage.js';

/** One case's outcome, as plain data that survives the trip out of the page. */
export type CaseOutcome = { ok: true } | { ok: false; error: string };

/** What the page exposes. */
export interface RaftStorageTests {
  names: string[];
  run(name: string): Promise<CaseOutcome>;
  writePersisted(db: string, options?: { close?: boolean }): Promise<void>;
  readPersisted(db: string): Promise<StorageState>;
  /** Deletes a database a test made outside the cases. */
  destroy(db: string): Promise<void>;
}

const cases = new Map(indexedDBStorageCases().map((c) => [c.name, c]));

const api: RaftStorageTests = {
  names: [...cases.keys()],
  async run(name) {
    const c = cases.get(name);
    if (!c) return { ok: false, error: `no case named "${name}"` };
    try {
      await c.run();
      return { ok: true };
    } catch (err) {
      // The stack points into the bundle, but the message names the failed check, which is what matters.
      return { ok: false, error: err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err) };
    }
  },
  writePersisted,
  readPersisted,
  destroy: (db) => IndexedDBStorage.destroy(db),
};

(globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests = api;
