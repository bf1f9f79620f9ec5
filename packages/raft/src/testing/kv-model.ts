/**
 * The key/value model of MIT 6.824 lab 3 for the linearizability checker: `get`, `put` and `append` on
 * string keys, where a missing key reads as `''`.
 * @module
 */
import type { Model, Operation } from './linearizability.js';

/** A client's request to the key/value service. `value` is required for `put` and `append`. */
export interface KvInput {
  op: 'get' | 'put' | 'append';
  key: string;
  value?: string;
}

/** The service's reply: `get` answers `{ value }`; the reply to `put` and `append` is ignored. */
export interface KvOutput {
  value?: string;
}

/**
 * The key/value model, partitioned by key. Its state is the value of one key, so it is correct only on
 * partitions, which `checkOperations` always makes when a model has `partition`.
 */
export const kvModel: Model<string, KvInput, KvOutput> = {
  init: () => '',
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        return [output === undefined || output.value === state, state];
      case 'put':
        return [true, input.value ?? ''];
      case 'append':
        return [true, state + (input.value ?? '')];
      default: {
        const never: never = input.op;
        throw new TypeError(`unknown kv operation ${String(never)}`);
      }
    }
  },
  equal: (a, b) => a === b,
  hash(state) {
    // FNV-1a.
    let h = 0x811c9dc5;
    for (let i = 0; i < state.length; i++) h = Math.imul(h ^ state.charCodeAt(i), 0x01000193);
    return h;
  },
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      // A get whose answer never arrived changes nothing and constrains nothing, so it only costs search.
      if (op.input.op === 'get' && op.output === undefined) continue;
      const part = byKey.get(op.input.key);
      if (part) part.push(op); else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },
  describeOperation(input, output) {
    const args = input.op === 'get' ? JSON.stringify(input.key) : `${JSON.stringify(input.key)}, ${JSON.stringify(input.value ?? '')}`;
    const call = `${input.op}(${args})`;
    if (output === undefined) return `${call} -> ?`;
    return input.op === 'get' ? `${call} -> ${JSON.stringify(output.value)}` : call;
  },
  describeState: (state) => JSON.stringify(state),
};
