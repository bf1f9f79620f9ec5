/**
 * The subset of etcd's v3 JSON gateway (grpc-gateway over etcdserverpb) that a plain etcd HTTP client uses,
 * over the same store and Raft node as the native API, so one load generator can drive this server and etcd
 * with byte-identical requests:
 *
 * - `POST /v3/kv/put` `{ key, value, prev_kv? }`
 * - `POST /v3/kv/range` `{ key, range_end?, limit?, serializable?, keys_only?, count_only? }`
 * - `POST /v3/kv/deleterange` `{ key, range_end?, prev_kv? }`
 * - `POST /v3/maintenance/status` `{}`
 *
 * Answers follow proto3 JSON as etcd's gateway prints it: original (snake_case) field names, 64-bit integers
 * as decimal strings, bytes as base64, and zero values (0, "", false, empty lists) left out.
 *
 * Keys and values are bytes in etcd but strings in {@link KvStore}: a key or value written here must be
 * valid UTF-8 and is stored as that string (so `/v3` key `Zm9v` is `/kv/foo`). A value written through the
 * native API as a non-string JSON value reads back here as its JSON text.
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { HttpError, readJsonObject, type KvNode } from './http-api.js';
import type { KeyValue, KvStore } from './store.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** etcd ids are uint64; ours are strings, so each id maps to its 64-bit FNV-1a hash (stable across restarts). */
export function etcdId(id: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(id, 'utf8')) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  // 0 would be left out of the JSON as a zero value and read as "no leader".
  return (h === 0n ? 1n : h).toString();
}

/** proto3 JSON leaves zero values out; int64 fields are strings. */
function int64(n: number): string | undefined {
  return n === 0 ? undefined : String(n);
}

function compact(obj: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined && v !== '' && v !== false && !(Array.isArray(v) && v.length === 0)));
}

/** A `bytes` field: standard or URL-safe base64 (protojson accepts both); absent is empty. */
function bytesField(body: Record<string, unknown>, name: string): Buffer {
  const v = body[name];
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v) || v.replace(/=+$/, '').length % 4 === 1) {
    throw new HttpError(400, 'invalid_body', `"${name}" must be base64`);
  }
  return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function utf8(bytes: Buffer, name: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new HttpError(400, 'invalid_body', `"${name}" must be UTF-8 text here (the store keeps strings)`);
  }
}

function boolField(body: Record<string, unknown>, name: string): boolean {
  const v = body[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new HttpError(400, 'invalid_body', `"${name}" must be a boolean`);
  return v;
}

/** int64 fields may come as numbers or decimal strings (proto3 JSON). */
function intField(body: Record<string, unknown>, name: string): number {
  const v = body[name];
  if (v === undefined || v === null) return 0;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new HttpError(400, 'invalid_body', `"${name}" must be an integer`);
  return n;
}

/** A field under either its proto name or its lowerCamelCase JSON name, as protojson accepts both. */
function alias(body: Record<string, unknown>, proto: string, camel: string): void {
  if (body[proto] === undefined && body[camel] !== undefined) body[proto] = body[camel];
}

export class EtcdGateway {
  constructor(
    private readonly node: KvNode,
    private readonly store: KvStore,
    private readonly maxBodyBytes: number,
    private readonly maxKeyBytes: number,
  ) {
    this.memberId = etcdId(node.id);
    const membershipChanged = (): void => { this.clusterId = null; };
    node.on('join', membershipChanged);
    node.on('leave', membershipChanged);
  }

  /** `path` is what follows `/v3/`; every route is POST (checked by the caller). */
  async handle(path: string, req: IncomingMessage): Promise<{ status: number; body: unknown } | null> {
    switch (path) {
      case 'kv/put': return this.put(await readJsonObject(req, this.maxBodyBytes));
      case 'kv/range': return this.range(await readJsonObject(req, this.maxBodyBytes));
      case 'kv/deleterange': return this.deleteRange(await readJsonObject(req, this.maxBodyBytes));
      case 'maintenance/status': await readJsonObject(req, this.maxBodyBytes); return this.status();
      default: return null;
    }
  }

  /** Every answer carries a header, so its parts are cached: the cluster id changes only with membership. */
  private clusterId: string | null = null;
  private readonly memberId: string;

  private header(revision: number): Record<string, unknown> {
    this.clusterId ??= etcdId([...this.node.status().conf.voters].sort().join(','));
    return compact({
      cluster_id: this.clusterId,
      member_id: this.memberId,
      revision: int64(revision),
      raft_term: int64(this.node.term),
    });
  }

  private key(body: Record<string, unknown>): Buffer {
    const key = bytesField(body, 'key');
    // etcd: "etcdserver: key is not provided".
    if (key.length === 0) throw new HttpError(400, 'invalid_key', 'key is not provided');
    if (key.length > this.maxKeyBytes) throw new HttpError(400, 'invalid_key', `the key exceeds ${this.maxKeyBytes} bytes`);
    return key;
  }

  private kv(kv: KeyValue, keysOnly = false): Record<string, unknown> {
    const value = typeof kv.value === 'string' ? kv.value : JSON.stringify(kv.value);
    return compact({
      key: Buffer.from(kv.key, 'utf8').toString('base64'),
      create_revision: int64(kv.createRevision),
      mod_revision: int64(kv.modRevision),
      version: int64(kv.version),
      value: keysOnly ? undefined : Buffer.from(value, 'utf8').toString('base64'),
    });
  }

  private async put(body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    alias(body, 'prev_kv', 'prevKv');
    const key = utf8(this.key(body), 'key');
    const value = utf8(bytesField(body, 'value'), 'value');
    // Leases and ignore_* have no counterpart in this store: refuse rather than silently drop them.
    if (intField(body, 'lease') !== 0) throw new HttpError(501, 'unsupported', 'leases are not supported');
    if (boolField(body, 'ignore_value') || boolField(body, 'ignoreValue') || boolField(body, 'ignore_lease') || boolField(body, 'ignoreLease')) {
      throw new HttpError(501, 'unsupported', 'ignore_value and ignore_lease are not supported');
    }
    const r = await this.node.propose({ op: 'put', key, value });
    if (r.op !== 'put') throw new HttpError(500, 'internal', 'unexpected result');
    const prev = boolField(body, 'prev_kv') && r.prev ? this.kv(r.prev) : undefined;
    return { status: 200, body: compact({ header: this.header(r.revision), prev_kv: prev }) };
  }

  private async range(body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    alias(body, 'range_end', 'rangeEnd');
    alias(body, 'keys_only', 'keysOnly');
    alias(body, 'count_only', 'countOnly');
    const key = this.key(body).toString('base64');
    const rangeEnd = bytesField(body, 'range_end');
    const limit = intField(body, 'limit');
    if (limit < 0) throw new HttpError(400, 'invalid_body', '"limit" must be ≥ 0');
    if (intField(body, 'revision') > 0) throw new HttpError(501, 'unsupported', 'reads at a past revision are not supported (no MVCC history)');
    const query = { op: 'range' as const, key, ...(rangeEnd.length > 0 ? { rangeEnd: rangeEnd.toString('base64') } : {}), ...(limit > 0 ? { limit } : {}) };
    // serializable: this member's applied state, possibly stale (as in etcd); otherwise a ReadIndex read.
    const r = boolField(body, 'serializable') ? this.store.query(query) : await this.node.read(query);
    if (r.op !== 'range') throw new HttpError(500, 'internal', 'unexpected query result');
    const countOnly = boolField(body, 'count_only');
    const keysOnly = boolField(body, 'keys_only');
    return {
      status: 200,
      body: compact({
        header: this.header(r.revision),
        kvs: countOnly ? [] : r.kvs.map((kv) => this.kv(kv, keysOnly)),
        more: r.count > r.kvs.length && !countOnly,
        count: int64(r.count),
      }),
    };
  }

  private async deleteRange(body: Record<string, unknown>): Promise<{ status: number; body: unknown }> {
    alias(body, 'range_end', 'rangeEnd');
    alias(body, 'prev_kv', 'prevKv');
    const prevKv = boolField(body, 'prev_kv');
    const key = this.key(body).toString('base64');
    const rangeEnd = bytesField(body, 'range_end');
    const r = await this.node.propose({
      op: 'delete-range', key, ...(rangeEnd.length > 0 ? { rangeEnd: rangeEnd.toString('base64') } : {}), ...(prevKv ? { prevKv } : {}),
    });
    if (r.op !== 'delete-range') throw new HttpError(500, 'internal', 'unexpected result');
    return { status: 200, body: compact({ header: this.header(r.revision), deleted: int64(r.deleted), prev_kvs: r.prev?.map((kv) => this.kv(kv)) }) };
  }

  /** Local, as etcd's Status is: this member's view of leader, term and indexes. */
  private status(): { status: number; body: unknown } {
    const s = this.node.status();
    return {
      status: 200,
      body: compact({
        header: this.header(this.store.currentRevision),
        // The etcd API version this gateway imitates; clients check it for feature support.
        version: '3.5.0',
        dbSize: int64(this.store.approximateSize()),
        leader: s.leader === null ? undefined : etcdId(s.leader),
        raftIndex: int64(s.commit),
        raftTerm: int64(s.term),
        raftAppliedIndex: int64(s.applied),
        isLearner: s.conf.learners.includes(s.id),
      }),
    };
  }
}
