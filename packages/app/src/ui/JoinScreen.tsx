/**
 * The join screen: a room name (or a new room), a display name, an optional password. Errors from the
 * server (wrong password, full room, unknown room, signaling down) show here, announced to screen readers.
 * @module
 */
import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import { MAX_NAME_LENGTH } from '../room/index.js';

export interface JoinRequest {
  room: string;
  name: string;
  password: string;
}

export interface JoinScreenProps {
  initialRoom: string;
  initialName: string;
  /** The room came from a shared link: the name field gets the focus, and the room is not created. */
  fromLink: boolean;
  busy: 'join' | 'create' | 'rejoin' | null;
  error: string | null;
  notice: string | null;
  onJoin(request: JoinRequest): void;
  onCreate(request: JoinRequest): void;
}

export function JoinScreen({ initialRoom, initialName, fromLink, busy, error, notice, onJoin, onCreate }: JoinScreenProps) {
  const [room, setRoom] = useState(initialRoom);
  const [name, setName] = useState(initialName);
  const [password, setPassword] = useState('');
  const ids = { room: useId(), name: useId(), password: useId(), roomHelp: useId(), passwordHelp: useId() };
  const errorRef = useRef<HTMLDivElement>(null);
  const nameRef = useRef<HTMLInputElement>(null);
  const roomRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    (fromLink && initialName === '' ? nameRef : roomRef).current?.focus();
  }, [fromLink, initialName]);
  // Move focus to a new error, so keyboard and screen reader users meet it first.
  useEffect(() => { if (error) errorRef.current?.focus(); }, [error]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    onJoin({ room: room.trim(), name: name.trim(), password });
  };
  const create = () => {
    // The native constraints of the name field apply to a new room as well.
    if (!nameRef.current?.reportValidity()) return;
    onCreate({ room: '', name: name.trim(), password });
  };

  return (
    <main className="join">
      <div className="join-card">
        <header className="join-head">
          <img src="/favicon.svg" alt="" width="40" height="40" />
          <div>
            <h1>RaftRTC rooms</h1>
            <p className="tagline">Chat peer to peer over WebRTC. Raft keeps every message in the same order on every screen.</p>
          </div>
        </header>

        {busy === 'rejoin' ? (
          <p className="status-line" role="status"><span className="spinner" aria-hidden="true" /> Rejoining <strong>{room}</strong>…</p>
        ) : null}
        {notice ? <p className="notice" role="status">{notice}</p> : null}
        {error ? (
          <div id="join-error" className="alert" role="alert" tabIndex={-1} ref={errorRef}>{error}</div>
        ) : null}

        <form className="join-form" onSubmit={submit} aria-busy={busy !== null}>
          <div className="field">
            <label htmlFor={ids.room}>Room</label>
            <input
              id={ids.room} ref={roomRef} name="room" value={room} onChange={(e) => setRoom(e.target.value)}
              required pattern="[A-Za-z0-9_\-]{1,64}" maxLength={64} autoComplete="off" spellCheck={false}
              aria-describedby={ids.roomHelp} placeholder="e.g. team-standup"
            />
            <p id={ids.roomHelp} className="help">Letters, digits, “-” and “_”. A new name creates the room.</p>
          </div>
          <div className="field">
            <label htmlFor={ids.name}>Your name</label>
            <input
              id={ids.name} ref={nameRef} name="name" value={name} onChange={(e) => setName(e.target.value)}
              required maxLength={MAX_NAME_LENGTH} autoComplete="nickname" placeholder="How others see you"
            />
          </div>
          <div className="field">
            <label htmlFor={ids.password}>Password <span className="optional">(optional)</span></label>
            <input
              id={ids.password} name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)}
              maxLength={256} autoComplete="off" aria-describedby={ids.passwordHelp}
            />
            <p id={ids.passwordHelp} className="help">Needed for a protected room; sets the password of a room you create.</p>
          </div>
          <div className="join-actions">
            <button type="submit" className="btn btn-primary" disabled={busy !== null}>
              {busy === 'join' ? 'Joining…' : 'Join room'}
            </button>
            <button type="button" className="btn" onClick={create} disabled={busy !== null}>
              {busy === 'create' ? 'Creating…' : 'Create a new room'}
            </button>
          </div>
        </form>

        <p className="join-foot">
          Curious how the peers agree? <a href="/visualizer">Watch Raft in the visualizer</a>.
        </p>
      </div>
    </main>
  );
}
