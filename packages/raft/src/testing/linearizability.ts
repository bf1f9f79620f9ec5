/**
 * A linearizability checker: the Wing & Gong search with Lowe's memoisation, split by P-compositionality
 * (Horn & Kroening), the way Anish Athalye's porcupine does it. It is pure (no clock, no I/O), so the
 * time limit is a budget of search steps and a result never depends on how fast the machine is.
 * @module
 */

/**
 * A sequential specification of an object. `step` says whether `input` may return `output` in `state`
 * and gives the state afterwards. `output` is `undefined` when the outcome is unknown (the client never
 * heard back): the model must then accept the operation in any state and apply its effect, because the
 * checker may also place it after everything else, which covers "it never took effect".
 */
export interface Model<State, Input, Output> {
  init(): State;
  step(state: State, input: Input, output: Output | undefined): [ok: boolean, next: State];
  /** Whether two states behave the same; the memo cache merges search branches that reach equal states. */
  equal(a: State, b: State): boolean;
  /**
   * A 32-bit hash of a state, equal for equal states. Optional, but without it the memo cache compares,
   * one by one, every state it has reached with the same set of operations linearized, and pending
   * writes that can land anywhere make that list long.
   */
  hash?(state: State): number;
  /**
   * Splits a history into independent sub-histories (e.g. one per key) that are checked separately.
   * Valid only if the whole history is linearizable exactly when every part is (P-compositionality);
   * a part may leave out operations that cannot affect the outcome.
   */
  partition?(history: readonly Operation<Input, Output>[]): Operation<Input, Output>[][];
  /** Renders an operation for explanations; `output` is `undefined` when the outcome is unknown. */
  describeOperation?(input: Input, output: Output | undefined): string;
  describeState?(state: State): string;
}

/**
 * One operation of a concurrent history, invoked at `call` and answered at `return` (virtual times; only
 * their order matters). An operation whose outcome is unknown has `return: Infinity` and no `output`.
 * Operations that touch (one's `return` equals the other's `call`) count as concurrent.
 */
export interface Operation<Input, Output> {
  clientId: number | string;
  input: Input;
  output?: Output;
  call: number;
  return: number;
}

/** Options of {@link checkOperations}. */
export interface CheckOptions {
  /**
   * Search steps (operations tried or backtracked) allowed over all partitions before giving up with
   * `unknown`. Defaults to {@link DEFAULT_MAX_STEPS}.
   */
  maxSteps?: number;
}

/** The step budget used when {@link CheckOptions.maxSteps} is not given. */
export const DEFAULT_MAX_STEPS = 10_000_000;

/** The outcome of {@link checkOperations}; `steps` is the search work done. */
export type CheckResult<State, Input, Output> =
  | {
      result: 'ok';
      steps: number;
      /** One witness order per partition: each is a legal sequential run respecting real time. */
      linearizations: Operation<Input, Output>[][];
    }
  | ({ result: 'illegal'; steps: number } & IllegalExplanation<State, Input, Output>)
  | { result: 'unknown'; steps: number };

/**
 * Why a history is not linearizable, taken at the deepest point the search reached: after `prefix` the
 * object is in `state`; `stuck` returned before the other remaining operations were invoked, so it or an
 * operation invoked before it returned must come next; and none of those `candidates` is legal in `state`.
 */
export interface IllegalExplanation<State, Input, Output> {
  /** The sub-history (partition) that failed. */
  partition: Operation<Input, Output>[];
  prefix: Operation<Input, Output>[];
  state: State;
  stuck: Operation<Input, Output>;
  /** The operations that could have come next, `stuck` included, in invocation order. */
  candidates: Operation<Input, Output>[];
  /** All of the above rendered with the model's describe functions. */
  message: string;
}

/**
 * Checks whether `history` is linearizable with respect to `model`. Throws a `RangeError` for an
 * operation whose times are not a valid interval.
 */
export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<State, Input, Output> {
  history.forEach(validateOperation);
  const budget = { steps: 0, max: options.maxSteps ?? DEFAULT_MAX_STEPS };
  const parts = model.partition ? model.partition(history) : [history.slice()];
  const linearizations: Operation<Input, Output>[][] = [];
  for (const [i, part] of parts.entries()) {
    const r = checkPartition(model, part, budget);
    if (r.kind === 'budget') return { result: 'unknown', steps: budget.steps };
    if (r.kind === 'illegal') {
      const message = explain(model, r, i, parts.length);
      return { result: 'illegal', steps: budget.steps, ...r.explanation, message };
    }
    linearizations.push(r.order);
  }
  return { result: 'ok', steps: budget.steps, linearizations };
}

function validateOperation(op: Operation<unknown, unknown>, i: number): void {
  if (!Number.isFinite(op.call) || Number.isNaN(op.return) || op.return < op.call) {
    throw new RangeError(`operation ${i}: call ${op.call} and return ${op.return} are not an interval`);
  }
}

/**
 * A set of operation ids. The memo cache keys on it, so the search keeps a Zobrist hash beside it that
 * each toggle updates in O(1), instead of rehashing every word per lookup.
 */
class Bitset {
  readonly words: Uint32Array;
  constructor(words: Uint32Array) {
    this.words = words;
  }
  static empty(size: number): Bitset {
    return new Bitset(new Uint32Array((size + 31) >>> 5));
  }
  toggle(i: number): void {
    this.words[i >>> 5] ^= 1 << (i & 31);
  }
  clone(): Bitset {
    return new Bitset(this.words.slice());
  }
  equals(o: Bitset): boolean {
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== o.words[i]) return false;
    return true;
  }
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function mix32(x: number): number {
  let h = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The Zobrist key of operation `id`; a set's hash is the XOR of its members' keys. */
const zobrist = (id: number): number => mix32((id + 0x9e3779b9) | 0);

/**
 * Where a (set, state) pair lives in the cache. The offset differs from `zobrist`'s so that a state hash
 * equal to some operation id cannot cancel that operation's key.
 */
const cacheKey = (setHash: number, stateHash: number | undefined): number =>
  stateHash === undefined ? setHash : setHash ^ mix32((stateHash + 0x632be5ab) | 0);

/**
 * A call or return event in the doubly linked event list. A call's `match` is its return; a return's is
 * null. Linearizing an operation lifts both of its events out of the list, so the list always holds
 * exactly the operations not yet linearized, in time order.
 */
interface Event {
  id: number;
  match: Event | null;
  prev: Event | null;
  next: Event | null;
}

function buildEvents(ops: readonly Operation<unknown, unknown>[]): Event {
  const timed: { time: number; isCall: boolean; event: Event }[] = [];
  for (const [id, op] of ops.entries()) {
    const ret: Event = { id, match: null, prev: null, next: null };
    const call: Event = { id, match: ret, prev: null, next: null };
    timed.push({ time: op.call, isCall: true, event: call }, { time: op.return, isCall: false, event: ret });
  }
  // Calls sort before returns at equal times: touching operations are treated as concurrent, the
  // permissive reading for timestamps too coarse to order them. Subtraction would give NaN for two
  // Infinity returns, hence the explicit comparisons.
  timed.sort((a, b) =>
    a.time < b.time ? -1 : a.time > b.time ? 1
    : a.isCall !== b.isCall ? (a.isCall ? -1 : 1)
    : a.event.id - b.event.id);
  const head: Event = { id: -1, match: null, prev: null, next: null };
  let last = head;
  for (const { event } of timed) {
    last.next = event;
    event.prev = last;
    last = event;
  }
  return head;
}

// A call is never last in the list (its return follows it), so only the return's `next` can be null.
function lift(call: Event): void {
  const ret = call.match as Event;
  (call.prev as Event).next = call.next;
  (call.next as Event).prev = call.prev;
  (ret.prev as Event).next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: Event): void {
  const ret = call.match as Event;
  (ret.prev as Event).next = ret;
  if (ret.next) ret.next.prev = ret;
  (call.prev as Event).next = call;
  (call.next as Event).prev = call;
}

type PartitionResult<State, Input, Output> =
  | { kind: 'ok'; order: Operation<Input, Output>[] }
  | { kind: 'illegal'; explanation: Omit<IllegalExplanation<State, Input, Output>, 'message'> }
  | { kind: 'budget' };

function checkPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: Operation<Input, Output>[],
  budget: { steps: number; max: number },
): PartitionResult<State, Input, Output> {
  const head = buildEvents(ops);
  const linearized = Bitset.empty(ops.length);
  let setHash = 0;
  const cache = new Map<number, { set: Bitset; state: State }[]>();
  const stack: { call: Event; state: State }[] = [];
  let state = model.init();
  let deepest: Omit<IllegalExplanation<State, Input, Output>, 'message'> | null = null;
  let event = head.next;
  while (event !== null) {
    if (budget.steps >= budget.max) return { kind: 'budget' };
    budget.steps++;
    if (event.match !== null) {
      const op = ops[event.id];
      const [ok, next] = model.step(state, op.input, op.output);
      let fresh = false;
      if (ok) {
        linearized.toggle(event.id);
        const h = setHash ^ zobrist(event.id);
        const key = cacheKey(h, model.hash?.(next));
        const bucket = cache.get(key);
        fresh = !bucket?.some((c) => c.set.equals(linearized) && model.equal(c.state, next));
        if (fresh) {
          const entry = { set: linearized.clone(), state: next };
          if (bucket) bucket.push(entry); else cache.set(key, [entry]);
          stack.push({ call: event, state });
          state = next;
          setHash = h;
          lift(event);
        } else {
          linearized.toggle(event.id);
        }
      }
      event = fresh ? head.next : event.next;
    } else {
      // This return's operation is not linearized yet and nothing invoked after the return may precede
      // it, so every candidate from this state has been tried: a dead end. Every dead end at a new depth has tried all its candidates and found none legal (a cached one
      // would mean a deeper dead end was already seen), which is what makes it worth explaining.
      if (deepest === null || stack.length > deepest.prefix.length) {
        deepest = {
          partition: ops,
          prefix: stack.map((s) => ops[s.call.id]),
          state,
          stuck: ops[event.id],
          candidates: callsBefore(head, event).map((c) => ops[c.id]),
        };
      }
      const top = stack.pop();
      if (top === undefined) return { kind: 'illegal', explanation: deepest };
      state = top.state;
      linearized.toggle(top.call.id);
      setHash ^= zobrist(top.call.id);
      unlift(top.call);
      event = top.call.next;
    }
  }
  return { kind: 'ok', order: stack.map((s) => ops[s.call.id]) };
}

function callsBefore(head: Event, stop: Event): Event[] {
  const calls: Event[] = [];
  for (let e = head.next; e !== null && e !== stop; e = e.next) if (e.match !== null) calls.push(e);
  return calls;
}

function explain<State, Input, Output>(
  model: Model<State, Input, Output>,
  r: Extract<PartitionResult<State, Input, Output>, { kind: 'illegal' }>,
  index: number,
  count: number,
): string {
  const { partition, prefix, state, stuck, candidates } = r.explanation;
  const describe = (op: Operation<Input, Output>): string => {
    const body = model.describeOperation?.(op.input, op.output)
      ?? `${safeJson(op.input)} -> ${op.output === undefined ? '?' : safeJson(op.output)}`;
    const ret = op.return === Infinity ? '∞' : String(op.return);
    return `client ${op.clientId} [${op.call}, ${ret}] ${body}`;
  };
  const where = count > 1 ? ` (partition ${index + 1} of ${count}, ${partition.length} operations)` : '';
  return [
    `history is not linearizable${where}`,
    `longest linearizable prefix: ${prefix.length} of ${partition.length} operations`,
    ...prefix.map((op, i) => `  ${i + 1}. ${describe(op)}`),
    `state after the prefix: ${model.describeState?.(state) ?? safeJson(state)}`,
    `next must come ${describe(stuck)}`,
    'or an operation invoked before it returned, but none is legal in that state:',
    ...candidates.map((op) => `  ${describe(op)}`),
  ].join('\n');
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
