/**
 * The application a simulated node runs on top of Raft: the {@link StateMachine} interface and the default
 * key-value store.
 * @module
 */
import type { Entry, NodeId } from '../core/types.js';

/**
 * An application state machine. The simulation calls `apply` for every committed entry in index order,
 * including the leader's empty entries and `conf` entries, so a machine always knows its applied index;
 * most machines ignore those. `snapshot()` must be deterministic: two replicas that applied the same
 * entries must return equal data, which the invariant checker compares across nodes.
 */
export interface StateMachine {
  /** Applies one committed entry; the return value is the result a client would receive. */
  apply(entry: Entry): unknown;
  /** The state as JSON-serialisable data, for `RaftCore.compact()`. */
  snapshot(): unknown;
  /** Replaces the whole state with a snapshot's data. */
  restore(data: unknown): void;
}

/** Makes a fresh, empty state machine for a node (called at start and at every restart). */
export type StateMachineFactory<SM extends StateMachine = StateMachine> = (id: NodeId) => SM;

/**
 * A key-value command. `get` reads, `put` replaces, `append` concatenates; a missing key reads as `''`.
 * A command with an `id` takes effect at most once: a retried proposal that commits twice is ignored the
 * second time and answered with the first result.
 */
export interface KvCommand {
  op: 'put' | 'append' | 'get';
  key: string;
  value?: string;
  id?: string;
}

/** One command the key-value store applied, with its result (the value read, for `get`). */
export interface KvApplied {
  index: number;
  command: KvCommand;
  result: string | null;
  duplicate: boolean;
}

interface KvSnapshot {
  data: [string, string][];
  results: [string, string | null][];
}

/** Whether `data` is shaped like a {@link KvCommand}. */
export function isKvCommand(data: unknown): data is KvCommand {
  if (typeof data !== 'object' || data === null) return false;
  const c = data as Record<string, unknown>;
  return (c.op === 'put' || c.op === 'append' || c.op === 'get') && typeof c.key === 'string'
    && (c.value === undefined || typeof c.value === 'string') && (c.id === undefined || typeof c.id === 'string');
}

/** The default state machine: a string key-value map. Entries that are not {@link KvCommand}s are skipped. */
export class KvStateMachine implements StateMachine {
  readonly data = new Map<string, string>();
  /** Results of commands with an `id`, so a duplicate is answered without taking effect again. */
  private readonly results = new Map<string, string | null>();
  /** The commands applied since this machine was made or last restored. */
  readonly applied: KvApplied[] = [];

  apply(entry: Entry): string | null | undefined {
    if (entry.type !== 'normal' || !isKvCommand(entry.data)) return undefined;
    const cmd = entry.data;
    if (cmd.id !== undefined && this.results.has(cmd.id)) {
      const result = this.results.get(cmd.id) ?? null;
      this.applied.push({ index: entry.index, command: cmd, result, duplicate: true });
      return result;
    }
    let result: string | null = null;
    switch (cmd.op) {
      case 'get': result = this.data.get(cmd.key) ?? ''; break;
      case 'put': this.data.set(cmd.key, cmd.value ?? ''); break;
      case 'append': this.data.set(cmd.key, (this.data.get(cmd.key) ?? '') + (cmd.value ?? '')); break;
    }
    if (cmd.id !== undefined) this.results.set(cmd.id, result);
    this.applied.push({ index: entry.index, command: cmd, result, duplicate: false });
    return result;
  }

  /** The value of `key`, `''` when missing. */
  get(key: string): string {
    return this.data.get(key) ?? '';
  }

  snapshot(): KvSnapshot {
    return { data: [...this.data], results: [...this.results] };
  }

  restore(data: unknown): void {
    const s = data as KvSnapshot;
    this.data.clear();
    this.results.clear();
    for (const [k, v] of s.data) this.data.set(k, v);
    for (const [k, v] of s.results) this.results.set(k, v);
    this.applied.length = 0;
  }
}
