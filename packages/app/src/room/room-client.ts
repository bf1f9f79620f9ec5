/**
 * The room client, framework-free: joins a room the way `docs/rtc-raft.md` wires it (token → `WebRTCManager`
 * → `MeshHub` → `RoomMembership` → `RaftNode` on IndexedDB with the {@link Chat} state machine), sends chat
 * messages through Raft, leaves, and publishes everything the UI shows as one immutable {@link RoomView}
 * through {@link RoomClient.subscribe}.
 * @module
 */
import {
  IndexedDBStorage, MemoryStorage, RaftNode, StoppedError, StorageUnavailableError, TimeoutError,
  type NodeId, type RaftNodeStatus, type Snapshot, type Storage, type Transport,
} from '@raftrtc/raft';
import {
  MeshHub, RoomMembership, SignalingError, WebRTCManager, seededStorage, type LinkState, type MembershipAction, type RoomPeerState,
} from '@raftrtc/rtc';
import {
  ROOM_NAME, browserStore, forgetSession, loadSession, refreshToken, requestToken, saveSession,
  type KeyValueStore, type RoomSession, type TokenAnswer,
} from './api.js';
import { ArchivedHistory, Archiver } from './archive.js';
import { Chat, MAX_NAME_LENGTH, MAX_TEXT_LENGTH, type ChatCommand, type ChatMessage } from './chat.js';
import { InvalidInputError, RoomError, SendError, SignalingUnavailableError } from './errors.js';
import { LiveFeed } from './live-feed.js';
import { FileShare } from './files.js';
import { RoomMedia } from './media.js';

type ChatNode = RaftNode<ChatCommand, number>;

/** Raft timing and compaction; the defaults suit a few tabs sharing a laptop's cores. */
export interface RaftTuning {
  /** Default 50 ms: a renderer that misses a few shorter ticks under load would start needless elections. */
  tickMs?: number;
  /** Default 10 ticks: elections after 0.5–1 s without a leader. */
  electionTicks?: number;
  /** Snapshot the chat every this many applied entries, so a long-lived room's log stays bounded. Default 100. */
  snapshotEvery?: number;
  /** How long a message may wait for a leader before it shows as failed. Default 30 s. */
  proposalTimeoutMs?: number;
}

/** Options of {@link joinRoom}. */
export interface JoinRoomOptions {
  /** The server's origin; default `location.origin`. */
  origin?: string;
  room: string;
  /** Display name, 1–64 characters. */
  name: string;
  /** The room's password, if it has one (or the password to create it with). */
  password?: string;
  /** Create the room when it does not exist (default true); false answers {@link RoomNotFoundError}. */
  create?: boolean;
  /** Where the per-room session is kept; default `localStorage` (null: nowhere, every join is a new peer). */
  store?: KeyValueStore | null;
  raft?: RaftTuning;
}

/** A message as shown: committed (in the replicated order), pending (sent, not yet committed) or failed. */
export interface MessageView extends ChatMessage {
  status: 'committed' | 'pending' | 'failed';
  /** Committed and moved to the room's archive since. */
  archived?: boolean;
  /** Why a failed message failed. */
  error?: string;
}

/** A peer's role as this peer sees it. `joining`: connected, not yet in the Raft configuration. */
export type PeerRole = 'leader' | 'follower' | 'candidate' | 'learner' | 'joining';

export interface PeerView {
  id: string;
  name: string;
  self: boolean;
  role: PeerRole;
  /** The mesh link's state; `self` for this peer, `absent` for a member we have no link to. */
  connection: LinkState | 'self' | 'absent';
  /** Control-channel round trip, or null before the first measure. */
  rttMs: number | null;
}

export interface RaftView {
  role: PeerRole;
  leader: string | null;
  term: number;
  commit: number;
  applied: number;
  /** Entries held in the log, after the snapshot. */
  logLength: number;
  /** Index of the latest snapshot (0: none yet). */
  snapshotIndex: number;
  voters: string[];
  learners: string[];
}

export type RoomEventKind = 'election' | 'leader' | 'join' | 'leave' | 'peer' | 'membership' | 'error';

export interface RoomEvent {
  /** Increasing, unique per client: a stable list key. */
  seq: number;
  at: number;
  kind: RoomEventKind;
  text: string;
}

/**
 * `joining`: in the room, not yet a member of its Raft cluster; `live`: a member; `leaving`; `left` (closed).
 */
export type RoomPhase = 'joining' | 'live' | 'leaving' | 'left';

/** Everything the UI shows, replaced (never mutated) on every change. */
export interface RoomView {
  room: string;
  peerId: string;
  name: string;
  phase: RoomPhase;
  membership: RoomPeerState | null;
  signaling: 'idle' | 'connected' | 'disconnected';
  /** Whether the Raft state survives a reload (IndexedDB); false when the browser refused it. */
  persistent: boolean;
  raft: RaftView;
  /** This peer first, then the others by name. */
  peers: PeerView[];
  messages: MessageView[];
  /** Newest last, at most {@link MAX_EVENTS}. */
  events: RoomEvent[];
  /** Failures of the node or the membership, newest last (at most {@link MAX_EVENTS}). */
  errors: string[];
  archive: ArchiveView;
}

/**
 * The room's message archive: the leader moves old messages there (20 at a time once 20 are held), and the
 * page shows them above the live ones. `messages` starts with the archived messages shown.
 */
export interface ArchiveView {
  /** Whether the server keeps an archive (without one, every message stays in the replicated state). */
  enabled: boolean;
  /** Messages of the room's history in the archive. */
  total: number;
  /** Archived messages older than those shown (fetch them with `loadEarlier`). */
  earlier: number;
  loading: boolean;
  /** Why the last fetch failed, if it did. */
  error: string | null;
}

export const MAX_EVENTS = 100;

/** How often the view is refreshed without an event: round-trip times and signaling state change quietly. */
const POLL_MS = 1_000;

/** The membership's states, as the event log tells them. */
const STATE_TEXT: Record<RoomPeerState, string> = {
  fresh: 'Looking for the room\'s cluster',
  waiting: 'Waiting for the leader to add you',
  member: 'You are a member of the Raft cluster',
  leaving: 'Leaving the cluster',
};

/** The leader's configuration changes, as the event log tells them. */
const CHANGE_TEXT: Record<MembershipAction['type'], string> = {
  addLearner: 'Adding', promote: 'Promoting', remove: 'Removing', transfer: 'Handing leadership to',
};

/** How many times (50 ms apart) a message waits for a replaced node before it shows as failed. */
const REPLACE_ATTEMPTS = 100;

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
const short = (id: string | null): string => (id === null ? 'nobody' : id.slice(0, 6));
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The Web Lock a tab holds while it is a room's peer. */
const peerLockName = (room: string, peerId: string): string => `raftrtc.peer.${room}.${peerId}`;

/** The IndexedDB database of a peer's Raft state in a room. */
export const databaseName = (room: string, peerId: string): string => `raftrtc.${room}.${peerId}`;

/** A storage on `name` that deletes what the database held first: a replacement node must start empty. */
function emptiedStorage(name: string): Storage {
  const inner = new IndexedDBStorage({ name });
  return {
    load: async () => {
      await IndexedDBStorage.destroy(name);
      return inner.load();
    },
    save: (u) => inner.save(u),
    compact: (s) => inner.compact(s),
    close: () => inner.close(),
  };
}

/**
 * Joins a room and resolves once this peer runs its Raft node (becoming a member happens afterwards: watch
 * `view.phase`). A page that joined this room before (same name, session in `localStorage`) comes back as
 * the same peer, with its history from IndexedDB.
 * @throws {InvalidInputError} the room name or display name is malformed.
 * @throws {WrongPasswordError} | {RoomFullError} | {RoomNotFoundError} | {RateLimitedError} the server refused.
 * @throws {SignalingUnavailableError} the server cannot be reached or refused the signaling connection.
 */
export async function joinRoom(options: JoinRoomOptions): Promise<RoomClient> {
  const room = options.room.trim();
  const name = options.name.trim();
  if (!ROOM_NAME.test(room)) throw new InvalidInputError('invalid_room_name', 'A room name is 1 to 64 letters, digits, "-" or "_".');
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) throw new InvalidInputError('invalid_name', `A display name is 1 to ${MAX_NAME_LENGTH} characters.`);
  const origin = options.origin ?? location.origin;
  const store = options.store === undefined ? browserStore() : options.store;

  let previous = loadSession(store, room);
  let release: (() => void) | null = null;
  if (previous) {
    release = await lockPeer(room, previous.peerId);
    // Another tab of this browser is that peer right now: this tab joins beside it as another peer.
    if (!release) previous = null;
  }
  try {
    let answer: TokenAnswer | null = null;
    if (previous && previous.name === name) {
      try {
        answer = await refreshToken(origin, room, previous);
      } catch (err) {
        // Expired, or the room was recreated since (a server restart): join as a new peer. Anything else
        // (a rate limit, the server down) is no reason to give up this peer's history.
        if (!(err instanceof RoomError) || !SESSION_GONE.has(err.code)) throw err;
      }
    }
    if (previous && answer?.peerId !== previous.peerId) {
      forgetSession(store, room);
      release?.();
      // That peer will not come back: its Raft state would only take space. Best effort.
      IndexedDBStorage.destroy(databaseName(room, previous.peerId)).catch(() => {});
    }
    if (!answer) {
      answer = await requestToken(origin, room, name, options.password, options.create ?? true);
      release = await lockPeer(room, answer.peerId);
    }
    const client = new RoomClient(origin, room, name, answer, store, options.raft ?? {}, release ?? (() => {}));
    await client.start();
    void sweepOrphanedDatabases(room, answer.peerId, store);
    return client;
  } catch (err) {
    release?.();
    throw err;
  }
}

/**
 * Deletes this room's Raft databases that no one will open again: not this peer's, not the one the stored
 * session would come back as, and not one another tab is using right now (it holds that peer's Web Lock).
 * They are left behind by a tab that closed for good after another tab of the browser took over the
 * session. Best effort: without `indexedDB.databases()` or Web Locks nothing is deleted.
 */
async function sweepOrphanedDatabases(room: string, self: string, store: KeyValueStore | null): Promise<void> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks || typeof indexedDB === 'undefined' || typeof indexedDB.databases !== 'function') return;
  try {
    const prefix = databaseName(room, '');
    const keep = new Set([self, loadSession(store, room)?.peerId]);
    for (const { name } of await indexedDB.databases()) {
      const peerId = name?.startsWith(prefix) ? name.slice(prefix.length) : null;
      if (peerId === null || keep.has(peerId)) continue;
      await locks.request(peerLockName(room, peerId), { ifAvailable: true }, async (lock) => {
        if (lock) await IndexedDBStorage.destroy(name!);
      });
    }
  } catch {
    // Only space is at stake.
  }
}

/** Refusals of `/refresh` that mean the session is over for good. */
const SESSION_GONE = new Set(['invalid_token', 'token_expired', 'room_not_found']);

/**
 * Takes the Web Lock of a peer (`raftrtc.peer.<room>.<peerId>`), held until the returned function is called
 * or the page goes away; null when another tab holds it. Two tabs must never be the same peer: they would
 * share one Raft database and one identity in the mesh. Without Web Locks there is nothing to coordinate with.
 */
function lockPeer(room: string, peerId: string): Promise<(() => void) | null> {
  const locks = (globalThis.navigator as Navigator | undefined)?.locks;
  if (!locks) return Promise.resolve(() => {});
  return new Promise((resolve) => {
    void locks.request(peerLockName(room, peerId), { ifAvailable: true }, (lock) => {
      if (!lock) {
        resolve(null);
        return undefined;
      }
      // The lock is held while this promise is pending.
      return new Promise<void>((done) => resolve(() => done()));
    });
  });
}

interface Pending {
  message: ChatMessage;
  status: 'pending' | 'failed';
  error?: string;
}

/** A joined room. Made by {@link joinRoom}. */
export class RoomClient {
  readonly room: string;
  readonly name: string;
  readonly peerId: string;
  private readonly origin: string;
  private readonly store: KeyValueStore | null;
  private readonly tuning: Required<RaftTuning>;
  private session: RoomSession;
  /** The token endpoint's answer this client joins with. */
  private readonly answer: TokenAnswer;
  private readonly manager: WebRTCManager;
  private readonly hub: MeshHub;
  /** What the visualizer's live view shows of this room; idle unless a visualizer tab watches. */
  private readonly live: LiveFeed;
  /** Files shared peer to peer over the mesh (not through Raft); see `files.ts`. */
  readonly files: FileShare;
  /** Camera and microphone; see `media.ts`. */
  readonly media: RoomMedia;
  private membership: RoomMembership<ChatNode> | null = null;
  private chat = new Chat();
  /** The leader's flush to the archive; one per node, null without an archive. */
  private archiver: Archiver | null = null;
  private readonly history: ArchivedHistory;
  /** The committed messages' views of the last view, by id (see computeView). */
  private committedViews = new Map<string, MessageView>();
  private persistent = true;
  private nodesMade = 0;
  /** Set by leave() and on close; until then the phase follows the membership (see computeView). */
  private closing: 'leaving' | 'left' | null = null;
  private readonly names = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();
  private events: RoomEvent[] = [];
  private errors: string[] = [];
  private eventSeq = 0;
  private sent = 0;
  /** Distinguishes this page's message ids from those of an earlier page of the same peer. */
  private readonly nonce = Math.random().toString(36).slice(2, 8);
  private lastLeader: string | null = null;
  private lastSignaling: RoomView['signaling'] = 'connected';
  private readonly listeners = new Set<(view: RoomView) => void>();
  private current: RoomView;
  private refreshQueued = false;
  private poll: ReturnType<typeof setInterval> | null = null;

  /** Lets go of this peer's Web Lock (see `lockPeer`). */
  private readonly releaseLock: () => void;

  /** @internal use {@link joinRoom}. */
  constructor(
    origin: string, room: string, name: string, answer: TokenAnswer, store: KeyValueStore | null, tuning: RaftTuning, releaseLock: () => void,
  ) {
    this.origin = origin;
    this.releaseLock = releaseLock;
    this.room = room;
    this.name = name;
    this.peerId = answer.peerId;
    this.store = store;
    this.tuning = {
      tickMs: tuning.tickMs ?? 50,
      electionTicks: tuning.electionTicks ?? 10,
      snapshotEvery: tuning.snapshotEvery ?? 100,
      proposalTimeoutMs: tuning.proposalTimeoutMs ?? 30_000,
    };
    this.session = { room, name, peerId: answer.peerId, token: answer.token, subscriptionToken: answer.subscriptionToken };
    saveSession(store, this.session);
    this.names.set(this.peerId, name);
    this.manager = new WebRTCManager(this.peerId);
    // The hub takes over the manager's Raft-slot and peer callbacks, so it must exist before signaling starts.
    this.hub = new MeshHub(this.manager);
    this.live = new LiveFeed({
      room, self: this.peerId, name,
      nodeStatus: () => this.membership?.node?.status() ?? null,
      events: () => this.events,
      broadcast: (text) => { this.manager.broadcastMessage(text); },
    });
    this.files = new FileShare({ manager: this.manager, hub: this.hub, localId: this.peerId, localName: name, nameOf: (id) => this.nameOf(id) });
    this.media = new RoomMedia({ manager: this.manager, hub: this.hub });
    this.answer = answer;
    this.history = new ArchivedHistory(answer.archiveUrl ?? null, () => this.session.subscriptionToken, () => this.changed());
    this.current = this.computeView();
  }

  /** The latest view. */
  get view(): RoomView {
    return this.current;
  }

  /** Calls `listener` with every new view; returns the unsubscribe function. (Fits React's `useSyncExternalStore`.) */
  subscribe = (listener: (view: RoomView) => void): (() => void) => {
    this.listeners.add(listener);
    return () => { this.listeners.delete(listener); };
  };

  /** Connects to signaling, then starts the membership and its node. Called once by {@link joinRoom}. */
  async start(): Promise<void> {
    this.hub.on('connected', (peer) => {
      // Display names are not part of the replicated state: each peer tells its own over the control
      // channel, and the event is logged when the name arrives (see handlePeerMessage).
      this.manager.sendMessage(peer, JSON.stringify({ kind: 'hello', name: this.name }));
      this.changed();
    });
    this.hub.on('disconnected', (peer, reason) => {
      // Our own disconnect() closes every link: nothing the person needs to read about.
      if (this.closing === 'left') return;
      this.addEvent('peer', reason === 'failed' ? `Lost ${this.nameOf(peer)}; reconnecting` : `${this.nameOf(peer)} left the room`);
      this.changed();
    });
    this.manager.setOnMessage((from, content) => this.handlePeerMessage(from, content));
    const a = this.answer;
    try {
      await this.manager.connectToCentrifugo(a.url, this.room, {
        token: a.token, subscriptionToken: a.subscriptionToken, iceServers: a.iceServers,
        getToken: async () => (await this.refresh()).token,
        getSubscriptionToken: async () => (await this.refresh()).subscriptionToken,
      });
    } catch (err) {
      this.live.close();
      this.manager.disconnect();
      if (err instanceof SignalingError) throw new SignalingUnavailableError('signaling_refused', `The signaling server refused to connect: ${err.message}`, { cause: err });
      throw err;
    }
    const membership = new RoomMembership<ChatNode>({
      id: this.peerId,
      hub: this.hub,
      // Presence as signaling saw it right after our own subscription: decides who founds the cluster.
      peersAtJoin: this.manager.peers().map((p) => p.id),
      // A closed tab's presence leave removes it at once; this only covers peers that went silent.
      graceMs: 5_000,
      createNode: ({ voters, transport, seed }) => this.createNode(voters, transport, seed),
    });
    this.membership = membership;
    membership.on('state', (state) => {
      this.addEvent('membership', STATE_TEXT[state]);
    });
    membership.on('bootstrap', (reason) => this.addEvent('membership', reason === 'reset' ? 'You restarted the room alone' : 'You founded the room\'s cluster'));
    membership.on('change failed', (action, error, retryInMs) => {
      this.addEvent('error', `${CHANGE_TEXT[action.type]} ${this.nameOf(action.node)} failed (${errorText(error)})${retryInMs === null ? '' : `; retrying in ${retryInMs} ms`}`);
    });
    membership.on('error', (e) => this.addError(`membership: ${errorText(e)}`));
    try {
      await membership.start();
    } catch (err) {
      this.live.close();
      this.manager.disconnect();
      throw err;
    }
    this.poll = setInterval(() => {
      this.noteSignaling();
      this.changed();
    }, POLL_MS);
    this.changed();
  }

  /**
   * Sends a chat message: it shows as pending at once and as committed once this peer applied it. A
   * follower's message is forwarded to the leader by the node; a resend after a leader change is applied
   * once (the node's proposal ids, and the message id in the chat itself). Returns the message id.
   * @throws {SendError} empty or too long text, or the room was left.
   */
  send(text: string): string {
    const body = text.trim();
    if (body.length === 0) throw new SendError('empty', 'Write something first.');
    if (body.length > MAX_TEXT_LENGTH) throw new SendError('too_long', `A message is at most ${MAX_TEXT_LENGTH} characters.`);
    if (this.closing) throw new SendError('closed', 'You left this room.');
    const message: ChatMessage = {
      id: `${this.peerId}.${this.nonce}.${++this.sent}`, sender: this.peerId, name: this.name, text: body, sentAt: Date.now(),
    };
    this.pending.set(message.id, { message, status: 'pending' });
    this.changed();
    void this.submit(message);
    return message.id;
  }

  /** Sends a failed message again, under the same id (so it cannot be applied twice). */
  retry(id: string): void {
    const p = this.pending.get(id);
    if (!p || p.status !== 'failed' || this.closing) return;
    p.status = 'pending';
    delete p.error;
    this.changed();
    void this.submit(p.message);
  }

  /**
   * Leaves for good: hands leadership over first when this peer leads, waits to be removed from the
   * configuration, disconnects, and forgets this room's session and Raft state.
   */
  async leave(): Promise<void> {
    if (this.closing) return;
    this.closing = 'leaving';
    this.changed();
    try {
      const outcome = await this.membership?.leave();
      if (outcome?.transferredTo) this.addEvent('leader', `Handed leadership to ${this.nameOf(outcome.transferredTo)}`);
    } finally {
      this.close();
      forgetSession(this.store, this.room);
      // The node is stopped (leave closes it), so its database can go.
      await IndexedDBStorage.destroy(databaseName(this.room, this.peerId)).catch(() => {});
    }
  }

  /**
   * For `pagehide`: announces that this peer is leaving and says goodbye on every channel at once (the page
   * cannot wait for round trips). Keeps the session and the Raft state, so a reload rejoins as the same
   * peer and shows its history at once.
   */
  closeForUnload(): void {
    if (this.closing === 'left') return;
    // Its first, synchronous step announces `leaving` on every channel, before the goodbye below.
    void this.membership?.leave();
    this.close();
  }

  // ---- Internals -------------------------------------------------------------------------------------

  /** Logs the signaling connection going and coming back; the manager reports it only as a state to read. */
  private noteSignaling(): void {
    const now = this.manager.stats().signaling;
    if (now === this.lastSignaling) return;
    if (now === 'disconnected') this.addEvent('error', 'Lost the signaling server; reconnecting (the mesh keeps working)');
    else if (now === 'connected' && this.lastSignaling === 'disconnected') this.addEvent('peer', 'Signaling server back');
    this.lastSignaling = now;
  }

  private isOpen(): boolean {
    return this.closing !== 'left';
  }

  private close(): void {
    this.closing = 'left';
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
    this.live.close();
    this.files.close();
    this.archiver?.close();
    this.manager.disconnect();
    this.media.close();
    this.releaseLock();
    for (const p of this.pending.values()) if (p.status === 'pending') { p.status = 'failed'; p.error = 'You left the room before it was committed.'; }
    this.changed();
  }

  private async refresh(): Promise<TokenAnswer> {
    const answer = await refreshToken(this.origin, this.room, this.session);
    this.session = { ...this.session, token: answer.token, subscriptionToken: answer.subscriptionToken };
    saveSession(this.store, this.session);
    return answer;
  }

  private createNode(voters: NodeId[], transport: Transport, seed: Snapshot | null): ChatNode {
    const dbName = databaseName(this.room, this.peerId);
    let storage: Storage;
    try {
      // The first node loads what an earlier page of this peer stored; a replacement must start empty.
      storage = this.nodesMade === 0 ? new IndexedDBStorage({ name: dbName }) : emptiedStorage(dbName);
    } catch (err) {
      if (!(err instanceof StorageUnavailableError)) throw err;
      this.persistent = false;
      this.addEvent('error', 'This browser keeps no IndexedDB here: the history will not survive a reload.');
      storage = new MemoryStorage();
    }
    this.nodesMade++;
    if (seed) storage = seededStorage(storage, seed);
    storage = this.live.tapStorage(storage);
    const chat = new Chat();
    this.chat = chat;
    chat.onArchived = (messages, first) => this.history.archived(messages, first);
    const node: ChatNode = new RaftNode<ChatCommand, number>({
      id: this.peerId, voters, transport: this.live.tapTransport(transport), storage, stateMachine: chat,
      tickMs: this.tuning.tickMs, electionTicks: this.tuning.electionTicks,
      snapshotEvery: this.tuning.snapshotEvery, proposalTimeoutMs: this.tuning.proposalTimeoutMs,
    });
    node.on('apply', (command) => {
      if (command.type === 'chat') {
        this.names.set(command.message.sender, command.message.name);
        this.pending.delete(command.message.id);
      }
      this.archiver?.poke();
      this.changed();
    });
    node.on('refresh', () => {
      for (const m of chat.messages) this.pending.delete(m.id);
      this.history.sync(chat.archivedCount);
      this.changed();
    });
    node.on('updated', () => this.changed());
    node.on('start election', (term) => this.addEvent('election', `You started an election for term ${term}`));
    node.on('state changed', (role, leader, term) => {
      if (leader !== this.lastLeader) {
        this.lastLeader = leader;
        if (leader === this.peerId) this.addEvent('leader', `You lead (term ${term})`);
        else if (leader !== null) this.addEvent('leader', `${this.nameOf(leader)} leads (term ${term})`);
        else if (role !== 'leader') this.addEvent('election', `No leader in term ${term}`);
      }
      this.archiver?.poke();
      this.changed();
    });
    node.on('join', (peer, as) => this.addEvent('join', `${peer === this.peerId ? 'You' : this.nameOf(peer)} joined the cluster as a ${as}`));
    node.on('leave', (peer) => this.addEvent('leave', peer === this.peerId ? 'You were removed from the cluster' : `${this.nameOf(peer)} was removed from the cluster`));
    node.on('error', (e) => this.addError(`raft: ${errorText(e)}`));
    this.archiver?.close();
    this.archiver = this.answer.archiveUrl ? this.createArchiver(this.answer.archiveUrl, node, chat) : null;
    // A restored state (IndexedDB) may hold an archived count already: show the newest archived page.
    queueMicrotask(() => this.history.sync(chat.archivedCount));
    return node;
  }

  private createArchiver(url: string, node: ChatNode, chat: Chat): Archiver {
    let failing = false;
    return new Archiver({
      url,
      token: () => this.session.subscriptionToken,
      isLeader: () => this.isOpen() && node.isLeader,
      oldest: (n) => chat.messages.slice(0, n),
      liveCount: () => chat.messages.length,
      propose: (command) => node.propose(command),
      report: (error, retryInMs) => {
        if (error === null) this.addEvent('membership', 'The message archive works again');
        // One line per outage, not one per retry.
        else if (!failing) this.addEvent('error', `Could not move old messages to the archive (${errorText(error)}); retrying every ${Math.round((retryInMs ?? 0) / 1000)} s or more`);
        failing = error !== null;
      },
    });
  }

  /** Fetches the archived messages before the oldest one shown (see `view.archive`). */
  loadEarlier(): Promise<void> {
    return this.history.loadEarlier();
  }

  private async submit(message: ChatMessage): Promise<void> {
    const command: ChatCommand = { type: 'chat', message };
    for (let attempt = 1; ; attempt++) {
      const node = this.membership?.node;
      if (!this.isOpen() || !node) return;
      try {
        await node.propose(command);
        this.pending.delete(message.id);
        this.changed();
        return;
      } catch (err) {
        const p = this.pending.get(message.id);
        if (!p || this.chat.has(message.id)) { this.pending.delete(message.id); this.changed(); return; }
        // The membership is replacing its node (this peer founded the cluster after all): same id, next node.
        if (err instanceof StoppedError && this.isOpen() && attempt < REPLACE_ATTEMPTS) { await delay(50); continue; }
        p.status = 'failed';
        p.error = err instanceof TimeoutError ? 'No leader committed it in time (it may still appear).' : errorText(err);
        this.changed();
        return;
      }
    }
  }

  private handlePeerMessage(from: string, content: string): void {
    let hello: unknown;
    try {
      hello = JSON.parse(content);
    } catch {
      return; // Not ours to understand: the mesh's `message` kind is open to other uses.
    }
    if (this.live.receive(from, content.length, hello)) return;
    if (this.files.handlePeerMessage(from, hello) || this.media.handlePeerMessage(from, hello)) return;
    const h = hello as { kind?: unknown; name?: unknown } | null;
    if (h?.kind === 'hello' && typeof h.name === 'string' && h.name.length > 0 && h.name.length <= MAX_NAME_LENGTH) {
      this.names.set(from, h.name);
      this.addEvent('peer', `Connected to ${h.name}`);
    }
  }

  private nameOf(id: string): string {
    return this.names.get(id) ?? short(id);
  }

  private addEvent(kind: RoomEventKind, text: string): void {
    this.events = [...this.events.slice(-(MAX_EVENTS - 1)), { seq: ++this.eventSeq, at: Date.now(), kind, text }];
    this.changed();
  }

  private addError(text: string): void {
    this.errors = [...this.errors.slice(-(MAX_EVENTS - 1)), text];
    this.addEvent('error', text);
  }

  /** Recomputes the view once per microtask, however many events arrive in one turn. */
  private changed(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    queueMicrotask(() => {
      this.refreshQueued = false;
      this.current = this.computeView();
      for (const l of this.listeners) l(this.current);
    });
  }

  private computeView(): RoomView {
    const node = this.membership?.node ?? null;
    const st: RaftNodeStatus | null = node?.status() ?? null;
    const ownRole = st ? roleOf(this.peerId, st, st.role) : 'joining';
    const raft: RaftView = {
      role: ownRole,
      leader: st?.leader ?? null,
      term: st?.term ?? 0,
      commit: st?.commit ?? 0,
      applied: st?.applied ?? 0,
      logLength: st ? st.lastIndex - st.firstIndex + 1 : 0,
      snapshotIndex: st ? st.firstIndex - 1 : 0,
      voters: st ? [...st.conf.voters] : [],
      learners: st ? [...st.conf.learners] : [],
    };
    const closed = this.closing === 'left';
    const links = new Map(closed ? [] : this.manager.peers().map((p) => [p.id, p]));
    const ids = new Set<string>([...links.keys(), ...raft.voters, ...raft.learners]);
    ids.delete(this.peerId);
    const others: PeerView[] = [...ids].map((id) => {
      const link = links.get(id);
      return {
        id, name: this.nameOf(id), self: false, role: st ? roleOf(id, st, null) : 'joining',
        connection: link?.state ?? 'absent', rttMs: link?.rttMs ?? null,
      };
    });
    others.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    // Committed messages never change: the same object from view to view lets the UI skip redrawing them.
    const previous = this.committedViews;
    const seen = new Map<string, MessageView>();
    const reuse = (m: ChatMessage, archived: boolean): MessageView => {
      const before = previous.get(m.id);
      const v = before && before.archived === archived ? before : { ...m, status: 'committed' as const, archived };
      seen.set(m.id, v);
      return v;
    };
    const archived = this.history.messages.map((m) => reuse(m, true));
    // An archived page fetched while the delete of those messages was not applied here yet lists them twice.
    const committed = this.chat.messages.filter((m) => !seen.has(m.id)).map((m) => reuse(m, false));
    this.committedViews = seen;
    const waiting: MessageView[] = [...this.pending.values()]
      .filter((p) => !this.chat.has(p.message.id))
      .map((p) => ({ ...p.message, status: p.status, ...(p.error ? { error: p.error } : {}) }));
    return {
      room: this.room,
      peerId: this.peerId,
      name: this.name,
      // A member that finds itself outside the leader's configuration (back after a reload) says `waiting`
      // until the leader adds it again: joining once more, as far as the person is concerned.
      phase: this.closing ?? (this.membership?.state === 'member' ? 'live' : 'joining'),
      membership: this.membership?.state ?? null,
      signaling: closed ? 'idle' : this.manager.stats().signaling,
      persistent: this.persistent,
      raft,
      peers: [{ id: this.peerId, name: this.name, self: true, role: ownRole, connection: 'self', rttMs: null }, ...others],
      messages: [...archived, ...committed, ...waiting],
      events: this.events,
      errors: this.errors,
      archive: {
        enabled: this.history.enabled,
        total: this.chat.archivedCount,
        earlier: this.history.earlierCount,
        loading: this.history.loading,
        error: this.history.error,
      },
    };
  }
}

/** `id`'s role in this node's view: its own role for itself (`own`), its place in the configuration for others. */
function roleOf(id: string, st: RaftNodeStatus, own: RaftNodeStatus['role'] | null): PeerRole {
  if (st.leader === id) return 'leader';
  if (st.conf.learners.includes(id)) return 'learner';
  if (!st.conf.voters.includes(id)) return 'joining';
  if (own === 'candidate' || own === 'pre-candidate') return 'candidate';
  return 'follower';
}
