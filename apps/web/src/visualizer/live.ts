/**
 * A live room as a {@link ClusterSource}: the feed a room tab publishes on its BroadcastChannel
 * (`packages/app/src/room/live-feed.ts`). This tab says `watch` every second (the room tab posts only while
 * someone watches), and draws what each frame brings: the observed peer's exact node status, every other
 * peer's status as it last shared it over the mesh, the Raft messages the observed peer sent and received
 * (each drawn along its link from the moment it was seen), and the room's events. Times are `Date.now()`.
 *
 * What it cannot show: messages between two other peers (only the observed peer's are tapped), and other
 * peers' state more precisely than their last report (about once a second).
 * @module
 */
import type { NodeId } from '@raftrtc/raft';
import {
  MAX_MESSAGES_PER_SECOND, WATCH_MS, liveChannelName, parseLiveFeedPost, type LiveFrame, type LiveMessage, type LiveNodeStatus, type LiveViewerPost,
} from '../../../../packages/app/src/room/live-feed.js';
import { kindOfType } from './messages.js';
import type { ClusterEvent, ClusterSource, EventTone, Flight, LogCell, NodeState } from './source.js';

/** A message is drawn travelling this long… */
const TRAVEL_MS = 350;
/** …starting this long after it was seen, so the frames' batching (100 ms) does not make it jump. */
const LAG_MS = 150;
/** At most this many messages are drawn at once; the oldest go first. */
const MAX_FLIGHTS = 120;
/** Without a frame for this long, the feed counts as lost (the room tab froze, crashed or was closed). */
const LOST_AFTER_MS = 3_000;
/** A peer's reported status older than this says its age under its badge. */
const STALE_MS = 2_500;
/** Messages the feed's rate limit left out are told in the event feed at most this often. */
const SKIP_NOTE_MS = 10_000;

/** Where the feed stands. */
export type FeedState = 'waiting' | 'live' | 'lost';

const TONES: Readonly<Record<string, EventTone>> = {
  election: 'election', leader: 'leader', join: 'network', leave: 'network', peer: 'network', membership: 'network', error: 'error',
};

/** A one-line description of an observed message, for its tooltip. */
function describeLive(m: LiveMessage): string {
  const head = `${m.type} ${m.from.slice(0, 6)} → ${m.to.slice(0, 6)}${m.term > 0 ? ` · term ${m.term}` : ''}`;
  const parts = [head];
  if (m.entries > 0) parts.push(`${m.entries} ${m.type.startsWith('Forward') ? 'proposals' : 'entries'}`);
  if (m.index > 0) parts.push(`index ${m.index}`);
  if (m.reject) parts.push('refused');
  parts.push(m.dir === 'out' ? 'sent' : 'received');
  return parts.join(' · ');
}

/** `HH:MM:SS` of a wall-clock time. */
function clock(at: number): string {
  return new Date(at).toTimeString().slice(0, 8);
}

/** The log cells of a status, made once: the views ask for every node several times a frame. */
const cellsOf = new WeakMap<LiveNodeStatus, LogCell[]>();

function cells(s: LiveNodeStatus): LogCell[] {
  let made = cellsOf.get(s);
  if (!made) {
    made = s.log.map((e) => ({ index: e.index, term: e.term, kind: e.kind, label: e.summary }));
    cellsOf.set(s, made);
  }
  return made;
}

interface Heard {
  status: LiveNodeStatus;
  /** `Date.now()` when the status was true (the feed's clock, for its own peer; ours minus its age, for others). */
  at: number;
}

/** The live room, fed by a room tab. See the module comment. */
export class LiveCluster implements ClusterSource {
  ids: readonly NodeId[] = [];
  readonly fadeMs = 300;
  /** The observed peer's name, once a frame said it. */
  name: string | null = null;
  private feed: FeedState = 'waiting';
  private lastFrame = 0;
  private readonly heard = new Map<NodeId, Heard>();
  private flights: Flight[] = [];
  private flightIds = 0;
  private lastEventSeq = 0;
  /** Messages left out by the feed since the last note about it, and when that note was. */
  private skipped = { count: 0, notedAt: 0 };
  private readonly listeners = new Set<(event: ClusterEvent) => void>();
  private readonly channel: BroadcastChannel;
  private readonly viewer = Math.random().toString(36).slice(2);
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(readonly room: string, readonly peer: NodeId) {
    this.channel = new BroadcastChannel(liveChannelName(room, peer));
    this.channel.addEventListener('message', (e: MessageEvent<unknown>) => this.onPost(e.data));
    this.say('watch');
    this.timer = setInterval(() => this.say('watch'), WATCH_MS);
    addEventListener('pagehide', () => this.close());
  }

  /** `waiting` for a first frame, `live`, or `lost` (the room tab said goodbye or went silent). */
  get state(): FeedState {
    return this.feed;
  }

  /** Notices a feed that went silent; called every animation frame. */
  poll(): void {
    if (this.feed === 'live' && Date.now() - this.lastFrame > LOST_AFTER_MS) this.lose('The room tab stopped publishing (closed, frozen or asleep)');
  }

  get time(): number {
    return Date.now();
  }

  timeLabel(at: number): string {
    return clock(at);
  }

  node(id: NodeId): NodeState {
    const h = this.heard.get(id);
    const self = id === this.peer;
    if (!h) {
      return {
        id, name: self && this.name ? this.name : id.slice(0, 6), alive: false, shown: 'unknown', isolated: false,
        note: 'no status yet', term: 0, vote: null, leader: null, commit: 0, applied: 0, entries: [], snapshot: null,
        lastIndex: 0, lastTerm: 0, stateText: 'unknown', progress: null,
      };
    }
    const s = h.status;
    const age = Date.now() - h.at;
    const entries = cells(s);
    const lastTerm = entries.at(-1)?.term ?? s.snapshot?.term ?? 0;
    let shown: string = s.role;
    if (s.role !== 'leader' && s.learners.includes(id)) shown = 'learner';
    else if (s.role !== 'leader' && !s.voters.includes(id)) shown = 'joining';
    return {
      id, name: s.name || id.slice(0, 6), alive: true, shown, isolated: false,
      note: self ? 'observed' : age > STALE_MS ? `status ${Math.round(age / 1000)} s old` : '',
      term: s.term, vote: s.vote, leader: s.leader, commit: s.commit, applied: s.applied, entries,
      snapshot: s.snapshot && s.snapshot.index > 0 ? s.snapshot : null,
      lastIndex: s.lastIndex, lastTerm, stateText: `${s.applied} applied`,
      progress: s.progress && Object.fromEntries(s.progress.map((p) => [p.id, { match: p.match }])),
    };
  }

  /** The leader of the highest term any status reports, as that node says of itself. */
  leader(): NodeId | null {
    let best: LiveNodeStatus | null = null;
    for (const { status } of this.heard.values()) {
      if (status.role === 'leader' && (!best || status.term > best.term)) best = status;
    }
    return best?.id ?? null;
  }

  committed(): number {
    let max = 0;
    for (const { status } of this.heard.values()) max = Math.max(max, status.commit);
    return max;
  }

  inFlight(): Iterable<Flight> {
    const now = Date.now();
    if (this.flights.length > 0 && this.flights[0]!.endAt < now) this.flights = this.flights.filter((f) => f.endAt >= now);
    return this.flights;
  }

  isCut(): boolean {
    return false;
  }

  onEvent(listener: (event: ClusterEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops watching. */
  close(): void {
    clearInterval(this.timer);
    this.say('unwatch');
    this.channel.close();
  }

  private say(kind: LiveViewerPost['kind']): void {
    this.channel.postMessage({ kind, viewer: this.viewer } satisfies LiveViewerPost);
  }

  private onPost(data: unknown): void {
    const post = parseLiveFeedPost(data);
    if (!post || post.room !== this.room || post.self !== this.peer) return;
    if (post.kind === 'bye') {
      this.lose('The room tab closed or left the room');
      // A reloaded room tab numbers its events from 1 again.
      this.lastEventSeq = 0;
      return;
    }
    this.onFrame(post);
  }

  private onFrame(frame: LiveFrame): void {
    const now = Date.now();
    this.lastFrame = now;
    this.name = frame.name;
    this.heard.clear();
    for (const { status, ageMs } of frame.nodes) this.heard.set(status.id, { status, at: status.id === this.peer ? frame.at : now - ageMs });
    this.updateIds();
    for (const m of frame.messages) this.addFlight(m);
    this.noteSkipped(frame.skipped, now);
    for (const e of frame.events) {
      if (e.seq <= this.lastEventSeq) continue;
      this.lastEventSeq = e.seq;
      this.emit(e.at, e.text, TONES[e.kind] ?? 'network');
    }
    // After the room's own events, which a first frame replays: the feed lists newest first.
    if (this.feed !== 'live') {
      this.feed = 'live';
      this.emit(now, `Watching ${frame.name}'s room tab`, 'network');
    }
  }

  /** Everyone the observed peer knows of: itself, every peer that reports, and its configuration. */
  private updateIds(): void {
    const ids = new Set<NodeId>([this.peer, ...this.heard.keys()]);
    const own = this.heard.get(this.peer)?.status;
    for (const id of [...(own?.voters ?? []), ...(own?.learners ?? [])]) ids.add(id);
    const next = [...ids].sort();
    if (next.length !== this.ids.length || next.some((id, i) => id !== this.ids[i])) this.ids = next;
  }

  private addFlight(m: LiveMessage): void {
    const sentAt = m.at + LAG_MS;
    this.flights.push({
      id: this.flightIds++, kind: kindOfType(m.type), reply: m.type.endsWith('Resp'), refusal: m.reject,
      entries: m.entries, label: describeLive(m), from: m.from, to: m.to, sentAt, endAt: sentAt + TRAVEL_MS, reach: 1, lostAt: null,
    });
    if (this.flights.length > MAX_FLIGHTS) this.flights = this.flights.slice(-MAX_FLIGHTS);
  }

  /** A busy room exceeds the feed's rate limit every frame: one line now and then, not one per frame. */
  private noteSkipped(count: number, now: number): void {
    this.skipped.count += count;
    if (this.skipped.count === 0 || now - this.skipped.notedAt < SKIP_NOTE_MS) return;
    this.emit(now, `${this.skipped.count} messages not drawn since the last note (the room tab reports at most ${MAX_MESSAGES_PER_SECOND} a second)`, 'network');
    this.skipped = { count: 0, notedAt: now };
  }

  private lose(why: string): void {
    if (this.feed === 'lost') return;
    this.feed = 'lost';
    this.flights = [];
    this.emit(Date.now(), `${why}: the live view stopped`, 'error');
  }

  private emit(at: number, text: string, tone: EventTone): void {
    const event = { at, text, tone };
    for (const listener of this.listeners) listener(event);
  }
}
