/**
 * The kv example's HTTP JSON API over one {@link RaftNode}. Writes go through `propose` (a follower forwards
 * them to the leader and answers once it applied them itself); `GET /kv/:key` is a linearizable ReadIndex
 * read. Every answer is JSON; every error is `{ error: { code, message, ... } }` with a fitting status.
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConfChangeError, NotLeaderError, ProposalDroppedError, StoppedError, TimeoutError, type RaftNode,
} from '@raftrtc/raft';
import { EtcdGateway } from './etcd-gateway.js';
import type { Json, KvCommand, KvQuery, KvQueryResult, KvResult, KvStore } from './store.js';

export type KvNode = RaftNode<KvCommand, KvResult, KvQuery, KvQueryResult>;

/** Structured log sink: an event name and its fields. */
export type KvLog = (event: string, fields: Record<string, unknown>) => void;

export interface KvApiOptions {
  node: KvNode;
  /** The node's state machine: read locally for hints (the leader's HTTP address) and for `GET /cluster` without a quorum. */
  store: KvStore;
  /** Largest request body in bytes; default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest key in UTF-8 bytes; default 1024. */
  maxKeyBytes?: number;
  /** Raft addresses known from the command line, shown in `GET /cluster` beside the replicated ones. */
  staticAddresses?: Readonly<Record<string, string>>;
  /** How long `GET /cluster` waits for a linearizable view before it answers from this node's own (`stale: true`); default 1000 ms. */
  clusterReadTimeoutMs?: number;
  log?: KvLog;
}

/** An error with an HTTP status, answered as JSON. */
export class HttpError extends Error {
  /** Answer with `connection: close` (the request's body is left unread). */
  closeConnection = false;
  constructor(readonly status: number, readonly code: string, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8' } as const;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** gRPC status codes by HTTP status, the inverse of grpc-gateway's mapping. */
const GRPC_CODES: Record<number, number> = { 400: 3, 404: 5, 405: 12, 409: 9, 413: 8, 429: 8, 500: 13, 501: 12, 503: 14 };

/** An error as etcd's grpc-gateway prints it: `{ error, message, code }` with the gRPC code. */
function etcdError(e: HttpError): Record<string, unknown> {
  return { error: e.message, message: e.message, code: GRPC_CODES[e.status] ?? 2 };
}

/**
 * Maps the library's typed errors to HTTP: no leader / not leader / timeout are 503 with a hint: the
 * leader's id and, when it announced one, its HTTP address (from this node's applied state: a hint only).
 */
function toHttpError(err: unknown, node: KvNode, store: KvStore): HttpError {
  if (err instanceof HttpError) return err;
  const leader = err instanceof NotLeaderError ? err.leader : node.leader;
  const hint = { leader, leaderHttp: leader === null ? null : store.httpAddress(leader) ?? null };
  if (err instanceof NotLeaderError) return new HttpError(503, 'not_leader', err.message, hint);
  // A timed-out write may still be applied later: the client must not assume it failed.
  if (err instanceof TimeoutError) return new HttpError(503, 'timeout', `${err.message}; the outcome is unknown`, hint);
  if (err instanceof ProposalDroppedError) return new HttpError(503, 'dropped', err.message, hint);
  if (err instanceof StoppedError) return new HttpError(503, 'stopped', err.message, hint);
  if (err instanceof ConfChangeError) return new HttpError(409, 'conf_change_refused', err.message);
  return new HttpError(500, 'internal', err instanceof Error ? err.message : String(err));
}

/** Beyond this many times the limit we stop draining an oversized body and drop the connection. */
const DRAIN_FACTOR = 16;

/**
 * Reads the whole body, refusing it once it exceeds `limit`. A refused body is still drained (discarded)
 * so the connection stays usable and the client, still sending, gets our 413 rather than a reset; only a
 * body far beyond the limit (declared or sent) costs the connection.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const tooLarge = (): HttpError => new HttpError(413, 'body_too_large', `the body exceeds ${limit} bytes`, { limit });
    let settled = false;
    // A client that goes away mid-body would otherwise leave this promise pending forever.
    req.on('close', () => { if (!settled) { settled = true; reject(new HttpError(400, 'bad_request', 'the request was aborted')); } });
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      const e = tooLarge();
      // Not worth reading: answer and close (Node then discards the rest with the connection).
      if (declared > DRAIN_FACTOR * limit) e.closeConnection = true;
      else req.resume();
      settled = true;
      reject(e);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (refused) {
        if (size > DRAIN_FACTOR * limit) req.socket.destroy();
        return;
      }
      if (size > limit) {
        refused = true;
        settled = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => { if (!settled) { settled = true; resolve(Buffer.concat(chunks)); } });
    req.on('error', (err) => { if (!settled) { settled = true; reject(new HttpError(400, 'bad_request', `reading the body failed: ${err.message}`)); } });
  });
}

export async function readJsonObject(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const raw = await readBody(req, limit);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, 'invalid_body', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

function requireField(body: Record<string, unknown>, name: string): Json {
  if (!(name in body) || body[name] === undefined) throw new HttpError(400, 'invalid_body', `the body needs a "${name}" field`);
  return body[name] as Json;
}

function parseAddress(address: unknown): string {
  if (typeof address !== 'string') throw new HttpError(400, 'invalid_body', 'the body needs an "address" string (host:port)');
  const m = /^(.+):(\d{1,5})$/.exec(address);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new HttpError(400, 'invalid_body', `"${address}" is not a host:port address`);
  return address;
}

/** The request handler and a server around it. */
export class KvApi {
  readonly server: Server;
  private readonly node: KvNode;
  private readonly store: KvStore;
  private readonly clusterReadTimeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly maxKeyBytes: number;
  private readonly staticAddresses: Readonly<Record<string, string>>;
  private readonly log: KvLog;
  private readonly gateway: EtcdGateway;

  constructor(options: KvApiOptions) {
    this.node = options.node;
    this.store = options.store;
    this.clusterReadTimeoutMs = options.clusterReadTimeoutMs ?? 1000;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.maxKeyBytes = options.maxKeyBytes ?? 1024;
    this.staticAddresses = options.staticAddresses ?? {};
    this.log = options.log ?? (() => {});
    this.gateway = new EtcdGateway(this.node, this.store, this.maxBodyBytes, this.maxKeyBytes);
    this.server = createServer((req, res) => { void this.handle(req, res); });
    // Keep-alive clients (load generators) reuse connections; nothing here needs a request timeout of its own.
    this.server.keepAliveTimeout = 30_000;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => { this.server.off('error', reject); resolve(); });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const { status, body } = await this.route(req);
      send(res, status, body);
    } catch (err) {
      const e = toHttpError(err, this.node, this.store);
      if (e.status >= 500) this.log('kv.http-error', { method: req.method, url: req.url, status: e.status, code: e.code, error: e.message });
      const headers: Record<string, string> = {};
      if (e.status === 405 && typeof e.extra.allow === 'string') headers.allow = e.extra.allow;
      if (e.closeConnection) headers.connection = 'close';
      const etcdStyle = req.url?.startsWith('/v3/') === true;
      send(res, e.status, etcdStyle ? etcdError(e) : { error: { code: e.code, message: e.message, ...e.extra } }, headers);
    }
  }

  private async route(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter((p) => p !== '');
    const method = req.method ?? 'GET';
    const allow = (...methods: string[]): never => {
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`, { allow: methods.join(', ') });
    };

    if (parts[0] === 'kv' && (parts.length === 2 || (parts.length === 3 && parts[2] === 'cas'))) {
      const key = this.parseKey(parts[1]!);
      if (parts.length === 3) return method === 'POST' ? this.cas(key, req) : allow('POST');
      if (method === 'GET') return this.get(key);
      if (method === 'PUT') return this.put(key, req);
      if (method === 'DELETE') return this.delete(key);
      return allow('GET', 'PUT', 'DELETE');
    }
    if (parts[0] === 'v3' && parts.length > 1) {
      if (method !== 'POST') allow('POST');
      const r = await this.gateway.handle(parts.slice(1).join('/'), req);
      if (r) return r;
    }
    if (parts[0] === 'cluster') {
      if (parts.length === 1) return method === 'GET' ? this.cluster() : allow('GET');
      if (parts[1] === 'members' && parts.length === 2) return method === 'POST' ? this.addMember(req) : allow('POST');
      if (parts[1] === 'members' && parts.length === 3) return method === 'DELETE' ? this.removeMember(decodeURIComponent(parts[2]!)) : allow('DELETE');
    }
    throw new HttpError(404, 'not_found', `no route for ${method} ${url.pathname}`);
  }

  private parseKey(encoded: string): string {
    let key: string;
    try {
      key = decodeURIComponent(encoded);
    } catch {
      throw new HttpError(400, 'invalid_key', 'the key is not valid percent-encoding');
    }
    if (Buffer.byteLength(key) > this.maxKeyBytes) throw new HttpError(400, 'invalid_key', `the key exceeds ${this.maxKeyBytes} bytes`);
    return key;
  }

  private async get(key: string): Promise<{ status: number; body: unknown }> {
    const r = await this.node.read({ op: 'get', key });
    if (r.op !== 'get') throw new HttpError(500, 'internal', 'unexpected query result');
    if (!r.kv) throw new HttpError(404, 'key_not_found', `no key ${JSON.stringify(key)}`, { revision: r.revision });
    return { status: 200, body: { ...r.kv, revision: r.revision } };
  }

  private async put(key: string, req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const value = requireField(await readJsonObject(req, this.maxBodyBytes), 'value');
    const r = await this.node.propose({ op: 'put', key, value });
    if (r.op !== 'put') throw new HttpError(500, 'internal', 'unexpected result');
    return { status: 200, body: r };
  }

  private async delete(key: string): Promise<{ status: number; body: unknown }> {
    const r = await this.node.propose({ op: 'delete', key });
    if (r.op !== 'delete') throw new HttpError(500, 'internal', 'unexpected result');
    return { status: 200, body: r };
  }

  /** `{ expected, value }` compares the current value (null: absent); `{ expectedRevision, value }` the modRevision (0: absent). */
  private async cas(key: string, req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const body = await readJsonObject(req, this.maxBodyBytes);
    const value = requireField(body, 'value');
    const hasValue = 'expected' in body;
    const hasRevision = 'expectedRevision' in body;
    if (hasValue === hasRevision) throw new HttpError(400, 'invalid_body', 'the body needs exactly one of "expected" (a value, null for absent) and "expectedRevision"');
    let expected: { value: Json } | { revision: number };
    if (hasRevision) {
      const rev = body.expectedRevision;
      if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 0) throw new HttpError(400, 'invalid_body', '"expectedRevision" must be an integer ≥ 0');
      expected = { revision: rev };
    } else {
      expected = { value: body.expected as Json };
    }
    const r = await this.node.propose({ op: 'cas', key, expected, value });
    if (r.op !== 'cas') throw new HttpError(500, 'internal', 'unexpected result');
    if (!r.succeeded) throw new HttpError(409, 'compare_failed', 'the current value does not match the expectation', { revision: r.revision, kv: r.kv });
    return { status: 200, body: r };
  }

  private async cluster(): Promise<{ status: number; body: unknown }> {
    // The addresses come through a ReadIndex read; taking the status after it makes the membership shown at
    // least as fresh as that read (a change acknowledged before this request is listed).
    const view = await this.membersView();
    const s = this.node.status();
    const raft = { ...this.staticAddresses, ...view.addresses };
    const members = [
      ...s.conf.voters.map((id) => ({ id, role: 'voter' as const })),
      ...s.conf.learners.map((id) => ({ id, role: 'learner' as const })),
    ].map((m) => ({ ...m, address: raft[m.id] ?? null, http: view.http[m.id] ?? null }));
    return {
      status: 200,
      body: { id: s.id, leader: s.leader, role: s.role, term: s.term, commit: s.commit, applied: s.applied, members, ...(view.stale ? { stale: true } : {}) },
    };
  }

  /** Linearizable when a quorum answers in time; otherwise this node's own view, so an operator still sees something. */
  private async membersView(): Promise<{ addresses: Record<string, string>; http: Record<string, string>; stale: boolean }> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), this.clusterReadTimeoutMs); });
    try {
      const r = await Promise.race([this.node.read({ op: 'members' }).catch(() => null), late]);
      if (r && r.op === 'members') return { addresses: r.addresses, http: r.http, stale: false };
    } finally {
      clearTimeout(timer);
    }
    const local = this.store.query({ op: 'members' });
    return local.op === 'members' ? { addresses: local.addresses, http: local.http, stale: true } : { addresses: {}, http: {}, stale: true };
  }

  private requireLeader(): void {
    // Membership changes are the leader's alone; the client retries there (the hint says where).
    if (!this.node.isLeader) throw new NotLeaderError(this.node.leader);
  }

  /** `{ id, address, role }`: replicates the address first, so every member can reach the new one, then changes the configuration. */
  private async addMember(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const body = await readJsonObject(req, this.maxBodyBytes);
    const id = body.id;
    // Ids travel in the transport's handshake and in logs: keep them to a plain alphabet.
    if (typeof id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(id)) throw new HttpError(400, 'invalid_body', 'the body needs an "id" of 1-64 letters, digits, ".", "_" or "-"');
    const address = parseAddress(body.address);
    const role = body.role ?? 'voter';
    if (role !== 'voter' && role !== 'learner') throw new HttpError(400, 'invalid_body', '"role" must be "voter" or "learner"');
    this.requireLeader();
    await this.node.propose({ op: 'member-address', id, address });
    await (role === 'voter' ? this.node.addVoter(id) : this.node.addLearner(id));
    this.log('kv.member-added', { id, address, role });
    return { status: 200, body: { id, address, role } };
  }

  private async removeMember(id: string): Promise<{ status: number; body: unknown }> {
    this.requireLeader();
    const conf = this.node.status().conf;
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) throw new HttpError(404, 'member_not_found', `no member ${JSON.stringify(id)}`);
    await this.node.removeNode(id);
    // Forget the address only once the member is out, so it kept receiving until the change committed.
    await this.node.propose({ op: 'member-forget', id }).catch(() => {});
    this.log('kv.member-removed', { id });
    return { status: 200, body: { id, removed: true } };
  }
}
