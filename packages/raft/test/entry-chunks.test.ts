/** EntryChunks against a plain array under random push / truncate / dropFront / slice sequences. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EntryChunks } from '../src/core/entry-chunks.js';
import { Rng } from '../src/testing/index.js';
import type { Entry } from '../src/index.js';

describe('EntryChunks', () => {
  for (let seed = 1; seed <= 20; seed++) {
    it(`matches a plain array (seed ${seed})`, () => {
      const rng = new Rng(seed);
      const chunks = new EntryChunks();
      let model: Entry[] = [];
      let next = 1;
      for (let step = 0; step < 3000; step++) {
        const r = rng.int(100);
        if (r < 70) {
          for (let k = rng.int(600); k > 0; k--) { const e: Entry = { index: next++, term: 1, type: 'normal', data: next }; chunks.push(e); model.push(e); }
        } else if (r < 80) {
          const n = rng.int(model.length + 1);
          chunks.truncate(n); model = model.slice(0, n);
        } else if (r < 90) {
          const n = rng.int(model.length + 1);
          chunks.dropFront(n); model = model.slice(n);
        } else {
          const a = rng.int(model.length + 1), b = a + rng.int(model.length - a + 1);
          assert.deepEqual(chunks.slice(a, b), model.slice(a, b), `seed ${seed} step ${step}: slice(${a}, ${b})`);
        }
        assert.equal(chunks.length, model.length, `seed ${seed} step ${step}: length`);
        if (model.length) {
          const p = rng.int(model.length);
          assert.equal(chunks.at(p), model[p], `seed ${seed} step ${step}: at(${p})`);
        }
      }
    });
  }
});
