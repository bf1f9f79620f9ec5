import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '@raftrtc/raft/testing';
import { crc32 } from '../src/crc32.js';
import { crc32InSlices, stringifyInSlices } from '../src/sliced-json.js';

/** A random value that exercises JSON.stringify's corner cases. */
function randomValue(rng: Rng, depth = 0): unknown {
  const leaves: (() => unknown)[] = [
    () => rng.int(1000) - 500, () => rng.next() * 1e6, () => NaN, () => -0, () => Infinity, () => true, () => null,
    () => undefined, () => () => 1, () => Symbol('s'), () => new Date(rng.int(2e9) * 1000),
    () => ['', 'héllo', 'é\u2028\u0000"\\', '😀 ok', String.fromCharCode(0xd800)][rng.int(5)],
    () => { const custom = rng.int(9); return { toJSON: () => ({ custom }) }; },
  ];
  if (depth > 11 || rng.chance(0.4)) return rng.pick(leaves)();
  if (rng.chance(0.5)) return Array.from({ length: rng.int(6) }, () => randomValue(rng, depth + 1));
  const o: Record<string, unknown> = rng.chance(0.1) ? Object.create(null) as Record<string, unknown> : {};
  for (let i = rng.int(6); i > 0; i--) o[rng.pick(['a', 'b', 'ключ', '"q"', '1', '0'])] = randomValue(rng, depth + 1);
  return o;
}

describe('sliced JSON for large snapshots', () => {
  it('produces exactly the bytes of JSON.stringify (randomized, 500 values)', async () => {
    const seed = Number(process.env.SLICED_SEED ?? 1);
    const rng = new Rng(seed);
    for (let k = 0; k < 500; k++) {
      const v = rng.chance(0.05) ? undefined : randomValue(rng);
      const expected = JSON.stringify(v);
      if (expected === undefined) {
        await assert.rejects(stringifyInSlices(v), TypeError, `value ${k} (seed ${seed}) has no JSON and is refused`);
        continue;
      }
      const got = Buffer.concat(await stringifyInSlices(v));
      assert.ok(got.equals(Buffer.from(expected, 'utf8')), `value ${k} (seed ${seed}, SLICED_SEED replays): ${got.toString().slice(0, 200)} != ${expected.slice(0, 200)}`);
    }
  });

  it('lets the event loop run while it serialises a large state, and checksums as crc32 does', async () => {
    const state = { kvs: Array.from({ length: 200_000 }, (_, i) => ({ key: `key-${i}`, value: 'x'.repeat(64), version: i })) };
    let turns = 0;
    const ticker = setInterval(() => { turns++; }, 0);
    let pieces: Buffer[];
    try {
      pieces = await stringifyInSlices(state);
    } finally {
      clearInterval(ticker);
    }
    assert.ok(pieces.length > 1, `the work was sliced (${pieces.length} pieces)`);
    assert.ok(turns > 0, 'timers ran while it worked');
    const whole = Buffer.concat(pieces);
    assert.ok(whole.equals(Buffer.from(JSON.stringify(state))), 'same bytes as JSON.stringify');
    assert.equal(await crc32InSlices(pieces, crc32(Buffer.from('seed'))), crc32(whole, 0, whole.length, crc32(Buffer.from('seed'))), 'same CRC as one pass');
  });
});
