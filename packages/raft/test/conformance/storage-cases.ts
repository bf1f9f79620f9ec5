/**
 * The Storage conformance cases themselves, free of any test runner: each is a plain async function that
 * throws on failure, given a fixture and an assertion object. `storage.ts` runs them under node:test with
 * node:assert; `../browser/storage-conformance.ts` runs the very same cases in a browser page, where
 * neither is available.
 * @module
 */
import type { Entry, HardState, Snapshot } from '../../src/core/types.js';
import type { Storage, StorageState } from '../../src/node/storage.js';

/** What the suite needs from one implementation. */
export interface StorageFixture {
  storage: Storage;
  /** A new handle on the same durable state: what a restarted process would open. */
  reopen(): Promise<Storage>;
  /** Removes whatever the fixture created (files, databases). */
  cleanup(): Promise<void>;
}

/** The assertions the cases use: node:assert/strict satisfies it, and so does the browser port's small stand-in. */
export interface Assertions {
  /** Deep strict equality. */
  deepEqual(actual: unknown, expected: unknown, message?: string): void;
  /** `Object.is` equality. */
  equal(actual: unknown, expected: unknown, message?: string): void;
  ok(value: unknown, message: string): void;
}

/** One conformance case. */
export interface StorageCase {
  name: string;
  run(f: StorageFixture, assert: Assertions): Promise<void>;
}

export const entry = (index: number, term: number, data: unknown = `e${index}`): Entry => ({ index, term, type: 'normal', data });
export const range = (lo: number, hi: number, term: number): Entry[] => {
  const out: Entry[] = [];
  for (let i = lo; i <= hi; i++) out.push(entry(i, term));
  return out;
};
export const snapshot = (index: number, term: number, data: unknown = { upTo: index }): Snapshot =>
  ({ index, term, conf: { voters: ['a', 'b', 'c'], learners: [] }, data });
export const hs = (term: number, vote: string | null, commit: number): HardState => ({ term, vote, commit });

/** Closes the handle and reads back through a new one, as a restart would. */
export const restart = async (f: StorageFixture, s: Storage): Promise<{ storage: Storage; state: StorageState }> => {
  await s.close();
  const storage = await f.reopen();
  return { storage, state: await storage.load() };
};

/** Opens a fresh store with `make`, runs the case, and always cleans up. */
export async function runStorageCase(c: StorageCase, make: () => Promise<StorageFixture>, assert: Assertions): Promise<void> {
  const f = await make();
  try {
    await c.run(f, assert);
  } finally {
    await f.cleanup();
  }
}

/** Every case, in order. */
export const storageCases: readonly StorageCase[] = [
  {
    name: 'a new store loads empty',
    run: async (f, assert) => {
      const st = await f.storage.load();
      assert.deepEqual(st, { hardState: null, snapshot: null, entries: [] });
      await f.storage.close();
    },
  },
  {
    name: 'save then load round-trips hard state and entries, also after a restart',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: range(1, 3, 1) });
      await s.save({ hardState: hs(2, 'b', 2), snapshot: null, entries: [entry(4, 2, { k: 'v', n: [1, 2] })] });
      const expected: StorageState = {
        hardState: hs(2, 'b', 2), snapshot: null, entries: [...range(1, 3, 1), entry(4, 2, { k: 'v', n: [1, 2] })],
      };
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state, expected);
      await storage.close();
    },
  },
  {
    name: 'a save without hard state keeps the last one',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(3, 'c', 1), snapshot: null, entries: range(1, 1, 3) });
      await s.save({ hardState: null, snapshot: null, entries: range(2, 2, 3) });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.hardState, hs(3, 'c', 1));
      assert.equal(state.entries.length, 2, 'both entries kept');
      await storage.close();
    },
  },
  {
    name: 'an entry at index i replaces the stored entry at i and every later one',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: range(1, 5, 1) });
      await s.save({ hardState: hs(2, 'b', 2), snapshot: null, entries: [entry(3, 2, 'new3')] });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.entries, [...range(1, 2, 1), entry(3, 2, 'new3')]);
      await storage.close();
    },
  },
  {
    name: 'an append right after the last entry extends the log',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      for (let i = 1; i <= 20; i++) await s.save({ hardState: null, snapshot: null, entries: [entry(i, 1)] });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.entries, range(1, 20, 1));
      await storage.close();
    },
  },
  {
    name: 'a snapshot in a save replaces the whole log, entries then follow it',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 3), snapshot: null, entries: range(1, 5, 1) });
      const snap = snapshot(10, 2);
      await s.save({ hardState: hs(2, null, 10), snapshot: snap, entries: range(11, 12, 2) });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.snapshot, snap);
      assert.deepEqual(state.entries, range(11, 12, 2));
      assert.deepEqual(state.hardState, hs(2, null, 10));
      await storage.close();
    },
  },
  {
    name: 'a snapshot alone leaves no entries',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 0), snapshot: null, entries: range(1, 3, 1) });
      await s.save({ hardState: null, snapshot: snapshot(2, 1), entries: [] });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.snapshot, snapshot(2, 1));
      assert.deepEqual(state.entries, []);
      await storage.close();
    },
  },
  {
    name: 'compact stores the snapshot and drops the entries it covers, keeping later ones',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 6), snapshot: null, entries: range(1, 8, 1) });
      const snap = snapshot(6, 1, { state: 'at6' });
      await s.compact(snap);
      await s.save({ hardState: null, snapshot: null, entries: range(9, 10, 1) });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.snapshot, snap);
      assert.deepEqual(state.entries, range(7, 10, 1));
      await storage.close();
    },
  },
  {
    name: 'replacement after a compaction works from the entries that remain',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 4), snapshot: null, entries: range(1, 8, 1) });
      await s.compact(snapshot(4, 1));
      await s.save({ hardState: hs(2, 'b', 4), snapshot: null, entries: range(6, 7, 2) });
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.entries, [entry(5, 1), ...range(6, 7, 2)]);
      await storage.close();
    },
  },
  {
    name: 'a later compaction replaces an earlier one',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      await s.save({ hardState: hs(1, 'a', 9), snapshot: null, entries: range(1, 10, 1) });
      await s.compact(snapshot(3, 1));
      await s.compact(snapshot(9, 1));
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.snapshot, snapshot(9, 1));
      assert.deepEqual(state.entries, [entry(10, 1)]);
      await storage.close();
    },
  },
  {
    name: 'what was saved does not change when the caller later mutates its objects',
    run: async (f, assert) => {
      const s = f.storage;
      await s.load();
      const e = entry(1, 1, { value: 'original' });
      const h = hs(1, 'a', 0);
      await s.save({ hardState: h, snapshot: null, entries: [e] });
      (e.data as { value: string }).value = 'mutated';
      h.term = 99;
      const { storage, state } = await restart(f, s);
      assert.deepEqual(state.entries, [entry(1, 1, { value: 'original' })]);
      assert.equal(state.hardState?.term, 1, 'hard state as saved');
      await storage.close();
    },
  },
  {
    name: 'a restart sees exactly what the resolved saves wrote, and writing continues after it',
    run: async (f, assert) => {
      let s = f.storage;
      await s.load();
      const expected: Entry[] = [];
      let term = 1;
      // A long history of appends, overwrites and compactions, restarting every few steps.
      let snap: Snapshot | null = null;
      for (let round = 1; round <= 6; round++) {
        const next = (expected.at(-1)?.index ?? snap?.index ?? 0) + 1;
        const batch = range(next, next + 4, term);
        await s.save({ hardState: hs(term, 'a', next), snapshot: null, entries: batch });
        expected.push(...batch);
        if (round % 2 === 0) {
          term++;
          const at = expected.at(-2)!.index; // overwrite the last two entries
          const repl = range(at, at + 2, term);
          await s.save({ hardState: hs(term, 'b', at - 1), snapshot: null, entries: repl });
          expected.splice(expected.findIndex((x) => x.index === at), Infinity, ...repl);
        }
        if (round % 3 === 0) {
          const at = expected[2]!.index;
          snap = snapshot(at, expected[2]!.term, { round });
          await s.compact(snap);
          expected.splice(0, 3);
        }
        const r = await restart(f, s);
        s = r.storage;
        assert.deepEqual(r.state.entries, expected, `entries after round ${round}`);
        assert.deepEqual(r.state.snapshot, snap, `snapshot after round ${round}`);
        assert.equal(r.state.hardState?.term, term, `term after round ${round}`);
      }
      await s.close();
    },
  },
];
