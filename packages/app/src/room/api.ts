/**
 * The server's room HTTP API (`docs/signaling.md`), and the per-room session kept in `localStorage` so that a
 * reloaded page rejoins as the same peer: same peer id, hence the same IndexedDB database and Raft state.
 * @module
 */
import {
  InvalidInputError, RateLimitedError, RoomError, RoomFullError, RoomNotFoundError, SignalingUnavailableError, WrongPasswordError,
} from './errors.js';

/** What `POST /api/rooms/:room/token` and `/refresh` answer. */
export interface TokenAnswer {
  token: string;
  subscriptionToken: string;
  /** The signaling WebSocket URL. */
  url: string;
  channel: string;
  peerId: string;
  iceServers: RTCIceServer[];
  /** Where the room's leader flushes old messages; null (or absent, from an older server) for none. */
  archiveUrl?: string | null;
}

/** What a browser remembers of a room it joined, per room name. */
export interface RoomSession {
  room: string;
  name: string;
  peerId: string;
  token: string;
  subscriptionToken: string;
}

/** Room names the server accepts (they become the channel `room:<name>`). */
export const ROOM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The error a refused request stands for, from the server's `{ error: { code, message } }`. */
function refusal(status: number, body: unknown): RoomError {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' ? e.code : `http_${status}`;
  const detail = typeof e?.message === 'string' ? e.message : `the server answered ${status}`;
  switch (code) {
    case 'password_required': return new WrongPasswordError(code, 'This room is protected: enter its password.');
    case 'wrong_password': return new WrongPasswordError(code, 'Wrong password for this room.');
    case 'room_full': return new RoomFullError(code, 'This room is full. Try again when someone leaves.');
    case 'room_not_found': return new RoomNotFoundError(code, 'No room of that name. Rooms expire 10 minutes after everyone left.');
    case 'room_exists': return new InvalidInputError(code, 'A room of that name exists already.');
    case 'invalid_room_name': return new InvalidInputError(code, 'A room name is 1 to 64 letters, digits, "-" or "_".');
    case 'invalid_name': return new InvalidInputError(code, 'A display name is 1 to 64 characters, without control characters.');
    case 'invalid_password': return new InvalidInputError(code, 'A password is at most 256 characters.');
    case 'too_many_requests': return new RateLimitedError(code, 'Too many attempts: wait a second and try again.');
    default:
      if (status >= 500) return new SignalingUnavailableError(code, `The server failed (${detail}).`);
      return new RoomError(code, detail);
  }
}

function checkAnswer(value: unknown): TokenAnswer {
  const t = value as Partial<TokenAnswer> | null;
  if (
    typeof t !== 'object' || t === null || typeof t.token !== 'string' || typeof t.subscriptionToken !== 'string'
    || typeof t.url !== 'string' || typeof t.peerId !== 'string' || !Array.isArray(t.iceServers)
  ) {
    throw new SignalingUnavailableError('bad_answer', 'The server answered the join request with something unexpected.');
  }
  return t as TokenAnswer;
}

/**
 * Fetches `url` and returns its JSON body (null when it has none). An unreachable server becomes
 * `unreachable(err)`, a non-2xx answer `refused(status, body)`: each caller's own typed error.
 */
export async function fetchJson(url: string | URL, init: RequestInit, unreachable: (err: unknown) => Error, refused: (status: number, body: unknown) => Error): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw unreachable(err);
  }
  let json: unknown = null;
  try {
    json = await res.json();
  } catch {
    // A proxy's HTML error page, or an empty body: the status says enough.
  }
  if (!res.ok) throw refused(res.status, json);
  return json;
}

/** POSTs JSON to the room API; a refusal becomes its typed error, an unreachable server a SignalingUnavailableError. */
function post(origin: string, path: string, body: unknown): Promise<unknown> {
  return fetchJson(
    new URL(path, origin),
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    (err) => new SignalingUnavailableError('unreachable', 'Cannot reach the server. Check your connection and try again.', { cause: err }),
    refusal,
  );
}

const roomPath = (room: string, what: string): string => `/api/rooms/${encodeURIComponent(room)}/${what}`;

/** Tokens for a new peer of `room`; `create` makes an unknown room (protected by `password`, if any). */
export async function requestToken(origin: string, room: string, name: string, password: string | undefined, create: boolean): Promise<TokenAnswer> {
  return checkAnswer(await post(origin, roomPath(room, 'token'), { name, create, ...(password ? { password } : {}) }));
}

/** New tokens for the same peer: its current subscription token proves it was admitted. */
export async function refreshToken(origin: string, room: string, session: Pick<RoomSession, 'token' | 'subscriptionToken'>): Promise<TokenAnswer> {
  return checkAnswer(await post(origin, roomPath(room, 'refresh'), { token: session.token, subscriptionToken: session.subscriptionToken }));
}

/** Creates a room with a name the server picks; returns that name. */
export async function createRoom(origin: string, password?: string): Promise<string> {
  const answer = (await post(origin, '/api/rooms', password ? { password } : {})) as { room?: unknown };
  if (typeof answer?.room !== 'string') throw new SignalingUnavailableError('bad_answer', 'The server answered the create request with something unexpected.');
  return answer.room;
}

/** The `localStorage` subset used here, so tests and private windows without storage still work. */
export type KeyValueStore = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

const sessionKey = (room: string): string => `raftrtc.session.${room}`;

/** Where sessions are kept: `localStorage` when the browser allows it, otherwise nowhere. */
export function browserStore(): KeyValueStore | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    // Storage disabled by policy: a reload then joins as a new peer.
    return null;
  }
}

export function loadSession(store: KeyValueStore | null, room: string): RoomSession | null {
  const raw = store?.getItem(sessionKey(room));
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Partial<RoomSession>;
    if (s.room === room && typeof s.name === 'string' && typeof s.peerId === 'string' && typeof s.token === 'string' && typeof s.subscriptionToken === 'string') {
      return s as RoomSession;
    }
  } catch {
    // Written by another version of the app: start over.
  }
  store?.removeItem(sessionKey(room));
  return null;
}

export function saveSession(store: KeyValueStore | null, session: RoomSession): void {
  try {
    store?.setItem(sessionKey(session.room), JSON.stringify(session));
  } catch {
    // Quota or policy: the session is a convenience (keeping the peer id across reloads), not required.
  }
}

export function forgetSession(store: KeyValueStore | null, room: string): void {
  store?.removeItem(sessionKey(room));
}
