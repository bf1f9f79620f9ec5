/**
 * The leader's view of a follower (progress.ts, after etcd's tracker/progress_test.go and inflights_test.go):
 * the probe / replicate / snapshot states, how acknowledgements and rejections move `match` and `next`, and
 * the ring of in-flight appends, also checked against a plain array on random operations.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Inflights, Progress, type ProgressState } from '../src/core/progress.js';
import { prng, testSeed } from './helpers/prng.js';

function progress(state: ProgressState, match: number, next: number, maxInflight = 4, maxBytes = 1e9): Progress {
  const pr = new Progress('b', next, maxInflight, maxBytes);
  pr.match = match;
  if (state === 'replicate') pr.becomeReplicate();
  if (state === 'snapshot') pr.becomeSnapshot(next + 5);
  pr.next = next;
  return pr;
}

describe('Inflights: the window of appends in flight', () => {
  it('fills by count', () => {
    const inf = new Inflights(3, 1e9);
    for (const i of [1, 2]) { inf.add(i, 10); assert.equal(inf.full(), false); }
    inf.add(3, 10);
    assert.equal(inf.full(), true);
    assert.deepEqual([inf.count, inf.bytes], [3, 30]);
  });

  it('fills by bytes before it fills by count', () => {
    const inf = new Inflights(10, 100);
    inf.add(1, 60);
    assert.equal(inf.full(), false);
    inf.add(2, 40);
    assert.equal(inf.full(), true);
    assert.equal(inf.count, 2);
  });

  it('frees every append up to an acknowledged index, and nothing below the oldest', () => {
    const inf = new Inflights(10, 1e9);
    for (let i = 1; i <= 5; i++) inf.add(i * 2, i);
    inf.freeLE(1);
    assert.deepEqual([inf.count, inf.bytes], [5, 15]);
    inf.freeLE(5);
    assert.deepEqual([inf.count, inf.bytes], [3, 12]);
    inf.freeLE(6);
    assert.deepEqual([inf.count, inf.bytes], [2, 9]);
    inf.freeLE(100);
    assert.deepEqual([inf.count, inf.bytes], [0, 0]);
  });

  it('keeps its order across the end of the ring', () => {
    const inf = new Inflights(4, 1e9);
    for (const i of [1, 2, 3, 4]) inf.add(i, 1);
    inf.freeLE(2);
    inf.add(5, 1);
    inf.add(6, 1);
    assert.equal(inf.full(), true);
    inf.freeLE(4);
    assert.equal(inf.count, 2);
    inf.freeLE(5);
    assert.equal(inf.count, 1);
    inf.freeFirst();
    assert.equal(inf.count, 0);
  });

  it('freeFirst frees exactly the oldest append, and nothing when empty', () => {
    const inf = new Inflights(4, 1e9);
    inf.freeFirst();
    assert.equal(inf.count, 0);
    for (const i of [3, 5, 7]) inf.add(i, 2);
    inf.freeFirst();
    assert.deepEqual([inf.count, inf.bytes], [2, 4]);
  });

  it('reset empties the window', () => {
    const inf = new Inflights(2, 1e9);
    inf.add(1, 5);
    inf.add(2, 5);
    inf.reset();
    assert.deepEqual([inf.count, inf.bytes, inf.full()], [0, 0, false]);
    inf.add(3, 1);
    inf.freeLE(3);
    assert.equal(inf.count, 0);
  });

  it('behaves like a plain queue on thousands of random operations', () => {
    const seed = testSeed(3001);
    const r = prng(seed);
    for (let round = 0; round < 200; round++) {
      const maxCount = 1 + r.int(6);
      const maxBytes = 5 + r.int(40);
      const inf = new Inflights(maxCount, maxBytes);
      const model: { index: number; bytes: number }[] = [];
      let last = 0;
      for (let op = 0; op < 50; op++) {
        const what = r.int(10);
        if (what < 5) {
          // The leader adds only while the window has room, with ever larger indexes.
          if (inf.full()) continue;
          last += 1 + r.int(3);
          const bytes = 1 + r.int(10);
          inf.add(last, bytes);
          model.push({ index: last, bytes });
        } else if (what < 8) {
          const upTo = last - r.int(6);
          inf.freeLE(upTo);
          while (model.length && model[0].index <= upTo) model.shift();
        } else if (what < 9) {
          inf.freeFirst();
          model.shift();
        } else {
          inf.reset();
          model.length = 0;
        }
        const bytes = model.reduce((n, x) => n + x.bytes, 0);
        const at = `seed ${seed}, round ${round}, op ${op}`;
        assert.equal(inf.count, model.length, at);
        assert.equal(inf.bytes, bytes, at);
        assert.equal(inf.full(), model.length >= maxCount || bytes >= maxBytes, at);
      }
    }
  });
});

describe('Progress: what an acknowledgement does (Raft §5.3)', () => {
  const updates: { match: number; next: number; index: number; updated: boolean; wantMatch: number; wantNext: number }[] = [
    { match: 0, next: 1, index: 1, updated: true, wantMatch: 1, wantNext: 2 },
    { match: 3, next: 5, index: 2, updated: false, wantMatch: 3, wantNext: 5 },
    { match: 3, next: 5, index: 3, updated: false, wantMatch: 3, wantNext: 5 },
    { match: 3, next: 5, index: 4, updated: true, wantMatch: 4, wantNext: 5 },
    { match: 3, next: 5, index: 7, updated: true, wantMatch: 7, wantNext: 8 },
  ];
  for (const { match, next, index, updated, wantMatch, wantNext } of updates) {
    it(`an ack of ${index} with match ${match}, next ${next} ${updated ? 'moves match' : 'is stale'} (match ${wantMatch}, next ${wantNext})`, () => {
      const pr = progress('probe', match, next);
      pr.probeSent = true;
      assert.equal(pr.maybeUpdate(index), updated);
      assert.deepEqual([pr.match, pr.next], [wantMatch, wantNext]);
      // A fresh ack answers the outstanding probe; a stale one does not.
      assert.equal(pr.probeSent, !updated);
    });
  }
});

describe('Progress: what a rejection does (Raft §5.3, fast backtracking)', () => {
  const rejections: { state: ProgressState; match: number; next: number; rejected: number; hint: number; ok: boolean; wantNext: number }[] = [
    // Replicating: anything at or below match is stale; otherwise fall back to just after match.
    { state: 'replicate', match: 5, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 },
    { state: 'replicate', match: 5, next: 10, rejected: 4, hint: 4, ok: false, wantNext: 10 },
    { state: 'replicate', match: 5, next: 10, rejected: 9, hint: 9, ok: true, wantNext: 6 },
    // Probing: only the answer to the latest probe counts, and the hint says where to go next.
    { state: 'probe', match: 0, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 },
    { state: 'probe', match: 0, next: 10, rejected: 9, hint: 9, ok: true, wantNext: 9 },
    { state: 'probe', match: 0, next: 10, rejected: 9, hint: 2, ok: true, wantNext: 3 },
    { state: 'probe', match: 0, next: 10, rejected: 9, hint: 0, ok: true, wantNext: 1 },
    { state: 'probe', match: 0, next: 2, rejected: 1, hint: 1, ok: true, wantNext: 1 },
    { state: 'probe', match: 0, next: 1, rejected: 0, hint: 0, ok: true, wantNext: 1 },
    { state: 'probe', match: 5, next: 10, rejected: 9, hint: 2, ok: true, wantNext: 6 },
    { state: 'probe', match: 5, next: 10, rejected: 9, hint: 20, ok: true, wantNext: 9 },
  ];
  for (const { state, match, next, rejected, hint, ok, wantNext } of rejections) {
    it(`${state}, match ${match}, next ${next}: a rejection of ${rejected} with hint ${hint} ${ok ? `moves next to ${wantNext}` : 'is stale'}`, () => {
      const pr = progress(state, match, next);
      pr.probeSent = true;
      assert.equal(pr.maybeDecrTo(rejected, hint), ok);
      assert.equal(pr.next, wantNext);
      assert.equal(pr.match, match);
      if (state === 'probe') assert.equal(pr.probeSent, !ok);
    });
  }
});

describe('Progress: states and flow control', () => {
  const paused: { name: string; make: () => Progress; want: boolean }[] = [
    { name: 'a probe with nothing out', make: () => progress('probe', 2, 3), want: false },
    { name: 'a probe with an append out', make: () => { const pr = progress('probe', 2, 3); pr.probeSent = true; return pr; }, want: true },
    { name: 'a replicating follower with room in its window', make: () => { const pr = progress('replicate', 2, 3, 2); pr.inflights.add(3, 1); return pr; }, want: false },
    { name: 'a replicating follower with a full window', make: () => { const pr = progress('replicate', 2, 3, 2); pr.inflights.add(3, 1); pr.inflights.add(4, 1); return pr; }, want: true },
    { name: 'a replicating follower whose outstanding probe flag is left over', make: () => { const pr = progress('replicate', 2, 3); pr.probeSent = true; return pr; }, want: false },
    { name: 'a follower being sent a snapshot', make: () => progress('snapshot', 2, 3), want: true },
  ];
  for (const { name, make, want } of paused) {
    it(`${name} is ${want ? '' : 'not '}paused`, () => assert.equal(make().isPaused(), want));
  }

  it('a new progress probes from the given index', () => {
    const pr = new Progress('b', 7, 4, 100);
    assert.deepEqual([pr.state, pr.match, pr.next, pr.probeSent, pr.recentActive], ['probe', 0, 7, false, true]);
  });

  it('becomeReplicate streams from just after match with an empty window', () => {
    const pr = progress('probe', 4, 9);
    pr.probeSent = true;
    pr.inflights.add(9, 1);
    pr.becomeReplicate();
    assert.deepEqual([pr.state, pr.next, pr.probeSent, pr.inflights.count], ['replicate', 5, false, 0]);
  });

  for (const from of ['replicate', 'snapshot'] as const) {
    it(`becomeProbe from ${from} probes again just after match`, () => {
      const pr = progress(from, 4, 9);
      pr.inflights.add(9, 1);
      pr.becomeProbe();
      assert.deepEqual([pr.state, pr.next, pr.probeSent, pr.pendingSnapshot, pr.inflights.count], ['probe', 5, false, 0, 0]);
    });
  }

  it('becomeSnapshot records the snapshot sent and restarts its resend clock', () => {
    const pr = progress('replicate', 4, 9);
    pr.inflights.add(9, 1);
    pr.snapshotTicks = 7;
    pr.becomeSnapshot(20);
    assert.deepEqual([pr.state, pr.pendingSnapshot, pr.snapshotTicks, pr.inflights.count], ['snapshot', 20, 0, 0]);
  });

  it('keeps match below next through random acknowledgements, rejections and state changes', () => {
    const seed = testSeed(3002);
    const r = prng(seed);
    for (let round = 0; round < 300; round++) {
      const pr = new Progress('b', 1 + r.int(10), 3, 1e9);
      for (let op = 0; op < 40; op++) {
        const index = r.int(pr.next + 5);
        switch (r.int(5)) {
          case 0: pr.maybeUpdate(index); break;
          case 1: pr.maybeDecrTo(pr.state === 'probe' && r.chance(0.7) ? pr.next - 1 : index, r.int(pr.next + 2)); break;
          case 2: pr.becomeProbe(); break;
          case 3: pr.becomeReplicate(); break;
          default: if (pr.state === 'replicate' && !pr.inflights.full()) { pr.next += 1; pr.inflights.add(pr.next - 1, 1); }
        }
        assert.ok(pr.match < pr.next, `seed ${seed}, round ${round}, op ${op}: match ${pr.match}, next ${pr.next}`);
        assert.ok(pr.next >= 1, `seed ${seed}, round ${round}, op ${op}: next ${pr.next}`);
      }
    }
  });
});
