/**
 * The conformance suite every `Storage` runs (hono's `runTest` pattern): what a RaftNode relies on,
 * checked through the interface alone. `make()` gives a fresh, empty store; `reopen()` closes nothing and
 * returns a new handle on the same durable state, as a restarted process would open it (the suite closes
 * the old handle first when it wants a clean restart).
 *
 * The cases live in `storage-cases.ts`, free of node:test, so the browser port
 * (`../browser/storage-conformance.ts`) runs exactly the same ones; this file declares them as node:test
 * tests with node:assert/strict.
 * @module
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runStorageCase, storageCases, type StorageFixture } from './storage-cases.js';

export type { StorageFixture } from './storage-cases.js';

/** Runs the suite for one implementation. */
export function runStorageConformance(name: string, make: () => Promise<StorageFixture>): void {
  describe(`Storage conformance: ${name}`, () => {
    for (const c of storageCases) it(c.name, () => runStorageCase(c, make, assert));
  });
}
