/**
 * The room client's pieces that need no browser: the chat state machine (deterministic refusals, one apply
 * per message id, snapshots), and the room API against the real signaling server (each refusal becomes its
 * typed error, a refresh keeps the peer, sessions round-trip through a key-value store).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type RaftRtcServer } from '@raftrtc/server';
import type { Entry } from '@raftrtc/raft';
import { loadSession, refreshToken, requestToken, saveSession, createRoom, type KeyValueStore } from '../src/room/api.ts';
import { Chat, ChatCommandError, MAX_TEXT_LENGTH, validateChatCommand, type ChatCommand, type ChatMessage } from '../src/room/chat.ts';
import { InvalidInputError, RoomNotFoundError, SignalingUnavailableError, WrongPasswordError } from '../src/room/errors.ts';

const entry = (index: number): Entry => ({ index, term: 1, type: 'normal', data: null } as Entry);
const message = (id: string, text = `text of ${id}`): ChatMessage => ({ id, sender: 'peer-a', name: 'Ada', text, sentAt: 1_700_000_000_000 });
const chat = (m: ChatMessage): ChatCommand => ({ type: 'chat', message: m });

describe('Chat state machine', () => {
  it('appends messages in apply order and returns their positions', () => {
    const c = new Chat();
    assert.equal(c.apply(chat(message('a')), entry(1)), 1);
    assert.equal(c.apply(chat(message('b')), entry(2)), 2);
    assert.deepEqual(c.messages.map((m) => m.id), ['a', 'b']);
  });

  it('applies a message id once: a resend after an unknown outcome changes nothing', () => {
    const c = new Chat();
    c.apply(chat(message('a')), entry(1));
    c.apply(chat(message('b')), entry(2));
    assert.equal(c.apply(chat(message('a', 'resent')), entry(3)), 1, 'the first position is answered again');
    assert.deepEqual(c.messages.map((m) => m.text), ['text of a', 'text of b'], 'the resend is not appended');
  });

  it('refuses malformed commands the same way every time, changing nothing', () => {
    const bad: unknown[] = [
      null, 'hello', { type: 'other' }, { type: 'chat' }, chat({ ...message('a'), text: '' }),
      chat({ ...message('a'), text: 'x'.repeat(MAX_TEXT_LENGTH + 1) }), chat({ ...message('a'), sentAt: Number.NaN }),
      chat({ ...message('a'), name: '' }), chat({ ...message(''), text: 'no id' }),
    ];
    const c = new Chat();
    for (const cmd of bad) {
      assert.notEqual(validateChatCommand(cmd), null, `refused: ${JSON.stringify(cmd)}`);
      assert.throws(() => c.apply(cmd as ChatCommand, entry(1)), ChatCommandError, `apply refuses ${JSON.stringify(cmd)}`);
    }
    assert.equal(c.messages.length, 0, 'nothing was applied');
  });

  it('restores from its snapshot, duplicate filter included', () => {
    const c = new Chat();
    for (const id of ['a', 'b', 'c']) c.apply(chat(message(id)), entry(1));
    const copy = new Chat();
    copy.restore(structuredClone(c.snapshot()));
    assert.deepEqual(copy.messages, c.messages);
    assert.equal(copy.apply(chat(message('b')), entry(4)), 2, 'a message of the snapshot is not applied again');
    assert.throws(() => copy.restore({}), ChatCommandError, 'a snapshot without messages is refused');
  });
});

/** A `localStorage` stand-in. */
class MapStore implements KeyValueStore {
  readonly map = new Map<string, string>();
  getItem(key: string): string | null { return this.map.get(key) ?? null; }
  setItem(key: string, value: string): void { this.map.set(key, value); }
  removeItem(key: string): void { this.map.delete(key); }
}

describe('room API client against the real server', () => {
  let server: RaftRtcServer;
  let origin: string;
  before(async () => {
    server = createServer({ logLevel: 'silent' });
    await server.listen(0, '127.0.0.1');
    origin = server.url;
  });
  after(() => server.close());

  it('joins, creating the room, and a refresh keeps the same peer', async () => {
    const first = await requestToken(origin, 'api-room', 'Ada', undefined, true);
    assert.match(first.url, /\/connection\/websocket$/, 'the signaling URL is on this server');
    const again = await refreshToken(origin, 'api-room', first);
    assert.equal(again.peerId, first.peerId, 'the same peer after a refresh');
    const other = await requestToken(origin, 'api-room', 'Ada', undefined, false);
    assert.notEqual(other.peerId, first.peerId, 'a new join is a new peer');
  });

  it('turns each refusal into its typed error', async () => {
    await requestToken(origin, 'api-locked', 'Owner', 'secret', true);
    await assert.rejects(requestToken(origin, 'api-locked', 'Guest', 'nope', false), (e) => e instanceof WrongPasswordError && e.code === 'wrong_password');
    await assert.rejects(requestToken(origin, 'api-locked', 'Guest', undefined, false), (e) => e instanceof WrongPasswordError && e.code === 'password_required');
    await assert.rejects(requestToken(origin, 'api-nowhere', 'Guest', undefined, false), (e) => e instanceof RoomNotFoundError);
    await assert.rejects(requestToken(origin, 'api-room', '\u0007', undefined, true), (e) => e instanceof InvalidInputError && e.code === 'invalid_name');
    await assert.rejects(
      refreshToken(origin, 'api-room', { token: 'x.y.z', subscriptionToken: 'x.y.z' }),
      (e) => e instanceof Error && 'code' in e && e.code === 'invalid_token',
    );
  });

  it('creates a room with a name the server picks', async () => {
    const room = await createRoom(origin, 'pw');
    assert.match(room, /^[A-Za-z0-9_-]{1,64}$/, `a valid room name: ${room}`);
    await assert.rejects(requestToken(origin, room, 'Guest', 'other', false), WrongPasswordError, 'created with the password');
  });

  it('reports an unreachable server as SignalingUnavailableError', async () => {
    const gone = createServer({ logLevel: 'silent' });
    await gone.listen(0, '127.0.0.1');
    const url = gone.url;
    await gone.close();
    await assert.rejects(requestToken(url, 'room', 'Ada', undefined, true), (e) => e instanceof SignalingUnavailableError && e.code === 'unreachable');
  });

  it('keeps one session per room in the store, and drops a malformed one', () => {
    const store = new MapStore();
    saveSession(store, { room: 'r1', name: 'Ada', peerId: 'p1', token: 't', subscriptionToken: 's' });
    assert.deepEqual(loadSession(store, 'r1'), { room: 'r1', name: 'Ada', peerId: 'p1', token: 't', subscriptionToken: 's' });
    assert.equal(loadSession(store, 'r2'), null, 'another room has no session');
    store.setItem('raftrtc.session.r3', '{"room":"r3"}');
    assert.equal(loadSession(store, 'r3'), null, 'an incomplete session is refused');
    assert.equal(store.getItem('raftrtc.session.r3'), null, 'and removed');
  });
});
