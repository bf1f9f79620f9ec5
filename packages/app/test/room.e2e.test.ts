/**
 * The room app end to end, in Debian's Chromium driven by playwright-core: the real server of `npm start`
 * (apps/web, with the app built by Vite), one browser context per peer (its own storage and WebRTC stack, as
 * a separate person's browser), everything done and read through the page as a user would. WebRTC must stay
 * on loopback: run it through `node scripts/test.mjs`, which puts the run in a loopback-only network
 * namespace. Every wait is a generous hang guard, never a performance threshold.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../../../apps/web/src/server.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from '../../../scripts/lib/chromium.js';

const skip = chromiumMissing;

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');

/** A hang guard for a loaded two-core machine; a healthy room needs a small fraction of it. */
const WAIT = { timeout: 60_000 };

/** One person: the app in its own browser context. */
class Peer {
  /** Uncaught exceptions and console errors of the page. */
  readonly errors: string[] = [];

  private constructor(readonly name: string, readonly context: BrowserContext, readonly page: Page) {
    page.on('pageerror', (err) => this.errors.push(`${name}: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') this.errors.push(`${name}: ${msg.text()}`);
    });
  }

  static async open(browser: Browser, server: RunningServer, name: string, path = '/'): Promise<Peer> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const peer = new Peer(name, context, page);
    await page.goto(new URL(path, server.url).href);
    return peer;
  }

  /** Fills the join form and presses "Join room"; returns once the room screen shows. */
  async join(room: string, password = ''): Promise<void> {
    const { page } = this;
    await page.getByLabel('Room', { exact: true }).fill(room);
    await page.getByLabel('Your name').fill(this.name);
    if (password) await page.getByLabel(/^Password/).fill(password);
    await page.getByRole('button', { name: 'Join room' }).click();
    await page.waitForSelector('#room-status', WAIT);
  }

  /** This page's peer id (the peers panel lists it first, as "you"). */
  peerId(): Promise<string> {
    return this.page.$eval('#peers li:first-child', (li) => li.getAttribute('data-peer-id') ?? '');
  }

  /** What the page shows: the leader, every listed peer's role and connection, and the messages in order. */
  read(): Promise<{ leader: string; peers: { id: string; role: string; connection: string }[]; messages: { id: string; status: string; text: string }[] }> {
    return this.page.evaluate(() => ({
      leader: document.querySelector('#raft')?.getAttribute('data-leader') ?? '',
      peers: Array.from(document.querySelectorAll('#peers li')).map((li) => ({
        id: li.getAttribute('data-peer-id') ?? '', role: li.getAttribute('data-role') ?? '', connection: li.getAttribute('data-connection') ?? '',
      })),
      messages: Array.from(document.querySelectorAll('#messages li')).map((li) => ({
        id: li.getAttribute('data-id') ?? '', status: li.getAttribute('data-status') ?? '', text: li.querySelector('.message-text')?.textContent ?? '',
      })),
    }));
  }

  /** Types `text` in the composer and presses Enter, as a person sends a message. */
  async send(text: string): Promise<void> {
    const box = this.page.getByLabel('Message', { exact: true });
    await box.fill(text);
    await box.press('Enter');
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/**
 * Waits until every page lists exactly `ids`, all connected, one of them the leader on every page and the
 * others followers; returns the leader's id.
 */
async function waitForOneCluster(peers: readonly Peer[], ids: readonly string[]): Promise<string> {
  const want = [...ids].sort();
  for (const p of peers) {
    await p.page.waitForFunction((want) => {
      const lis = Array.from(document.querySelectorAll('#peers li'));
      const listed = lis.map((li) => li.getAttribute('data-peer-id')).sort();
      const roles = lis.map((li) => li.getAttribute('data-role'));
      const leader = document.querySelector('#raft')?.getAttribute('data-leader');
      return JSON.stringify(listed) === JSON.stringify(want)
        && lis.every((li) => ['self', 'connected'].includes(li.getAttribute('data-connection') ?? ''))
        && roles.filter((r) => r === 'leader').length === 1 && roles.filter((r) => r === 'follower').length === want.length - 1
        && lis.find((li) => li.getAttribute('data-role') === 'leader')?.getAttribute('data-peer-id') === leader;
    }, want, WAIT);
  }
  const leaders = new Set((await Promise.all(peers.map((p) => p.read()))).map((v) => v.leader));
  assert.equal(leaders.size, 1, `every page names the same leader: ${[...leaders].join(', ')}`);
  return [...leaders][0]!;
}

describe('the room app in Chromium', { skip }, () => {
  let server: RunningServer;
  let browser: Browser;
  const open: Peer[] = [];
  /** The room of the first test, for the reload test that follows it. */
  let three: { peers: Peer[]; ids: string[]; order: string[] } | null = null;
  /** The two peers left after the failover test, for the Leave test. */
  let two: Peer[] | null = null;
  /** The one peer of the blue room, for the second-tab test. */
  let alone: Peer | null = null;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ port: 0, server: { logLevel: 'error' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
  });

  after(async () => {
    for (const p of open) await p.close().catch(() => {});
    await browser?.close();
    await server?.close();
  });

  it('three peers join through the UI, elect one leader, and see 30 concurrent messages in one order', async () => {
    const peers: Peer[] = [];
    for (const name of ['Ada', 'Brian', 'Chloé']) {
      const p = await Peer.open(browser, server, name);
      open.push(p);
      peers.push(p);
      await p.join('e2e-three');
    }
    const ids = await Promise.all(peers.map((p) => p.peerId()));
    assert.equal(new Set(ids).size, 3, `three distinct peer ids: ${ids.join(', ')}`);
    const leader = await waitForOneCluster(peers, ids);
    assert.ok(ids.includes(leader), `the leader ${leader} is one of the three`);

    // Ten messages from each page at once, typed into the composer and sent with Enter.
    const texts = (p: Peer) => Array.from({ length: 10 }, (_, i) => `${p.name} says ${i + 1}`);
    await Promise.all(peers.map(async (p) => { for (const t of texts(p)) await p.send(t); }));

    for (const p of peers) {
      await p.page.waitForFunction(() => {
        const lis = Array.from(document.querySelectorAll('#messages li'));
        return lis.length === 30 && lis.every((li) => li.getAttribute('data-status') === 'committed');
      }, null, WAIT);
    }
    // 30 messages held: the leader posted the oldest 20 to the archive, then every peer dropped them from the
    // replicated chat (each page keeps showing them, marked archived).
    for (const p of peers) {
      await p.page.waitForFunction(() => document.querySelectorAll('#messages li[data-archived="true"]').length === 20, null, WAIT);
    }
    const views = await Promise.all(peers.map((p) => p.read()));
    const order = views[0]!.messages.map((m) => m.id);
    for (const [i, v] of views.entries()) {
      assert.deepEqual(v.messages.map((m) => m.id), order, `${peers[i]!.name} shows the messages in the same order as ${peers[0]!.name}`);
    }
    assert.deepEqual(
      views[0]!.messages.map((m) => m.text).sort(), peers.flatMap(texts).sort(), 'each of the 30 messages appears exactly once',
    );
    // Each sender's own messages keep the order it sent them in (one composer, one proposal after another).
    for (const p of peers) {
      const own = views[0]!.messages.map((m) => m.text).filter((t) => t.startsWith(`${p.name} says `));
      assert.deepEqual(own, texts(p), `${p.name}'s messages are in the order they were sent`);
    }

    await peers[0]!.page.screenshot({ path: join(ARTIFACTS, 'room-3-peers.png'), fullPage: true });
    await peers[1]!.page.setViewportSize({ width: 390, height: 844 });
    await peers[1]!.page.screenshot({ path: join(ARTIFACTS, 'room-3-peers-phone.png'), fullPage: true });
    await peers[1]!.page.setViewportSize({ width: 1280, height: 860 });
    for (const p of peers) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
    three = { peers, ids, order };
  });

  it('a reloaded peer comes back as the same peer with its history, and the chat goes on', async () => {
    assert.ok(three, 'needs the room of the previous test');
    const { peers, ids, order } = three;
    const again = peers[1]!;
    await again.page.reload();
    // The session in localStorage rejoins by itself: same peer id, the history from IndexedDB.
    await again.page.waitForSelector('#room-status', WAIT);
    assert.equal(await again.peerId(), ids[1], 'the reloaded page is the same peer');
    await again.page.waitForFunction((n) => document.querySelectorAll('#messages li[data-status="committed"]').length === n, order.length, WAIT);
    await waitForOneCluster(peers, ids);
    await again.send('back after a reload');
    for (const p of peers) {
      await p.page.waitForFunction((n) => {
        const lis = Array.from(document.querySelectorAll('#messages li'));
        return lis.length === n && lis.every((li) => li.getAttribute('data-status') === 'committed');
      }, order.length + 1, WAIT);
    }
    for (const p of peers) {
      const shown = (await p.read()).messages;
      assert.deepEqual(shown.slice(0, -1).map((m) => m.id), order, `${p.name} kept the 30 messages in their order`);
      assert.equal(shown.at(-1)?.text, 'back after a reload', `${p.name} shows the message sent after the reload last`);
    }
    for (const p of peers) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
  });

  it('the leader\'s tab is closed: the two others elect a new leader, lose nothing, and chat on', async () => {
    assert.ok(three, 'needs the room of the previous tests');
    const before = (await three.peers[0]!.read()).messages.map((m) => m.id);
    const leaderId = (await three.peers[0]!.read()).leader;
    const gone = three.peers[three.ids.indexOf(leaderId)]!;
    const rest = three.peers.filter((p) => p !== gone);
    // As a person closing the tab: `pagehide` runs (the page announces it is leaving and says goodbye), then it is gone.
    await gone.page.close({ runBeforeUnload: false });
    open.splice(open.indexOf(gone), 1);
    await gone.context.close();
    const restIds = await Promise.all(rest.map((p) => p.peerId()));
    const next = await waitForOneCluster(rest, restIds);
    assert.notEqual(next, leaderId, 'a new leader, not the closed page');
    await Promise.all(rest.map((p) => p.send(`${p.name} after the failover`)));
    for (const p of rest) {
      await p.page.waitForFunction((n) => {
        const lis = Array.from(document.querySelectorAll('#messages li'));
        return lis.length === n && lis.every((li) => li.getAttribute('data-status') === 'committed');
      }, before.length + 2, WAIT);
    }
    const views = await Promise.all(rest.map((p) => p.read()));
    for (const [i, v] of views.entries()) {
      assert.deepEqual(v.messages.slice(0, before.length).map((m) => m.id), before, `${rest[i]!.name} kept every committed message, in order`);
      assert.deepEqual(v.messages.map((m) => m.id), views[0]!.messages.map((m) => m.id), `${rest[i]!.name} agrees on the order after the failover`);
    }
    for (const p of rest) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
    two = rest;
  });

  it('the leader presses Leave: leadership moves to the other peer first, and no message is lost', async () => {
    assert.ok(two, 'needs the room of the previous test');
    const ids = await Promise.all(two.map((p) => p.peerId()));
    const leaderId = (await two[0]!.read()).leader;
    const leaver = two[ids.indexOf(leaderId)]!;
    const stayer = two.find((p) => p !== leaver)!;
    const stayerId = ids[two.indexOf(stayer)]!;
    const committed = (p: Peer, n: number) => p.page.waitForFunction((n) => {
      const lis = Array.from(document.querySelectorAll('#messages li'));
      return lis.length === n && lis.every((li) => li.getAttribute('data-status') === 'committed');
    }, n, WAIT);
    const count = (await leaver.read()).messages.length + 1;
    await leaver.send('goodbye from the leader');
    await committed(leaver, count);
    const before = (await leaver.read()).messages.map((m) => m.id);
    await leaver.page.getByRole('button', { name: 'Leave' }).click();
    // The leaver hands over, sees itself removed, and returns to the join screen.
    await leaver.page.waitForFunction(() => /You left/.test(document.querySelector('.notice')?.textContent ?? ''), null, WAIT);
    await stayer.page.waitForFunction((id) => {
      const lis = Array.from(document.querySelectorAll('#peers li'));
      return lis.length === 1 && lis[0]!.getAttribute('data-role') === 'leader' && document.querySelector('#raft')?.getAttribute('data-leader') === id;
    }, stayerId, WAIT);
    // Newest first. Handing over first means the one who stayed led before it removed the leaver; a leader
    // that removed itself instead would leave the removal older than the election that followed.
    const events = await stayer.page.locator('#events li').allInnerTexts();
    const led = events.findIndex((e) => /You lead/.test(e));
    const removed = events.findIndex((e) => e.includes(`${leaver.name} was removed from the cluster`));
    assert.ok(led >= 0 && removed >= 0, `the one who stayed leads and the leaver was removed: ${events.join(' | ')}`);
    assert.ok(removed < led, `leadership moved before the leaver was removed: ${events.join(' | ')}`);
    await committed(stayer, count);
    assert.deepEqual((await stayer.read()).messages.map((m) => m.id), before, 'nothing committed was lost, the leader\'s last message included');
    await stayer.send('alone now');
    await committed(stayer, count + 1);
    for (const p of two) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
  });

  it('the leader\'s renderer crashes (no pagehide): the two others elect a new leader and chat on', async () => {
    const peers: Peer[] = [];
    for (const name of ['Uma', 'Vic', 'Wes']) {
      const p = await Peer.open(browser, server, name);
      open.push(p);
      peers.push(p);
      await p.join('e2e-crash');
    }
    const ids = await Promise.all(peers.map((p) => p.peerId()));
    const leaderId = await waitForOneCluster(peers, ids);
    await Promise.all(peers.map((p) => p.send(`${p.name} before the crash`)));
    const committed = (p: Peer, n: number) => p.page.waitForFunction((n) => {
      const lis = Array.from(document.querySelectorAll('#messages li'));
      return lis.length === n && lis.every((li) => li.getAttribute('data-status') === 'committed');
    }, n, WAIT);
    for (const p of peers) await committed(p, 3);
    const before = (await peers[0]!.read()).messages.map((m) => m.id);
    const gone = peers[ids.indexOf(leaderId)]!;
    const rest = peers.filter((p) => p !== gone);
    // Kills the renderer: no unload handler, no goodbye; the others notice only through silence.
    const cdp = await gone.context.newCDPSession(gone.page);
    const crashed = gone.page.waitForEvent('crash', WAIT);
    // Not awaited: the session dies with the renderer, so the command is never answered.
    void cdp.send('Page.crash').catch(() => {});
    await crashed;
    // While the crashed peer is still a voter, two of three are a majority: the chat goes on at once.
    await Promise.all(rest.map((p) => p.send(`${p.name} after the crash`)));
    for (const p of rest) await committed(p, 5);
    const views = await Promise.all(rest.map((p) => p.read()));
    for (const [i, v] of views.entries()) {
      assert.notEqual(v.leader, leaderId, `${rest[i]!.name} follows a new leader`);
      assert.deepEqual(v.messages.slice(0, 3).map((m) => m.id), before, `${rest[i]!.name} kept the messages committed before the crash`);
      assert.deepEqual(v.messages.map((m) => m.id), views[0]!.messages.map((m) => m.id), `${rest[i]!.name} agrees on the order`);
    }
    // The leader removes the silent peer once its presence leaves or its grace period ends.
    await waitForOneCluster(rest, ids.filter((id) => id !== leaderId));
    for (const p of rest) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
    for (const p of peers) { await p.close(); open.splice(open.indexOf(p), 1); }
  });

  it('a fourth peer joining after 200 messages receives all of them, through a snapshot of the compacted log', async () => {
    const early = [await Peer.open(browser, server, 'Early'), await Peer.open(browser, server, 'Earlier'), await Peer.open(browser, server, 'Earliest')];
    open.push(...early);
    for (const p of early) await p.join('e2e-late');
    const earlyIds = await Promise.all(early.map((p) => p.peerId()));
    await waitForOneCluster(early, earlyIds);
    // 67 + 67 + 66 = 200, sent concurrently from the three.
    await Promise.all(early.map(async (p, k) => { for (let i = 1; i <= (k < 2 ? 67 : 66); i++) await p.send(`${p.name} #${i}`); }));
    const all200 = (p: Peer) => p.page.waitForFunction(() => {
      const lis = Array.from(document.querySelectorAll('#messages li'));
      return lis.length === 200 && lis.every((li) => li.getAttribute('data-status') === 'committed');
    }, null, WAIT);
    for (const p of early) await all200(p);
    const order = (await early[0]!.read()).messages.map((m) => m.id);
    const late = await Peer.open(browser, server, 'Late');
    open.push(late);
    await late.join('e2e-late');
    await waitForOneCluster([...early, late], [...earlyIds, await late.peerId()]);
    // All but the newest few were moved to the archive long ago: the late peer fetches them, a page at a time.
    await late.page.waitForSelector('#archive-bar', WAIT);
    for (let pages = 0; await late.page.$('#archive-bar'); pages++) {
      assert.ok(pages < 5, 'the archive comes in a few pages');
      if (pages === 0) await late.page.screenshot({ path: join(ARTIFACTS, 'archive-bar.png') });
      const earlier = Number(await late.page.getAttribute('#archive-bar', 'data-earlier'));
      await late.page.click('#load-earlier');
      await late.page.waitForFunction((n) => {
        const bar = document.querySelector('#archive-bar');
        return !bar || Number(bar.getAttribute('data-earlier')) < n || bar.querySelector('[role="alert"]');
      }, earlier, WAIT);
      assert.equal(await late.page.$('#archive-bar [role="alert"]'), null, 'the archive answered');
    }
    await all200(late);
    assert.deepEqual((await late.read()).messages.map((m) => m.id), order, 'the late peer shows the 200 messages in the same order');
    const raft = await late.page.evaluate(() => ({
      snapshot: Number(document.querySelector('#raft-snapshot')?.textContent), log: Number(document.querySelector('#raft-log')?.textContent),
      commit: Number(document.querySelector('#raft-commit')?.textContent),
    }));
    // Snapshots every 100 applied entries: the late peer got one from the leader and holds only the log after it.
    assert.ok(raft.snapshot >= 100, `the late peer's state starts from a snapshot: ${JSON.stringify(raft)}`);
    assert.ok(raft.log < raft.commit, `its log is shorter than the history: ${JSON.stringify(raft)}`);
    await late.page.screenshot({ path: join(ARTIFACTS, 'late-joiner.png') });
    for (const p of [...early, late]) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
    for (const p of [...early, late]) { await p.close(); open.splice(open.indexOf(p), 1); }
  });

  it('the signaling server goes away: the page says it is reconnecting, and the chat goes on over the mesh', async () => {
    // A server of its own, since this test stops it.
    const own = await startServer({ port: 0, server: { logLevel: 'silent' } });
    const pair = [await Peer.open(browser, own, 'Sam'), await Peer.open(browser, own, 'Tess')];
    open.push(...pair);
    try {
      for (const p of pair) await p.join('e2e-outage');
      await waitForOneCluster(pair, await Promise.all(pair.map((p) => p.peerId())));
      await own.close();
      for (const p of pair) {
        await p.page.waitForFunction(() => /Reconnecting to the signaling server/.test(document.querySelector('#room-status')?.textContent ?? ''), null, WAIT);
      }
      await Promise.all(pair.map((p) => p.send(`${p.name} without signaling`)));
      for (const p of pair) {
        await p.page.waitForFunction(() => {
          const lis = Array.from(document.querySelectorAll('#messages li'));
          return lis.length === 2 && lis.every((li) => li.getAttribute('data-status') === 'committed');
        }, null, WAIT);
      }
      for (const p of pair) {
        const events = await p.page.locator('#events li').allInnerTexts();
        assert.ok(events.some((e) => /Lost the signaling server/.test(e)), `${p.name}'s event log tells the outage: ${events.join(' | ')}`);
      }
      const [a, b] = await Promise.all(pair.map((p) => p.read()));
      assert.deepEqual(a!.messages.map((m) => m.id), b!.messages.map((m) => m.id), 'both pages show the two messages in one order');
      await pair[0]!.page.screenshot({ path: join(ARTIFACTS, 'signaling-down.png') });
      // The signaling client's failed reconnection attempts are logged by the browser as network errors.
      const ours = (p: Peer) => p.errors.filter((e) => !/WebSocket connection to .* failed/.test(e));
      for (const p of pair) assert.deepEqual(ours(p), [], `${p.name}'s page logged no error of its own`);
    } finally {
      for (const p of pair) { await p.close(); open.splice(open.indexOf(p), 1); }
    }
  });

  it('a wrong room password is refused with a message on screen', async () => {
    const owner = await Peer.open(browser, server, 'Owner');
    const guest = await Peer.open(browser, server, 'Guest');
    open.push(owner, guest);
    // Joining an unknown room creates it, with the password given.
    await owner.join('e2e-locked', 'open sesame');
    const alert = guest.page.locator('#join-error');
    await guest.page.getByLabel('Room', { exact: true }).fill('e2e-locked');
    await guest.page.getByLabel('Your name').fill(guest.name);
    await guest.page.getByLabel(/^Password/).fill('let me in');
    await guest.page.getByRole('button', { name: 'Join room' }).click();
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), /wrong password/i, 'the refusal says why');
    await guest.page.screenshot({ path: join(ARTIFACTS, 'join-refused.png') });
    assert.equal(await guest.page.locator('#room-status').count(), 0, 'the guest stays on the join screen');
    await guest.page.getByLabel(/^Password/).fill('');
    await guest.page.getByRole('button', { name: 'Join room' }).click();
    await guest.page.waitForFunction(() => /protected/i.test(document.querySelector('#join-error')?.textContent ?? ''), null, WAIT);
    await guest.join('e2e-locked', 'open sesame');
    const ids = [await owner.peerId(), await guest.peerId()];
    await waitForOneCluster([owner, guest], ids);
    // The browser itself logs each refused request (403) as a console error; nothing else may appear.
    const ours = (p: Peer) => p.errors.filter((e) => !/Failed to load resource: the server responded with a status of 403/.test(e));
    assert.deepEqual(ours(guest), [], 'the guest\'s page logged no error of its own');
    assert.deepEqual(owner.errors, [], 'the owner\'s page logged no error');
  });

  it('a shared link to a room that no longer exists says so, and a second Join creates it again', async () => {
    const p = await Peer.open(browser, server, 'Linda', '/?room=e2e-expired');
    open.push(p);
    assert.equal(await p.page.getByLabel('Room', { exact: true }).inputValue(), 'e2e-expired', 'the link fills in the room');
    await p.page.getByLabel('Your name').fill(p.name);
    await p.page.getByRole('button', { name: 'Join room' }).click();
    const alert = p.page.locator('#join-error');
    await alert.waitFor(WAIT);
    assert.match(await alert.innerText(), /No room of that name/, 'the page says the room is gone');
    await p.page.getByRole('button', { name: 'Join room' }).click();
    await p.page.waitForSelector('#room-status', WAIT);
    await waitForOneCluster([p], [await p.peerId()]);
    // The browser itself logs the refused request (404) as a console error; nothing else may appear.
    assert.deepEqual(p.errors.filter((e) => !/Failed to load resource: the server responded with a status of 404/.test(e)), [], 'no error of the page\'s own');
    await p.close();
    open.splice(open.indexOf(p), 1);
  });

  it('two rooms stay isolated', async () => {
    const red = [await Peer.open(browser, server, 'Rosa'), await Peer.open(browser, server, 'Ruben')];
    const blue = [await Peer.open(browser, server, 'Bea')];
    open.push(...red, ...blue);
    for (const p of red) await p.join('e2e-red');
    for (const p of blue) await p.join('e2e-blue');
    const redIds = await Promise.all(red.map((p) => p.peerId()));
    await waitForOneCluster(red, redIds);
    await waitForOneCluster(blue, [await blue[0]!.peerId()]);
    await red[1]!.send('only for red');
    await blue[0]!.send('only for blue');
    for (const [room, pages, text] of [['red', red, 'only for red'], ['blue', blue, 'only for blue']] as const) {
      for (const p of pages) {
        await p.page.waitForFunction((t) => Array.from(document.querySelectorAll('#messages li[data-status="committed"] .message-text')).some((e) => e.textContent === t), text, WAIT);
        const v = await p.read();
        assert.deepEqual(v.messages.map((m) => m.text), [text], `${p.name} in ${room} sees its room's message only`);
      }
    }
    for (const p of red) assert.deepEqual((await p.read()).peers.map((x) => x.id).sort(), [...redIds].sort(), `${p.name} lists red's peers only`);
    assert.equal((await blue[0]!.read()).peers.length, 1, 'Bea is alone in blue');
    for (const p of [...red, ...blue]) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
    alone = blue[0]!;
  });

  it('a second tab of the same browser joins the room as another peer', async () => {
    assert.ok(alone, 'needs the room of the previous test');
    // Same context, so the same localStorage session: the tab must not take over the first tab's peer.
    const page = await alone.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
    await page.goto(new URL('/?room=e2e-blue', server.url).href);
    await page.waitForSelector('#room-status', WAIT);
    const second = await page.$eval('#peers li:first-child', (li) => li.getAttribute('data-peer-id') ?? '');
    const first = await alone.peerId();
    assert.notEqual(second, first, 'the second tab is a peer of its own');
    await page.waitForFunction(() => document.querySelectorAll('#messages li[data-status="committed"]').length === 1, null, WAIT);
    assert.equal(await page.locator('#messages .message-text').innerText(), 'only for blue', 'the second tab receives the room\'s history');
    await alone.page.waitForFunction((id) => document.querySelector(`#peers li[data-peer-id="${id}"]`)?.getAttribute('data-role') === 'follower', second, WAIT);
    assert.deepEqual(errors, [], 'the second tab logged no error');
    assert.deepEqual(alone.errors, [], 'the first tab logged no error');

    // The browser's session is the second tab's now: once the first tab is gone for good, its database is
    // an orphan, and the next join in this browser deletes it (the second tab's own stays).
    const raftDatabases = () => page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name ?? '').filter((n) => n.startsWith('raftrtc.e2e-blue.')).sort());
    assert.deepEqual(await raftDatabases(), [`raftrtc.e2e-blue.${first}`, `raftrtc.e2e-blue.${second}`].sort(), 'one database per peer while both tabs are open');
    await alone.page.close();
    await page.reload();
    await page.waitForFunction(() => document.querySelectorAll('#messages li[data-status="committed"]').length === 1, null, WAIT);
    // The sweep runs after the join resolves: poll for it (waitForFunction takes no async predicate).
    for (const deadline = Date.now() + WAIT.timeout; (await raftDatabases()).length > 1 && Date.now() < deadline;) await page.waitForTimeout(100);
    assert.deepEqual(await raftDatabases(), [`raftrtc.e2e-blue.${second}`], 'the closed tab\'s database was swept; the live peer\'s kept');
    assert.deepEqual(errors, [], 'the second tab logged no error across the reload');
  });
});
