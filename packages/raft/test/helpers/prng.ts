/**
 * A tiny seeded PRNG (mulberry32) for property and fuzz tests. Kept apart from `src/testing/rng.ts` so the
 * unit tests do not depend on the simulator's internals.
 * @module
 */

export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
}

export function prng(seed: number): Prng {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: (items) => items[int(items.length)], chance: (p) => next() < p };
}

/**
 * The seed for a randomised test: `SEED` from the environment replays a failure, otherwise a fixed one so
 * the suite is reproducible by default.
 */
export function testSeed(fallback: number): number {
  const env = process.env.SEED;
  return env !== undefined && env !== '' ? Number(env) : fallback;
}
