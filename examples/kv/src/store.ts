/**
 * The replicated key-value state machine. Every write bumps one store-wide revision (like etcd), and each
 * key keeps the revision that created it, the one that last changed it and how many times it changed, so a
 * client can compare-and-swap on either a value or a revision. The store also replicates the members' Raft
 * addresses, so that a member added at run time becomes reachable from every node, not only the leader, and
 * their HTTP addresses, so that any member can tell a client where the leader's API is.
 * @module
 */
import { isDeepStrictEqual } from 'node:util';
import type { Entry, StateMachine } from '@raftrtc/raft';

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One key's value and its history counters. */
export interface KeyValue {
  key: string;
  value: Json;
  /** The store revision of the write that created the key. */
  createRevision: number;
  /** The store revision of the write that last changed it. */
  modRevision: number;
  /** Writes since creation, 1 for a new key. */
  version: number;
}

/** A compare-and-swap condition: on the current value (null: the key must be absent), or on its modRevision (0: absent). */
export type CasExpectation = { value: Json } | { revision: number };

export type KvCommand =
  | { op: 'put'; key: string; value: Json }
  | { op: 'delete'; key: string }
  /** etcd's DeleteRange: bounds as base64 bytes (see {@link KeyRange}); one revision for the whole range. */
  | ({ op: 'delete-range'; prevKv?: boolean } & KeyRange)
  | { op: 'cas'; key: string; expected: CasExpectation; value: Json }
  | { op: 'member-address'; id: string; address: string }
  | { op: 'member-forget'; id: string }
  | { op: 'member-http'; id: string; http: string };

export type KvResult =
  | { op: 'put'; revision: number; kv: KeyValue; prev: KeyValue | null }
  | { op: 'delete'; revision: number; deleted: boolean; prev: KeyValue | null }
  /** `prev`: the deleted pairs, when the command asked for them (`prevKv`). */
  | { op: 'delete-range'; revision: number; deleted: number; prev?: KeyValue[] }
  | { op: 'cas'; revision: number; succeeded: boolean; kv: KeyValue | null }
  | { op: 'member'; revision: number };

/**
 * A key range as etcd gives it, both bounds base64 (they are bytes: `rangeEnd` is often a prefix with its
 * last byte incremented, which need not be valid UTF-8). No `rangeEnd` (or empty): the single key `key`;
 * `rangeEnd` `"\0"` (`AA==`): every key ≥ `key`; otherwise `key` ≤ k < `rangeEnd`. Keys are compared as
 * their UTF-8 bytes, which is etcd's order.
 */
export interface KeyRange {
  key: string;
  rangeEnd?: string;
}

export type KvQuery = { op: 'get'; key: string } | ({ op: 'range'; limit?: number } & KeyRange) | { op: 'members' };
export type KvQueryResult =
  | { op: 'get'; revision: number; kv: KeyValue | null }
  /** `count` is every key in the range; `kvs` at most `limit` of them, in key order. */
  | { op: 'range'; revision: number; kvs: KeyValue[]; count: number }
  | { op: 'members'; addresses: Record<string, string>; http: Record<string, string> };

/** What `snapshot()` produces: plain data, copied so later writes do not change it. */
interface KvSnapshot {
  revision: number;
  kvs: KeyValue[];
  addresses: Record<string, string>;
  http?: Record<string, string>;
}

/** A command that reached `apply` malformed; thrown the same way on every node, so it is refused everywhere. */
export class KvCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvCommandError';
  }
}

export class KvStore implements StateMachine<KvCommand, KvResult, KvQuery, KvQueryResult> {
  private revision = 0;
  private readonly kvs = new Map<string, KeyValue>();
  private addresses: Record<string, string> = {};
  private http: Record<string, string> = {};
  /** Keys in UTF-8 byte order, with their bytes; rebuilt lazily after a key is added or removed (not on updates). */
  private sorted: { key: string; bytes: Buffer }[] | null = null;

  /** @param onAddresses called with every member address change (apply and restore), to update the transport. */
  constructor(private readonly onAddresses: (addresses: Readonly<Record<string, string>>) => void = () => {}) {}

  apply(command: KvCommand, _entry: Entry): KvResult {
    switch (command?.op) {
      case 'put': {
        const prev = this.kvs.get(command.key) ?? null;
        return { op: 'put', revision: this.revision + 1, kv: this.write(command.key, command.value), prev };
      }
      case 'delete': {
        const prev = this.kvs.get(command.key) ?? null;
        // A delete of a missing key changes nothing, so it does not take a revision (as in etcd).
        if (!prev) return { op: 'delete', revision: this.revision, deleted: false, prev: null };
        this.kvs.delete(command.key);
        this.sorted = null;
        this.revision++;
        return { op: 'delete', revision: this.revision, deleted: true, prev };
      }
      case 'delete-range': {
        const keys = this.rangeKeys(command);
        // Like an etcd transaction: every key goes at the same revision, and deleting nothing takes none.
        if (keys.length === 0) return { op: 'delete-range', revision: this.revision, deleted: 0, ...(command.prevKv ? { prev: [] } : {}) };
        const prev = command.prevKv ? keys.map((k) => this.kvs.get(k)!) : undefined;
        for (const k of keys) this.kvs.delete(k);
        this.sorted = null;
        this.revision++;
        return { op: 'delete-range', revision: this.revision, deleted: keys.length, ...(prev ? { prev } : {}) };
      }
      case 'cas': {
        const cur = this.kvs.get(command.key) ?? null;
        const e = command.expected;
        const ok = 'revision' in e ? (cur?.modRevision ?? 0) === e.revision : isDeepStrictEqual(cur?.value ?? null, e.value);
        if (!ok) return { op: 'cas', revision: this.revision, succeeded: false, kv: cur };
        return { op: 'cas', revision: this.revision + 1, succeeded: true, kv: this.write(command.key, command.value) };
      }
      case 'member-address':
        this.addresses = { ...this.addresses, [command.id]: command.address };
        this.onAddresses(this.addresses);
        return { op: 'member', revision: this.revision };
      case 'member-forget': {
        const { [command.id]: _gone, ...rest } = this.addresses;
        const { [command.id]: _goneHttp, ...restHttp } = this.http;
        this.addresses = rest;
        this.http = restHttp;
        this.onAddresses(this.addresses);
        return { op: 'member', revision: this.revision };
      }
      case 'member-http':
        this.http = { ...this.http, [command.id]: command.http };
        return { op: 'member', revision: this.revision };
      default:
        throw new KvCommandError(`unknown command ${JSON.stringify((command as { op?: unknown } | null)?.op)}`);
    }
  }

  private write(key: string, value: Json): KeyValue {
    const prev = this.kvs.get(key);
    if (!prev) this.sorted = null;
    this.revision++;
    const kv: KeyValue = {
      key, value,
      createRevision: prev?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (prev?.version ?? 0) + 1,
    };
    this.kvs.set(key, kv);
    return kv;
  }

  query(q: KvQuery): KvQueryResult {
    if (q.op === 'members') return { op: 'members', addresses: { ...this.addresses }, http: { ...this.http } };
    if (q.op === 'range') {
      const keys = this.rangeKeys(q);
      const limit = q.limit !== undefined && q.limit > 0 ? q.limit : keys.length;
      return { op: 'range', revision: this.revision, count: keys.length, kvs: keys.slice(0, limit).map((k) => this.kvs.get(k)!) };
    }
    return { op: 'get', revision: this.revision, kv: this.kvs.get(q.key) ?? null };
  }

  /** The keys in `range`, in UTF-8 byte order: an exact lookup, or a binary search into the sorted keys and a scan. */
  private rangeKeys(range: KeyRange): string[] {
    const start = Buffer.from(range.key, 'base64');
    const end = range.rangeEnd === undefined ? Buffer.alloc(0) : Buffer.from(range.rangeEnd, 'base64');
    if (end.length === 0) {
      // A single key; the store's keys are strings, so bytes that are not UTF-8 can name no key.
      const key = start.toString('utf8');
      return Buffer.from(key, 'utf8').equals(start) && this.kvs.has(key) ? [key] : [];
    }
    const toEnd = end.length === 1 && end[0] === 0;
    if (!this.sorted) {
      this.sorted = [...this.kvs.keys()].map((key) => ({ key, bytes: Buffer.from(key, 'utf8') }));
      this.sorted.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    }
    const sorted = this.sorted;
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(sorted[mid]!.bytes, start) < 0) lo = mid + 1; else hi = mid;
    }
    const out: string[] = [];
    for (let i = lo; i < sorted.length; i++) {
      if (!toEnd && Buffer.compare(sorted[i]!.bytes, end) >= 0) break;
      out.push(sorted[i]!.key);
    }
    return out;
  }

  snapshot(): KvSnapshot {
    // KeyValue objects are replaced, never mutated, on write, so sharing them with the snapshot is safe.
    return { revision: this.revision, kvs: [...this.kvs.values()], addresses: { ...this.addresses }, http: { ...this.http } };
  }

  restore(data: unknown): void {
    const s = data as KvSnapshot | null;
    this.kvs.clear();
    this.sorted = null;
    this.revision = s?.revision ?? 0;
    for (const kv of s?.kvs ?? []) this.kvs.set(kv.key, kv);
    this.addresses = { ...(s?.addresses ?? {}) };
    this.http = { ...(s?.http ?? {}) };
    this.onAddresses(this.addresses);
  }

  /** Keys' and values' bytes as JSON, summed: stands in for etcd's dbSize (O(keys): for status, not hot paths). */
  approximateSize(): number {
    let n = 0;
    for (const kv of this.kvs.values()) n += Buffer.byteLength(kv.key) + Buffer.byteLength(typeof kv.value === 'string' ? kv.value : JSON.stringify(kv.value));
    return n;
  }

  /** A member's HTTP address as applied on this node (not linearizable; for hints only). */
  httpAddress(id: string): string | undefined { return this.http[id]; }

  /** The current revision, as applied on this node (not linearizable: use `RaftNode.read`). */
  get currentRevision(): number { return this.revision; }
}
