/**
 * The call panel: camera and microphone toggles, this peer's muted preview, and a tile per other peer with
 * its video (or its initial while its camera is off) and its sound. Drawn from the room client's
 * `media` view; `data-*` attributes name what the end-to-end tests read.
 * @module
 */
import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import type { DeviceState, MediaView, PeerView, RemoteMediaView, RoomClient } from '../room/index.js';
import { initial, tint } from './format.js';

function useMediaView(client: RoomClient): MediaView {
  return useSyncExternalStore(client.media.subscribe, () => client.media.view);
}

/** Peers shown as tiles: linked now or coming back (not `closed`/`absent`). */
const showsTile = (p: PeerView): boolean => !p.self && p.connection !== 'closed' && p.connection !== 'absent';

export function MediaPanel({ client, peers }: { client: RoomClient; peers: PeerView[] }) {
  const media = useMediaView(client);
  const [soundBlocked, setSoundBlocked] = useState(false);
  /** Bumped by "Turn on sound": every remote <audio> tries `play()` again, now inside a click. */
  const [playAttempt, setPlayAttempt] = useState(0);
  const onSoundBlocked = useCallback(() => setSoundBlocked(true), []);
  const self = peers.find((p) => p.self);
  const others = peers.filter(showsTile);
  const toggle = (set: (on: boolean) => Promise<void>, state: DeviceState) => {
    // The refusal is in the view (media.error) and announced there; nothing else to do with it here.
    set(state === 'off').catch(() => {});
  };
  return (
    <section className="card panel media-panel" aria-labelledby="media-title">
      <h2 id="media-title">Call</h2>
      <div className="media-toggles" role="group" aria-label="Your camera and microphone">
        <DeviceToggle
          id="toggle-camera" label="Camera" state={media.camera} icon={<CameraIcon />}
          onToggle={() => toggle((on) => client.media.setCamera(on), media.camera)}
        />
        <DeviceToggle
          id="toggle-microphone" label="Microphone" state={media.microphone} icon={<MicIcon />}
          onToggle={() => toggle((on) => client.media.setMicrophone(on), media.microphone)}
        />
      </div>
      {media.error ? (
        <p className="media-error" role="alert" id="media-error">
          {media.error}{' '}
          <button type="button" className="link-button" onClick={() => client.media.dismissError()}>Dismiss</button>
        </p>
      ) : null}
      {soundBlocked ? (
        <p className="media-note">
          The browser paused the others’ sound until you interact with the page.{' '}
          <button type="button" className="btn btn-small" onClick={() => { setSoundBlocked(false); setPlayAttempt((n) => n + 1); }}>Turn on sound</button>
        </p>
      ) : null}
      <ul className="tiles" id="tiles" aria-label="People in the call">
        <li className="tile tile-self" data-peer-id={self?.id ?? ''} data-video={media.preview ? 'on' : 'off'} data-audio={media.microphone === 'on' ? 'on' : 'off'}>
          {media.preview
            ? <StreamVideo stream={media.preview} className="tile-video mirrored" label="Your camera preview" />
            : <TileAvatar id={self?.id ?? ''} name={self?.name ?? '?'} />}
          <TileLabel name={self ? `${self.name} (you)` : 'You'} audio={media.microphone === 'on'} />
        </li>
        {others.map((p) => (
          <RemoteTile key={p.id} peer={p} media={media.remote[p.id]} playAttempt={playAttempt} onSoundBlocked={onSoundBlocked} />
        ))}
      </ul>
      {others.length === 0 ? <p className="muted media-empty">Nobody else is here yet: their tiles appear when they join.</p> : null}
    </section>
  );
}

function DeviceToggle({ id, label, state, icon, onToggle }: { id: string; label: string; state: DeviceState; icon: ReactNode; onToggle(): void }) {
  const on = state === 'on';
  const starting = state === 'starting';
  // aria-disabled rather than disabled while the browser asks: a disabled button would drop the keyboard focus.
  return (
    <button
      type="button" id={id} className={`btn btn-small device-toggle${on ? ' is-on' : ''}`} aria-pressed={on}
      aria-disabled={starting} aria-busy={starting} onClick={() => { if (!starting) onToggle(); }} data-state={state}
    >
      {icon}
      {label}
      <span className="device-state" aria-hidden="true" />
    </button>
  );
}

function RemoteTile({ peer, media, playAttempt, onSoundBlocked }: {
  peer: PeerView; media: RemoteMediaView | undefined; playAttempt: number; onSoundBlocked(): void;
}) {
  const video = media?.video === true && media.stream !== null;
  const audio = media?.audio === true && media.stream !== null;
  return (
    <li className="tile" data-peer-id={peer.id} data-video={video ? 'on' : 'off'} data-audio={audio ? 'on' : 'off'}>
      {video ? <StreamVideo stream={media!.stream!} className="tile-video" label={`${peer.name}’s camera`} /> : <TileAvatar id={peer.id} name={peer.name} />}
      {/* Always mounted while there is a stream: the sound must not stop when the picture does. */}
      {media?.stream ? <StreamAudio stream={media.stream} playAttempt={playAttempt} onBlocked={onSoundBlocked} /> : null}
      <TileLabel name={peer.name} audio={audio} />
    </li>
  );
}

function TileAvatar({ id, name }: { id: string; name: string }) {
  return (
    <div className="tile-off">
      <span className={`avatar avatar-large ${tint(id)}`} aria-hidden="true">{initial(name)}</span>
      <span className="visually-hidden">{name}’s camera is off</span>
    </div>
  );
}

function TileLabel({ name, audio }: { name: string; audio: boolean }) {
  return (
    <p className="tile-label">
      <span className="tile-name">{name}</span>
      {audio ? null : <span className="tile-muted" title="Microphone off"><MicOffIcon /><span className="visually-hidden">, microphone off</span></span>}
    </p>
  );
}

/** A muted, inline, autoplaying `<video>` for a stream (its sound, if any, plays through {@link StreamAudio}). */
function StreamVideo({ stream, className, label }: { stream: MediaStream; className: string; label: string }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.srcObject = stream;
    // Muted video may always autoplay; a rejection here only means the element was replaced meanwhile.
    el.play().catch(() => {});
    return () => { el.srcObject = null; };
  }, [stream]);
  return <video ref={ref} className={className} autoPlay playsInline muted aria-label={label} />;
}

/** Plays a remote stream's sound; reports when the browser's autoplay policy blocks it. */
function StreamAudio({ stream, playAttempt, onBlocked }: { stream: MediaStream; playAttempt: number; onBlocked(): void }) {
  const ref = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (el.srcObject !== stream) el.srcObject = stream;
    el.play().catch((err: unknown) => {
      if ((err as { name?: unknown }).name === 'NotAllowedError') onBlocked();
    });
  }, [stream, playAttempt, onBlocked]);
  useEffect(() => () => { if (ref.current) ref.current.srcObject = null; }, []);
  return <audio ref={ref} className="tile-audio" autoPlay />;
}

const CameraIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 7h11a2 2 0 0 1 2 2v1.5l4-2.5v8l-4-2.5V15a2 2 0 0 1-2 2H3a2 2 0 0 1-2-2V9a2 2 0 0 1 2-2z" /></svg>
);
const MicIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zm-7 9h2a5 5 0 0 0 10 0h2a7 7 0 0 1-6 6.9V22h-2v-3.1A7 7 0 0 1 5 12z" /></svg>
);
const MicOffIcon = () => (
  <svg className="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zm-7 9h2a5 5 0 0 0 10 0h2a7 7 0 0 1-6 6.9V22h-2v-3.1A7 7 0 0 1 5 12z" /><path d="M3 3l18 18" className="icon-strike" /></svg>
);
