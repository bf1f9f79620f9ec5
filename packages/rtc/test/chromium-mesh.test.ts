/**
 * Rooms in real Chromium (Debian's `chromium`, driven by playwright-core): every peer is the room page
 * (`browser/room-page.ts`) in its own browser context, joined through the real signaling server that also
 * serves the page. The pages mesh over data channels, run the room's Raft cluster on them (RoomMembership +
 * WebRtcTransport + RaftNode, wired as in `raft-webrtc.test.ts`), replicate chat, and survive their leader's
 * tab closing without `leave()`. Needs the loopback-only network namespace `scripts/test.mjs` runs tests in.
 * Every wait is a hang guard, never a performance threshold.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { RaftRtcServer } from '@raftrtc/server';
import { chromiumMissing, launchChromium, RoomPage, startRoomServer } from './browser/harness.js';
import type { RoomSnapshot } from './browser/room-api.js';

/** Generous, for a loaded 2-core machine: on an idle one each of these waits takes a second or two. */
const WAIT_MS = 30_000;

interface Peer { page: RoomPage; snap: RoomSnapshot }

async function look(pages: readonly RoomPage[]): Promise<Peer[]> {
  return Promise.all(pages.map(async (page) => ({ page, snap: await page.snapshot() })));
}

const describeRoom = (peers: readonly Peer[]): string => peers.map(({ page, snap: s }) =>
  `${page.name}: ${s.membership} ${s.role} term=${s.term} leader=${s.leader} voters=${s.voters.length} learners=${s.learners.length} ` +
  `links=${JSON.stringify(s.links)} applied=${s.applied.length}${s.errors.length ? ` errors=${s.errors.join(' | ')}` : ''}`).join('; ');

/** Polls the pages until `cond` holds over their snapshots; fails with the room's state after {@link WAIT_MS}. */
async function waitForRoom(pages: readonly RoomPage[], cond: (peers: Peer[]) => boolean, what: string): Promise<Peer[]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const peers = await look(pages);
    if (cond(peers)) return peers;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what} (${describeRoom(peers)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Whether the peers form one cluster: every control channel among them open, the same leader everywhere,
 * and exactly them as voters (no learner left) on every peer.
 */
function oneCluster(peers: readonly Peer[]): boolean {
  const ids = peers.map((p) => p.page.peerId);
  const want = [...ids].sort().join(',');
  const leader = peers[0]!.snap.leader;
  return leader !== null && peers.every(({ page, snap: s }) =>
    s.leader === leader && s.learners.length === 0 && [...s.voters].sort().join(',') === want &&
    ids.every((id) => id === page.peerId || s.connected.includes(id)));
}

/** One cluster in which exactly one page says it leads (snapshots are taken one page after another). */
const settled = (peers: readonly Peer[]): boolean => oneCluster(peers) && peers.filter((p) => p.snap.role === 'leader').length === 1;

function assertHealthy(peers: readonly Peer[]): void {
  for (const { page, snap } of peers) {
    assert.deepEqual([...page.errors, ...snap.errors], [], `${page.name}'s page reported no error`);
    assert.equal(snap.refused, 0, `${page.name} dropped or refused nothing it received`);
  }
}

describe('rooms in real Chromium', { skip: chromiumMissing }, () => {
  let server: RaftRtcServer | undefined;
  let browser: Browser | undefined;
  const opened: RoomPage[] = [];

  before(async () => {
    server = await startRoomServer();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  /** Opens one page per name, each in its own context, and joins them to `room` one after another. */
  async function joinRoom(room: string, names: readonly string[]): Promise<RoomPage[]> {
    const pages: RoomPage[] = [];
    for (const name of names) {
      const page = await RoomPage.open(browser!, server!);
      opened.push(page);
      pages.push(page);
      await page.join({ room, name, raft: true });
      await waitForRoom(pages, oneCluster, `one cluster of ${pages.length}`);
    }
    return pages;
  }

  /** Closes every page's context, a crashed page's too (closing its page left the context open). */
  async function closeAll(): Promise<void> {
    // In a `finally`: a failing close must not hide the test's own failure.
    for (const page of opened.splice(0)) await page.close().catch(() => {});
  }

  it('two pages connect through the server, open their data channels and elect one leader', async () => {
    try {
      const pages = await joinRoom('chromium-two', ['ann', 'bob']);
      const peers = await waitForRoom(pages, settled, 'one leader that both follow');
      const [ann, bob] = peers as [Peer, Peer];
      assert.ok(ann.snap.connected.includes(bob.page.peerId), 'ann has an open control channel to bob');
      assert.ok(bob.snap.connected.includes(ann.page.peerId), 'bob has an open control channel to ann');
      assert.equal(peers.filter((p) => p.snap.role === 'leader').length, 1, 'exactly one leader');
      assert.equal(ann.snap.leader, bob.snap.leader, 'both follow the same leader');
      assertHealthy(peers);
    } finally {
      await closeAll();
    }
  });

  it('three pages: one leader, and followers\' proposals (one larger than a data-channel message) commit on all three in the same order', async () => {
    try {
      const pages = await joinRoom('chromium-three', ['cat', 'dan', 'eli']);
      const formed = await waitForRoom(pages, settled, 'one leader that all three follow');
      assert.equal(formed.filter((p) => p.snap.role === 'leader').length, 1, `exactly one leader (${describeRoom(formed)})`);
      const followers = formed.filter((p) => p.snap.role === 'follower');
      assert.equal(followers.length, 2, `two followers (${describeRoom(formed)})`);
      // Proposals from both followers at once, forwarded to the leader: the order is the leader's to choose,
      // and every page must apply that one order.
      const texts = followers.flatMap((f) => [1, 2, 3].map((i) => `${f.page.name} ${i}`));
      await Promise.all(followers.map((f) => Promise.all(texts.filter((t) => t.startsWith(f.page.name)).map((t) => f.page.propose(t)))));
      const applied = await waitForRoom(pages, (peers) => peers.every((p) => p.snap.applied.length >= texts.length), `every page to apply ${texts.length} entries`);
      const order = applied[0]!.snap.applied;
      assert.deepEqual([...order].sort(), [...texts].sort(), 'each proposal was applied exactly once');
      for (const p of applied) assert.deepEqual(p.snap.applied, order, `${p.page.name} applied the same entries in the same order`);

      // Larger than one Chromium data-channel message (256 KiB): the forward and the appends travel in fragments.
      const big = `big:${'x'.repeat(300_000)}`;
      await followers[0]!.page.propose(big);
      const withBig = await waitForRoom(pages, (peers) => peers.every((p) => p.snap.applied.length > texts.length), 'every page to apply the 300 KB entry');
      for (const p of withBig) assert.ok(p.snap.applied[texts.length] === big, `${p.page.name} applied the 300 KB entry intact, after the others`);
      const fragmented = withBig.map((p) => `${p.page.name}=${p.snap.fragmented}`).join(' ');
      assert.ok(withBig.some((p) => p.snap.fragmented > 0), `the entry crossed in fragments (fragmented messages sent: ${fragmented})`);
      assertHealthy(withBig);
    } finally {
      await closeAll();
    }
  });

  it('the leader\'s page closes abruptly: a new leader among the other two, proposals still commit, the closed page is removed, nothing committed is lost', async () => {
    try {
      const pages = await joinRoom('chromium-crash', ['fay', 'gus', 'hal']);
      const first = await waitForRoom(pages, settled, 'one leader that all three follow');
      const follower = first.find((p) => p.snap.role === 'follower')!;
      await follower.page.propose('before the crash 1');
      await follower.page.propose('before the crash 2');
      const applied = await waitForRoom(pages, (peers) => settled(peers) && peers.every((p) => p.snap.applied.length === 2), 'every page to apply both entries');
      const leader = applied.find((p) => p.snap.role === 'leader');
      assert.ok(leader, `a leader before the crash (${describeRoom(applied)})`);
      const committed = leader.snap.applied;

      await leader.page.crash();
      const rest = pages.filter((p) => p !== leader.page);
      // No close reaches the survivors from a closed tab: their connection to it stays `connected` until ICE
      // consent checks fail (about 6 s here), and the manager lets it go a few seconds later (disconnected
      // grace, ping timeout, then the presence leave). The election, after one election timeout of silence,
      // comes long before that.
      const elected = await waitForRoom(rest, (peers) => {
        const l = peers[0]!.snap.leader;
        return l !== null && l !== leader.page.peerId && peers.every((p) => p.snap.leader === l) && peers.some((p) => p.snap.role === 'leader');
      }, `a new leader among the two who stayed`);
      const newLeader = elected.find((p) => p.snap.role === 'leader')!;
      assert.ok(newLeader.snap.term > leader.snap.term, `the new leader was elected in a later term (${newLeader.snap.term} > ${leader.snap.term})`);

      // Two of the three voters are a majority: the room commits before the closed page is removed...
      for (const p of elected) await p.page.propose(`after the crash, from ${p.page.name}`);
      await waitForRoom(rest, (peers) => peers.every((p) => p.snap.applied.length === committed.length + 2), 'both survivors to apply the new entries');
      // ...and its leader then removes it, once its channel or its presence is gone.
      await waitForRoom(rest, oneCluster, `a cluster of the two who stayed, without ${leader.page.name}`);
      await rest[0]!.propose('after the removal');
      const done = await waitForRoom(rest, (peers) => peers.every((p) => p.snap.applied.length === committed.length + 3), 'both survivors to apply the last entry');
      for (const p of done) {
        assert.deepEqual(p.snap.applied.slice(0, committed.length), committed, `${p.page.name} kept everything committed before the crash`);
        assert.deepEqual(p.snap.applied, done[0]!.snap.applied, `${p.page.name} applied the same entries in the same order`);
      }
      for (const { page, snap } of done) assert.deepEqual([...page.errors, ...snap.errors], [], `${page.name}'s page reported no error`);
    } finally {
      await closeAll();
    }
  });
});
