/**
 * The app's two screens: {@link JoinScreen} until a room is joined, then {@link RoomScreen}. The joined room
 * goes into the URL (`/?room=…`), so the address bar is the shareable link and a reload rejoins the room as
 * the same peer (the session kept by the room client).
 * @module
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { browserStore, createRoom, joinRoom, loadSession, RoomError, RoomNotFoundError, type RoomClient } from '../room/index.js';
import { JoinScreen, type JoinRequest } from './JoinScreen.js';
import { RoomScreen } from './RoomScreen.js';

const NAME_KEY = 'raftrtc.name';

/** The room named by the address bar, if any. */
const roomInUrl = (): string => new URLSearchParams(location.search).get('room') ?? '';

function setUrlRoom(room: string | null): void {
  history.replaceState(null, '', room ? `/?room=${encodeURIComponent(room)}` : '/');
}

function rememberName(name: string): void {
  try {
    browserStore()?.setItem(NAME_KEY, name);
  } catch {
    // Storage refused: the name is only a convenience for the next visit.
  }
}

/** A failure of any kind as a message for people: typed room errors carry one already. */
function describe(err: unknown): string {
  if (err instanceof RoomError) return err.message;
  return `Something went wrong: ${err instanceof Error ? err.message : String(err)}`;
}

export function App() {
  const [client, setClient] = useState<RoomClient | null>(null);
  const [busy, setBusy] = useState<'join' | 'create' | 'rejoin' | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const linkRoom = useRef(roomInUrl());
  const autoJoined = useRef(false);

  const enter = useCallback(async (request: JoinRequest, how: 'join' | 'create' | 'rejoin') => {
    setBusy(how);
    setError(null);
    setNotice(null);
    try {
      const room = how === 'create' ? await createRoom(location.origin, request.password || undefined) : request.room;
      const c = await joinRoom({
        room, name: request.name, ...(request.password ? { password: request.password } : {}),
        // A room typed in by hand is created when missing; one from a link or a reload must exist already.
        create: how === 'join' && room !== linkRoom.current,
      });
      rememberName(request.name);
      setUrlRoom(c.room);
      linkRoom.current = c.room;
      setClient(c);
    } catch (err) {
      if (err instanceof RoomNotFoundError && request.room === linkRoom.current) {
        // The shared room expired: the next press of Join makes it again, under the same name.
        linkRoom.current = '';
        setError(`${err.message} Press “Join room” to create it again.`);
      } else {
        setError(describe(err));
      }
    } finally {
      setBusy(null);
    }
  }, []);

  // A reload of a joined room comes back as the same peer, without asking again.
  useEffect(() => {
    if (autoJoined.current) return;
    autoJoined.current = true;
    const room = linkRoom.current;
    const session = room ? loadSession(browserStore(), room) : null;
    if (session) void enter({ room, name: session.name, password: '' }, 'rejoin');
  }, [enter]);

  // Closing or reloading the tab: announce the departure and say goodbye on every channel.
  useEffect(() => {
    if (!client) return;
    const onHide = (): void => client.closeForUnload();
    addEventListener('pagehide', onHide);
    return () => removeEventListener('pagehide', onHide);
  }, [client]);

  const leave = useCallback(async () => {
    if (!client) return;
    await client.leave();
    setClient(null);
    setUrlRoom(null);
    linkRoom.current = '';
    setNotice(`You left ${client.room}.`);
  }, [client]);

  if (client) return <RoomScreen client={client} onLeave={leave} />;
  let savedName = '';
  try {
    savedName = browserStore()?.getItem(NAME_KEY) ?? '';
  } catch {
    // Storage refused: start with an empty name.
  }
  return (
    <JoinScreen
      initialRoom={linkRoom.current}
      initialName={savedName}
      fromLink={linkRoom.current !== ''}
      busy={busy}
      error={error}
      notice={notice}
      onJoin={(r) => void enter(r, 'join')}
      onCreate={(r) => void enter(r, 'create')}
    />
  );
}
