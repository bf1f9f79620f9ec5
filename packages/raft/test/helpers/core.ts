/**
 * Builders for paper tests that drive one `RaftCore` by hand: a node restored with a given log and term,
 * its storage, and shortcuts to take a Ready. Every node gets `random: () => 0`, so each election timeout
 * is exactly `electionTicks` and a test can count ticks to it.
 * @module
 */
import { RaftCore, type RaftCoreOptions } from '../../src/core/raft.js';
import type { Message } from '../../src/core/messages.js';
import type { Entry, HardState, NodeId, Ready, Snapshot } from '../../src/core/types.js';

export const ELECTION = 10;

/**
 * What a node has made durable and applied, kept the way the contract's Ready handling says: persist,
 * restore from a snapshot, apply in order.
 */
export class MemoryStorage {
  hardState: HardState | undefined;
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  /** The last index applied, or covered by the snapshot the state machine was restored from. */
  appliedIndex = 0;
  /** Entries applied since the node (re)started, in order. */
  readonly applied: Entry[] = [];

  /** Storage already holding what a node is restored from. */
  static from(r: NonNullable<RaftCoreOptions['restore']>): MemoryStorage {
    const st = new MemoryStorage();
    st.hardState = r.hardState;
    st.snapshot = r.snapshot ?? null;
    st.entries = [...(r.entries ?? [])];
    st.appliedIndex = r.applied ?? st.snapshot?.index ?? 0;
    return st;
  }

  /** Handles a Ready in the contract's order; an applied index that skips or repeats is a core bug. */
  handle(rd: Ready): void {
    if (rd.hardState) this.hardState = rd.hardState;
    if (rd.snapshot) {
      this.snapshot = rd.snapshot;
      this.entries = [];
      this.appliedIndex = rd.snapshot.index;
    }
    if (rd.entries.length) {
      const first = rd.entries[0].index;
      this.entries = this.entries.filter((e) => e.index < first).concat(rd.entries);
    }
    for (const e of rd.committed) {
      if (e.index !== this.appliedIndex + 1) throw new Error(`applied ${e.index} after ${this.appliedIndex}`);
      this.appliedIndex = e.index;
      this.applied.push(e);
    }
  }

  /** Drops stored entries up to the snapshot `compact()` returned. */
  compacted(s: Snapshot): void {
    this.snapshot = s;
    this.entries = this.entries.filter((e) => e.index > s.index);
  }

  /** What a restarted node is rebuilt from. */
  restore(): NonNullable<RaftCoreOptions['restore']> {
    return { hardState: this.hardState, entries: [...this.entries], snapshot: this.snapshot };
  }

  /** The storage after a crash: the durable part survives, the state machine restarts from the snapshot. */
  afterCrash(): MemoryStorage {
    const st = new MemoryStorage();
    st.hardState = this.hardState;
    st.snapshot = this.snapshot;
    st.entries = [...this.entries];
    st.appliedIndex = this.snapshot?.index ?? 0;
    return st;
  }

  /** The term of every stored entry after the snapshot, in index order. */
  terms(): number[] { return this.entries.map((e) => e.term); }
}

const storages = new WeakMap<RaftCore, MemoryStorage>();

/** The storage a node persists into when its Readys are taken through {@link take}. */
export function storage(core: RaftCore): MemoryStorage {
  let s = storages.get(core);
  if (!s) { s = new MemoryStorage(); storages.set(core, s); }
  return s;
}

/** Gives a restarted node the storage it was rebuilt from. */
export function attach(core: RaftCore, st: MemoryStorage): void { storages.set(core, st); }

/**
 * A log whose entry 1 is the bootstrap conf entry of `voters` (term 1) and whose entry i (i >= 2) has term
 * `terms[i - 2]` and data `e<i>`.
 */
export function logWith(voters: readonly NodeId[], terms: readonly number[]): Entry[] {
  const log: Entry[] = [{ index: 1, term: 1, type: 'conf', data: { op: 'bootstrap', voters: [...voters] } }];
  terms.forEach((term, k) => log.push({ index: k + 2, term, type: 'normal', data: `e${k + 2}` }));
  return log;
}

export interface NodeSetup {
  voters?: NodeId[];
  /** Terms of entries 2, 3, … (entry 1 is the bootstrap entry). */
  terms?: number[];
  /** Entries after those, e.g. conf entries. */
  extra?: Entry[];
  term?: number;
  vote?: NodeId | null;
  commit?: number;
}

/** What storage holds for `setup`: voters a, b, c unless told, term the last entry's, commit 1. */
export function restoreOf(setup: NodeSetup = {}): { hardState: HardState; entries: Entry[] } {
  const terms = setup.terms ?? [];
  return {
    hardState: { term: setup.term ?? Math.max(1, ...terms), vote: setup.vote ?? null, commit: setup.commit ?? 1 },
    entries: [...logWith(setup.voters ?? ['a', 'b', 'c'], terms), ...(setup.extra ?? [])],
  };
}

/**
 * A node rebuilt from storage holding `setup`, with its first Ready already taken, so a test starts from
 * a quiet node.
 */
export function node(id: NodeId, setup: NodeSetup = {}, options: Partial<RaftCoreOptions> = {}): RaftCore {
  const restore = restoreOf(setup);
  const core = new RaftCore({ id, electionTicks: ELECTION, random: () => 0, restore, ...options });
  attach(core, MemoryStorage.from(restore));
  take(core);
  return core;
}

/** Takes one Ready, persists and applies it, and acknowledges it, as a node whose storage never fails. */
export function take(core: RaftCore): Ready {
  const rd = core.ready();
  storage(core).handle(rd);
  core.advance();
  return rd;
}

/** The messages of the next Ready. */
export function sent(core: RaftCore): Message[] {
  return take(core).messages;
}

export function tickN(core: RaftCore, n: number): void {
  for (let i = 0; i < n; i++) core.tick();
}

/**
 * Makes `core` leader without a network: it times out and every voter it asks grants the (pre-)vote.
 * Returns the messages of the Ready in which it became leader (its first appends).
 */
export function elect(core: RaftCore): Message[] {
  tickN(core, ELECTION);
  let out = sent(core);
  for (let round = 0; round < 2 && core.status().role !== 'leader'; round++) {
    for (const m of out) {
      if (m.type !== 'PreVote' && m.type !== 'Vote') continue;
      core.step({ type: m.type === 'PreVote' ? 'PreVoteResp' : 'VoteResp', from: m.to, to: core.id, term: m.term, reject: false });
    }
    out = sent(core);
  }
  if (core.status().role !== 'leader') throw new Error(`${core.id} did not become leader`);
  return out;
}

/** An Append whose entries are given by their terms, starting after `prevIndex`. */
export function append(from: NodeId, to: NodeId, term: number, prevIndex: number, prevTerm: number, terms: readonly number[], commit = 0): Message {
  const entries: Entry[] = terms.map((t, k) => ({ index: prevIndex + k + 1, term: t, type: 'normal', data: `x${prevIndex + k + 1}` }));
  return { type: 'Append', from, to, term, prevIndex, prevTerm, entries, commit };
}

/** A successful AppendResp acknowledging up to `index`. */
export function ack(from: NodeId, to: NodeId, term: number, index: number): Message {
  return { type: 'AppendResp', from, to, term, index, reject: false, hintIndex: 0, hintTerm: 0 };
}

export function ofType<T extends Message['type']>(ms: readonly Message[], type: T): Extract<Message, { type: T }>[] {
  return ms.filter((m): m is Extract<Message, { type: T }> => m.type === type);
}
