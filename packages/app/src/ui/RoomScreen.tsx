/**
 * The room screen: the message list and composer, the peers panel, the Raft panel and a compact event log,
 * all drawn from the room client's {@link RoomView}. Stable `id`s and `data-*` attributes name what the
 * end-to-end tests read (message ids and states, peer roles, the leader).
 * @module
 */
import { memo, useEffect, useId, useLayoutEffect, useRef, useState, useSyncExternalStore, type FormEvent, type KeyboardEvent } from 'react';
import { MAX_TEXT_LENGTH, SendError, type MessageView, type PeerView, type RaftView, type RoomClient, type RoomEvent, type RoomView } from '../room/index.js';
import { AttachButton, FilesPanel, useFileDrop } from './FilesPanel.js';
import { clockSeconds, clockTime, fullTime, initial, rtt, tint } from './format.js';
import { MediaPanel } from './MediaPanel.js';

function useRoomView(client: RoomClient): RoomView {
  return useSyncExternalStore(client.subscribe, () => client.view);
}

export interface RoomScreenProps {
  client: RoomClient;
  onLeave(): Promise<void>;
}

export function RoomScreen({ client, onLeave }: RoomScreenProps) {
  const view = useRoomView(client);
  const leaderName = view.peers.find((p) => p.id === view.raft.leader)?.name ?? null;
  const drop = useFileDrop(client.files);
  return (
    <div className="room">
      <RoomHeader view={view} onLeave={onLeave} />
      <StatusBanner view={view} leaderName={leaderName} />
      <div className="room-body">
        <section className={`chat card${drop.dragging ? ' is-dropping' : ''}`} aria-labelledby="chat-title" {...drop.handlers}>
          <h2 id="chat-title" className="visually-hidden">Messages</h2>
          {drop.overlay}
          <MessageList view={view} client={client} />
          <Composer client={client} disabled={view.phase === 'leaving' || view.phase === 'left'} />
        </section>
        <aside className="side" aria-label="Room details">
          <MediaPanel client={client} peers={view.peers} />
          <FilesPanel files={client.files} />
          <PeersPanel peers={view.peers} />
          <RaftPanel raft={view.raft} leaderName={leaderName} room={view.room} peerId={view.peerId} />
          <EventLog events={view.events} />
        </aside>
      </div>
    </div>
  );
}

function RoomHeader({ view, onLeave }: { view: RoomView; onLeave(): Promise<void> }) {
  const [copied, setCopied] = useState(false);
  const [leaving, setLeaving] = useState(false);
  const link = `${location.origin}/?room=${encodeURIComponent(view.room)}`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link);
      setCopied(true);
      setTimeout(() => setCopied(false), 2_000);
    } catch {
      // No clipboard permission (or an insecure origin): the link stays visible to copy by hand.
    }
  };
  return (
    <header className="room-head">
      <div className="room-title">
        <img src="/favicon.svg" alt="" width="32" height="32" />
        <div>
          <h1><span className="visually-hidden">Room </span>{view.room}</h1>
          <p className="share">
            <span className="visually-hidden">Shareable link: </span>
            <a href={link} className="share-link" id="share-link">{link}</a>
            <button type="button" className="btn btn-small" onClick={() => void copy()}>{copied ? 'Copied' : 'Copy link'}</button>
          </p>
        </div>
      </div>
      <nav className="room-actions" aria-label="Room">
        <a className="btn btn-small btn-ghost" href="/visualizer" target="_blank" rel="noopener">Raft visualizer</a>
        <button
          type="button" className="btn btn-small btn-danger" id="leave" disabled={leaving || view.phase === 'left'}
          onClick={() => { setLeaving(true); void onLeave(); }}
        >
          {leaving ? 'Leaving…' : 'Leave'}
        </button>
      </nav>
    </header>
  );
}

/** One line saying what the room is waiting for, if anything. */
function StatusBanner({ view, leaderName }: { view: RoomView; leaderName: string | null }) {
  let kind: 'info' | 'warn' | 'ok' = 'info';
  let text: string;
  if (view.phase === 'leaving') text = 'Leaving the room: handing over to the others first…';
  else if (view.phase === 'left') { kind = 'warn'; text = 'You left this room.'; }
  else if (view.signaling === 'disconnected') {
    kind = 'warn';
    text = 'Reconnecting to the signaling server… Peers already connected keep chatting.';
  } else if (view.phase === 'joining') text = view.peers.length > 1 ? 'Joining the room’s Raft cluster…' : 'Connecting to the room…';
  else if (view.raft.leader === null) { kind = 'warn'; text = 'Electing a leader… Messages wait until one is elected.'; }
  else {
    kind = 'ok';
    text = view.raft.leader === view.peerId ? 'Connected. You lead the room.' : `Connected. ${leaderName ?? 'Someone'} leads the room.`;
  }
  return (
    <p className={`banner banner-${kind}`} role="status" id="room-status" data-phase={view.phase}>
      {kind !== 'ok' ? <span className="spinner" aria-hidden="true" /> : <span className="dot dot-ok" aria-hidden="true" />}
      {text}
      {!view.persistent ? <span className="banner-note"> History is kept in memory only in this browser.</span> : null}
    </p>
  );
}

function MessageList({ view, client }: { view: RoomView; client: RoomClient }) {
  const listRef = useRef<HTMLOListElement>(null);
  const stick = useRef(true);
  const count = view.messages.length;
  // Follow new messages only while the reader is at the bottom; reading older ones is not interrupted.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [count]);
  const onScroll = () => {
    const el = listRef.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  };
  const archive = <ArchiveBar view={view} client={client} />;
  if (count === 0) {
    return (
      <>
      {archive}
      <div className="messages-empty" id="messages-empty">
        <p className="empty-title">{view.phase === 'joining' ? 'Loading the room’s history…' : 'No messages yet'}</p>
        <p>{view.phase === 'joining' ? 'It arrives from the leader once you are in the cluster.' : 'Say hello: everyone in the room sees it in the same place.'}</p>
      </div>
      </>
    );
  }
  return (
    <>
    {archive}
    <ol className="messages" id="messages" ref={listRef} onScroll={onScroll} aria-label="Messages" aria-live="polite" aria-relevant="additions" tabIndex={0}>
      {view.messages.map((m, i) => (
        <Message key={m.id} m={m} own={m.sender === view.peerId} cont={continues(view.messages[i - 1], m)} client={client} />
      ))}
    </ol>
    </>
  );
}

/** Older messages the leader moved to the archive: how many there are, and a button to fetch them. */
function ArchiveBar({ view, client }: { view: RoomView; client: RoomClient }) {
  const { archive } = view;
  if (!archive.enabled || (archive.earlier === 0 && !archive.loading && archive.error === null)) return null;
  return (
    <div className="archive-bar" id="archive-bar" data-earlier={archive.earlier}>
      {archive.error !== null ? <span className="archive-error" role="alert">Could not load older messages: {archive.error}</span>
        : <span>{archive.earlier === 1 ? '1 older message' : `${archive.earlier} older messages`} in the room’s archive</span>}
      <button type="button" className="link-button" id="load-earlier" disabled={archive.loading} onClick={() => void client.loadEarlier()}>
        {archive.loading ? 'Loading…' : archive.error !== null ? 'Try again' : 'Show'}
      </button>
    </div>
  );
}

/** Messages closer than this from the same sender are drawn as one group (one avatar, one name line). */
const GROUP_MS = 5 * 60_000;

function continues(prev: MessageView | undefined, m: MessageView): boolean {
  return prev !== undefined && prev.sender === m.sender && prev.name === m.name && m.sentAt - prev.sentAt < GROUP_MS && m.sentAt >= prev.sentAt;
}

/** Memoized: a committed message keeps its object from view to view, so a long chat redraws only what changed. */
const Message = memo(function Message({ m, own, cont, client }: { m: MessageView; own: boolean; cont: boolean; client: RoomClient }) {
  return (
    <li className={`message${own ? ' own' : ''}${cont ? ' cont' : ''} is-${m.status}`} data-id={m.id} data-status={m.status} data-sender={m.sender} data-archived={m.archived ? 'true' : undefined}>
      <span className={`avatar ${tint(m.sender)}`} aria-hidden="true">{cont ? null : initial(m.name)}</span>
      <div className="message-body">
        {/* A continuation keeps its sender and time for screen readers; the eye reads them from the group's first line. */}
        <p className={`message-meta${cont ? ' visually-hidden' : ''}`}>
          <span className="message-name">{own ? `${m.name} (you)` : m.name}</span>
          <time dateTime={new Date(m.sentAt).toISOString()} title={fullTime(m.sentAt)}>{clockTime(m.sentAt)}</time>
        </p>
        <p className="message-line">
          <span className="message-text">{m.text}</span>
          {m.status === 'pending' ? <span className="badge badge-pending">sending…</span> : null}
          {m.status === 'failed' ? <span className="badge badge-failed">not sent</span> : null}
        </p>
        {m.status === 'failed' ? (
          <p className="message-error">{m.error} <button type="button" className="link-button" onClick={() => client.retry(m.id)}>Retry</button></p>
        ) : null}
      </div>
    </li>
  );
});

function Composer({ client, disabled }: { client: RoomClient; disabled: boolean }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const id = useId();
  const send = (e?: FormEvent) => {
    e?.preventDefault();
    try {
      client.send(text);
      setText('');
      setError(null);
    } catch (err) {
      setError(err instanceof SendError ? err.message : String(err));
    }
  };
  // Enter sends; Shift+Enter starts a new line.
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) send(e);
  };
  return (
    <form className="composer" onSubmit={send}>
      <AttachButton files={client.files} disabled={disabled} />
      <label htmlFor={id} className="visually-hidden">Message</label>
      <textarea
        id={id} className="composer-input" name="message" rows={1} value={text} maxLength={MAX_TEXT_LENGTH}
        onChange={(e) => setText(e.target.value)} onKeyDown={onKeyDown} disabled={disabled}
        placeholder="Write a message" aria-describedby={error ? `${id}-error` : undefined} aria-invalid={error !== null}
        data-testid="composer"
      />
      <button type="submit" className="btn btn-primary" disabled={disabled || text.trim() === ''}>Send</button>
      {error ? <p id={`${id}-error`} className="composer-error" role="alert">{error}</p> : null}
    </form>
  );
}

const CONNECTION_LABEL: Record<PeerView['connection'], string> = {
  self: 'this tab', connected: 'connected', connecting: 'connecting', recovering: 'reconnecting', closed: 'closed', absent: 'not connected',
};

function PeersPanel({ peers }: { peers: PeerView[] }) {
  return (
    <section className="card panel" aria-labelledby="peers-title">
      <h2 id="peers-title">People <span className="count">{peers.length}</span></h2>
      <ul className="peers" id="peers">
        {peers.map((p) => (
          <li key={p.id} className="peer" data-peer-id={p.id} data-role={p.role} data-connection={p.connection}>
            <span className={`avatar avatar-small ${tint(p.id)}`} aria-hidden="true">{initial(p.name)}</span>
            <span className="peer-name" title={p.id}>{p.name}{p.self ? <span className="you"> (you)</span> : null}</span>
            <span className={`role role-${p.role}`}>{p.role}</span>
            <span className="peer-link">
              <span className={`dot dot-${p.connection}`} aria-hidden="true" />
              {CONNECTION_LABEL[p.connection]}
              {p.self ? null : <span className="rtt" title="Round trip over the data channel"> · {rtt(p.rttMs)}</span>}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function RaftPanel({ raft, leaderName, room, peerId }: { raft: RaftView; leaderName: string | null; room: string; peerId: string }) {
  // The visualizer fed by this tab (packages/app/src/room/live-feed.ts): it must open in this browser, as a tab.
  const live = `/visualizer?room=${encodeURIComponent(room)}&peer=${encodeURIComponent(peerId)}`;
  return (
    <section className="card panel" aria-labelledby="raft-title">
      <h2 id="raft-title">Raft</h2>
      <dl className="stats" id="raft" data-leader={raft.leader ?? ''} data-term={raft.term} data-commit={raft.commit}>
        <div><dt>Your role</dt><dd id="raft-role">{raft.role}</dd></div>
        <div><dt>Leader</dt><dd id="raft-leader">{raft.leader === null ? 'none yet' : leaderName ?? raft.leader.slice(0, 6)}</dd></div>
        <div><dt>Term</dt><dd id="raft-term">{raft.term}</dd></div>
        <div><dt>Commit index</dt><dd id="raft-commit">{raft.commit}</dd></div>
        <div><dt>Log length</dt><dd id="raft-log">{raft.logLength}</dd></div>
        <div><dt>Snapshot index</dt><dd id="raft-snapshot">{raft.snapshotIndex}</dd></div>
        <div><dt>Voters</dt><dd>{raft.voters.length}</dd></div>
        <div><dt>Learners</dt><dd>{raft.learners.length}</dd></div>
      </dl>
      <p className="raft-live">
        <a className="btn btn-small btn-ghost" id="raft-live" href={live} target="_blank" rel="noopener">Open live view</a>
        <span className="muted">this room in the Raft visualizer</span>
      </p>
    </section>
  );
}

function EventLog({ events }: { events: RoomEvent[] }) {
  const [open, setOpen] = useState(true);
  // Phones show the log folded: it is the least needed of the panels.
  useEffect(() => { if (matchMedia('(max-width: 720px)').matches) setOpen(false); }, []);
  return (
    <section className="card panel events-panel" aria-labelledby="events-title">
      <details open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
        <summary><h2 id="events-title">Events <span className="count">{events.length}</span></h2></summary>
        {events.length === 0 ? <p className="muted">Nothing yet.</p> : (
          <ol className="events" id="events" reversed>
            {[...events].reverse().map((e) => (
              <li key={e.seq} className={`event event-${e.kind}`}>
                <time dateTime={new Date(e.at).toISOString()}>{clockSeconds(e.at)}</time>
                <span>{e.text}</span>
              </li>
            ))}
          </ol>
        )}
      </details>
    </section>
  );
}
