/**
 * One remote peer: its `RTCPeerConnection`, the two data channels, perfect negotiation, and recovery.
 *
 * - **Who offers**: the *impolite* side (the smaller id) offers as soon as it knows the peer; the *polite* side
 *   waits `politeWaitMs` for that offer and offers itself only if none came (the impolite side may not know
 *   it yet). Answering before creating its own channels keeps node-datachannel, which makes an offer of its
 *   own the moment a channel is created, out of rollbacks in the common case.
 * - **Perfect negotiation** (W3C pattern) for everything else: both sides may offer at any time (the polite
 *   side's fallback, ICE restarts, any renegotiation a browser asks for); on a collision the polite side rolls
 *   its offer back by accepting the other's (the implicit rollback of `setRemoteDescription(offer)`), the
 *   impolite side ignores the offer it received.
 * - **Negotiated channels**: `control` (id 0) and `bulk` (id 1) are created by both sides with `negotiated: true`,
 *   so they exist no matter who offered, and a glare can never produce duplicate channels.
 * - **Generations**: every `RTCPeerConnection` of this link has a generation number, carried by every signaling
 *   payload. An offer of a higher generation replaces the current connection (the remote side started over);
 *   payloads of an older one are stale and dropped. Both sides move to `generation + 1` when they start over,
 *   so two peers recovering at once meet in the same generation.
 * - **Recovery**: `failed`, a `disconnected` state that outlasts its grace, an unexpected `closed`, a channel
 *   that closes, a connection that does not open in time, or a control channel silent past the ping timeout
 *   all lead to recovery: first an ICE restart in place (browsers, while the channels are still open), then a
 *   new connection (a new generation; also the only way with node-datachannel, which has no ICE restart),
 *   with exponential backoff and jitter, up to `maxRestarts` attempts in a row.
 * @module
 */
import { describe } from './errors.js';
import { decodeChunk, decodeControlFrame, encodeControlFrame, type ChunkFrame, type ControlFrame, type FrameRejectReason } from './frames.js';
import type { Logger } from './logger.js';
import type { AnswerMessage, IceCandidateInit, IceCandidateMessage, OfferMessage, SignalingMessage } from './signaling.js';

/** Constructor of `RTCPeerConnection`: the browser's, or one from a Node.js package. */
export type RTCPeerConnectionConstructor = new (configuration: RTCConfiguration) => RTCPeerConnection;

/** Where a link is. `connected` means the control channel is open. */
export type LinkState = 'connecting' | 'connected' | 'recovering' | 'closed';

/** Why a link started recovering. */
export type RecoveryCause = 'failed' | 'disconnected' | 'closed' | 'channel-closed' | 'connect-timeout' | 'ping-timeout' | 'replaced';

/** Size limits applied to one link. */
export interface LinkLimits {
  /** Largest control frame, sent or received (UTF-8 bytes). */
  maxControlFrameBytes: number;
  /** Largest file chunk payload on the bulk channel. */
  maxChunkBytes: number;
  /** Candidates held while waiting for a remote description; older ones are dropped beyond this. */
  maxPendingCandidates: number;
}

/** Timing of one link, in milliseconds. */
export interface LinkTiming {
  /** A connection whose control channel is not open after this long is started over. */
  connectTimeoutMs: number;
  /** How long the polite side waits for the impolite side's offer before it offers itself. */
  politeWaitMs: number;
  /** How long `disconnected` may last before recovery starts (it often heals by itself). */
  disconnectedGraceMs: number;
  /** Interval of RTT pings on the control channel. */
  pingIntervalMs: number;
  /** Silence on the control channel (no frame at all) after which the connection is considered dead. */
  pingTimeoutMs: number;
  /** First backoff step between recovery attempts; doubles up to {@link maxRestartDelayMs}. */
  restartBaseDelayMs: number;
  /** Largest backoff between recovery attempts. */
  maxRestartDelayMs: number;
  /** Recovery attempts in a row before the link gives up. */
  maxRestarts: number;
}

/** What a link reports to its manager. */
export interface LinkEvents {
  /** A signaling payload to publish (addressed to the remote peer). */
  signal(message: SignalingMessage): void;
  /** The control channel opened (first time, or after recovery). */
  open(): void;
  /** The link was connected and is not anymore; it is recovering. In-flight transfers are gone. */
  lost(cause: RecoveryCause): void;
  /** Recovery is exhausted; the link closed itself. */
  gaveUp(): void;
  /** The remote peer said goodbye on the control channel. */
  bye(): void;
  /** A valid control frame other than pings (which the link answers itself). */
  control(frame: ControlFrame): void;
  /** A valid bulk chunk. */
  chunk(frame: ChunkFrame): void;
  /** Two offers crossed (glare); perfect negotiation settles it. */
  collision(): void;
  /** A received frame or signaling payload was refused. */
  dropped(reason: FrameRejectReason | 'stale-signal' | 'candidate-overflow'): void;
  /** A remote media stream arrived. */
  track(stream: MediaStream): void;
}

/** The kinds of media every connection carries a transceiver for. */
export const MEDIA_KINDS = ['audio', 'video'] as const;
/** One of {@link MEDIA_KINDS}. */
export type MediaKind = (typeof MEDIA_KINDS)[number];

/** What a connection sends: the local stream (its id labels our tracks remotely) and the current track per kind. */
export interface LocalMedia {
  stream(): MediaStream;
  track(kind: MediaKind): MediaStreamTrack | null;
}

/** Everything a {@link PeerLink} needs. */
export interface PeerLinkOptions {
  localId: string;
  remoteId: string;
  RTCPeerConnection: RTCPeerConnectionConstructor;
  rtcConfiguration: RTCConfiguration;
  limits: LinkLimits;
  timing: LinkTiming;
  logger: Logger;
  /** Local media to send on every connection. */
  localMedia: LocalMedia;
  events: LinkEvents;
}

/** A snapshot of a link for {@link PeerLink.info}. */
export interface PeerLinkInfo {
  state: LinkState;
  polite: boolean;
  generation: number;
  /** Last measured control-channel round trip, or `null` before the first pong. */
  rttMs: number | null;
  /** Recovery attempts since the last successful open. */
  restarts: number;
  connectionState: RTCPeerConnectionState;
  iceConnectionState: RTCIceConnectionState;
}

/** Stream ids of the negotiated channels; both sides must agree on them. */
const CONTROL_ID = 0;
const BULK_ID = 1;

const now = (): number => performance.now();

/** `sdp` without its candidate lines (they travel as trickled candidates instead; see `#onLocalCandidate`). */
export function withoutCandidates(sdp: string): string {
  return sdp.split('\r\n').filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates').join('\r\n');
}

/** Connection to one remote peer; see the module comment. */
export class PeerLink {
  readonly remoteId: string;
  /** The greater id is polite: it yields on offer collisions. */
  readonly polite: boolean;
  readonly #o: PeerLinkOptions;
  #state: LinkState = 'connecting';
  #generation = 0;
  /** The current connection; `null` while the polite side waits for an offer. */
  #pc: RTCPeerConnection | null = null;
  /** The current channels; `null` until created (an answering side creates them after the remote offer). */
  #control: RTCDataChannel | null = null;
  #bulk: RTCDataChannel | null = null;
  #makingOffer = false;
  #ignoreOffer = false;
  /** Whether the current `have-local-offer` state comes from an offer we published (node-datachannel makes unsent ones). */
  #offerSent = false;
  #remoteDescriptionSet = false;
  #pendingCandidates: { generation: number; candidate: IceCandidateInit }[] = [];
  /** The stream that gathers remote tracks arriving without one (see `ontrack`). */
  #remoteStream: MediaStream | null = null;
  /** Our own candidates, held while our offer awaits its answer (see {@link #onLocalCandidate}). */
  #heldCandidates: IceCandidateInit[] = [];
  #restarts = 0;
  #rttMs: number | null = null;
  #pingSeq = 0;
  #lastHeard = 0;
  #connectTimer: ReturnType<typeof setTimeout> | null = null;
  #graceTimer: ReturnType<typeof setTimeout> | null = null;
  #recoveryTimer: ReturnType<typeof setTimeout> | null = null;
  #pingTimer: ReturnType<typeof setInterval> | null = null;
  #politeTimer: ReturnType<typeof setTimeout> | null = null;
  /** Resolvers of {@link waitForBulkDrain}, rejected when the connection they wait on goes away. */
  readonly #drainWaiters = new Set<{ check(): void; fail(error: Error): void }>();

  constructor(options: PeerLinkOptions) {
    this.#o = options;
    this.remoteId = options.remoteId;
    this.polite = options.localId > options.remoteId;
  }

  /** Starts the first connection: answers `offer` if the remote peer offered first, else offers or waits (see the module comment). */
  start(offer?: OfferMessage): void {
    if (offer) this.#answerNew(offer.generation ?? 0, offer);
    else this.#begin(0);
  }

  /** Where the link is; `connected` means the control channel is open. */
  get state(): LinkState {
    return this.#state;
  }

  /** The current connection (`null` while waiting for an offer); for diagnostics and tests (closing it simulates a crash). */
  get peerConnection(): RTCPeerConnection | null {
    return this.#pc;
  }

  /** A snapshot of the link, for the manager's `peers()`. */
  info(): PeerLinkInfo {
    return {
      state: this.#state,
      polite: this.polite,
      generation: this.#generation,
      rttMs: this.#rttMs,
      restarts: this.#restarts,
      connectionState: this.#pc?.connectionState ?? 'new',
      iceConnectionState: this.#pc?.iceConnectionState ?? 'new',
    };
  }

  /** Handles an `offer`, `answer` or `ice-candidate` from the remote peer. */
  handleSignal(message: OfferMessage | AnswerMessage | IceCandidateMessage): void {
    if (this.#state === 'closed') return;
    const generation = message.generation ?? 0;
    if (generation < this.#generation) return this.#o.events.dropped('stale-signal');
    if (message.type === 'ice-candidate') {
      if (!message.candidate) return; // end of candidates: nothing to do for the trickle ICE we use
      // Candidates may precede their offer (the two travel separately) or the remote description.
      if (generation === this.#generation && this.#pc && this.#remoteDescriptionSet) this.#addCandidate(this.#pc, message.candidate);
      else this.#queueCandidate(generation, message.candidate);
      return;
    }
    if (message.type === 'offer' && (generation > this.#generation || !this.#pc)) {
      // The remote side started over (or offered while we were waiting): follow it, even if this side had not
      // noticed a problem.
      if (this.#state === 'connected') this.#markLost('replaced');
      if (generation > this.#generation) this.#restarts = 0;
      return this.#answerNew(generation, message);
    }
    if (generation > this.#generation || !this.#pc) return this.#o.events.dropped('stale-signal');
    void this.#onDescription(this.#pc, message);
  }

  /**
   * Sends a control frame.
   * @returns false when the control channel is not open (the frame is dropped).
   * @throws {FrameTooLargeError} / {FrameEncodeError} from the frame encoder.
   */
  sendControl(frame: ControlFrame): boolean {
    const text = encodeControlFrame(frame, this.#o.limits.maxControlFrameBytes);
    return this.#sendOn(this.#control, text);
  }

  /** Sends one encoded chunk on the bulk channel; false when it is not open. */
  sendBulk(bytes: Uint8Array<ArrayBuffer>): boolean {
    return this.#sendOn(this.#bulk, bytes);
  }

  /** The current bulk channel (`null` before it exists), so a transfer can tell whether the connection changed under it. */
  get bulkChannel(): RTCDataChannel | null {
    return this.#bulk;
  }

  /**
   * Resolves once the bulk channel's buffer is at most `lowWater` bytes; rejects if `channel` is no longer the
   * current open bulk channel. Uses `bufferedamountlow` and polls as well, because some implementations never
   * fire the event.
   */
  waitForBulkDrain(channel: RTCDataChannel, lowWater: number, pollMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setInterval> | null = null;
      const waiter = {
        check: () => {
          if (channel !== this.#bulk || channel.readyState !== 'open') return waiter.fail(new Error('the bulk channel closed'));
          if (channel.bufferedAmount > lowWater) return;
          cleanup();
          resolve();
        },
        fail: (error: Error) => {
          cleanup();
          reject(error);
        },
      };
      const cleanup = () => {
        this.#drainWaiters.delete(waiter);
        channel.removeEventListener('bufferedamountlow', waiter.check);
        if (timer !== null) clearInterval(timer);
      };
      this.#drainWaiters.add(waiter);
      channel.bufferedAmountLowThreshold = lowWater;
      channel.addEventListener('bufferedamountlow', waiter.check);
      timer = setInterval(waiter.check, pollMs);
      waiter.check();
    });
  }

  /**
   * Sends `track` (or nothing, for `null`) on the current connection's transceiver of `kind`. Replacing a
   * track needs no renegotiation, so toggling a camera never races another peer's offer.
   */
  setLocalTrack(kind: MediaKind, track: MediaStreamTrack | null): void {
    const pc = this.#pc;
    if (!pc) return; // applied when the connection is created
    for (const t of pc.getTransceivers()) {
      if (t.receiver.track.kind !== kind || t.sender.track === track) continue;
      t.sender.replaceTrack(track).catch((e: unknown) =>
        this.#o.logger.warn('replaceTrack failed', { peer: this.remoteId, kind, error: describe(e) }));
    }
  }

  /**
   * Says goodbye on the control channel (so the peer can tell a departure from a crash), then closes. The
   * connection itself is closed `lingerMs` later: closing at once can discard the frame before SCTP sends it.
   */
  closeWithBye(lingerMs: number): void {
    if (this.#state === 'closed') return;
    if (this.#state !== 'connected') return this.close();
    this.sendControl({ type: 'bye' });
    this.#state = 'closed';
    this.#clearTimers();
    this.#pendingCandidates = [];
    setTimeout(() => this.#closeConnection(), lingerMs);
  }

  /** Closes the link for good; no event follows. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#clearTimers();
    if (this.#recoveryTimer !== null) clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = null;
    this.#closeConnection();
    this.#pendingCandidates = [];
  }

  #sendOn(channel: RTCDataChannel | null, data: string | Uint8Array<ArrayBuffer>): boolean {
    if (!channel || channel.readyState !== 'open') return false;
    try {
      if (typeof data === 'string') channel.send(data);
      else channel.send(data);
      return true;
    } catch (e) {
      // A channel can close between the readyState check and send; the close handler starts recovery.
      this.#o.logger.debug('send failed', { peer: this.remoteId, label: channel.label, error: describe(e) });
      return false;
    }
  }

  /**
   * Enters `generation` without an offer in hand: the impolite side offers at once, the polite side waits for
   * the other's offer and offers only if none came within `politeWaitMs`.
   */
  #begin(generation: number): void {
    this.#closeConnection();
    this.#generation = generation;
    this.#armConnectTimer();
    if (!this.polite || this.#o.timing.politeWaitMs <= 0) return this.#offerNew();
    this.#politeTimer = setTimeout(() => {
      this.#politeTimer = null;
      if (!this.#pc && this.#state !== 'closed') this.#offerNew();
    }, this.#o.timing.politeWaitMs);
  }

  /** Creates a connection with its channels and offers (the channels make the offer carry SCTP). */
  #offerNew(): void {
    const pc = this.#createConnection();
    this.#createChannels(pc);
    this.#addMedia(pc);
    // node-datachannel never fires negotiationneeded, so offer explicitly; browsers dedupe through #makingOffer
    // and the signaling state (their negotiationneeded waits for `stable`).
    void this.#negotiate(pc);
  }

  /**
   * Replaces the current connection by a fresh one of `generation` that answers `offer`. The channels are
   * created after the remote offer is applied: node-datachannel would otherwise have made an offer of its own
   * and have to roll it back.
   */
  #answerNew(generation: number, offer: OfferMessage): void {
    this.#closeConnection();
    this.#generation = generation;
    this.#armConnectTimer();
    const pc = this.#createConnection();
    void this.#onDescription(pc, offer, () => {
      this.#createChannels(pc);
      this.#acceptMedia(pc);
    });
  }

  /**
   * The offering side gives every connection an audio and a video transceiver from the start, sending
   * whatever is enabled (or nothing), so that enabling media later is a `replaceTrack` and never a
   * renegotiation: two peers toggling their cameras at once would otherwise be glare, after which Chromium was
   * seen leaving the polite side's remote tracks muted. Implementations without media (node-datachannel)
   * throw, and carry data only.
   */
  #addMedia(pc: RTCPeerConnection): void {
    const media = this.#o.localMedia;
    try {
      for (const kind of MEDIA_KINDS) pc.addTransceiver(media.track(kind) ?? kind, { direction: 'sendrecv', streams: [media.stream()] });
    } catch (e) {
      this.#o.logger.debug('no media on this connection', { peer: this.remoteId, error: describe(e) });
    }
  }

  /** The answering side turns the offer's media transceivers (created `recvonly`) into `sendrecv` ones of its own. */
  #acceptMedia(pc: RTCPeerConnection): void {
    const media = this.#o.localMedia;
    for (const t of pc.getTransceivers()) {
      const kind = t.receiver.track.kind;
      if ((kind !== 'audio' && kind !== 'video') || t.direction !== 'recvonly') continue;
      t.direction = 'sendrecv';
      t.sender.setStreams?.(media.stream());
      const track = media.track(kind);
      if (track) t.sender.replaceTrack(track).catch((e: unknown) =>
        this.#o.logger.warn('replaceTrack failed', { peer: this.remoteId, kind, error: describe(e) }));
    }
  }

  #createConnection(): RTCPeerConnection {
    this.#heldCandidates = [];
    this.#remoteStream = null;
    this.#makingOffer = false;
    this.#ignoreOffer = false;
    this.#offerSent = false;
    this.#remoteDescriptionSet = false;
    this.#pendingCandidates = this.#pendingCandidates.filter((c) => c.generation >= this.#generation);
    if (this.#recoveryTimer !== null) clearTimeout(this.#recoveryTimer); // the remote side's new attempt wins
    this.#recoveryTimer = null;

    const pc = new this.#o.RTCPeerConnection(this.#o.rtcConfiguration);
    this.#pc = pc;
    pc.onicecandidate = (e) => {
      if (pc !== this.#pc || !e.candidate) return;
      const c = e.candidate;
      this.#onLocalCandidate(pc, { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: c.sdpMLineIndex ?? null });
    };
    pc.onnegotiationneeded = () => {
      if (pc === this.#pc) void this.#negotiate(pc);
    };
    pc.onsignalingstatechange = () => {
      if (pc !== this.#pc || pc.signalingState !== 'stable') return;
      this.#offerSent = false;
      const held = this.#heldCandidates;
      this.#heldCandidates = [];
      for (const candidate of held) this.#signal({ type: 'ice-candidate', candidate });
    };
    pc.onconnectionstatechange = () => this.#onConnectionState(pc);
    pc.oniceconnectionstatechange = () => this.#onConnectionState(pc);
    pc.ontrack = (e) => {
      if (pc !== this.#pc) return;
      // A sender without a stream (one set to sendrecv by an answerer) arrives without one: gather its tracks
      // in one stream per connection, so the application always gets the peer's audio and video together.
      let stream = e.streams[0];
      if (!stream) {
        this.#remoteStream ??= new MediaStream();
        stream = this.#remoteStream;
        if (!stream.getTracks().includes(e.track)) stream.addTrack(e.track);
      }
      this.#o.events.track(stream);
    };
    return pc;
  }

  #createChannels(pc: RTCPeerConnection): void {
    if (pc !== this.#pc || this.#control) return;
    const control = pc.createDataChannel('control', { negotiated: true, id: CONTROL_ID, ordered: true });
    const bulk = pc.createDataChannel('bulk', { negotiated: true, id: BULK_ID, ordered: true });
    this.#control = control;
    this.#bulk = bulk;
    control.binaryType = bulk.binaryType = 'arraybuffer';
    control.onopen = () => {
      if (pc === this.#pc) this.#onControlOpen();
    };
    control.onclose = () => {
      if (pc === this.#pc) this.#recover('channel-closed');
    };
    control.onmessage = (e: MessageEvent) => {
      if (pc === this.#pc) this.#onControlMessage(e.data);
    };
    bulk.onmessage = (e: MessageEvent) => {
      if (pc !== this.#pc) return;
      const r = decodeChunk(e.data, this.#o.limits.maxChunkBytes);
      if (r.ok) this.#o.events.chunk(r.frame);
      else this.#o.events.dropped(r.reason);
    };
  }

  #closeConnection(): void {
    if (this.#politeTimer !== null) clearTimeout(this.#politeTimer);
    this.#politeTimer = null;
    const pc = this.#pc;
    if (!pc) return;
    for (const w of [...this.#drainWaiters]) w.fail(new Error('the connection was replaced'));
    // Detach first: the handlers check `pc === this.#pc`, but `close()` fires events synchronously in some
    // implementations, before the fields change.
    for (const ch of [this.#control, this.#bulk]) {
      if (ch) ch.onopen = ch.onclose = ch.onmessage = null;
    }
    pc.onicecandidate = pc.onnegotiationneeded = pc.onsignalingstatechange = null;
    pc.onconnectionstatechange = pc.oniceconnectionstatechange = pc.ontrack = null;
    this.#pc = this.#control = this.#bulk = null;
    try {
      pc.close();
    } catch (e) {
      this.#o.logger.debug('close failed', { peer: this.remoteId, error: describe(e) });
    }
  }

  #signal(partial: { type: 'offer' | 'answer'; sdp: string } | { type: 'ice-candidate'; candidate: IceCandidateInit }): void {
    this.#o.events.signal({ ...partial, from: this.#o.localId, to: this.remoteId, generation: this.#generation } as SignalingMessage);
  }

  async #negotiate(pc: RTCPeerConnection): Promise<void> {
    if (this.#makingOffer) return;
    try {
      this.#makingOffer = true;
      // Implicit offer (browsers). node-datachannel ignores this call: it has created the offer itself already.
      await pc.setLocalDescription();
      const d = pc.localDescription;
      if (pc !== this.#pc || pc.signalingState !== 'have-local-offer' || d?.type !== 'offer' || !d.sdp) return;
      this.#offerSent = true;
      this.#signal({ type: 'offer', sdp: withoutCandidates(d.sdp) });
    } catch (e) {
      this.#o.logger.warn('creating an offer failed', { peer: this.remoteId, error: describe(e) });
    } finally {
      this.#makingOffer = false;
    }
  }

  /** Applies a remote description (perfect negotiation); `beforeAnswer` runs between the offer and our answer. */
  async #onDescription(pc: RTCPeerConnection, message: OfferMessage | AnswerMessage, beforeAnswer?: () => void): Promise<void> {
    // A collision needs an offer we actually published: node-datachannel puts itself in have-local-offer
    // with offers nobody saw, and ignoring the remote offer then would leave both sides waiting.
    const collision = message.type === 'offer' && (this.#makingOffer || (pc.signalingState !== 'stable' && this.#offerSent));
    this.#ignoreOffer = !this.polite && collision;
    if (collision) this.#o.events.collision();
    if (this.#ignoreOffer) {
      this.#o.logger.debug('glare: ignoring the polite side\'s offer', { peer: this.remoteId });
      return;
    }
    if (message.type === 'answer' && pc.signalingState !== 'have-local-offer') {
      return this.#o.events.dropped('stale-signal'); // an answer to an offer we rolled back
    }
    try {
      if (collision) this.#o.logger.debug('glare: rolling back our offer', { peer: this.remoteId });
      await pc.setRemoteDescription({ type: message.type, sdp: message.sdp });
      if (pc !== this.#pc) return;
      this.#remoteDescriptionSet = true;
      if (message.type === 'offer') {
        beforeAnswer?.();
        await pc.setLocalDescription(); // node-datachannel has answered already; the call is a no-op there
        const d = pc.localDescription;
        if (pc !== this.#pc) return;
        if (d?.type === 'answer' && d.sdp) this.#signal({ type: 'answer', sdp: d.sdp });
      }
      this.#flushCandidates(pc);
    } catch (e) {
      // The connection is left as it is: if it cannot recover, the connect timeout or a state change will.
      this.#o.logger.warn('applying a remote description failed', { peer: this.remoteId, type: message.type, error: describe(e) });
    }
  }

  /**
   * Sends a local candidate, or holds it while our offer awaits its answer. The answering side must not reach
   * us before we know its DTLS fingerprint: node-datachannel then fails the handshake (or, at best, waits for
   * a retransmission a second later), because loopback beats the signaling round trip. The offer goes out
   * without candidates for the same reason, and the held ones follow once the answer is applied.
   */
  #onLocalCandidate(pc: RTCPeerConnection, candidate: IceCandidateInit): void {
    if (pc.signalingState === 'have-local-offer') this.#heldCandidates.push(candidate);
    else this.#signal({ type: 'ice-candidate', candidate });
  }

  #queueCandidate(generation: number, candidate: IceCandidateInit): void {
    this.#pendingCandidates.push({ generation, candidate });
    if (this.#pendingCandidates.length > this.#o.limits.maxPendingCandidates) {
      this.#pendingCandidates.shift();
      this.#o.events.dropped('candidate-overflow');
    }
  }

  #flushCandidates(pc: RTCPeerConnection): void {
    const mine = this.#pendingCandidates.filter((c) => c.generation === this.#generation);
    this.#pendingCandidates = this.#pendingCandidates.filter((c) => c.generation > this.#generation);
    for (const { candidate } of mine) this.#addCandidate(pc, candidate);
  }

  #addCandidate(pc: RTCPeerConnection, candidate: IceCandidateInit): void {
    pc.addIceCandidate(candidate).catch((e: unknown) => {
      // Candidates of an offer we ignored during glare are expected to fail.
      if (!this.#ignoreOffer) this.#o.logger.debug('addIceCandidate failed', { peer: this.remoteId, error: describe(e) });
    });
  }

  #onConnectionState(pc: RTCPeerConnection): void {
    if (pc !== this.#pc || this.#state === 'closed') return;
    const conn = pc.connectionState;
    const ice = pc.iceConnectionState;
    if (conn === 'failed' || ice === 'failed') return this.#recover('failed');
    if (conn === 'closed') return this.#recover('closed'); // we detach before closing, so the remote did it
    if (conn === 'disconnected' || ice === 'disconnected') {
      if (this.#graceTimer === null) {
        this.#graceTimer = setTimeout(() => {
          this.#graceTimer = null;
          if (pc === this.#pc && (pc.connectionState === 'disconnected' || pc.iceConnectionState === 'disconnected')) {
            this.#recover('disconnected');
          }
        }, this.#o.timing.disconnectedGraceMs);
      }
      return;
    }
    if (this.#graceTimer !== null) {
      clearTimeout(this.#graceTimer);
      this.#graceTimer = null;
    }
    // After an ICE restart in place the channels never closed, so no `open` event will announce the recovery.
    if (conn === 'connected' && this.#state === 'recovering' && this.#control?.readyState === 'open') this.#onControlOpen();
  }

  #onControlOpen(): void {
    this.#clearTimers();
    this.#state = 'connected';
    this.#restarts = 0;
    this.#lastHeard = now();
    this.#pingTimer = setInterval(() => this.#ping(), this.#o.timing.pingIntervalMs);
    this.#ping();
    this.#o.events.open();
  }

  #ping(): void {
    if (now() - this.#lastHeard > this.#o.timing.pingTimeoutMs) return this.#recover('ping-timeout');
    this.sendControl({ type: 'ping', seq: this.#pingSeq++ >>> 0, ts: now() });
  }

  #onControlMessage(data: unknown): void {
    this.#lastHeard = now();
    const r = decodeControlFrame(data, this.#o.limits.maxControlFrameBytes, this.#o.limits.maxChunkBytes);
    if (!r.ok) return this.#o.events.dropped(r.reason);
    const frame = r.frame;
    if (frame.type === 'ping') {
      this.sendControl({ type: 'pong', seq: frame.seq, ts: frame.ts });
    } else if (frame.type === 'bye') {
      this.#o.events.bye();
    } else if (frame.type === 'pong') {
      const rtt = now() - frame.ts;
      // ts is our own clock echoed back; anything outside [0, now] was not our ping.
      if (rtt >= 0 && frame.ts > 0) this.#rttMs = rtt;
      else this.#o.events.dropped('malformed');
    } else {
      this.#o.events.control(frame);
    }
  }

  #markLost(cause: RecoveryCause): void {
    this.#state = 'recovering';
    this.#clearTimers();
    this.#o.events.lost(cause);
  }

  /** Starts recovery unless it is already scheduled; see the module comment. */
  #recover(cause: RecoveryCause): void {
    if (this.#state === 'closed' || this.#recoveryTimer !== null) return;
    this.#o.logger.info('connection lost, recovering', { peer: this.remoteId, cause, generation: this.#generation, attempt: this.#restarts + 1 });
    if (this.#state === 'connected') {
      this.#markLost(cause);
      if ((this.#state as LinkState) === 'closed') return; // the manager closed the link on hearing of the loss
    } else {
      this.#state = 'recovering';
      this.#clearTimers();
    }
    for (const w of [...this.#drainWaiters]) w.fail(new Error(`the connection ${cause}`));
    this.#restarts++;
    const t = this.#o.timing;
    if (this.#restarts > t.maxRestarts) {
      this.#o.logger.warn('recovery exhausted, giving up', { peer: this.remoteId });
      this.close();
      this.#o.events.gaveUp();
      return;
    }
    // Jitter keeps two peers that noticed the failure together from starting over in lockstep forever.
    const step = Math.min(t.maxRestartDelayMs, t.restartBaseDelayMs * 2 ** (this.#restarts - 1));
    const delay = step * (0.5 + Math.random() / 2);
    this.#recoveryTimer = setTimeout(() => {
      this.#recoveryTimer = null;
      if (this.#state !== 'closed') this.#restart(cause);
    }, delay);
  }

  #restart(cause: RecoveryCause): void {
    const pc = this.#pc;
    const channelsAlive = this.#control?.readyState === 'open' && this.#bulk?.readyState === 'open';
    // An ICE restart keeps the connection and its channels, so it is worth one try where it exists (browsers)
    // and where there is something to keep; node-datachannel's restartIce throws "Not implemented".
    if (pc && this.#restarts === 1 && channelsAlive && (cause === 'failed' || cause === 'disconnected' || cause === 'ping-timeout')) {
      try {
        pc.restartIce();
        this.#armConnectTimer();
        this.#o.logger.info('ICE restart', { peer: this.remoteId, generation: this.#generation });
        return;
      } catch (e) {
        this.#o.logger.debug('ICE restart unavailable, starting over', { peer: this.remoteId, error: describe(e) });
      }
    }
    this.#begin(this.#generation + 1);
  }

  /** Bounds the current attempt (a generation, or an ICE restart in it); the polite side's wait is part of it. */
  #armConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    const generation = this.#generation;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = null;
      if (generation === this.#generation && this.#state !== 'connected') this.#recover('connect-timeout');
    }, this.#o.timing.connectTimeoutMs);
  }

  #clearTimers(): void {
    for (const t of [this.#connectTimer, this.#graceTimer]) if (t !== null) clearTimeout(t);
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    this.#connectTimer = this.#graceTimer = this.#pingTimer = null;
  }
}
