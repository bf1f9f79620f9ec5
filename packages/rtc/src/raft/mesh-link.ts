/**
 * The slice of the mesh that Raft needs, and a hub that shares it. `MeshLink` is what the mesh's
 * `WebRTCManager` offers (it satisfies the interface structurally): a JSON message slot per peer on the
 * ordered, reliable control channel, and events for a peer's channel opening and closing. The manager keeps
 * one callback per event, so {@link MeshHub} takes them over once and fans them out to any number of
 * listeners (the Raft transport, the room membership, the UI).
 *
 * The hub also splits the message slot in two: {@link RoomStateMessage}s (plain objects, `type:
 * 'RoomState'`) go to the room membership; everything else goes to the Raft transport, which accepts only
 * codec text and counts the rest as malformed.
 * @module
 */
import type { NodeId } from '@raftrtc/raft';

/** Why a peer's channel went away: `left` = presence leave from signaling; `failed`/`closed` = the connection. */
export type PeerDisconnectReason = 'left' | 'failed' | 'closed';

/**
 * What Raft needs from the mesh; `WebRTCManager` satisfies it. `setOnPeerConnected` must fire only once the
 * peer's control channel is open (a peer joins Raft only then), and `sendRaftMessage` must keep the order of
 * messages to one peer. Each setter replaces the previous callback, as the manager's do.
 */
export interface MeshLink {
  /** Sends on the peer's control channel; false (or a throw) when it could not: the message is lost. */
  sendRaftMessage(peerId: NodeId, message: unknown): boolean | void;
  setOnRaftMessage(callback: (from: NodeId, message: unknown) => void): void;
  setOnPeerConnected(callback: (peerId: NodeId) => void): void;
  setOnPeerDisconnected(callback: (peerId: NodeId, reason: PeerDisconnectReason) => void): void;
}

/** The `type` of the room membership's own message on the Raft slot. */
export const ROOM_STATE_TYPE = 'RoomState';

/** Most ids a {@link RoomStateMessage} may list: a room is a full mesh, far smaller than this. */
export const MAX_ROOM_MEMBERS = 256;

/**
 * Where a peer stands, as it tells the others:
 * - `fresh`: no Raft state at all; it may bootstrap a new cluster (see `planBootstrap`).
 * - `waiting`: it holds Raft state but is in no configuration (it was removed): only a leader can add it back.
 * - `member`: it is a voter or learner of its configuration.
 * - `leaving`: it is going away; nobody adds it, waits for it or counts it as a rival.
 */
export type RoomPeerState = 'fresh' | 'waiting' | 'member' | 'leaving';

/**
 * A room membership's announcement to one peer, sent when their channel opens and whenever it changes.
 * `voters` and `learners` are the sender's configuration (empty unless `member`): a leaving peer learns
 * from its leader's announcement that it was removed.
 */
export interface RoomStateMessage {
  type: typeof ROOM_STATE_TYPE;
  from: NodeId;
  to: NodeId;
  state: RoomPeerState;
  leader: NodeId | null;
  voters: NodeId[];
  learners: NodeId[];
}

const STATES: ReadonlySet<string> = new Set(['fresh', 'waiting', 'member', 'leaving']);
const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isIds = (v: unknown): v is string[] => Array.isArray(v) && v.length <= MAX_ROOM_MEMBERS && v.every(isId);

/** Returns null when `m` is a well-formed {@link RoomStateMessage}, otherwise a short reason. */
export function validateRoomState(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'not an object';
  const o = m as Record<string, unknown>;
  if (o.type !== ROOM_STATE_TYPE) return 'type';
  if (!isId(o.from) || !isId(o.to)) return 'from/to';
  if (typeof o.state !== 'string' || !STATES.has(o.state)) return 'state';
  if (o.leader !== null && !isId(o.leader)) return 'leader';
  if (!isIds(o.voters) || !isIds(o.learners)) return 'voters/learners';
  return null;
}

/** Whether `payload` claims to be a room membership message (valid or not): such payloads never reach Raft. */
function isRoomPayload(payload: unknown): boolean {
  return typeof payload === 'object' && payload !== null && (payload as { type?: unknown }).type === ROOM_STATE_TYPE;
}

/** The outcome of {@link MeshHub.send}: `refused` means the mesh would not take it (too large, or its channel closing). */
export type MeshSendResult = 'sent' | 'not-connected' | 'refused';

/** Listeners of a {@link MeshHub}. */
export interface MeshHubListeners {
  /** A Raft payload (anything but a room message) from `from`. */
  raft: (from: NodeId, payload: unknown) => void;
  /** A room membership payload from `from`, not yet validated. */
  room: (from: NodeId, payload: unknown) => void;
  connected: (peerId: NodeId) => void;
  disconnected: (peerId: NodeId, reason: PeerDisconnectReason) => void;
}

/**
 * Owns a {@link MeshLink}'s callbacks and shares them: create one per mesh, before the mesh connects to
 * signaling (the hub knows a peer as connected only from the events it saw), and register every other
 * listener of those events here rather than on the mesh, which keeps one callback per event.
 */
export class MeshHub {
  private readonly link: MeshLink;
  private readonly open = new Set<NodeId>();
  /** Peers whose presence left the room: a membership started after that event still needs to know. */
  private readonly left = new Set<NodeId>();
  private readonly listeners: { [K in keyof MeshHubListeners]: Set<MeshHubListeners[K]> } = {
    raft: new Set(), room: new Set(), connected: new Set(), disconnected: new Set(),
  };

  constructor(link: MeshLink) {
    this.link = link;
    link.setOnRaftMessage(this.handleMessage);
    link.setOnPeerConnected(this.handleConnected);
    link.setOnPeerDisconnected(this.handleDisconnected);
  }

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof MeshHubListeners>(event: K, listener: MeshHubListeners[K]): () => void {
    this.listeners[event].add(listener);
    return () => { this.listeners[event].delete(listener); };
  }

  /** Whether `peerId`'s channel is open (as of the last event). */
  isConnected(peerId: NodeId): boolean {
    return this.open.has(peerId);
  }

  /** Peers whose channel is open, in the order they connected. */
  connectedPeers(): NodeId[] {
    return [...this.open];
  }

  /** Peers whose presence left the room since the hub was made (and that did not come back). */
  leftPeers(): NodeId[] {
    return [...this.left];
  }

  /**
   * Sends `payload` to an open peer. Never throws: a payload the mesh refuses (its frame limit, a channel
   * closing under us) is lost like any message on a network, and reported as `refused`.
   */
  send(peerId: NodeId, payload: unknown): MeshSendResult {
    if (!this.open.has(peerId)) return 'not-connected';
    try {
      return this.link.sendRaftMessage(peerId, payload) === false ? 'not-connected' : 'sent';
    } catch {
      return 'refused';
    }
  }

  private readonly handleMessage = (from: NodeId, payload: unknown): void => {
    // A peer whose channel we do not consider open cannot speak for the room yet.
    if (!this.open.has(from)) return;
    if (isRoomPayload(payload)) this.fire('room', from, payload);
    else this.fire('raft', from, payload);
  };

  private readonly handleConnected = (peerId: NodeId): void => {
    if (this.open.has(peerId)) return;
    this.open.add(peerId);
    this.left.delete(peerId);
    this.fire('connected', peerId);
  };

  private readonly handleDisconnected = (peerId: NodeId, reason: PeerDisconnectReason): void => {
    if (reason === 'left') this.left.add(peerId);
    // A presence leave after the channel already closed still matters: it tells why the peer is gone.
    if (!this.open.delete(peerId) && reason !== 'left') return;
    this.fire('disconnected', peerId, reason);
  };

  private fire<K extends keyof MeshHubListeners>(event: K, ...args: Parameters<MeshHubListeners[K]>): void {
    for (const l of [...this.listeners[event]]) {
      try {
        (l as (...a: Parameters<MeshHubListeners[K]>) => void)(...args);
      } catch {
        // One listener's bug must not starve the others of the mesh's events.
      }
    }
  }
}
