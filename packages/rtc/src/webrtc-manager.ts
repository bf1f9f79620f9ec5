/**
 * `WebRTCManager`: the seed's mesh API. It joins a room through signaling, keeps one {@link PeerLink} per
 * other peer (full mesh), and turns control-channel frames into the `setOn…` callbacks. See `docs/rtc.md`.
 * @module
 */
import { describe, FrameEncodeError, ManagerStateError, MediaUnavailableError, PeerNotConnectedError } from './errors.js';
import { IncomingFiles, sendFileOver, type FileProgress, type FileSendOptions, type FileSource, type IncomingDropReason, type IncomingLimits, type ReceivedFile } from './file-transfer.js';
import { DEFAULT_MAX_CONTROL_FRAME_BYTES, type ControlFrame, type FrameRejectReason } from './frames.js';
import { completeLogger, type Logger } from './logger.js';
import { MEDIA_KINDS, PeerLink, type LinkLimits, type LinkState, type LinkTiming, type LocalMedia, type MediaKind, type PeerLinkInfo, type RTCPeerConnectionConstructor } from './peer-connection.js';
import { CentrifugeSignaling, type PublishRate, type Signaling, type SignalingMessage } from './signaling.js';

/** Why {@link WebRTCManager.setOnPeerDisconnected} fired. */
export type DisconnectReason =
  /** Signaling presence says the peer left the room, or it said goodbye on its control channel. Final. */
  | 'left'
  /** The connection failed or closed unexpectedly; the manager is recovering it, and `onPeerConnected` fires again if it succeeds. */
  | 'failed'
  /** This side closed the link: `removePeer()`, `disconnect()`, or recovery gave up. Final. */
  | 'closed';

/** Every reason something received was dropped; counted in {@link ManagerStats.dropped}. */
export type DropReason =
  | FrameRejectReason
  | IncomingDropReason
  | 'stale-signal'
  | 'candidate-overflow'
  | 'forged-signal'
  | 'malformed-signal'
  | 'peer-limit';

/** Counters of {@link WebRTCManager.stats}. */
export interface ManagerStats {
  /** Signaling: `idle` before connecting, `connected` while subscribed. */
  signaling: 'idle' | 'connected' | 'disconnected';
  /** Peers whose control channel is open. */
  peersConnected: number;
  /** Dropped frames and payloads by reason; a reason appears once it happened. */
  dropped: Partial<Record<DropReason, number>>;
  /** Sum of {@link dropped}. */
  droppedTotal: number;
  /** Connections that recovered (opened again after a failure). */
  recoveries: number;
  /** Offer collisions (glare) seen; perfect negotiation settles each. */
  collisions: number;
}

/** One peer in {@link WebRTCManager.peers}. */
export interface PeerInfo extends PeerLinkInfo {
  id: string;
}

/** Size limits; every field has a default (see {@link DEFAULT_LIMITS}). */
export interface ManagerLimits extends LinkLimits, IncomingLimits {
  /** Most peers linked at once; more are refused (counted as `peer-limit`). */
  maxPeers: number;
  /** Chunk size this side sends files with (at most the receivers' `maxChunkBytes`). */
  fileChunkBytes: number;
  /** File sending pauses while the bulk channel buffers more than this. */
  bulkHighWaterBytes: number;
  /** ...and resumes at this. */
  bulkLowWaterBytes: number;
}

/** Default limits. */
export const DEFAULT_LIMITS: Readonly<ManagerLimits> = {
  maxControlFrameBytes: DEFAULT_MAX_CONTROL_FRAME_BYTES,
  maxChunkBytes: 256 * 1024,
  maxPendingCandidates: 64,
  maxFileBytes: 256 * 1024 * 1024,
  maxConcurrentFiles: 8,
  maxEarlyBytes: 4 * 1024 * 1024,
  maxPeers: 32,
  fileChunkBytes: 128 * 1024,
  bulkHighWaterBytes: 1024 * 1024,
  bulkLowWaterBytes: 256 * 1024,
};

/** Timing of the manager and its links, in milliseconds. */
export interface ManagerTiming extends LinkTiming {
  /**
   * How long a *connected* peer may be missing from signaling presence before it counts as `left`. Signaling
   * outages (a server restart sends everyone's leave) must not tear down working connections; a peer that
   * really leaves says goodbye on its control channel, or its connection fails, and is dropped at once.
   */
  leaveGraceMs: number;
}

/** Default timing (milliseconds). */
export const DEFAULT_TIMING: Readonly<ManagerTiming> = {
  leaveGraceMs: 10_000,
  connectTimeoutMs: 15_000,
  politeWaitMs: 1_000,
  disconnectedGraceMs: 3_000,
  pingIntervalMs: 1_000,
  pingTimeoutMs: 10_000,
  restartBaseDelayMs: 500,
  maxRestartDelayMs: 10_000,
  maxRestarts: 8,
};

/** How long a link lingers after its goodbye frame before the connection is closed. */
const BYE_LINGER_MS = 100;
/** Poll interval of a paused file transfer. */
const DRAIN_POLL_MS = 20;

/** Options of {@link WebRTCManager}. */
export interface WebRTCManagerOptions {
  /** `RTCPeerConnection` constructor; defaults to the global one (browsers). In Node.js pass node-datachannel's polyfill. */
  RTCPeerConnection?: RTCPeerConnectionConstructor;
  /** WebSocket constructor for signaling; browsers have one, Node.js passes `ws`'s. */
  WebSocket?: unknown;
  /** STUN/TURN servers; {@link CentrifugoAuth.iceServers} from the server overrides them. */
  iceServers?: RTCIceServer[];
  /** Extra `RTCConfiguration` fields, including implementation-specific ones (node-datachannel's `bindAddress`). */
  rtcConfiguration?: RTCConfiguration & Record<string, unknown>;
  limits?: Partial<ManagerLimits>;
  timing?: Partial<ManagerTiming>;
  logger?: Partial<Logger>;
  /** Pacing of signaling publications; defaults to `DEFAULT_PUBLISH_RATE` (under our server's limit). */
  publishRate?: PublishRate;
  /** Media source for {@link WebRTCManager.enableVideo}; defaults to `navigator.mediaDevices`. */
  mediaDevices?: Pick<MediaDevices, 'getUserMedia'>;
}

/** Credentials and settings from the server's token endpoint (`POST /api/rooms/:room/token`). */
export interface CentrifugoAuth {
  /** Connection JWT. */
  token?: string;
  /** Subscription JWT for the room's channel. */
  subscriptionToken?: string;
  /** ICE servers the server recommends; replaces {@link WebRTCManagerOptions.iceServers}. */
  iceServers?: RTCIceServer[];
  /**
   * Renew the connection token when it expires, keeping the same peer id (our server: `POST
   * /api/rooms/:room/refresh`). Without it, a client whose token expired cannot reconnect to signaling.
   */
  getToken?: () => Promise<string>;
  /** Renew the subscription token the same way. */
  getSubscriptionToken?: () => Promise<string>;
}

/** The result of {@link WebRTCManager.sendFile}. */
export interface SentFile {
  id: number;
  size: number;
}

type Handler<A extends unknown[]> = ((...args: A) => void) | null;

/**
 * A full mesh of WebRTC connections among the peers of one room.
 *
 * ```ts
 * const rtc = new WebRTCManager(peerId, { RTCPeerConnection, WebSocket });
 * rtc.setOnPeerConnected((id) => console.log('up', id));
 * rtc.setOnRaftMessage((from, m) => transport.deliver(from, m));
 * await rtc.connectToCentrifugo(url, 'lobby', { token, subscriptionToken, iceServers });
 * rtc.sendRaftMessage(other, message);
 * ```
 *
 * A manager serves one room once: after {@link disconnect} it cannot connect again. Callbacks never throw
 * into the manager: an exception in one is logged and swallowed.
 */
export class WebRTCManager {
  /** This peer's id; must equal the signaling token's `sub`. */
  readonly localId: string;
  readonly #o: WebRTCManagerOptions;
  readonly #logger: Logger;
  readonly #limits: ManagerLimits;
  readonly #timing: ManagerTiming;
  /** Peers in the room according to signaling (presence, join/leave pushes, announcements). */
  readonly #present = new Set<string>();
  /** Connected peers missing from presence, with the timer that decides whether they left. */
  readonly #leaveTimers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #links = new Map<string, PeerLink>();
  readonly #incoming = new Map<string, IncomingFiles>();
  /** Peers announced with `onPeerConnected` whose final event has not fired yet. */
  readonly #announced = new Set<string>();
  readonly #dropped: Partial<Record<DropReason, number>> = {};
  #recoveries = 0;
  #collisions = 0;
  #state: 'idle' | 'connecting' | 'connected' | 'done' = 'idle';
  #signalingState: ManagerStats['signaling'] = 'idle';
  #signaling: Signaling | null = null;
  #iceServers: RTCIceServer[];
  #nextFileId = 1;
  #localStream: MediaStream | null = null;
  /** The enabled camera and microphone tracks. */
  readonly #tracks: Record<MediaKind, MediaStreamTrack | null> = { audio: null, video: null };
  /** What every connection sends; its stream labels our tracks on the other side. */
  readonly #localMedia: LocalMedia = {
    stream: () => (this.#localStream ??= new MediaStream()),
    track: (kind) => this.#tracks[kind],
  };

  #onMessage: Handler<[peerId: string, content: string]> = null;
  #onFile: Handler<[peerId: string, file: ReceivedFile]> = null;
  #onFileProgress: Handler<[peerId: string, progress: FileProgress]> = null;
  #onPeerConnected: Handler<[peerId: string]> = null;
  #onPeerDisconnected: Handler<[peerId: string, reason: DisconnectReason]> = null;
  #onStream: Handler<[peerId: string, stream: MediaStream]> = null;
  #onRaftMessage: Handler<[peerId: string, message: unknown]> = null;
  #onClientMessage: Handler<[peerId: string, message: unknown]> = null;

  /**
   * @param localId this peer's id (the `peerId` the token endpoint answered).
   * @throws {ManagerStateError} no `RTCPeerConnection` is available (Node.js without the option).
   */
  constructor(localId: string, options: WebRTCManagerOptions = {}) {
    this.localId = localId;
    this.#o = options;
    this.#logger = completeLogger(options.logger);
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#timing = { ...DEFAULT_TIMING, ...options.timing };
    this.#iceServers = options.iceServers ?? [];
    if (!options.RTCPeerConnection && typeof globalThis.RTCPeerConnection !== 'function') {
      throw new ManagerStateError('no RTCPeerConnection: pass options.RTCPeerConnection (node-datachannel/polyfill in Node.js)');
    }
  }

  /**
   * Joins room `roomId` through a Centrifugo-compatible server: connects, subscribes to `room:<roomId>`,
   * reads presence and connects to every peer in it. Resolves once subscribed (peers connect afterwards;
   * watch {@link setOnPeerConnected}).
   * @param url WebSocket endpoint, e.g. `ws://host/connection/websocket`.
   * @param auth the connection token, or everything the token endpoint answered.
   * @throws {SignalingError} the server refused the connection or the subscription.
   * @throws {ManagerStateError} already connected, or disconnected.
   */
  async connectToCentrifugo(url: string, roomId: string, auth?: string | CentrifugoAuth): Promise<void> {
    const a: CentrifugoAuth = typeof auth === 'string' ? { token: auth } : auth ?? {};
    if (a.iceServers) this.#iceServers = a.iceServers;
    const signaling = new CentrifugeSignaling({
      url,
      channel: `room:${roomId}`,
      localId: this.localId,
      logger: this.#logger,
      ...(a.token !== undefined ? { token: a.token } : {}),
      ...(a.subscriptionToken !== undefined ? { subscriptionToken: a.subscriptionToken } : {}),
      ...(a.getToken !== undefined ? { getToken: a.getToken } : {}),
      ...(a.getSubscriptionToken !== undefined ? { getSubscriptionToken: a.getSubscriptionToken } : {}),
      ...(this.#o.WebSocket !== undefined ? { WebSocket: this.#o.WebSocket } : {}),
      ...(this.#o.publishRate !== undefined ? { publishRate: this.#o.publishRate } : {}),
    });
    await this.connect(signaling);
  }

  /**
   * Joins a room through any {@link Signaling} (tests, other servers).
   * @throws {ManagerStateError} already connected or disconnected, or `signaling.localId` is not this peer's id.
   * @throws {SignalingError} from `signaling.start`.
   */
  async connect(signaling: Signaling): Promise<void> {
    if (this.#state !== 'idle') throw new ManagerStateError(`cannot connect: the manager is ${this.#state}`);
    if (signaling.localId !== this.localId) throw new ManagerStateError(`signaling is for ${signaling.localId}, not ${this.localId}`);
    this.#state = 'connecting';
    this.#signaling = signaling;
    try {
      await signaling.start({
        onMessage: (m) => this.#onSignal(m),
        onPresence: (peers) => this.#onPresence(peers),
        onJoin: (id) => this.#onPresent(id),
        onLeave: (id) => this.#onAbsent(id),
        onDropped: (reason) => this.#drop(reason === 'forged' ? 'forged-signal' : 'malformed-signal'),
        onStateChange: (s) => {
          this.#signalingState = s;
        },
      });
    } catch (e) {
      this.#signaling = null;
      this.#state = 'idle';
      throw e;
    }
    if (this.#state === 'connecting') this.#state = 'connected';
  }

  /** Leaves the room: says goodbye to every peer, closes every connection and signaling, stops local media. */
  disconnect(): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    for (const id of [...this.#links.keys()]) this.#closeLink(id, 'closed', true);
    this.#present.clear();
    this.#signaling?.close();
    this.#signaling = null;
    this.#signalingState = 'idle';
    for (const kind of MEDIA_KINDS) {
      this.#tracks[kind]?.stop();
      this.#tracks[kind] = null;
    }
    this.#localStream = null;
  }

  /** Closes the link to `peerId` (with a goodbye, so the peer sees `left`); it is not reconnected unless the peer rejoins. */
  removePeer(peerId: string): void {
    this.#closeLink(peerId, 'closed', true);
  }

  /**
   * Starts or stops sending the camera to every peer. Every connection has carried a video transceiver since
   * it was made, so this swaps the track in place: no renegotiation.
   * @throws {MediaUnavailableError} no media devices (Node.js), or permission denied.
   */
  enableVideo(enable: boolean): Promise<void> {
    return this.#enableMedia('video', enable);
  }

  /**
   * Starts or stops sending the microphone to every peer, in place like {@link enableVideo}.
   * @throws {MediaUnavailableError} no media devices (Node.js), or permission denied.
   */
  enableAudio(enable: boolean): Promise<void> {
    return this.#enableMedia('audio', enable);
  }

  /** The local media stream while video or audio is enabled, else `null`. */
  getLocalStream(): MediaStream | null {
    return this.#tracks.audio || this.#tracks.video ? this.#localStream : null;
  }

  /**
   * Sends a chat text to one peer.
   * @returns false if the peer is not connected (nothing was sent).
   * @throws {FrameTooLargeError} the frame exceeds `limits.maxControlFrameBytes`.
   */
  sendMessage(peerId: string, message: string): boolean {
    return this.#send(peerId, { type: 'message', content: message });
  }

  /**
   * Sends a chat text to every connected peer.
   * @returns how many peers it was sent to.
   * @throws {FrameTooLargeError} the frame exceeds `limits.maxControlFrameBytes`.
   */
  broadcastMessage(message: string): number {
    let n = 0;
    for (const id of this.#links.keys()) if (this.sendMessage(id, message)) n++;
    return n;
  }

  /**
   * Sends a Raft message on the control channel, never behind file data: any JSON value, typically a
   * `@raftrtc/raft` `WireMessage` or its codec text; the receiver gets the same value. Best effort, like the
   * network Raft assumes, and in order per peer.
   * @returns false if the peer is not connected (the message is dropped).
   * @throws {FrameEncodeError} `message` is not JSON-serializable (or `undefined`).
   * @throws {FrameTooLargeError} the frame exceeds `limits.maxControlFrameBytes`.
   */
  sendRaftMessage(peerId: string, message: unknown): boolean {
    if (message === undefined) throw new FrameEncodeError('a raft message cannot be undefined');
    return this.#send(peerId, { type: 'raft', message });
  }

  /**
   * Sends a `client-message` (a follower's chat message for the leader) to one peer.
   * @returns false if the peer is not connected.
   * @throws {FrameEncodeError} / {FrameTooLargeError} as {@link sendRaftMessage}.
   */
  sendClientMessage(peerId: string, message: unknown): boolean {
    if (message === undefined) throw new FrameEncodeError('a client message cannot be undefined');
    return this.#send(peerId, { type: 'client-message', message });
  }

  /**
   * Sends a file: `file-meta` on the control channel, then chunks on the bulk channel with backpressure.
   * Resolves when the last chunk is handed to the channel.
   * @param name file name announced; defaults to a `File`'s name, else `"file"`.
   * @throws {PeerNotConnectedError} the peer is not connected.
   * @throws {TransferAbortedError} the connection went away mid-transfer (no resume), or the source failed.
   */
  async sendFile(peerId: string, file: FileSource, name?: string, options: FileSendOptions = {}): Promise<SentFile> {
    const link = this.#links.get(peerId);
    if (!link || link.state !== 'connected') throw new PeerNotConnectedError(peerId);
    const id = this.#nextFileId;
    this.#nextFileId = (this.#nextFileId % 0xffffffff) + 1;
    const fileName = name ?? (typeof (file as { name?: unknown }).name === 'string' ? (file as File).name : 'file');
    await sendFileOver(link, id, file, fileName, options, {
      chunkBytes: this.#limits.fileChunkBytes,
      highWaterBytes: this.#limits.bulkHighWaterBytes,
      lowWaterBytes: this.#limits.bulkLowWaterBytes,
      pollMs: DRAIN_POLL_MS,
    });
    return { id, size: file instanceof Blob ? file.size : file.byteLength };
  }

  /** Every linked peer with its state, generation and last RTT. */
  peers(): PeerInfo[] {
    return [...this.#links].map(([id, link]) => ({ id, ...link.info() }));
  }

  /** Ids of peers whose control channel is open. */
  connectedPeers(): string[] {
    return [...this.#links].filter(([, l]) => l.state === 'connected').map(([id]) => id);
  }

  /** The state of the link to `peerId`, or `null` if there is none. */
  peerState(peerId: string): LinkState | null {
    return this.#links.get(peerId)?.state ?? null;
  }

  /**
   * The current `RTCPeerConnection` to `peerId`, for diagnostics (stats, tests). Closing it is treated as
   * a crash of the connection and recovered from.
   */
  peerConnection(peerId: string): RTCPeerConnection | null {
    return this.#links.get(peerId)?.peerConnection ?? null;
  }

  /** Counters: drops by reason, recoveries, offer collisions, connected peers, signaling state. */
  stats(): ManagerStats {
    let droppedTotal = 0;
    for (const n of Object.values(this.#dropped)) droppedTotal += n;
    return {
      signaling: this.#signalingState,
      peersConnected: this.connectedPeers().length,
      dropped: { ...this.#dropped },
      droppedTotal,
      recoveries: this.#recoveries,
      collisions: this.#collisions,
    };
  }

  /** Chat texts: `(peerId, content)`. */
  setOnMessage(cb: Handler<[peerId: string, content: string]>): void { this.#onMessage = cb; }
  /** Files received completely: `(peerId, file)`. */
  setOnFile(cb: Handler<[peerId: string, file: ReceivedFile]>): void { this.#onFile = cb; }
  /** Progress of files being received: `(peerId, progress)`. */
  setOnFileProgress(cb: Handler<[peerId: string, progress: FileProgress]>): void { this.#onFileProgress = cb; }
  /** A peer's control channel opened (also after recovery). Only then may the peer join Raft. */
  setOnPeerConnected(cb: Handler<[peerId: string]>): void { this.#onPeerConnected = cb; }
  /** A connected peer went away; see {@link DisconnectReason}. */
  setOnPeerDisconnected(cb: Handler<[peerId: string, reason: DisconnectReason]>): void { this.#onPeerDisconnected = cb; }
  /**
   * A peer's media stream: `(peerId, stream)`. In browsers it arrives with the connection (every connection
   * carries audio and video transceivers); its tracks stay muted until the peer enables its camera or microphone.
   */
  setOnStream(cb: Handler<[peerId: string, stream: MediaStream]>): void { this.#onStream = cb; }
  /** Raft messages as received (the JSON value sent, not yet validated by the Raft codec): `(peerId, message)`. */
  setOnRaftMessage(cb: Handler<[peerId: string, message: unknown]>): void { this.#onRaftMessage = cb; }
  /** `client-message`s (followers' chat for the leader): `(peerId, message)`. */
  setOnClientMessage(cb: Handler<[peerId: string, message: unknown]>): void { this.#onClientMessage = cb; }

  #send(peerId: string, frame: ControlFrame): boolean {
    const link = this.#links.get(peerId);
    return link !== undefined && link.state === 'connected' && link.sendControl(frame);
  }

  #emit<A extends unknown[]>(cb: Handler<A>, ...args: A): void {
    if (!cb) return;
    try {
      cb(...args);
    } catch (e) {
      this.#logger.error('a callback threw', { error: describe(e) });
    }
  }

  #drop(reason: DropReason): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + 1;
  }

  #onPresence(peers: string[]): void {
    const present = new Set(peers);
    // Peers that left while signaling was down are noticed here.
    for (const id of [...this.#present]) if (!present.has(id)) this.#onAbsent(id);
    for (const id of this.#links.keys()) if (!present.has(id)) this.#onAbsent(id);
    for (const id of peers) this.#onPresent(id);
  }

  #onPresent(peerId: string): void {
    this.#present.add(peerId);
    const timer = this.#leaveTimers.get(peerId);
    if (timer !== undefined) clearTimeout(timer);
    this.#leaveTimers.delete(peerId);
    this.#ensureLink(peerId);
  }

  /** A peer is missing from presence: a broken link goes now, a working one after the grace (see `leaveGraceMs`). */
  #onAbsent(peerId: string): void {
    this.#present.delete(peerId);
    const link = this.#links.get(peerId);
    if (!link || this.#leaveTimers.has(peerId)) return;
    if (link.state !== 'connected') return this.#closeLink(peerId, 'left', false);
    this.#leaveTimers.set(peerId, setTimeout(() => this.#checkAbsent(peerId), this.#timing.leaveGraceMs));
  }

  #checkAbsent(peerId: string): void {
    this.#leaveTimers.delete(peerId);
    if (this.#present.has(peerId) || !this.#links.has(peerId)) return;
    // While our own signaling is down, presence says nothing; keep waiting and let the link's health decide.
    if (this.#signalingState !== 'connected') {
      this.#leaveTimers.set(peerId, setTimeout(() => this.#checkAbsent(peerId), this.#timing.leaveGraceMs));
      return;
    }
    this.#closeLink(peerId, 'left', false);
  }

  #onSignal(m: SignalingMessage): void {
    switch (m.type) {
      case 'peer-joined':
        this.#onPresent(m.from); // only a subscribed peer can publish
        return;
      case 'offer': {
        const link = this.#links.get(m.from);
        if (link) link.handleSignal(m);
        else this.#ensureLink(m.from, m);
        return;
      }
      case 'answer':
      case 'ice-candidate': {
        const link = this.#links.get(m.from);
        if (link) link.handleSignal(m);
        else this.#drop('stale-signal');
        return;
      }
      case 'peer-list':
        // Presence is the authority on who is in the room; a peer's list adds nothing we would trust.
        return;
    }
  }

  /** Creates the link to `peerId` if there is none (both sides do; perfect negotiation settles who offers). */
  #ensureLink(peerId: string, offer?: SignalingMessage & { type: 'offer' }): void {
    if (this.#state === 'done' || peerId === this.localId || this.#links.has(peerId)) return;
    if (this.#links.size >= this.#limits.maxPeers) {
      this.#logger.warn('peer limit reached, refusing a peer', { peer: peerId, maxPeers: this.#limits.maxPeers });
      return this.#drop('peer-limit');
    }
    const incoming = new IncomingFiles(this.#limits, {
      file: (f) => this.#emit(this.#onFile, peerId, f),
      progress: (p) => this.#emit(this.#onFileProgress, peerId, p),
      dropped: (r) => this.#drop(r),
    });
    const link: PeerLink = new PeerLink({
      localId: this.localId,
      remoteId: peerId,
      RTCPeerConnection: this.#o.RTCPeerConnection ?? globalThis.RTCPeerConnection,
      rtcConfiguration: { ...this.#o.rtcConfiguration, iceServers: this.#iceServers },
      limits: this.#limits,
      timing: this.#timing,
      logger: this.#logger,
      localMedia: this.#localMedia,
      events: {
        signal: (m) => this.#signaling?.send(m).catch((e: unknown) =>
          this.#logger.warn('signaling send failed', { peer: peerId, type: m.type, error: describe(e) })),
        open: () => {
          if (this.#announced.has(peerId)) this.#recoveries++;
          this.#announced.add(peerId);
          this.#logger.info('peer connected', { peer: peerId, generation: link.info().generation });
          this.#emit(this.#onPeerConnected, peerId);
        },
        lost: () => {
          incoming.clear();
          this.#emit(this.#onPeerDisconnected, peerId, 'failed');
          // A peer that is missing from presence and whose connection now fails is gone, not recovering.
          if (this.#leaveTimers.has(peerId)) this.#closeLink(peerId, 'left', false);
        },
        gaveUp: () => this.#closeLink(peerId, 'closed', false),
        bye: () => this.#closeLink(peerId, 'left', false),
        control: (frame) => this.#onControl(peerId, incoming, frame),
        chunk: (c) => incoming.onChunk(c),
        collision: () => {
          this.#collisions++;
        },
        dropped: (r) => this.#drop(r),
        track: (stream) => this.#emit(this.#onStream, peerId, stream),
      },
    });
    this.#links.set(peerId, link);
    this.#incoming.set(peerId, incoming);
    link.start(offer);
  }

  #onControl(peerId: string, incoming: IncomingFiles, frame: ControlFrame): void {
    switch (frame.type) {
      case 'message': return this.#emit(this.#onMessage, peerId, frame.content);
      case 'raft': return this.#emit(this.#onRaftMessage, peerId, frame.message);
      case 'client-message': return this.#emit(this.#onClientMessage, peerId, frame.message);
      case 'file-meta': return incoming.onMeta(frame);
      case 'file-abort': return incoming.onAbort(frame.id);
      // ping, pong and bye are the link's own business and never reach here.
      default: return;
    }
  }

  /** Closes and forgets the link; fires the final disconnect event if the peer was ever announced. */
  #closeLink(peerId: string, reason: 'left' | 'closed', bye: boolean): void {
    const link = this.#links.get(peerId);
    if (!link) return;
    clearTimeout(this.#leaveTimers.get(peerId));
    this.#leaveTimers.delete(peerId);
    this.#links.delete(peerId);
    this.#incoming.get(peerId)?.clear();
    this.#incoming.delete(peerId);
    if (bye) link.closeWithBye(BYE_LINGER_MS);
    else link.close();
    this.#logger.info('peer link closed', { peer: peerId, reason });
    if (this.#announced.delete(peerId)) this.#emit(this.#onPeerDisconnected, peerId, reason);
  }

  async #enableMedia(kind: MediaKind, enable: boolean): Promise<void> {
    if (!enable) {
      const track = this.#tracks[kind];
      if (!track) return;
      this.#tracks[kind] = null;
      track.stop();
      this.#localStream?.removeTrack(track);
      for (const link of this.#links.values()) link.setLocalTrack(kind, null);
      return;
    }
    if (this.#tracks[kind]) return;
    const devices = this.#o.mediaDevices ?? (globalThis as { navigator?: { mediaDevices?: MediaDevices } }).navigator?.mediaDevices;
    if (!devices) throw new MediaUnavailableError('no media devices here (pass options.mediaDevices)');
    let captured: MediaStream;
    try {
      captured = await devices.getUserMedia({ [kind]: true });
    } catch (cause) {
      throw new MediaUnavailableError(`getUserMedia(${kind}) failed: ${describe(cause)}`, { cause });
    }
    const track = captured.getTracks().find((t) => t.kind === kind);
    for (const t of captured.getTracks()) if (t !== track) t.stop();
    if (!track) throw new MediaUnavailableError(`getUserMedia(${kind}) gave no ${kind} track`);
    // Disconnected, or enabled by a concurrent call, while the user was being asked.
    if (this.#state === 'done' || this.#tracks[kind]) return void track.stop();
    this.#tracks[kind] = track;
    // One local stream for audio and video, so the other side gets them together.
    if (this.#localStream) this.#localStream.addTrack(track);
    else this.#localStream = captured;
    for (const link of this.#links.values()) link.setLocalTrack(kind, track);
  }
}
