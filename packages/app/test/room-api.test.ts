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
import { ARCHIVED_IDS_KEPT, Chat, ChatCommandError, MAX_ARCHIVE_BATCH, MAX_TEXT_LENGTH, validateChatCommand, type ChatCommand, type ChatMessage } from '../src/room/chat.ts';
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

  const archived = (...ids: string[]): ChatCommand => ({ type: 'archived', ids });

  it('archived drops only the oldest run of listed messages; positions keep counting from the room\'s first message', () => {
    const c = new Chat();
    for (const id of ['a', 'b', 'c', 'd']) c.apply(chat(message(id)), entry(1));
    const seen: [string[], number][] = [];
    c.onArchived = (ms, first) => seen.push([ms.map((m) => m.id), first]);
    assert.equal(c.apply(archived('a', 'b', 'd'), entry(5)), 2, 'd is not part of the oldest run: it stays');
    assert.deepEqual(c.messages.map((m) => m.id), ['c', 'd']);
    assert.equal(c.archivedCount, 2);
    assert.deepEqual(seen, [[['a', 'b'], 1]], 'observers get the dropped messages and the position of the first');
    assert.equal(c.apply(archived('a', 'b'), entry(6)), 0, 'archiving again (a new leader re-sends) changes nothing');
    assert.equal(c.apply(archived('d'), entry(7)), 0, 'a listed id behind an unlisted one stays');
    assert.equal(c.apply(chat(message('e')), entry(8)), 5, 'the fifth message of the room');
    assert.equal(c.apply(chat(message('a', 'resent')), entry(9)), 1, 'an archived message re-sent is applied once');
    assert.deepEqual(c.messages.map((m) => m.id), ['c', 'd', 'e']);
    for (const bad of [archived(), { type: 'archived', ids: Array.from({ length: MAX_ARCHIVE_BATCH + 1 }, (_, i) => `x${i}`) }, { type: 'archived', ids: [''] }, { type: 'archived' }]) {
      assert.throws(() => c.apply(bad as ChatCommand, entry(10)), ChatCommandError, JSON.stringify(bad).slice(0, 60));
    }
  });

  it('randomized: any mix of messages, re-sends and archiving matches a list model, and survives snapshots (seeded)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      let x = seed;
      const rand = (n: number): number => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
      const c = new Chat();
      const history: string[] = [];
      let archivedCount = 0;
      let ids = 0;
      for (let step = 0; step < 400; step++) {
        const roll = rand(10);
        let cmd: ChatCommand;
        if (roll < 6) cmd = chat(message(`m${ids++}`));
        else if (roll < 8 && history.length > 0) cmd = chat(message(history[Math.max(0, history.length - 1 - rand(30))]!, 'again'));
        else cmd = archived(...history.slice(archivedCount, archivedCount + rand(25) + 1).filter(() => rand(8) > 0));
        if (cmd.type === 'archived' && cmd.ids.length === 0) continue;
        c.apply(cmd, entry(step + 1));
        if (cmd.type === 'chat' && !history.slice(Math.max(0, archivedCount - ARCHIVED_IDS_KEPT)).includes(cmd.message.id)) history.push(cmd.message.id);
        if (cmd.type === 'archived') {
          const listed = new Set(cmd.ids);
          while (archivedCount < history.length && listed.has(history[archivedCount]!)) archivedCount++;
        }
        assert.deepEqual(c.messages.map((m) => m.id), history.slice(archivedCount), `seed ${seed} step ${step}: live messages`);
        assert.equal(c.archivedCount, archivedCount, `seed ${seed} step ${step}: archived count`);
        if (rand(50) === 0) {
          const copy = new Chat();
          copy.restore(structuredClone(c.snapshot()));
          assert.deepEqual(copy.snapshot(), c.snapshot(), `seed ${seed} step ${step}: a snapshot restores the same state`);
        }
      }
    }
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
