/**
 * Randomized chaos over many seeds (see chaos/scenario.ts): zero safety violations, linearizable client
 * histories, and progress once the network heals. `CHAOS_SEEDS` changes how many seeds run here;
 * `npm run chaos` runs 10,000.
 */
import { describe, it } from 'node:test';
import { runChaos } from './chaos/scenario.js';

const SEEDS = Number(process.env.CHAOS_SEEDS ?? 200);

describe('chaos: safety, linearizability and liveness under random faults', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    it(`seed ${seed}`, () => { runChaos(seed); });
  }
});
