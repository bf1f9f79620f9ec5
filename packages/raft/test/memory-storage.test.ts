/** MemoryStorage runs the shared Storage conformance suite, plus what is its own: latency and reopen. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStorage } from '../src/node/memory-storage.js';
import { runStorageConformance } from './conformance/storage.js';

runStorageConformance('MemoryStorage', async () => {
  const storage = new MemoryStorage();
  return { storage, reopen: async () => storage.reopen(), cleanup: async () => {} };
});

runStorageConformance('MemoryStorage with latency', async () => {
  const storage = new MemoryStorage({ latencyMs: 1 });
  return { storage, reopen: async () => storage.reopen(), cleanup: async () => {} };
});

describe('MemoryStorage', () => {
  it('counts saves, for group-commit tests', async () => {
    const s = new MemoryStorage();
    await s.save({ hardState: { term: 1, vote: null, commit: 0 }, snapshot: null, entries: [] });
    await s.save({ hardState: null, snapshot: null, entries: [{ index: 1, term: 1, type: 'normal', data: 1 }] });
    assert.equal(s.saves, 2);
  });

  it('refuses a save that would leave a gap', async () => {
    const s = new MemoryStorage();
    await assert.rejects(s.save({ hardState: null, snapshot: null, entries: [{ index: 3, term: 1, type: 'normal', data: 1 }] }));
  });

  it('refuses writes after close', async () => {
    const s = new MemoryStorage();
    await s.close();
    await assert.rejects(s.save({ hardState: null, snapshot: null, entries: [] }));
  });
});
