/**
 * Camera and microphone in a room, on top of `WebRTCManager`'s media: every connection carries an audio and
 * a video transceiver from the start, so turning a device on or off swaps a track in place and never
 * renegotiates (`docs/rtc.md`, Media). Turning one off stops its track, which turns the camera light off.
 *
 * A remote track that stops receiving frames is muted by the browser only after a while, so each peer also
 * says what it sends: a `media { audio, video }` JSON `message` to every peer when it changes and to each
 * peer when its channel opens. The remote tiles follow those announcements.
 * @module
 */
import { MediaUnavailableError, type MeshHub, type WebRTCManager } from '@raftrtc/rtc';
import { RoomError } from './errors.js';

/** Why a device could not be turned on (`denied`, `not_found`, `busy`, `unavailable`); the message is for people. */
export class MediaError extends RoomError {}

export type DeviceState = 'off' | 'starting' | 'on';

/** What one other peer sends, as it announced it, and its stream (null until its connection delivers one). */
export interface RemoteMediaView {
  peerId: string;
  stream: MediaStream | null;
  audio: boolean;
  video: boolean;
}

export interface MediaView {
  camera: DeviceState;
  microphone: DeviceState;
  /** The local camera alone (for a muted, mirrored preview), or null while it is off. */
  preview: MediaStream | null;
  /** The last device failure, for people; cleared when a device turns on. */
  error: string | null;
  /** Other peers with a connection, by id. */
  remote: Readonly<Record<string, RemoteMediaView>>;
}

/** What {@link RoomMedia} needs from the room. */
export interface RoomMediaOptions {
  manager: Pick<WebRTCManager, 'enableVideo' | 'enableAudio' | 'getLocalStream' | 'setOnStream' | 'sendMessage' | 'connectedPeers'>;
  hub: Pick<MeshHub, 'on'>;
}

const DEVICE_TEXT = { video: 'camera', audio: 'microphone' } as const;

/** Turns a `getUserMedia` failure into a {@link MediaError} a person can act on. */
export function mediaError(kind: 'audio' | 'video', err: unknown): MediaError {
  const device = DEVICE_TEXT[kind];
  const cause = err instanceof MediaUnavailableError ? err.cause : err;
  const name = (cause as { name?: unknown } | null)?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return new MediaError('denied', `The browser refused access to your ${device}. Allow it for this site (the icon in the address bar), then try again.`, { cause: err });
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return new MediaError('not_found', `No ${device} was found. Plug one in, then try again.`, { cause: err });
  }
  if (name === 'NotReadableError' || name === 'AbortError') {
    return new MediaError('busy', `Your ${device} could not start: another application may be using it.`, { cause: err });
  }
  return new MediaError('unavailable', `This page cannot use a ${device} here (it needs https or localhost, and a browser that allows it).`, { cause: err });
}

const isMediaState = (m: unknown): m is { kind: 'media'; audio: boolean; video: boolean } =>
  typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'media'
  && typeof (m as { audio?: unknown }).audio === 'boolean' && typeof (m as { video?: unknown }).video === 'boolean';

/** This peer's camera and microphone, and what the others send; an immutable {@link MediaView} per change. */
export class RoomMedia {
  readonly #o: RoomMediaOptions;
  #camera: DeviceState = 'off';
  #microphone: DeviceState = 'off';
  #preview: MediaStream | null = null;
  #error: string | null = null;
  readonly #remote = new Map<string, RemoteMediaView>();
  readonly #listeners = new Set<(view: MediaView) => void>();
  readonly #offs: (() => void)[] = [];
  #closed = false;
  #queued = false;
  #view: MediaView = { camera: 'off', microphone: 'off', preview: null, error: null, remote: {} };

  constructor(options: RoomMediaOptions) {
    this.#o = options;
    options.manager.setOnStream((peer, stream) => {
      this.#remoteOf(peer).stream = stream;
      this.#changed();
    });
    this.#offs.push(
      options.hub.on('connected', (peer) => {
        this.#remoteOf(peer);
        this.#announce(peer);
        this.#changed();
      }),
      options.hub.on('disconnected', (peer, reason) => {
        // A failed connection is being recovered: its tile stays, and the new connection brings a new stream.
        if (reason !== 'failed') this.#remote.delete(peer);
        this.#changed();
      }),
    );
  }

  get view(): MediaView {
    return this.#view;
  }

  /** Calls `listener` with every new view; returns the unsubscribe function (fits `useSyncExternalStore`). */
  subscribe = (listener: (view: MediaView) => void): (() => void) => {
    this.#listeners.add(listener);
    return () => { this.#listeners.delete(listener); };
  };

  /**
   * Turns the camera on (asking for permission the first time) or off (its track stops).
   * @throws {MediaError} the browser refused, there is no camera, or it is busy; the view shows the same message.
   */
  setCamera(on: boolean): Promise<void> {
    return this.#set('video', on);
  }

  /**
   * Turns the microphone on or off, like {@link setCamera}.
   * @throws {MediaError} as {@link setCamera}.
   */
  setMicrophone(on: boolean): Promise<void> {
    return this.#set('audio', on);
  }

  /** Forgets the last device failure (the person dismissed it). */
  dismissError(): void {
    this.#error = null;
    this.#changed();
  }

  /**
   * Handles a peer's `message` payload (already parsed JSON) if it is a `media` announcement.
   * @returns whether it was of this kind (a malformed one counts, and is ignored).
   */
  handlePeerMessage(from: string, payload: unknown): boolean {
    if ((payload as { kind?: unknown } | null)?.kind !== 'media') return false;
    if (!isMediaState(payload) || this.#closed) return true;
    const r = this.#remoteOf(from);
    r.audio = payload.audio;
    r.video = payload.video;
    this.#changed();
    return true;
  }

  /**
   * Forgets every remote stream and marks the devices off. The manager's `disconnect()` stops the local
   * tracks; call this after it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#offs) off();
    this.#o.manager.setOnStream(null);
    for (const t of this.#o.manager.getLocalStream()?.getTracks() ?? []) t.stop();
    this.#camera = 'off';
    this.#microphone = 'off';
    this.#preview = null;
    this.#remote.clear();
    this.#changed();
  }

  async #set(kind: 'audio' | 'video', on: boolean): Promise<void> {
    if (this.#closed) return;
    const setState = (s: DeviceState): void => {
      if (kind === 'video') this.#camera = s;
      else this.#microphone = s;
    };
    const { manager } = this.#o;
    if (on) {
      setState('starting');
      this.#changed();
      try {
        await (kind === 'video' ? manager.enableVideo(true) : manager.enableAudio(true));
      } catch (err) {
        setState('off');
        const e = mediaError(kind, err);
        this.#error = e.message;
        this.#changed();
        throw e;
      }
      if (this.#closed) return;
      this.#error = null;
      setState('on');
    } else {
      await (kind === 'video' ? manager.enableVideo(false) : manager.enableAudio(false));
      setState('off');
    }
    const video = manager.getLocalStream()?.getVideoTracks()[0] ?? null;
    // A stream of its own for the preview: a new object per camera track, so a <video> picks it up.
    if (video?.id !== this.#preview?.getVideoTracks()[0]?.id) this.#preview = video ? new MediaStream([video]) : null;
    for (const peer of manager.connectedPeers()) this.#announce(peer);
    this.#changed();
  }

  #announce(peer: string): void {
    this.#o.manager.sendMessage(peer, JSON.stringify({ kind: 'media', audio: this.#microphone === 'on', video: this.#camera === 'on' }));
  }

  #remoteOf(peer: string): RemoteMediaView {
    let r = this.#remote.get(peer);
    if (!r) {
      r = { peerId: peer, stream: null, audio: false, video: false };
      this.#remote.set(peer, r);
    }
    return r;
  }

  #changed(): void {
    if (this.#queued) return;
    this.#queued = true;
    queueMicrotask(() => {
      this.#queued = false;
      const remote: Record<string, RemoteMediaView> = {};
      for (const [id, r] of this.#remote) remote[id] = { ...r };
      this.#view = { camera: this.#camera, microphone: this.#microphone, preview: this.#preview, error: this.#error, remote };
      for (const l of this.#listeners) l(this.#view);
    });
  }
}
