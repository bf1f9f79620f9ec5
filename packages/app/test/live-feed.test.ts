/**
 * The room tab's live feed (`src/room/live-feed.ts`) without a browser: the validation of what peers and
 * tabs send (malformed, oversized and spoofed statuses are ignored), and the feed itself over Node's real
 * BroadcastChannel with mocked timers: nothing recorded or shared while nobody watches, frames with the
 * node's exact status, its log tail as stored, its messages (rate-limited) and the room's new events, the
 * peers' statuses, and a goodbye on close.
 */
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { Entry, RaftNodeStatus, Snapshot, Storage, StorageState, Transport, WireMessage } from '@raftrtc/raft';
import {
  LiveFeed, MAX_LOG_TAIL, MAX_MESSAGES_PER_SECOND, MAX_STATUS_CHARS, MAX_SUMMARY, SHARE_MS, WATCH_TTL_MS,
  liveChannelName, parseLiveFeedPost, parseLiveStatus, parseStatusMessage, summarizeEntry,
  type LiveEvent, type LiveFeedPost, type LiveFrame, type LiveNodeStatus,
} from '../src/room/live-feed.ts';

const status = (over: Partial<LiveNodeStatus> = {}): LiveNodeStatus => ({
  id: 'peer-b', name: 'Brian', role: 'follower', term: 3, vote: 'peer-a', leader: 'peer-a', commit: 7, applied: 7,
  firstIndex: 1, lastIndex: 8, voters: ['peer-a', 'peer-b', 'peer-c'], learners: [], snapshot: null,
  log: [{ index: 8, term: 3, kind: 'normal', summary: 'Ada: hi' }], progress: null, ...over,
});

const statusMessage = (s: unknown, want = false): Record<string, unknown> => ({ kind: 'raft-status', want, status: s });

describe('raft-status validation', () => {
  it('accepts a well-formed status about its sender, keeping only known fields', () => {
    const parsed = parseStatusMessage('peer-b', 300, statusMessage({ ...status(), extra: 'dropped' }, true));
    assert.ok(parsed, 'a valid status is accepted');
    assert.equal(parsed.want, true);
    assert.deepEqual(parsed.status, status(), 'the status comes back as sent, without unknown fields');
  });

  it('ignores a status about another peer (a peer speaks for itself only)', () => {
    assert.equal(parseStatusMessage('peer-c', 300, statusMessage(status())), null);
  });

  it('ignores an oversized message before looking at it', () => {
    assert.equal(parseStatusMessage('peer-b', MAX_STATUS_CHARS + 1, statusMessage(status())), null);
  });

  it('ignores every malformed status', () => {
    const bad: [string, unknown][] = [
      ['not an object', 'hello'],
      ['null', null],
      ['no id', { ...status(), id: '' }],
      ['id too long', { ...status(), id: 'x'.repeat(257) }],
      ['unknown role', { ...status(), role: 'king' }],
      ['negative term', { ...status(), term: -1 }],
      ['fractional commit', { ...status(), commit: 1.5 }],
      ['string applied', { ...status(), applied: '7' }],
      ['vote not an id', { ...status(), vote: 42 }],
      ['voters not a list', { ...status(), voters: 'peer-a' }],
      ['too many learners', { ...status(), learners: Array.from({ length: 65 }, (_, i) => `p${i}`) }],
      ['malformed snapshot', { ...status(), snapshot: { index: 'x', term: 1 } }],
      ['log not a list', { ...status(), log: {} }],
      ['log too long', { ...status(), log: Array.from({ length: MAX_LOG_TAIL + 1 }, (_, i) => ({ index: i + 1, term: 1, kind: 'normal', summary: '' })) }],
      ['summary too long', { ...status(), log: [{ index: 1, term: 1, kind: 'normal', summary: 'x'.repeat(MAX_SUMMARY + 1) }] }],
      ['unknown entry kind', { ...status(), log: [{ index: 1, term: 1, kind: 'weird', summary: '' }] }],
      ['name too long', { ...status(), name: 'n'.repeat(65) }],
      ['progress not a list', { ...status(), progress: { 'peer-a': 3 } }],
      ['progress without match', { ...status(), progress: [{ id: 'peer-a' }] }],
    ];
    for (const [why, s] of bad) {
      assert.equal(parseLiveStatus(s), null, `${why}: refused by parseLiveStatus`);
      assert.equal(parseStatusMessage('peer-b', 300, statusMessage(s)), null, `${why}: refused as a raft-status`);
    }
    assert.equal(parseStatusMessage('peer-b', 300, { kind: 'raft-status', status: status() }), null, 'want missing');
    assert.equal(parseStatusMessage('peer-b', 300, { kind: 'hello', want: false, status: status() }), null, 'another kind');
  });

  it('reads a frame, leaving out malformed nodes and messages rather than the whole frame', () => {
    const frame = {
      kind: 'frame', room: 'r', self: 'peer-a', name: 'Ada', at: 5, skipped: 0, events: [],
      nodes: [{ status: status(), ageMs: 10 }, { status: { ...status(), role: 'king' }, ageMs: 0 }],
      messages: [{ type: 'Heartbeat', from: 'peer-a', to: 'peer-b', term: 3, index: 7, entries: 0, reject: false, dir: 'out', at: 5 }, { type: 'Heartbeat' }],
    };
    const post = parseLiveFeedPost(frame);
    assert.ok(post && post.kind === 'frame', 'the frame is read');
    assert.deepEqual(post.nodes.map((n) => n.status.id), ['peer-b'], 'the malformed node is left out');
    assert.equal(post.messages.length, 1, 'the malformed message is left out');
    assert.equal(parseLiveFeedPost({ ...frame, messages: 'x' }), null, 'a frame whose lists are not lists is refused');
    assert.deepEqual(parseLiveFeedPost({ kind: 'bye', room: 'r', self: 'peer-a' }), { kind: 'bye', room: 'r', self: 'peer-a' });
  });

  it('summarizes entries: chat messages, configuration changes, no-ops; bounded', () => {
    const chat = (text: string): Entry => ({ index: 4, term: 2, type: 'normal', data: { pid: 'p1', cmd: { type: 'chat', message: { name: 'Ada', text } } } });
    assert.deepEqual(summarizeEntry(chat('hello')), { index: 4, term: 2, kind: 'normal', summary: 'Ada: hello' });
    assert.equal(summarizeEntry(chat('x'.repeat(500))).summary.length, MAX_SUMMARY, 'a long message is cut');
    assert.equal(summarizeEntry({ index: 5, term: 2, type: 'normal', data: null }).kind, 'noop');
    const conf = summarizeEntry({ index: 6, term: 2, type: 'conf', data: { op: 'change', changes: [{ type: 'addLearner', node: 'peer-c-long-id' }] } });
    assert.deepEqual(conf, { index: 6, term: 2, kind: 'conf', summary: 'addLearner peer-c' });
  });
});

// ---- The feed over a real BroadcastChannel ------------------------------------------------------------

const ROOM = 'unit-room';
const SELF = 'peer-a';

const entries = (from: number, to: number, term = 1): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ index: from + i, term, type: 'normal', data: { pid: `p${from + i}`, cmd: { type: 'chat', message: { name: 'Ada', text: `m${from + i}` } } } }));

const snapshot = (index: number, term: number): Snapshot => ({ index, term, conf: { voters: [SELF], learners: [] }, data: null });

function nodeStatus(): RaftNodeStatus {
  return {
    id: SELF, term: 4, vote: SELF, role: 'leader', leader: SELF, commit: 60, applied: 60, firstIndex: 1, lastIndex: 60,
    conf: { voters: [SELF, 'peer-b'], learners: ['peer-c'] }, dropped: {} as RaftNodeStatus['dropped'], transferee: null,
    progress: { [SELF]: { match: 60, next: 61, state: 'replicate' }, 'peer-b': { match: 58, next: 59, state: 'replicate' } },
    saves: 1, pendingProposals: 0, pendingReads: 0,
  };
}

const heartbeat = (to: string, from = SELF): WireMessage => ({ type: 'Heartbeat', from, to, term: 4, commit: 60 } as WireMessage);

/** Moves the mocked clock in frame-sized steps: each interval run then reads the time it runs at. */
function advance(ms: number): void {
  for (let t = 0; t < ms; t += 100) mock.timers.tick(100);
}

/** Lets the BroadcastChannel deliver (it is not driven by the mocked timers). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !check(); i++) await turn();
  assert.ok(check(), `waited for ${what}`);
}

describe('LiveFeed', () => {
  let feed: LiveFeed;
  let viewer: BroadcastChannel;
  let posts: LiveFeedPost[];
  let shared: string[];
  let events: LiveEvent[];
  let received: WireMessage[];
  let deliver: (m: WireMessage) => void;
  let transport: Transport;

  const frames = (): LiveFrame[] => posts.filter((p): p is LiveFrame => p.kind === 'frame');

  beforeEach(() => {
    mock.timers.enable({ apis: ['setInterval', 'Date'], now: 1_700_000_000_000 });
    posts = [];
    shared = [];
    events = [{ seq: 1, at: 1, kind: 'leader', text: 'You lead (term 4)' }];
    received = [];
    feed = new LiveFeed({
      room: ROOM, self: SELF, name: 'Ada', nodeStatus, events: () => events, broadcast: (text) => shared.push(text),
    });
    viewer = new BroadcastChannel(liveChannelName(ROOM, SELF));
    viewer.onmessage = (e: MessageEvent<unknown>) => {
      const post = parseLiveFeedPost(e.data);
      assert.ok(post, `the feed posts only valid posts: ${JSON.stringify(e.data).slice(0, 200)}`);
      posts.push(post);
    };
    transport = feed.tapTransport({
      id: SELF,
      start: async (onMessage) => { deliver = onMessage; },
      send: () => {},
      close: async () => {},
    });
    void transport.start((m) => received.push(m));
  });

  afterEach(() => {
    feed.close();
    viewer.close();
    mock.timers.reset();
  });

  after(() => mock.timers.reset());

  const watch = async (): Promise<void> => {
    const before = frames().length;
    viewer.postMessage({ kind: 'watch', viewer: 'v1' });
    await until('the first frame', () => frames().length > before);
  };

  it('records and shares nothing while nobody watches', async () => {
    transport.send(heartbeat('peer-b'));
    deliver(heartbeat(SELF, 'peer-b'));
    assert.equal(received.length, 1, 'a received message still reaches the node');
    advance(10 * SHARE_MS);
    await turn();
    assert.equal(feed.watched, false);
    assert.deepEqual(shared, [], 'no status shared over the mesh');
    assert.deepEqual(posts, [], 'nothing posted');
    await watch();
    assert.deepEqual(frames()[0]!.messages, [], 'messages from before the watch were not recorded');
  });

  it('posts this node\'s exact status, its log tail as stored, everyone\'s events, and asks peers for theirs', async () => {
    const storage: Storage = {
      load: async (): Promise<StorageState> => ({ hardState: null, snapshot: null, entries: entries(1, 60) }),
      save: async () => {},
      compact: async () => {},
      close: async () => {},
    };
    const tapped = feed.tapStorage(storage);
    await tapped.load();
    // A new leader overwrites the tail from 59 on, then the log compacts up to 55.
    await tapped.save({ hardState: null, snapshot: null, entries: entries(59, 61, 4) });
    await tapped.compact(snapshot(55, 1));
    await watch();
    const frame = frames()[0]!;
    assert.equal(frame.self, SELF);
    assert.equal(frame.name, 'Ada');
    const own = frame.nodes[0]!;
    assert.equal(own.ageMs, 0, 'its own status is read now');
    assert.equal(own.status.role, 'leader');
    assert.equal(own.status.term, 4);
    assert.deepEqual(own.status.learners, ['peer-c']);
    assert.deepEqual(own.status.progress, [{ id: 'peer-b', match: 58 }], 'a leader reports how far the others match');
    assert.deepEqual(own.status.snapshot, { index: 55, term: 1 }, 'the compaction is known');
    assert.deepEqual(own.status.log.map((e) => `${e.index}@${e.term}`), ['56@1', '57@1', '58@1', '59@4', '60@4', '61@4'], 'the tail as stored');
    assert.equal(own.status.log[0]!.summary, 'Ada: m56');
    assert.deepEqual(frame.events.map((e) => e.text), ['You lead (term 4)'], 'a new watcher gets the event log');
    assert.equal(shared.length, 1, 'the status is shared with the peers at once');
    const message = JSON.parse(shared[0]!) as unknown;
    assert.ok(parseStatusMessage(SELF, shared[0]!.length, message)?.want, 'a watched peer asks the others for their status');

    events = [...events, { seq: 2, at: 2, kind: 'peer', text: 'Connected to Brian' }];
    mock.timers.tick(100);
    await until('a second frame', () => frames().length === 2);
    assert.deepEqual(frames()[1]!.events.map((e) => e.seq), [2], 'later frames carry only new events');
  });

  it('reports the node\'s messages in both directions, rate-limited', async () => {
    await watch();
    transport.send(heartbeat('peer-b'));
    deliver(heartbeat(SELF, 'peer-b'));
    mock.timers.tick(100);
    await until('a frame with messages', () => frames().length === 2);
    assert.deepEqual(frames()[1]!.messages.map((m) => [m.type, m.from, m.to, m.dir, m.index]), [
      ['Heartbeat', SELF, 'peer-b', 'out', 60], ['Heartbeat', 'peer-b', SELF, 'in', 60],
    ]);
    const flood = MAX_MESSAGES_PER_SECOND + 300;
    for (let i = 0; i < flood; i++) transport.send(heartbeat('peer-b'));
    mock.timers.tick(100);
    await until('a frame after the flood', () => frames().length === 3);
    const frame = frames()[2]!;
    assert.ok(frame.messages.length <= MAX_MESSAGES_PER_SECOND, `at most ${MAX_MESSAGES_PER_SECOND} messages a second: ${frame.messages.length}`);
    assert.equal(frame.messages.length + frame.skipped, flood, 'the rest are counted as skipped');
  });

  it('includes the peers\' valid statuses and ignores malformed or spoofed ones', async () => {
    assert.equal(feed.receive('peer-b', 10, { kind: 'hello', name: 'Brian' }), false, 'other kinds are not the feed\'s');
    assert.equal(feed.receive('peer-b', 300, statusMessage(status())), true);
    assert.equal(feed.receive('peer-c', 300, statusMessage(status())), true, 'a spoofed status is the feed\'s to refuse');
    assert.equal(feed.receive('peer-c', MAX_STATUS_CHARS + 1, statusMessage(status({ id: 'peer-c' }))), true);
    assert.equal(feed.receive('peer-c', 300, statusMessage({ ...status({ id: 'peer-c' }), term: -1 })), true);
    assert.equal(feed.refused, 3, 'the spoofed, the oversized and the malformed statuses are refused');
    assert.deepEqual(shared, [], 'a status without `want` asks for nothing');
    await watch();
    const nodes = frames()[0]!.nodes;
    assert.deepEqual(nodes.map((n) => n.status.id), [SELF, 'peer-b'], 'our status, then the valid peer\'s only');
    assert.deepEqual(nodes[1]!.status, status(), 'the peer\'s status as it sent it');
  });

  it('shares its status while a peer wants it, then stops', () => {
    assert.equal(feed.receive('peer-c', 300, statusMessage(status({ id: 'peer-c', name: 'Chloé' }), true)), true);
    mock.timers.tick(100);
    assert.equal(shared.length, 1, 'a peer that wants statuses gets ours');
    assert.equal((JSON.parse(shared[0]!) as { want: boolean }).want, false, 'an unwatched peer asks for nothing');
    advance(SHARE_MS * 10);
    const shares = shared.length;
    assert.ok(shares > 1, 'it shares again while wanted');
    advance(SHARE_MS * 10);
    assert.equal(shared.length, shares, 'sharing stops once nobody wants it any more');
  });

  it('stops posting when the viewer goes quiet, and says goodbye on close', async () => {
    await watch();
    advance(WATCH_TTL_MS + 200);
    await turn();
    assert.equal(feed.watched, false, 'a viewer that stopped saying watch is gone');
    const count = posts.length;
    mock.timers.tick(1_000);
    await turn();
    assert.equal(posts.length, count, 'no frames for nobody');
    feed.close();
    await until('the goodbye', () => posts.at(-1)?.kind === 'bye');
  });
});
