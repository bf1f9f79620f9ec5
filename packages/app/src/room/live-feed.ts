/**
 * The room tab's live feed for the Raft visualizer (`/visualizer?room=…&peer=…`).
 *
 * While a visualizer tab watches (it says `watch` on the BroadcastChannel {@link liveChannelName} about once
 * a second), the room tab posts a {@link LiveFrame} every {@link FRAME_MS}: this peer's exact node status
 * (role, term, vote, leader, commit, applied, log bounds, configuration and the tail of its durable log),
 * the status every other peer last shared over the mesh, the Raft messages this node sent and received
 * since the previous frame (rate-limited), and the room's new events. Peers share their own compact status
 * (`{ kind: 'raft-status', want, status }` on the control channel) once a second, but only while someone in
 * the room watches: a watched peer sets `want`, and a peer that hears `want` shares for a few seconds. With
 * nobody watching, the feed costs one boolean test per Raft message and keeps no timer.
 *
 * Everything that crosses a tab or the mesh is validated ({@link parseLiveStatus}, {@link parseLiveFrame}):
 * a status from the mesh is a peer's word about itself only, bounded in size, and ignored when malformed.
 * @module
 */
import {
  isProposalData, type Entry, type NodeId, type RaftNodeStatus, type Snapshot, type Storage, type Transport, type WireMessage,
} from '@raftrtc/raft';

/** How often a watched feed posts a frame. */
export const FRAME_MS = 100;
/** How often a peer shares its status over the mesh while someone watches. */
export const SHARE_MS = 1_000;
/** A viewer says `watch` at least this often… */
export const WATCH_MS = 1_000;
/** …and counts as gone after this long without it. */
export const WATCH_TTL_MS = 3_500;
/** A peer that heard `want` keeps sharing for this long. */
export const WANT_TTL_MS = 3_500;
/** A peer's shared status is dropped from frames after this long without a new one. */
export const PEER_STATUS_TTL_MS = 5_000;
/** Entries of the log tail in a status. */
export const MAX_LOG_TAIL = 50;
/** Characters of an entry's summary. */
export const MAX_SUMMARY = 60;
/** Characters of a `raft-status` control message; a longer one is ignored unread. */
export const MAX_STATUS_CHARS = 16_384;
/** Raft messages a feed reports per second; the rest are only counted (`skipped`). */
export const MAX_MESSAGES_PER_SECOND = 200;
/** Room events a frame carries at most. */
export const MAX_FRAME_EVENTS = 100;

const MAX_ID = 256;
const MAX_NAME = 64;
const MAX_CONF = 64;
const MAX_EVENT_TEXT = 500;

/** The BroadcastChannel of one peer's feed in one room (channels are per origin and browser profile). */
export function liveChannelName(room: string, peerId: string): string {
  return `raftrtc.live.${room}.${peerId}`;
}

/** One entry of a log tail. */
export interface LiveEntry {
  index: number;
  term: number;
  /** `noop`: a new leader's empty entry; `conf`: a configuration change. */
  kind: 'normal' | 'noop' | 'conf';
  /** What it carries, e.g. `Ada: hello`, at most {@link MAX_SUMMARY} characters. */
  summary: string;
}

/** A node's state as a peer reports it about itself. */
export interface LiveNodeStatus {
  id: NodeId;
  /** Display name (not replicated: the peer's own word). */
  name: string;
  role: RaftNodeStatus['role'];
  term: number;
  vote: NodeId | null;
  leader: NodeId | null;
  commit: number;
  applied: number;
  /** First index held in the log (after the snapshot) and last index; `last < first` when empty. */
  firstIndex: number;
  lastIndex: number;
  voters: NodeId[];
  learners: NodeId[];
  /** The newest snapshot's base, or null. */
  snapshot: { index: number; term: number } | null;
  /** The last (at most {@link MAX_LOG_TAIL}) durable entries, oldest first. */
  log: LiveEntry[];
  /** A leader's view of how far each other node's log matches its own; null on other nodes. */
  progress: { id: NodeId; match: number }[] | null;
}

/** A Raft message this peer sent (`out`) or received (`in`). */
export interface LiveMessage {
  /** The wire type: a core message (`Append`, `VoteResp`, …) or a node-layer one (`Forward`, …). */
  type: string;
  from: NodeId;
  to: NodeId;
  /** 0 for node-layer messages, which carry no term. */
  term: number;
  /** The log index it is about (see `messageIndex`), or 0. */
  index: number;
  /** Entries (or forwarded proposals) carried. */
  entries: number;
  /** A refused vote or append. */
  reject: boolean;
  dir: 'out' | 'in';
  /** `Date.now()` when it was sent or received. */
  at: number;
}

/** A room event, as the room's event log shows it. */
export interface LiveEvent {
  seq: number;
  at: number;
  kind: string;
  text: string;
}

/** A node in a frame: its status and how old it is (0 for the feed's own peer, measured at the source). */
export interface LiveFrameNode {
  status: LiveNodeStatus;
  /** Milliseconds since the status was heard (0: this peer's own, read now). */
  ageMs: number;
}

/** What the room tab posts on its channel while watched. */
export type LiveFeedPost =
  | LiveFrame
  /** The room tab closed or left the room: nothing more will come. */
  | { kind: 'bye'; room: string; self: NodeId };

export interface LiveFrame {
  kind: 'frame';
  room: string;
  /** This peer (the one whose node is observed exactly). */
  self: NodeId;
  name: string;
  /** `Date.now()` at the source. */
  at: number;
  /** This peer first (absent while it has no node yet), then peers that shared their status lately. */
  nodes: LiveFrameNode[];
  /** Raft messages since the previous frame, oldest first. */
  messages: LiveMessage[];
  /** Messages left out by the rate limit since the previous frame. */
  skipped: number;
  /** Room events newer than the previous frame's (all of them, up to {@link MAX_FRAME_EVENTS}, for a new watcher). */
  events: LiveEvent[];
}

/** What a viewer says on the channel. */
export type LiveViewerPost = { kind: 'watch'; viewer: string } | { kind: 'unwatch'; viewer: string };

// ---- Validation ---------------------------------------------------------------------------------------

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= MAX_ID;
const isIdList = (v: unknown): v is string[] => Array.isArray(v) && v.length <= MAX_CONF && v.every(isId);
const ROLES: ReadonlySet<string> = new Set(['follower', 'pre-candidate', 'candidate', 'leader']);
const ENTRY_KINDS: ReadonlySet<string> = new Set(['normal', 'noop', 'conf']);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseEntry(v: unknown): LiveEntry | null {
  if (!isRecord(v) || !isIndex(v.index) || !isIndex(v.term) || typeof v.kind !== 'string' || !ENTRY_KINDS.has(v.kind)) return null;
  if (typeof v.summary !== 'string' || v.summary.length > MAX_SUMMARY) return null;
  return { index: v.index, term: v.term, kind: v.kind as LiveEntry['kind'], summary: v.summary };
}

/**
 * A {@link LiveNodeStatus} rebuilt from untrusted data (a peer's control message, another tab's post), or
 * null when anything is missing, of the wrong type or out of bounds. Only known fields are kept.
 */
export function parseLiveStatus(v: unknown): LiveNodeStatus | null {
  if (!isRecord(v)) return null;
  const { id, name, role, term, vote, leader, commit, applied, firstIndex, lastIndex, voters, learners, snapshot, log, progress } = v;
  if (!isId(id) || typeof name !== 'string' || name.length > MAX_NAME || typeof role !== 'string' || !ROLES.has(role)) return null;
  if (!isIndex(term) || !isIndex(commit) || !isIndex(applied) || !isIndex(firstIndex) || !isIndex(lastIndex)) return null;
  if ((vote !== null && !isId(vote)) || (leader !== null && !isId(leader))) return null;
  if (!isIdList(voters) || !isIdList(learners)) return null;
  let snap: LiveNodeStatus['snapshot'] = null;
  if (snapshot !== null) {
    if (!isRecord(snapshot) || !isIndex(snapshot.index) || !isIndex(snapshot.term)) return null;
    snap = { index: snapshot.index, term: snapshot.term };
  }
  if (!Array.isArray(log) || log.length > MAX_LOG_TAIL) return null;
  const entries: LiveEntry[] = [];
  for (const e of log as unknown[]) {
    const entry = parseEntry(e);
    if (!entry) return null;
    entries.push(entry);
  }
  let matched: LiveNodeStatus['progress'] = null;
  if (progress !== null) {
    if (!Array.isArray(progress) || progress.length > MAX_CONF) return null;
    matched = [];
    for (const p of progress as unknown[]) {
      if (!isRecord(p) || !isId(p.id) || !isIndex(p.match)) return null;
      matched.push({ id: p.id, match: p.match });
    }
  }
  return {
    id, name, role: role as LiveNodeStatus['role'], term, vote: vote as NodeId | null, leader: leader as NodeId | null,
    commit, applied, firstIndex, lastIndex, voters: [...voters], learners: [...learners], snapshot: snap, log: entries,
    progress: matched,
  };
}

/**
 * A `raft-status` control message from peer `from`: its status when well-formed, about `from` itself, and
 * at most {@link MAX_STATUS_CHARS} long (`size`, the text's length, is checked by the caller before parsing
 * when it can be); null otherwise.
 */
export function parseStatusMessage(from: string, size: number, message: unknown): { status: LiveNodeStatus; want: boolean } | null {
  if (size > MAX_STATUS_CHARS || !isRecord(message) || message.kind !== 'raft-status' || typeof message.want !== 'boolean') return null;
  const status = parseLiveStatus(message.status);
  // A peer speaks for itself only.
  if (!status || status.id !== from) return null;
  return { status, want: message.want };
}

function parseMessage(v: unknown): LiveMessage | null {
  if (!isRecord(v) || typeof v.type !== 'string' || v.type.length > 32 || !isId(v.from) || !isId(v.to)) return null;
  if (!isIndex(v.term) || !isIndex(v.index) || !isIndex(v.entries) || typeof v.reject !== 'boolean') return null;
  if ((v.dir !== 'in' && v.dir !== 'out') || !isIndex(v.at)) return null;
  return { type: v.type, from: v.from, to: v.to, term: v.term, index: v.index, entries: v.entries, reject: v.reject, dir: v.dir, at: v.at };
}

function parseEvent(v: unknown): LiveEvent | null {
  if (!isRecord(v) || !isIndex(v.seq) || !isIndex(v.at) || typeof v.kind !== 'string' || v.kind.length > 32) return null;
  if (typeof v.text !== 'string' || v.text.length > MAX_EVENT_TEXT) return null;
  return { seq: v.seq, at: v.at, kind: v.kind, text: v.text };
}

/** Keeps the well-formed items of a bounded list; null when it is not a list or too long. */
function parseList<T>(v: unknown, max: number, parse: (x: unknown) => T | null): T[] | null {
  if (!Array.isArray(v) || v.length > max) return null;
  const out: T[] = [];
  for (const x of v as unknown[]) {
    const item = parse(x);
    if (item) out.push(item);
  }
  return out;
}

/**
 * A post of a room tab's feed, validated (the visualizer's side): a frame, a `bye`, or null for anything
 * else. A frame's malformed nodes, messages and events are left out, not the whole frame.
 */
export function parseLiveFeedPost(v: unknown): LiveFeedPost | null {
  if (!isRecord(v) || typeof v.room !== 'string' || !isId(v.self)) return null;
  if (v.kind === 'bye') return { kind: 'bye', room: v.room, self: v.self };
  if (v.kind !== 'frame' || typeof v.name !== 'string' || v.name.length > MAX_NAME || !isIndex(v.at) || !isIndex(v.skipped)) return null;
  const nodes = parseList(v.nodes, MAX_CONF + 1, (n) => {
    if (!isRecord(n) || !isIndex(n.ageMs)) return null;
    const status = parseLiveStatus(n.status);
    return status ? { status, ageMs: n.ageMs } : null;
  });
  const messages = parseList(v.messages, MAX_MESSAGES_PER_SECOND, parseMessage);
  const events = parseList(v.events, MAX_FRAME_EVENTS, parseEvent);
  if (!nodes || !messages || !events) return null;
  return { kind: 'frame', room: v.room, self: v.self, name: v.name, at: v.at, nodes, messages, skipped: v.skipped, events };
}

// ---- Describing entries and messages ------------------------------------------------------------------

const clip = (s: string): string => (s.length <= MAX_SUMMARY ? s : `${s.slice(0, MAX_SUMMARY - 1)}…`);
const shortId = (id: unknown): string => (typeof id === 'string' ? id.slice(0, 6) : '?');

/** An entry as a log tail shows it: the chat message's sender and text, the configuration change, or a no-op. */
export function summarizeEntry(e: Entry): LiveEntry {
  const base = { index: e.index, term: e.term };
  if (e.type === 'conf') {
    const d = isRecord(e.data) ? e.data : {};
    let text = 'configuration';
    if (d.op === 'bootstrap' && Array.isArray(d.voters)) text = `bootstrap ${d.voters.map(shortId).join(' ')}`;
    else if (d.op === 'change' && Array.isArray(d.changes)) {
      text = d.changes.map((c: unknown) => (isRecord(c) ? `${String(c.type)} ${shortId(c.node)}` : '?')).join(', ');
    } else if (d.op === 'leaveJoint') text = 'leave joint configuration';
    return { ...base, kind: 'conf', summary: clip(text) };
  }
  if (e.data === null) return { ...base, kind: 'noop', summary: 'no-op (new leader)' };
  const cmd = isProposalData(e.data) ? e.data.cmd : e.data;
  if (isRecord(cmd) && cmd.type === 'chat' && isRecord(cmd.message)) {
    return { ...base, kind: 'normal', summary: clip(`${String(cmd.message.name)}: ${String(cmd.message.text)}`) };
  }
  return { ...base, kind: 'normal', summary: clip(isRecord(cmd) && typeof cmd.type === 'string' ? cmd.type : 'entry') };
}

/** The log index a message is about: the last entry an append carries, the index a reply matches, … */
function messageIndex(m: WireMessage): number {
  switch (m.type) {
    case 'Append': return m.prevIndex + m.entries.length;
    case 'AppendResp': case 'ReadIndexResp': return m.index;
    case 'PreVote': case 'Vote': return m.lastIndex;
    case 'Heartbeat': return m.commit;
    case 'Snapshot': return m.snapshot.index;
    default: return 0;
  }
}

/** A wire message, compacted for the feed. */
export function describeMessage(m: WireMessage, dir: 'in' | 'out', at: number): LiveMessage {
  return {
    type: m.type, from: m.from, to: m.to,
    term: 'term' in m ? m.term : 0,
    index: messageIndex(m),
    entries: m.type === 'Append' ? m.entries.length : m.type === 'Forward' ? m.proposals.length : 0,
    reject: 'reject' in m && m.reject,
    dir, at,
  };
}

// ---- The feed -----------------------------------------------------------------------------------------

/** What the feed reads from the room client. */
export interface LiveFeedHost {
  room: string;
  self: NodeId;
  name: string;
  /** The current node's status, or null while there is none. */
  nodeStatus(): RaftNodeStatus | null;
  /** The room's event log, newest last. */
  events(): readonly LiveEvent[];
  /** Sends a text to every connected peer on the control channel. */
  broadcast(text: string): void;
}

/** The tail of a node's durable log, kept by {@link LiveFeed.tapStorage} from what the node stores. */
class LogTail {
  entries: Entry[] = [];
  snapshot: { index: number; term: number } | null = null;

  reset(entries: readonly Entry[], snapshot: Snapshot | null): void {
    this.entries = entries.slice(-MAX_LOG_TAIL);
    this.snapshot = snapshot ? { index: snapshot.index, term: snapshot.term } : null;
  }

  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (!first) return;
    // An entry at index i replaces the stored one at i and every later one.
    const keep = this.entries.filter((e) => e.index < first.index);
    this.entries = [...keep, ...entries.slice(-MAX_LOG_TAIL)].slice(-MAX_LOG_TAIL);
  }

  compact(snapshot: Snapshot): void {
    this.snapshot = { index: snapshot.index, term: snapshot.term };
    this.entries = this.entries.filter((e) => e.index > snapshot.index);
  }
}

/**
 * The feed of one room client. Wire it where the node is made ({@link tapTransport}, {@link tapStorage}),
 * hand it the control channel's `raft-status` messages ({@link receive}), and {@link close} it with the client.
 */
export class LiveFeed {
  private readonly channel: BroadcastChannel | null;
  /** Viewer id → when it last said `watch`. */
  private readonly watchers = new Map<string, number>();
  /** Peer id → its last shared status and when it arrived. */
  private readonly peers = new Map<NodeId, { status: LiveNodeStatus; at: number }>();
  private log = new LogTail();
  private messages: LiveMessage[] = [];
  private skipped = 0;
  private budget = { second: 0, used: 0 };
  private lastEventSeq = 0;
  private wantedUntil = 0;
  private lastShared = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** `raft-status` messages ignored as malformed, oversized or spoofed. */
  refused = 0;

  constructor(private readonly host: LiveFeedHost) {
    this.channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(liveChannelName(host.room, host.self));
    this.channel?.addEventListener('message', (e: MessageEvent<unknown>) => this.onViewer(e.data));
  }

  /** Whether a visualizer tab watches this feed now. */
  get watched(): boolean {
    return this.watchers.size > 0;
  }

  /** Wraps the node's transport so the feed sees every message it sends and receives (only while watched). */
  tapTransport(transport: Transport): Transport {
    return {
      id: transport.id,
      start: (onMessage) => transport.start((m) => {
        if (this.watchers.size > 0) this.record(m, 'in');
        onMessage(m);
      }),
      send: (m) => {
        if (this.watchers.size > 0) this.record(m, 'out');
        transport.send(m);
      },
      close: () => transport.close(),
    };
  }

  /** Wraps the node's storage so the feed knows the tail of its durable log (a few references, always). */
  tapStorage(storage: Storage): Storage {
    const log = new LogTail();
    this.log = log;
    const tapped: Storage = {
      load: async () => {
        const state = await storage.load();
        log.reset(state.entries, state.snapshot);
        return state;
      },
      save: async (u) => {
        await storage.save(u);
        if (u.snapshot) log.reset([], u.snapshot);
        log.append(u.entries);
      },
      compact: async (s) => {
        await storage.compact(s);
        log.compact(s);
      },
      close: () => storage.close(),
    };
    if (storage.sizes) tapped.sizes = () => storage.sizes!();
    return tapped;
  }

  /**
   * Takes a control message that may be a peer's `raft-status` (already parsed; `size` is its text's
   * length). Returns whether it was one (valid or not), so the caller looks no further.
   */
  receive(from: NodeId, size: number, message: unknown): boolean {
    if (!isRecord(message) || message.kind !== 'raft-status') return false;
    const parsed = parseStatusMessage(from, size, message);
    if (!parsed) {
      this.refused++;
      return true;
    }
    const now = Date.now();
    this.peers.set(from, { status: parsed.status, at: now });
    if (parsed.want) {
      this.wantedUntil = now + WANT_TTL_MS;
      this.run();
    }
    return true;
  }

  /** Says goodbye to watchers and stops. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stop();
    this.channel?.postMessage({ kind: 'bye', room: this.host.room, self: this.host.self } satisfies LiveFeedPost);
    this.channel?.close();
  }

  /** This peer's status now, or null while it has no node. */
  ownStatus(): LiveNodeStatus | null {
    let st: RaftNodeStatus | null;
    try {
      st = this.host.nodeStatus();
    } catch {
      return null; // a node that has not started yet
    }
    if (!st) return null;
    return {
      id: this.host.self, name: this.host.name.slice(0, MAX_NAME), role: st.role, term: st.term, vote: st.vote, leader: st.leader,
      commit: st.commit, applied: st.applied, firstIndex: st.firstIndex, lastIndex: st.lastIndex,
      voters: st.conf.voters.slice(0, MAX_CONF), learners: st.conf.learners.slice(0, MAX_CONF),
      snapshot: this.log.snapshot, log: this.log.entries.map(summarizeEntry),
      progress: st.progress && st.role === 'leader'
        ? Object.entries(st.progress).filter(([id]) => id !== this.host.self).slice(0, MAX_CONF).map(([id, p]) => ({ id, match: p.match }))
        : null,
    };
  }

  private onViewer(data: unknown): void {
    if (this.closed || !isRecord(data) || typeof data.viewer !== 'string' || data.viewer.length > MAX_ID) return;
    if (data.kind === 'unwatch') {
      this.watchers.delete(data.viewer);
      return;
    }
    if (data.kind !== 'watch') return;
    const isNew = !this.watchers.has(data.viewer);
    this.watchers.set(data.viewer, Date.now());
    if (!isNew) return;
    // A new viewer gets the whole event log, and everyone's status soon.
    this.lastEventSeq = 0;
    this.lastShared = 0;
    this.run();
    this.tick();
  }

  private record(m: WireMessage, dir: 'in' | 'out'): void {
    const now = Date.now();
    const second = Math.floor(now / 1_000);
    if (second !== this.budget.second) this.budget = { second, used: 0 };
    if (this.budget.used >= MAX_MESSAGES_PER_SECOND || this.messages.length >= MAX_MESSAGES_PER_SECOND) {
      this.skipped++;
      return;
    }
    this.budget.used++;
    this.messages.push(describeMessage(m, dir, now));
  }

  private run(): void {
    if (this.timer === null && !this.closed) this.timer = setInterval(() => this.tick(), FRAME_MS);
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.messages = [];
    this.skipped = 0;
  }

  private tick(): void {
    const now = Date.now();
    for (const [viewer, seen] of this.watchers) if (now - seen > WATCH_TTL_MS) this.watchers.delete(viewer);
    for (const [peer, p] of this.peers) if (now - p.at > PEER_STATUS_TTL_MS) this.peers.delete(peer);
    const watched = this.watchers.size > 0;
    if (!watched && now >= this.wantedUntil) {
      this.stop();
      return;
    }
    if (now - this.lastShared >= SHARE_MS) this.share(watched, now);
    if (watched) this.post(now);
  }

  /** Tells the other peers this peer's status (and, when watched, that they should tell theirs). */
  private share(want: boolean, now: number): void {
    const status = this.ownStatus();
    if (!status) return;
    this.lastShared = now;
    let text = JSON.stringify({ kind: 'raft-status', want, status });
    // Summaries are bounded, so this only trims in odd rooms (many long ids): the oldest entries go first.
    while (text.length > MAX_STATUS_CHARS && status.log.length > 0) {
      status.log = status.log.slice(Math.ceil(status.log.length / 4));
      text = JSON.stringify({ kind: 'raft-status', want, status });
    }
    if (text.length > MAX_STATUS_CHARS) return;
    try {
      this.host.broadcast(text);
    } catch {
      // A control frame the mesh refuses (it cannot be, at this size): the next share tries again.
    }
  }

  private post(now: number): void {
    const own = this.ownStatus();
    const nodes: LiveFrameNode[] = own ? [{ status: own, ageMs: 0 }] : [];
    for (const [id, p] of this.peers) if (id !== this.host.self) nodes.push({ status: p.status, ageMs: now - p.at });
    const events = this.host.events().filter((e) => e.seq > this.lastEventSeq).slice(-MAX_FRAME_EVENTS);
    this.lastEventSeq = events.at(-1)?.seq ?? this.lastEventSeq;
    const frame: LiveFrame = {
      kind: 'frame', room: this.host.room, self: this.host.self, name: this.host.name.slice(0, MAX_NAME), at: now,
      nodes, messages: this.messages, skipped: this.skipped, events: events.map(({ seq, at, kind, text }) => ({ seq, at, kind, text: text.slice(0, MAX_EVENT_TEXT) })),
    };
    this.messages = [];
    this.skipped = 0;
    this.channel?.postMessage(frame);
  }
}
