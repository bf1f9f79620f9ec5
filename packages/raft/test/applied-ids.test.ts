/**
 * The applied-id window that makes a retried or duplicated proposal apply once: checked against a plain
 * model (a list, oldest first) on random sequences of adds (with repeats) and resets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AppliedIds } from '../src/node/applied-ids.js';
import { prng, testSeed } from './helpers/prng.js';

describe('AppliedIds', () => {
  it('remembers exactly the newest `capacity` distinct ids, oldest first, across resets (randomized)', () => {
    const seed = testSeed(1);
    const rng = prng(seed);
    for (let run = 0; run < 200; run++) {
      const capacity = 1 + rng.int(8);
      const ids = new AppliedIds(capacity);
      let model: string[] = [];
      for (let step = 0; step < 60; step++) {
        if (rng.chance(0.05)) {
          const fresh = model.slice(rng.int(model.length + 1));
          ids.reset(fresh);
          model = fresh.slice(-capacity);
        } else {
          const id = `p${rng.int(12)}`;
          ids.add(id);
          if (!model.includes(id)) { model.push(id); if (model.length > capacity) model.shift(); }
        }
        const where = `seed ${seed}, run ${run}, step ${step}, capacity ${capacity}`;
        assert.deepEqual(ids.toArray(), model, `${where}: the window`);
        for (let k = 0; k < 12; k++) assert.equal(ids.has(`p${k}`), model.includes(`p${k}`), `${where}: has(p${k})`);
      }
    }
  });
});
