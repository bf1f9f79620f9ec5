/**
 * The leader's flush and the archived history, against the real server's archive (no browser needed): the
 * chat state machine stands in for the replicated state, `propose` applies to it as a commit would.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type RaftRtcServer } from '@raftrtc/server';
import type { Entry } from '@raftrtc/raft';
import { requestToken, type TokenAnswer } from '../src/room/api.ts';
import { ArchivedHistory, Archiver, FLUSH_AT, FLUSH_BATCH, readArchive, type ArchiverDeps } from '../src/room/archive.ts';
import { Chat, type ChatArchived, type ChatMessage } from '../src/room/chat.ts';

const entry = { index: 1, term: 1, type: 'normal', data: null } as unknown as Entry;
const message = (i: number): ChatMessage => ({ id: `peer.x.${i}`, sender: 'peer', name: 'Ada', text: `message ${i}`, sentAt: 1_700_000_000_000 + i });

/** Polls `check` until it holds; a hang guard, not a timing assertion. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('archive flush against the real archive', () => {
  let server: RaftRtcServer;
  let origin: string;
  before(async () => {
    server = createServer({ logLevel: 'silent', limits: { httpRequestsPerSecond: 1000, httpBurst: 1000 } });
    origin = `http://127.0.0.1:${(await server.listen(0)).port}`;
  });
  after(() => server.close());

  /** A chat holding `n` messages and an archiver over it, leading unless told otherwise. */
  function setup(t: TokenAnswer, n: number, overrides: Partial<ArchiverDeps> = {}) {
    const chat = new Chat();
    for (let i = 0; i < n; i++) chat.apply({ type: 'chat', message: message(i) }, entry);
    const reports: (string | null)[] = [];
    const archiver = new Archiver({
      url: t.archiveUrl!,
      token: () => t.subscriptionToken,
      isLeader: () => true,
      oldest: (k) => chat.messages.slice(0, k),
      liveCount: () => chat.messages.length,
      propose: async (command: ChatArchived) => chat.apply(command, entry),
      report: (error) => reports.push(error === null ? null : String(error)),
      ...overrides,
    });
    return { chat, archiver, reports };
  }

  it(`flushes the oldest ${FLUSH_BATCH} at a time while ${FLUSH_AT} or more are held, the archive first`, async () => {
    const t = await requestToken(origin, 'flush-1', 'Ada', undefined, true);
    const { chat, archiver } = setup(t, 55);
    archiver.poke();
    await until('two batches archived', () => chat.archivedCount === 40);
    assert.deepEqual(chat.messages.map((m) => m.id), [...Array(15).keys()].map((i) => message(40 + i).id), 'the 15 newest stay');
    const page = await readArchive(t.archiveUrl!, t.subscriptionToken, 40, 100);
    assert.deepEqual(page.messages, [...Array(40).keys()].map(message), 'the archive holds the 40 oldest, in order');
    archiver.close();
  });

  it('a follower flushes nothing; an archive that refuses keeps every message in the chat until it accepts', async () => {
    const t = await requestToken(origin, 'flush-2', 'Ada', undefined, true);
    const follower = setup(t, 30, { isLeader: () => false });
    follower.archiver.poke();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(follower.chat.archivedCount, 0, 'only the leader flushes');

    let token = 'not-a-token';
    const leader = setup(t, 30, { token: () => token });
    leader.archiver.poke();
    await until('the refusal reported', () => leader.reports.length > 0);
    assert.match(leader.reports[0]!, /not valid|token/, 'the failure says why');
    assert.equal(leader.chat.archivedCount, 0, 'nothing left the chat while the archive refused');
    assert.equal(leader.chat.messages.length, 30);
    token = t.subscriptionToken;
    await until('the retry flushed', () => leader.chat.archivedCount === 20);
    assert.equal(leader.reports.at(-1), null, 'recovery is reported');
    leader.archiver.close();
  });

  it('a leader that loses the commit after posting leaves the messages; the next leader posts again and the archive adds each once', async () => {
    const t = await requestToken(origin, 'flush-3', 'Ada', undefined, true);
    const old = setup(t, 25, { propose: async () => { throw new Error('not the leader any more'); } });
    old.archiver.poke();
    await until('the failed proposal reported', () => old.reports.length > 0);
    old.archiver.close();
    assert.equal(old.chat.archivedCount, 0, 'the messages are still in the replicated state');
    assert.equal((await readArchive(t.archiveUrl!, t.subscriptionToken, 1_000, 100)).total, 20, 'but the archive has the batch');
    const next = setup(t, 25);
    next.archiver.poke();
    await until('the next leader flushed', () => next.chat.archivedCount === 20);
    const page = await readArchive(t.archiveUrl!, t.subscriptionToken, 1_000, 100);
    assert.equal(page.total, 20, 'the re-posted batch was not archived twice');
    next.archiver.close();
  });

  it('the history shows what was archived here, fetches older pages, and never shows a message twice', async () => {
    const t = await requestToken(origin, 'flush-4', 'Ada', undefined, true);
    // Someone archived 250 messages before this page joined.
    const early = setup(t, 250, { batch: 50 });
    early.archiver.poke();
    await until('all 250 archived', () => early.chat.archivedCount === 250);
    early.archiver.close();

    let changes = 0;
    const history = new ArchivedHistory(t.archiveUrl!, () => t.subscriptionToken, () => changes++);
    history.sync(250);
    await until('the newest page fetched by itself', () => history.messages.length === 100 && !history.loading);
    assert.equal(history.earlierCount, 150);
    assert.deepEqual(history.messages.map((m) => m.id), [...Array(100).keys()].map((i) => message(150 + i).id));
    // Messages archived while the page watches join at the end.
    const live = [250, 251, 252].map(message);
    history.archived(live, 251);
    assert.deepEqual(history.messages.slice(-3), live);
    await history.loadEarlier();
    await history.loadEarlier();
    assert.equal(history.hasEarlier, false, 'everything fetched');
    assert.deepEqual(history.messages.map((m) => m.id), [...Array(253).keys()].map((i) => message(i).id), 'one contiguous run, in order, no duplicates');
    assert.ok(changes > 0, 'the view was told');

    const broken = new ArchivedHistory(t.archiveUrl!, () => 'bad', () => {});
    broken.sync(250);
    await until('the failure shown', () => broken.error !== null && !broken.loading);
    assert.match(broken.error!, /token/i, 'the archive\'s refusal is shown');
  });
});
