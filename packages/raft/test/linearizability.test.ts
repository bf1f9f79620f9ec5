/**
 * The linearizability checker and the KV model: hand-written histories with known answers, then random
 * histories generated from a real sequential KV (always linearizable) and corrupted (never).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkOperations, type CheckResult, type Model, type Operation } from '../src/testing/linearizability.js';
import { kvModel, type KvInput, type KvOutput } from '../src/testing/kv-model.js';
import { Rng } from '../src/testing/rng.js';

type KvOp = Operation<KvInput, KvOutput>;

/** `ret` of Infinity means the client never heard back, so the get's output is unknown. */
function get(client: number, call: number, ret: number, key: string, value?: string): KvOp {
  return { clientId: client, input: { op: 'get', key }, output: value === undefined ? undefined : { value }, call, return: ret };
}

function put(client: number, call: number, ret: number, key: string, value: string): KvOp {
  return { clientId: client, input: { op: 'put', key, value }, output: ret === Infinity ? undefined : {}, call, return: ret };
}

function append(client: number, call: number, ret: number, key: string, value: string): KvOp {
  return { clientId: client, input: { op: 'append', key, value }, output: ret === Infinity ? undefined : {}, call, return: ret };
}

/**
 * Checks an `ok` result's witnesses independently of the search: together they hold every operation that
 * matters (pending gets may be dropped) once, each respects real time, and replaying it on a plain Map
 * gives every completed get its recorded value.
 */
function assertWitness(history: KvOp[], r: CheckResult<string, KvInput, KvOutput>): void {
  assert.equal(r.result, 'ok', r.result === 'illegal' ? r.message : `result ${r.result}`);
  if (r.result !== 'ok') return;
  const seen = r.linearizations.flat();
  const required = history.filter((op) => !(op.input.op === 'get' && op.output === undefined));
  assert.equal(new Set(seen).size, seen.length, 'an operation is linearized twice');
  assert.deepEqual(new Set(seen), new Set(required), 'witnesses do not cover the history');
  for (const order of r.linearizations) {
    const kv = new Map<string, string>();
    for (const [i, op] of order.entries()) {
      for (const later of order.slice(i + 1)) {
        assert.ok(!(later.return < op.call), `witness puts ${JSON.stringify(later)} after ${JSON.stringify(op)}`);
      }
      const { op: kind, key, value = '' } = op.input;
      if (kind === 'put') kv.set(key, value);
      else if (kind === 'append') kv.set(key, (kv.get(key) ?? '') + value);
      else if (op.output !== undefined) assert.equal(op.output.value, kv.get(key) ?? '', 'witness get disagrees');
    }
  }
}

/**
 * Checks an `illegal` result's explanation independently of the search: the prefix replays legally to
 * `state`, `stuck` is the first remaining operation to return, the candidates are exactly the remaining
 * operations invoked by then, and none of them is legal in `state`.
 */
function assertExplanation(r: Extract<CheckResult<string, KvInput, KvOutput>, { result: 'illegal' }>): void {
  let state = kvModel.init();
  for (const op of r.prefix) {
    const [ok, next] = kvModel.step(state, op.input, op.output);
    assert.ok(ok, 'the prefix does not replay');
    state = next;
  }
  assert.equal(state, r.state);
  const remaining = r.partition.filter((op) => !r.prefix.includes(op));
  assert.ok(remaining.every((op) => op.return >= r.stuck.return), 'stuck is not the first to return');
  assert.deepEqual(new Set(r.candidates), new Set(remaining.filter((op) => op.call <= r.stuck.return)));
  for (const op of r.candidates) assert.equal(kvModel.step(state, op.input, op.output)[0], false, 'a candidate is legal');
}

const check = (history: KvOp[], maxSteps?: number) => checkOperations(kvModel, history, { maxSteps });

describe('linearizable histories', () => {
  it('accepts a sequential history, reading a missing key as the empty string', () => {
    const h = [
      put(0, 0, 1, 'x', '1'), get(1, 2, 3, 'x', '1'), append(0, 4, 5, 'x', '2'),
      get(1, 6, 7, 'x', '12'), get(2, 8, 9, 'y', ''), append(2, 10, 11, 'y', 'a'), get(0, 12, 13, 'y', 'a'),
    ];
    assertWitness(h, check(h));
  });

  it('accepts an empty history', () => {
    assert.deepEqual(check([]), { result: 'ok', steps: 0, linearizations: [] });
  });

  it('accepts either order of two concurrent puts, and finds the one the read needs', () => {
    for (const seen of ['a', 'b']) {
      const h = [put(0, 0, 10, 'x', 'a'), put(1, 0, 10, 'x', 'b'), get(2, 11, 12, 'x', seen)];
      const r = check(h);
      assertWitness(h, r);
      if (r.result === 'ok') assert.equal(r.linearizations[0][1].input.value, seen);
    }
  });

  it('accepts reads concurrent with a put that see the old value, then the new one', () => {
    const h = [put(0, 0, 10, 'x', '1'), get(1, 1, 2, 'x', ''), get(1, 3, 4, 'x', '1'), get(2, 5, 6, 'x', '1')];
    assertWitness(h, check(h));
  });

  it('treats operations that touch at one instant as concurrent', () => {
    const h = [put(0, 0, 5, 'x', '1'), get(1, 5, 6, 'x', '')];
    assertWitness(h, check(h));
  });

  it('accepts concurrent appends observed in either order', () => {
    for (const seen of ['ab', 'ba']) {
      const h = [append(0, 0, 10, 'x', 'a'), append(1, 0, 10, 'x', 'b'), get(2, 11, 12, 'x', seen)];
      assertWitness(h, check(h));
    }
  });

  it('accepts an unknown-outcome put that took effect, and one that never did', () => {
    const tookEffect = [put(0, 0, Infinity, 'x', '1'), get(1, 5, 6, 'x', '1'), get(1, 7, 8, 'x', '1')];
    const neverDid = [put(0, 0, Infinity, 'x', '1'), get(1, 5, 6, 'x', ''), get(2, 100, 101, 'x', '')];
    const late = [put(0, 0, Infinity, 'x', '1'), get(1, 5, 6, 'x', ''), get(1, 7, 8, 'x', '1')];
    for (const h of [tookEffect, neverDid, late]) assertWitness(h, check(h));
  });

  it('accepts an unknown-outcome append that took effect, and ignores gets with unknown outcome', () => {
    const h = [append(0, 0, Infinity, 'x', 'a'), get(0, 1, Infinity, 'x'), append(1, 2, 3, 'x', 'b'), get(2, 4, 5, 'x', 'ab')];
    assertWitness(h, check(h));
  });

  it('checks each key on its own (P-compositionality)', () => {
    const h = [put(0, 0, 10, 'x', '1'), put(0, 11, 12, 'y', '2'), get(1, 13, 14, 'y', '2'), get(1, 15, 16, 'x', '1')];
    const r = check(h);
    assertWitness(h, r);
    if (r.result === 'ok') assert.equal(r.linearizations.length, 2);
  });
});

describe('non-linearizable histories', () => {
  const illegal: [string, KvOp[]][] = [
    ['a stale read after a completed put', [put(0, 0, 1, 'x', '1'), get(1, 2, 3, 'x', '')]],
    ['a stale read after two completed puts', [put(0, 0, 1, 'x', '1'), put(0, 2, 3, 'x', '2'), get(1, 4, 5, 'x', '1')]],
    ['a read of a value never written', [put(0, 0, 10, 'x', '1'), get(1, 0, 10, 'x', 'zzz')]],
    ['a read from the future', [get(1, 0, 1, 'x', '1'), put(0, 2, 3, 'x', '1')]],
    ['a new value, then the old one again', [put(0, 0, 10, 'x', '1'), get(1, 1, 2, 'x', '1'), get(1, 3, 4, 'x', '')]],
    ['two readers observing concurrent puts in opposite orders', [
      put(0, 0, 100, 'x', 'a'), put(1, 0, 100, 'x', 'b'),
      get(2, 10, 11, 'x', 'a'), get(2, 20, 21, 'x', 'b'),
      get(3, 10, 11, 'x', 'b'), get(3, 20, 21, 'x', 'a'),
    ]],
    ['appends applied out of real-time order', [append(0, 0, 1, 'x', 'a'), append(0, 2, 3, 'x', 'b'), get(1, 4, 5, 'x', 'ba')]],
    ['a completed append lost', [append(0, 0, 1, 'x', 'a'), append(1, 0, 1, 'x', 'b'), get(2, 2, 3, 'x', 'a')]],
    ['concurrent appends observed in opposite orders', [
      append(0, 0, 10, 'x', 'a'), append(1, 0, 10, 'x', 'b'), get(2, 11, 12, 'x', 'ab'), get(3, 11, 12, 'x', 'ba'),
    ]],
    ['an unknown-outcome put seen, then unseen', [put(0, 0, Infinity, 'x', '1'), get(1, 5, 6, 'x', '1'), get(1, 7, 8, 'x', '')]],
    ['a violation on one key among legal others', [
      put(0, 0, 1, 'a', '1'), get(1, 2, 3, 'a', '1'), put(0, 0, 1, 'b', '1'), get(1, 2, 3, 'b', ''),
    ]],
  ];
  for (const [name, h] of illegal) {
    it(`rejects ${name}`, () => {
      const r = check(h);
      assert.equal(r.result, 'illegal');
      if (r.result === 'illegal') assertExplanation(r);
    });
  }

  it('explains the longest linearizable prefix and the operation that cannot follow it', () => {
    const stale = get(2, 4, 5, 'x', '1');
    const h = [put(0, 0, 1, 'x', '1'), put(1, 2, 3, 'x', '2'), stale, put(0, 0, 1, 'y', '9')];
    const r = check(h);
    assert.equal(r.result, 'illegal');
    if (r.result !== 'illegal') return;
    assertExplanation(r);
    assert.deepEqual(r.prefix, h.slice(0, 2));
    assert.equal(r.state, '2');
    assert.equal(r.stuck, stale);
    assert.deepEqual(r.candidates, [stale]);
    assert.deepEqual(r.partition, h.slice(0, 3));
    assert.match(r.message, /partition 1 of 2, 3 operations/);
    assert.match(r.message, /longest linearizable prefix: 2 of 3 operations/);
    assert.match(r.message, /1\. client 0 \[0, 1\] put\("x", "1"\)/);
    assert.match(r.message, /state after the prefix: "2"/);
    assert.match(r.message, /next must come client 2 \[4, 5\] get\("x"\) -> "1"/);
  });

  it('lists every operation that could come next, and marks unknown outcomes', () => {
    const h = [put(0, 0, 1, 'x', '1'), put(3, 0, Infinity, 'x', '9'), get(1, 2, 5, 'x', '2'), get(2, 2, 6, 'x', '3')];
    const r = check(h);
    assert.equal(r.result, 'illegal');
    if (r.result !== 'illegal') return;
    assertExplanation(r);
    assert.deepEqual(r.prefix, h.slice(0, 2));
    assert.deepEqual(r.candidates, h.slice(2));
    assert.match(r.message, /2\. client 3 \[0, ∞\] put\("x", "9"\) -> \?/);
    assert.match(r.message, /\n {2}client 2 \[2, 6\] get\("x"\) -> "3"$/);
  });
});

describe('search budget and input validation', () => {
  // Ten concurrent reads, then a stale read: the search must exhaust every order of the ten before failing.
  const reads = Array.from({ length: 10 }, (_, i) => get(i, 0, 10, 'x', ''));
  const hard = [...reads, put(10, 20, 21, 'x', '1'), get(11, 22, 23, 'x', '')];

  it('gives up with unknown when the step budget runs out, deterministically', () => {
    assert.deepEqual(check(hard, 50), { result: 'unknown', steps: 50 });
    const full = check(hard);
    assert.equal(full.result, 'illegal');
    assert.deepEqual(check(hard), full);
    assert.deepEqual(check(hard, full.steps), full);
  });

  it('prunes with the memo cache: reads in any order reach the same states', () => {
    // Without the cache the search would visit all 10! = 3,628,800 orders of the reads.
    const r = check(hard);
    assert.ok(r.steps < 100_000, `${r.steps} steps`);
  });

  it('rejects an operation whose return precedes its call', () => {
    assert.throws(() => check([put(0, 5, 4, 'x', '1')]), RangeError);
    assert.throws(() => check([put(0, NaN, 4, 'x', '1')]), RangeError);
    assert.throws(() => check([put(0, Infinity, Infinity, 'x', '1')]), RangeError);
  });
});

/** Runs `fn` and puts the seed in front of whatever it throws, so a failure can be replayed. */
function withSeed(seed: number, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) err.message = `seed ${seed}: ${err.message}`;
    throw err;
  }
}

interface Shape { clients: number; ops: number; keys: number; pending: number }

/** A random history and, for each key, every value the key held while it was generated (initially ''). */
interface Generated { history: KvOp[]; timeline: Map<string, { at: number; value: string }[]> }

/**
 * Clients issue operations one after another on random intervals; each takes effect at a random point
 * inside its interval on a real Map. A pending operation (probability `pending`) never answers: a put or
 * append then takes effect or not by a coin flip, and its client moves on after a timeout. Values are
 * `v<index>;` tokens, so a string names the operations that built it.
 */
function generate(rng: Rng, shape: Shape): Generated {
  const clock = Array.from({ length: shape.clients }, () => rng.int(5));
  const history: KvOp[] = [];
  const effects: { at: number; op: KvOp }[] = [];
  for (let i = 0; i < shape.ops; i++) {
    const client = rng.int(shape.clients);
    const call = clock[client] + rng.int(4);
    const end = call + 1 + rng.int(10);
    clock[client] = end;
    const key = `k${rng.int(shape.keys)}`;
    const kind = rng.pick(['get', 'put', 'append'] as const);
    const pending = rng.chance(shape.pending);
    const op: KvOp = {
      clientId: client, input: kind === 'get' ? { op: kind, key } : { op: kind, key, value: `v${i};` },
      output: pending ? undefined : {}, call, return: pending ? Infinity : end,
    };
    history.push(op);
    if (!(pending && (kind === 'get' || rng.chance(0.5)))) effects.push({ at: call + rng.next() * (end - call), op });
  }
  effects.sort((a, b) => a.at - b.at);
  const kv = new Map<string, string>();
  const timeline = new Map<string, { at: number; value: string }[]>();
  for (const { at, op } of effects) {
    const { key, value = '' } = op.input;
    const now = kv.get(key) ?? '';
    if (op.input.op === 'get') op.output = { value: now };
    else {
      kv.set(key, op.input.op === 'put' ? value : now + value);
      const line = timeline.get(key) ?? [{ at: -Infinity, value: '' }];
      line.push({ at, value: kv.get(key) as string });
      timeline.set(key, line);
    }
  }
  return { history, timeline };
}

/**
 * Whether no linearization can let `get` read `value`. Every token names the operation that wrote it, so
 * the value is impossible if it names an unknown operation or one invoked after the get returned, or if
 * some completed put or append missing from it surely falls between the value's base and the get: after
 * the put the value starts with (or anywhere, for a value built on the empty key) and before the get.
 */
function impossible(history: KvOp[], get: KvOp, value: string): boolean {
  const parts = value.split(';').slice(0, -1);
  const writers = parts.map((t) => history[Number(t.slice(1))]);
  if (writers.some((w) => w === undefined || w.input.key !== get.input.key || w.call > get.return)) return true;
  const base = writers[0]?.input.op === 'put' ? writers[0] : null;
  return history.some((x) =>
    x.input.op !== 'get' && x.input.key === get.input.key && x.return < get.call && !writers.includes(x)
    && (base === null || base.return < x.call));
}

/**
 * Changes one completed get to a value never visible during its interval and impossible in any order:
 * a stale or future value when one exists, else one never written. Returns false if there is no get.
 */
function corrupt(rng: Rng, { history, timeline }: Generated): boolean {
  const gets = history.filter((op) => op.input.op === 'get' && op.return !== Infinity);
  if (gets.length === 0) return false;
  const g = rng.pick(gets);
  const line = timeline.get(g.input.key) ?? [{ at: -Infinity, value: '' }];
  const visible = new Set(line.filter((e, i) => e.at <= g.return && (line[i + 1]?.at ?? Infinity) >= g.call).map((e) => e.value));
  const choices = [...new Set(line.map((e) => e.value))].filter((v) => impossible(history, g, v));
  const value = choices.length > 0 ? rng.pick(choices) : 'never;';
  assert.ok(!visible.has(value) && impossible(history, g, value), `corruption ${JSON.stringify(value)} is possible`);
  g.output = { value };
  return true;
}

/** The same KV semantics as one unpartitioned object, to cross-check P-compositionality. */
const wholeKv: Model<ReadonlyMap<string, string>, KvInput, KvOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    const now = state.get(input.key) ?? '';
    if (input.op === 'get') return [output === undefined || output.value === now, state];
    const next = new Map(state);
    next.set(input.key, input.op === 'put' ? input.value ?? '' : now + (input.value ?? ''));
    return [true, next];
  },
  equal: (a, b) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v),
};

describe('random histories from a real sequential KV', () => {
  const shapes: Shape[] = [
    { clients: 3, ops: 12, keys: 1, pending: 0 },
    { clients: 4, ops: 30, keys: 2, pending: 0.1 },
    { clients: 5, ops: 40, keys: 3, pending: 0.2 },
  ];

  it('are linearizable, and illegal once one get is corrupted', () => {
    let corrupted = 0;
    for (let i = 0; i < 300; i++) {
      const seed = 0x5eed + i;
      withSeed(seed, () => {
        const rng = new Rng(seed);
        const gen = generate(rng, shapes[i % shapes.length]);
        assertWitness(gen.history, check(gen.history));
        if (!corrupt(rng, gen)) return;
        corrupted++;
        const r = check(gen.history);
        assert.equal(r.result, 'illegal');
        if (r.result === 'illegal') assertExplanation(r);
      });
    }
    assert.ok(corrupted > 250, `only ${corrupted} histories had a get to corrupt`);
  });

  it('get the same verdict checked per key and as one object', () => {
    for (let i = 0; i < 100; i++) {
      const seed = 0xc0de + i;
      withSeed(seed, () => {
        const rng = new Rng(seed);
        const gen = generate(rng, { clients: 4, ops: 16, keys: 2, pending: 0.15 });
        assert.equal(checkOperations(wholeKv, gen.history).result, 'ok');
        if (corrupt(rng, gen)) assert.equal(checkOperations(wholeKv, gen.history).result, 'illegal');
      });
    }
  });

  it('checks 1,000 operations from 5 clients within the step budget', () => {
    for (const keys of [1, 4]) {
      const seed = 0xbeef + keys;
      withSeed(seed, () => {
        const gen = generate(new Rng(seed), { clients: 5, ops: 1000, keys, pending: 0.05 });
        assertWitness(gen.history, check(gen.history, 1_000_000));
      });
    }
  });
});
