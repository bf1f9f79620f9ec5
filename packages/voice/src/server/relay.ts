/**
 * The voice relay's forwarding logic, free of gRPC: admission (the connection limit), rooms, frame
 * validation, a rate limit per sender, a bounded queue per client with oldest-first dropping, and stall
 * detection. The gRPC server
 * (voice-server.ts) feeds it decoded requests and drains each client's queue into its stream; unit tests
 * drive it with fakes and a fake clock.
 *
 * A slot is a client's membership in the relay's client set, not a counter: admitting adds the client,
 * leaving deletes it, and only the call that actually deleted it does the leaving work. So however many
 * paths try to free a slot (stream end, error, cancel, stall, shutdown), it is freed exactly once, and the
 * number of slots in use is always the number of clients present.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { ClientMSG, ClientREQ, ServerRES } from '../proto.js';

/** Bounds the relay enforces. */
export interface RelayLimits {
  /** Clients connected at once, over all rooms. */
  maxClients: number;
  /** Frames waiting per client; past it the oldest are dropped. */
  queueFrames: number;
  /**
   * A client whose stream accepts nothing for this long is disconnected (by {@link Relay.sweep}, which the
   * host calls every `stallMs / 4`).
   */
  stallMs: number;
  /** Largest accepted `chunk` (an Opus 20 ms packet is far smaller: at most 1275 bytes). */
  maxChunkBytes: number;
  /** Longest accepted `name`, in characters (code points). */
  maxNameLength: number;
  /** Malformed requests in a row (no valid one between) after which a client is disconnected. */
  maxConsecutiveMalformed: number;
  /**
   * Voice frames a second one client may send, on average (a token bucket); frames over it are dropped
   * and counted, so one flooding client cannot multiply its load by the room's size.
   */
  maxFramesPerSecond: number;
  /** The bucket's depth: frames a client may send in a burst above the rate (e.g. after a network hiccup). */
  frameBurst: number;
}

/** The defaults: 10 clients, 256 frames a client (half a second from 9 speakers at 50 frames/s), 200 frames/s a sender. */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxClients: 10,
  queueFrames: 256,
  stallMs: 5_000,
  maxChunkBytes: 4_000,
  maxNameLength: 64,
  maxConsecutiveMalformed: 50,
  // Four times the 50 frames/s of 20 ms Opus frames, so 10 ms frames pass; a deep bucket, so a client
  // catching up after its machine stalled (seconds of frames at once) loses nothing.
  maxFramesPerSecond: 200,
  frameBurst: 500,
});

/** Validates `limits` over the defaults; throws a RangeError naming the bad field. */
export function resolveRelayLimits(limits: Partial<RelayLimits> = {}): RelayLimits {
  const out: RelayLimits = { ...DEFAULT_RELAY_LIMITS };
  for (const [key, value] of Object.entries(limits) as Array<[keyof RelayLimits, number | undefined]>) {
    if (value === undefined) continue;
    if (!Object.hasOwn(DEFAULT_RELAY_LIMITS, key)) throw new RangeError(`unknown relay limit ${key}`);
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`${key} must be a positive integer, not ${value}`);
    out[key] = value;
  }
  return out;
}

/** A request whose bytes did not decode as a ClientREQ (the server's deserializer returns it instead of failing the call). */
export class Undecodable {
  constructor(readonly bytes: number) {}
}

/** Why a request was dropped. */
export type MalformedReason = 'undecodable' | 'empty-request' | 'empty-chunk' | 'chunk-too-large' | 'empty-name' | 'name-too-long';

/** The verdict on one request. */
export type Verdict =
  | { readonly kind: 'signal' }
  | { readonly kind: 'message'; readonly msg: ClientMSG }
  | { readonly kind: 'malformed'; readonly reason: MalformedReason };

/** Checks one request against `limits`. Pure. */
export function validateRequest(req: ClientREQ | Undecodable, limits: Pick<RelayLimits, 'maxChunkBytes' | 'maxNameLength'>): Verdict {
  if (req instanceof Undecodable) return { kind: 'malformed', reason: 'undecodable' };
  if (req.request === 'signal' || (req.request === undefined && req.signal && !req.message)) return { kind: 'signal' };
  const msg = req.message;
  if (!msg) return { kind: 'malformed', reason: 'empty-request' };
  const chunk = msg.chunk;
  if (!chunk || chunk.length === 0) return { kind: 'malformed', reason: 'empty-chunk' };
  if (chunk.length > limits.maxChunkBytes) return { kind: 'malformed', reason: 'chunk-too-large' };
  const name = msg.name ?? '';
  if (name === '') return { kind: 'malformed', reason: 'empty-name' };
  // Cheap bound before counting code points, so a huge name costs nothing.
  if (name.length > limits.maxNameLength * 2 || [...name].length > limits.maxNameLength) return { kind: 'malformed', reason: 'name-too-long' };
  return { kind: 'message', msg: { chunk, name, seq: msg.seq ?? 0 } };
}

/** Why a client left. Server-initiated: `stalled`, `malformed`, `shutdown`. */
export type LeaveReason = 'ended' | 'cancelled' | 'error' | 'closed' | 'stalled' | 'malformed' | 'shutdown';

/** A frame waiting in a client's queue: the encoded response and when the server received it. */
export interface Queued<P> {
  readonly payload: P;
  /** The relay clock's reading when the frame arrived, for the forwarding latency. */
  readonly receivedAt: number;
}

/** Counters over the relay's life. */
export interface RelayCounters {
  /** Voice frames accepted from clients. */
  framesIn: number;
  /** Frames (voice and signal echoes) handed to client streams. */
  framesOut: number;
  /** Frames dropped from a full queue (oldest first), or left queued when their client went. */
  framesDropped: number;
  /** Requests dropped as malformed. */
  malformed: number;
  /** Voice frames dropped because their sender went over `maxFramesPerSecond`. */
  rateLimited: number;
  /** Signals echoed. */
  signals: number;
  /** Clients admitted. */
  admitted: number;
  /** Clients refused because the relay was full. */
  refusedFull: number;
  /** Clients gone, by reason. */
  left: Record<LeaveReason, number>;
}

/** Side effects the relay needs from its host. */
export interface RelayHooks<P> {
  /** Encodes a response once; the same payload goes to every recipient. */
  encode(res: ServerRES): P;
  /** A monotonic clock in milliseconds. */
  now(): number;
  /** Called with each frame's forwarding latency (arrival to hand-over to the stream), in milliseconds. */
  observeLatency?(ms: number): void;
  /** Called once per malformed request. */
  onMalformed?(client: RelayClient<P>, reason: MalformedReason): void;
}

/** The relay's side of one connection. The host sets `onWake` and `onEvict` before frames can arrive. */
export class RelayClient<P> {
  /** The connection id sent to the others with this client's frames. */
  readonly id: string;
  /** Called when a frame is queued: the host drains {@link take} into the stream until it blocks. */
  onWake: () => void = () => {};
  /** Called once when the relay disconnects this client (stalled, malformed): the host ends the stream. */
  onEvict: (reason: 'stalled' | 'malformed') => void = () => {};
  /** Frames dropped from this client's queue. */
  dropped = 0;
  /** Malformed requests from this client. */
  malformed = 0;
  private consecutiveMalformed = 0;
  private readonly ring: Array<Queued<P> | undefined>;
  private head = 0;
  private size = 0;
  private blockedSince: number | null = null;
  private gone = false;
  private tokens: number;
  private refilledAt: number;

  /** @internal Created by {@link Relay.admit}. */
  constructor(readonly room: string, private readonly relay: Relay<P>, capacity: number, id: string) {
    this.id = id;
    this.ring = new Array<Queued<P> | undefined>(capacity);
    this.tokens = relay.limits.frameBurst;
    this.refilledAt = relay.hooks.now();
  }

  /** Whether this client has left (its slot is free). */
  get left(): boolean {
    return this.gone;
  }

  /** Frames waiting. */
  get queued(): number {
    return this.size;
  }

  /** The next frame for the stream, or undefined when none waits (or the client left). */
  take(): Queued<P> | undefined {
    if (this.size === 0) return undefined;
    const item = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.ring.length;
    this.size -= 1;
    this.relay.delivered(item);
    return item;
  }

  /** The stream refused more (its write returned false): the stall clock starts, unless running. */
  blocked(): void {
    this.blockedSince ??= this.relay.hooks.now();
  }

  /** The stream drained: the stall clock stops. */
  unblocked(): void {
    this.blockedSince = null;
  }

  /** Whether the stream has been blocked for `stallMs` or more at `now`. */
  stalledAt(now: number, stallMs: number): boolean {
    return this.blockedSince !== null && now - this.blockedSince >= stallMs;
  }

  /** @internal Restarts a running stall clock at `now` (the host, not the client, was stalled). */
  forgive(now: number): void {
    if (this.blockedSince !== null) this.blockedSince = now;
  }

  /** @internal */
  push(item: Queued<P>): void {
    const cap = this.ring.length;
    if (this.size === cap) {
      // Late voice is useless: the oldest frame goes, so what is played stays as recent as possible.
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % cap;
      this.size -= 1;
      this.dropped += 1;
      this.relay.counters.framesDropped += 1;
    }
    this.ring[(this.head + this.size) % cap] = item;
    this.size += 1;
  }

  /** @internal Counts a malformed request; true when the client has now sent too many in a row. */
  countMalformed(limit: number): boolean {
    this.malformed += 1;
    this.consecutiveMalformed += 1;
    return this.consecutiveMalformed >= limit;
  }

  /** @internal Takes a token for one frame at `now`; false when the sender is over its rate. */
  takeToken(now: number, perSecond: number, burst: number): boolean {
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * perSecond) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** @internal */
  countValid(): void {
    this.consecutiveMalformed = 0;
  }

  /** @internal Marks the client gone and empties its queue; returns the frames discarded. */
  markGone(): number {
    this.gone = true;
    const discarded = this.size;
    this.ring.fill(undefined);
    this.size = 0;
    return discarded;
  }
}

/** What {@link Relay.receive} did with a request. */
export type ReceiveResult = 'signal' | 'forwarded' | 'rate-limited' | 'malformed' | 'evicted' | 'ignored';

/** Rooms of clients and the frames between them. Single-threaded: call from one event loop. */
export class Relay<P> {
  readonly limits: RelayLimits;
  readonly counters: RelayCounters = {
    framesIn: 0, framesOut: 0, framesDropped: 0, malformed: 0, rateLimited: 0, signals: 0, admitted: 0, refusedFull: 0,
    left: { ended: 0, cancelled: 0, error: 0, closed: 0, stalled: 0, malformed: 0, shutdown: 0 },
  };
  private readonly clients = new Set<RelayClient<P>>();
  private readonly rooms = new Map<string, Set<RelayClient<P>>>();
  private signalPayload: P | undefined;
  private lastSweep: number;

  constructor(readonly hooks: RelayHooks<P>, limits: Partial<RelayLimits> = {}, private readonly newId: () => string = randomUUID) {
    this.limits = resolveRelayLimits(limits);
    this.lastSweep = hooks.now();
  }

  /** Clients present (slots in use). */
  get size(): number {
    return this.clients.size;
  }

  /** Rooms with at least one client. */
  get roomCount(): number {
    return this.rooms.size;
  }

  /** Every client present, in admission order. */
  list(): RelayClient<P>[] {
    return [...this.clients];
  }

  /** Takes a slot in `room` for a new client, or returns null when all `maxClients` are taken. */
  admit(room: string): RelayClient<P> | null {
    if (this.clients.size >= this.limits.maxClients) {
      this.counters.refusedFull += 1;
      return null;
    }
    const client = new RelayClient<P>(room, this, this.limits.queueFrames, this.newId());
    this.clients.add(client);
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(client);
    this.counters.admitted += 1;
    return client;
  }

  /**
   * Frees `client`'s slot. Returns true for the call that freed it, false for every later one (whatever
   * the reason), so callers never need to know whether someone else got there first.
   */
  leave(client: RelayClient<P>, reason: LeaveReason): boolean {
    if (!this.clients.delete(client)) return false;
    const members = this.rooms.get(client.room);
    members?.delete(client);
    if (members?.size === 0) this.rooms.delete(client.room);
    this.counters.framesDropped += client.markGone();
    this.counters.left[reason] += 1;
    return true;
  }

  /** Handles one request from `client`: echo a signal, forward a frame to the others in its room, or drop it. */
  receive(client: RelayClient<P>, req: ClientREQ | Undecodable): ReceiveResult {
    if (client.left) return 'ignored';
    const verdict = validateRequest(req, this.limits);
    const now = this.hooks.now();
    if (verdict.kind === 'malformed') {
      this.counters.malformed += 1;
      this.hooks.onMalformed?.(client, verdict.reason);
      if (client.countMalformed(this.limits.maxConsecutiveMalformed)) {
        this.evict(client, 'malformed');
        return 'evicted';
      }
      return 'malformed';
    }
    client.countValid();
    if (verdict.kind === 'signal') {
      this.counters.signals += 1;
      this.signalPayload ??= this.hooks.encode({ signal: {} });
      this.enqueue(client, { payload: this.signalPayload, receivedAt: now });
      return 'signal';
    }
    if (!client.takeToken(now, this.limits.maxFramesPerSecond, this.limits.frameBurst)) {
      this.counters.rateLimited += 1;
      return 'rate-limited';
    }
    this.counters.framesIn += 1;
    const members = this.rooms.get(client.room)!;
    if (members.size > 1) {
      const item = { payload: this.hooks.encode({ message: { msg: verdict.msg, id: client.id } }), receivedAt: now };
      for (const other of members) {
        if (other !== client) this.enqueue(other, item);
      }
    }
    return 'forwarded';
  }

  /**
   * Disconnects every client whose stream has been blocked for `stallMs`; returns how many. Call it every
   * `stallMs / 4`. When the previous call is more than `stallMs / 2` ago, the host itself was stalled (a long
   * GC pause, a starved CPU): its streams could not drain either, so instead of judging the clients on that
   * time, every stall clock restarts.
   */
  sweep(): number {
    const now = this.hooks.now();
    const gap = now - this.lastSweep;
    this.lastSweep = now;
    if (gap > this.limits.stallMs / 2) {
      for (const client of this.clients) client.forgive(now);
      return 0;
    }
    let n = 0;
    for (const client of this.clients) {
      if (client.stalledAt(now, this.limits.stallMs)) {
        this.evict(client, 'stalled');
        n += 1;
      }
    }
    return n;
  }

  /** @internal Bookkeeping for a frame handed to a stream. */
  delivered(item: Queued<P>): void {
    this.counters.framesOut += 1;
    this.hooks.observeLatency?.(this.hooks.now() - item.receivedAt);
  }

  private enqueue(client: RelayClient<P>, item: Queued<P>): void {
    client.push(item);
    client.onWake();
  }

  private evict(client: RelayClient<P>, reason: 'stalled' | 'malformed'): void {
    if (this.leave(client, reason)) client.onEvict(reason);
  }
}
