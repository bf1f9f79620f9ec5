// The message archive: the file store (durability, dedupe, pages, torn tails) and its HTTP API (tokens of the
// room's incarnation only, validation, limits), against real files and the real server.
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ArchiveError, FileArchiveStore, signJwt, type ArchivedMessage } from '../src/index.ts';
import { api, SECRET, startServer, token, type Running } from './helpers.ts';

const msg = (i: number, text = `message ${i}`): ArchivedMessage => ({ id: `p.n.${i}`, sender: 'p', name: 'Ada', text, sentAt: 1_700_000_000_000 + i });
const range = (from: number, to: number): ArchivedMessage[] => Array.from({ length: to - from }, (_, k) => msg(from + k));

describe('FileArchiveStore', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'archive-test-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('appends in order, skips ids it holds (a re-sent batch), and reads pages from the newest back', async () => {
    const store = new FileArchiveStore({ dir: join(dir, 'a') });
    assert.deepEqual(await store.append('room~1', range(0, 20)), { added: 20, total: 20 });
    // A new leader re-sends the batch its predecessor archived, plus what came since, duplicates inside too.
    assert.deepEqual(await store.append('room~1', [...range(10, 30), msg(25)]), { added: 10, total: 30 });
    const newest = await store.read('room~1', undefined, 12);
    assert.equal(newest.total, 30);
    assert.equal(newest.start, 18);
    assert.deepEqual(newest.messages.map((m) => m.id), range(18, 30).map((m) => m.id), 'the newest page, oldest first');
    const older = await store.read('room~1', newest.start, 100);
    assert.deepEqual(older.messages, range(0, 18), 'the page before it, whole messages');
    assert.deepEqual(await store.read('room~1', 0, 10), { messages: [], start: 0, total: 30 });
    assert.deepEqual(await store.read('other~1', undefined, 10), { messages: [], start: 0, total: 0 }, 'archives are per key');
    await store.close();
  });

  test('what was appended is on disk: a new store over the directory reads it; a fresh one starts empty', async () => {
    const path = join(dir, 'b');
    const first = new FileArchiveStore({ dir: path });
    await first.append('r~2', range(0, 5));
    // Written and fsynced before append resolved: the bytes are in the file now, before any close.
    const onDisk = readFileSync(join(path, 'r~2.archive'));
    assert.ok(onDisk.includes(Buffer.from('"message 4"')), 'the last message is in the file');
    await first.close();
    assert.ok(existsSync(join(path, 'r~2.archive')), 'a given directory is kept at close');
    const second = new FileArchiveStore({ dir: path });
    assert.deepEqual(await second.read('r~2', undefined, 10), { messages: range(0, 5), start: 0, total: 5 });
    await second.close();
    const fresh = new FileArchiveStore({ dir: path, fresh: true });
    assert.deepEqual(await fresh.read('r~2', undefined, 10), { messages: [], start: 0, total: 0 },
      'the server\'s rooms live in memory: archives an earlier process left are of rooms that no longer exist');
    await fresh.close();
  });

  test('a torn tail (a crash inside a write) is cut off on open; appends continue after the good prefix', async () => {
    const path = join(dir, 'c');
    const store = new FileArchiveStore({ dir: path });
    await store.append('t~1', range(0, 3));
    await store.close();
    const file = join(path, 't~1.archive');
    const good = statSync(file).size;
    appendFileSync(file, Buffer.from([0x40, 0, 0, 0, 1, 2, 3]));
    const third = new FileArchiveStore({ dir: path });
    assert.deepEqual((await third.read('t~1', undefined, 10)).messages, range(0, 3), 'the whole records before the torn one');
    assert.equal(statSync(file).size, good, 'the torn bytes are gone');
    assert.deepEqual(await third.append('t~1', [msg(3)]), { added: 1, total: 4 });
    assert.deepEqual((await third.read('t~1', undefined, 10)).messages, range(0, 4));
    await third.close();
  });

  test('a corrupt record with good ones after it is an error, not a silent loss', async () => {
    const path = join(dir, 'd');
    const store = new FileArchiveStore({ dir: path });
    await store.append('x~1', range(0, 3));
    const file = join(path, 'x~1.archive');
    const bytes = readFileSync(file);
    await store.close();
    bytes[20] ^= 0xff;
    writeFileSync(file, bytes);
    const again = new FileArchiveStore({ dir: path });
    await assert.rejects(again.read('x~1', undefined, 10), /corrupt/);
    assert.deepEqual(readFileSync(file), bytes, 'the file is left as it was, for someone to look at');
    await again.close();
  });

  test('limits: a full archive refuses the batch whole; bad keys are refused; drop deletes', async () => {
    const path = join(dir, 'e');
    const store = new FileArchiveStore({ dir: path, maxMessages: 25 });
    await store.append('f~1', range(0, 20));
    await assert.rejects(store.append('f~1', range(20, 30)), (e: unknown) => e instanceof ArchiveError && e.code === 'archive_full');
    assert.equal((await store.read('f~1', undefined, 100)).total, 20, 'nothing of the refused batch was kept');
    for (const key of ['../etc', 'a/b', '', 'x'.repeat(101)]) {
      await assert.rejects(store.append(key, [msg(0)]), (e: unknown) => e instanceof ArchiveError && e.code === 'invalid_archive_key', key);
    }
    await store.drop('f~1');
    assert.deepEqual(readdirSync(path), [], 'the dropped archive\'s file is gone');
    assert.equal((await store.read('f~1', undefined, 10)).total, 0);
    await store.close();
  });

  test('without a directory it uses a temporary one and removes it at close', async () => {
    const store = new FileArchiveStore();
    await store.append('tmp~1', [msg(1)]);
    const made = (store as unknown as { dir: string }).dir;
    assert.ok(existsSync(made), `the temporary directory ${made} exists while open`);
    await store.close();
    assert.ok(!existsSync(made), 'and is removed at close');
  });
});

describe('archive HTTP API', () => {
  let srv: Running;
  before(async () => { srv = await startServer({ limits: { maxBodyBytes: 1024 }, archive: { maxBodyBytes: 64 * 1024 } }); });
  after(() => srv.server.close());

  const call = async (method: string, path: string, bearer: string | null, body?: unknown) => {
    const res = await fetch(srv.base + path, {
      method,
      headers: { ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  test('token answers name the archive; a peer of the room posts batches (re-sent ones added once) and reads pages', async () => {
    const t = await token(srv.base, 'arch-1', 'Ada');
    assert.equal(t.archiveUrl, `${srv.base}/api/rooms/arch-1/archive`);
    const path = new URL(t.archiveUrl!).pathname;
    assert.deepEqual((await call('POST', path, t.subscriptionToken, { messages: range(0, 20) })).body, { added: 20, total: 20 });
    assert.deepEqual((await call('POST', path, t.subscriptionToken, { messages: range(0, 20) })).body, { added: 0, total: 20 });
    const other = await token(srv.base, 'arch-1', 'Brian');
    const page = await call('GET', `${path}?limit=5`, other.subscriptionToken);
    assert.equal(page.status, 200);
    assert.deepEqual(page.body, { messages: range(15, 20), start: 15, total: 20 }, 'any peer of the room reads it');
    assert.deepEqual((await call('GET', `${path}?before=15&limit=100`, other.subscriptionToken)).body.messages, range(0, 15));
  });

  test('only a peer of this room, and of this incarnation of it, gets in', async () => {
    const t = await token(srv.base, 'arch-2', 'Ada');
    const path = '/api/rooms/arch-2/archive';
    const none = await call('GET', path, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'invalid_token');
    const elsewhere = await token(srv.base, 'arch-3', 'Eve');
    assert.equal((await call('GET', path, elsewhere.subscriptionToken)).status, 401, 'a token of another room');
    assert.equal((await call('GET', path, t.token)).status, 401, 'a connection token is not a subscription token');
    const forged = signJwt({ sub: 'x', channel: 'room:arch-2', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 60 }, Buffer.from('not-the-secret'));
    assert.equal((await call('GET', path, forged)).status, 401, 'a token signed with another secret');
    const stale = signJwt({ sub: 'x', channel: 'room:arch-2', iat: Math.floor(Date.now() / 1000) - 3600, exp: Math.floor(Date.now() / 1000) + 60 }, Buffer.from(SECRET));
    assert.equal((await call('GET', path, stale)).status, 401, 'a token from before the room was created (an earlier room of that name)');
    const gone = await call('GET', '/api/rooms/no-such-room/archive', t.subscriptionToken);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'room_not_found');
  });

  test('bad batches are refused whole with a clear code, and change nothing', async () => {
    const t = await token(srv.base, 'arch-4', 'Ada');
    const path = '/api/rooms/arch-4/archive';
    const bad: [unknown, RegExp][] = [
      [{}, /array/], [{ messages: [] }, /1 to/], [{ messages: range(0, 101) }, /1 to 100/],
      [{ messages: [msg(1), { ...msg(2), id: '' }] }, /message 1 has a bad id/],
      [{ messages: [{ ...msg(1), text: 'x'.repeat(4001) }] }, /bad text/],
      [{ messages: [{ ...msg(1), sentAt: 'yesterday' }] }, /bad sentAt/],
      [{ messages: [null] }, /not an object/],
    ];
    for (const [body, why] of bad) {
      const res = await call('POST', path, t.subscriptionToken, body);
      assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(res.body.error.code, 'invalid_archive_batch');
      assert.match(res.body.error.message, why);
    }
    const notJson = await call('POST', path, t.subscriptionToken, '{nope');
    assert.equal(notJson.body.error.code, 'invalid_json');
    const huge = await call('POST', path, t.subscriptionToken, { messages: range(0, 10).map((m) => ({ ...m, text: 'é'.repeat(4000) })) });
    assert.equal(huge.status, 413, 'over the archive body limit');
    const query = await call('GET', `${path}?limit=-1`, t.subscriptionToken);
    assert.equal(query.status, 400);
    assert.equal((await call('GET', path, t.subscriptionToken)).body.total, 0, 'nothing was archived by any of them');
    const extra = await call('POST', path, t.subscriptionToken, { messages: [{ ...msg(7), admin: true }] });
    assert.equal(extra.status, 200);
    assert.deepEqual((await call('GET', path, t.subscriptionToken)).body.messages, [msg(7)], 'unknown fields are not stored');
    assert.equal((await call('PUT', path, t.subscriptionToken)).status, 405);
  });

  test('a server without an archive says so, and publishes no archive URL', async () => {
    const bare = await startServer({ archive: false });
    try {
      const t = await token(bare.base, 'arch-5');
      assert.equal(t.archiveUrl, null);
      const res = await api(bare.base, 'GET', '/api/rooms/arch-5/archive');
      assert.equal(res.status, 404);
    } finally {
      await bare.server.close();
    }
  });

  test('an archive service elsewhere is published instead of ours', async () => {
    const ext = await startServer({ archive: { url: 'https://archive.example.org/rooms/{room}/messages' } });
    try {
      assert.equal((await token(ext.base, 'arch-6')).archiveUrl, 'https://archive.example.org/rooms/arch-6/messages');
    } finally {
      await ext.server.close();
    }
  });
});
