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
  | { op: 'cas'; key: string; expected: CasExpectation; value: Json }
  | { op: 'member-address'; id: string; address: string }
  | { op: 'member-forget'; id: string }
  | { op: 'member-http'; id: string; http: string };

export type KvResult =
  | { op: 'put'; revision: number; kv: KeyValue; prev: KeyValue | null }
  | { op: 'delete'; revision: number; deleted: boolean; prev: KeyValue | null }
  | { op: 'cas'; revision: number; succeeded: boolean; kv: KeyValue | null }
  | { op: 'member'; revision: number };

export type KvQuery = { op: 'get'; key: string } | { op: 'members' };
export type KvQueryResult =
  | { op: 'get'; revision: number; kv: KeyValue | null }
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
        this.revision++;
        return { op: 'delete', revision: this.revision, deleted: true, prev };
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
    return { op: 'get', revision: this.revision, kv: this.kvs.get(q.key) ?? null };
  }

  snapshot(): KvSnapshot {
    // KeyValue objects are replaced, never mutated, on write, so sharing them with the snapshot is safe.
    return { revision: this.revision, kvs: [...this.kvs.values()], addresses: { ...this.addresses }, http: { ...this.http } };
  }

  restore(data: unknown): void {
    const s = data as KvSnapshot | null;
    this.kvs.clear();
    this.revision = s?.revision ?? 0;
    for (const kv of s?.kvs ?? []) this.kvs.set(kv.key, kv);
    this.addresses = { ...(s?.addresses ?? {}) };
    this.http = { ...(s?.http ?? {}) };
    this.onAddresses(this.addresses);
  }

  /** A member's HTTP address as applied on this node (not linearizable; for hints only). */
  httpAddress(id: string): string | undefined { return this.http[id]; }

  /** The current revision, as applied on this node (not linearizable: use `RaftNode.read`). */
  get currentRevision(): number { return this.revision; }
}
