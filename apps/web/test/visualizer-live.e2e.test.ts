/**
 * The visualizer's live mode in Debian's Chromium (playwright-core): three people join a room of the real
 * app (one browser context each); one of them opens the Raft panel's "Open live view" link, which opens
 * `/visualizer?room=…&peer=…` as a new tab of the same browser (BroadcastChannel reaches only the tabs of one
 * origin in one browser profile). The live view must show the room as the room's own pages do: three nodes,
 * one leader (the room's), the room's term, commit indexes that follow the chat, the chat in the log tails,
 * and the observed peer's messages drawn; when the room tab closes, it must say it lost the feed.
 * Run through `node scripts/test.mjs` (WebRTC stays on loopback). Every wait is a hang guard, not a threshold.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from '../../../scripts/lib/chromium.js';
import { startServer, type RunningServer } from '../src/server.js';
import type { VizHandle } from '../src/visualizer/main.js';

const skip = chromiumMissing;

/** Screenshots go beside the room app's (ignored by git). */
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'packages', 'app', 'test', 'artifacts');

/** A hang guard for a loaded two-core machine. */
const WAIT = { timeout: 60_000 };

const ROOM = 'live-view';

/** One person's browser with the room app. */
interface Person {
  name: string;
  context: BrowserContext;
  page: Page;
  errors: string[];
}

/** Collects a page's uncaught exceptions and console errors. */
function watchErrors(page: Page, label: string, errors: string[]): void {
  page.on('pageerror', (err) => errors.push(`${label}: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`${label}: ${msg.text()}`);
  });
}

/** The live view's `state()`, read in the page. */
type VizState = ReturnType<VizHandle['state']>;

function vizState(page: Page): Promise<VizState> {
  return page.evaluate(() => window.__viz!.state());
}

/** What the room's page shows in its Raft panel. */
function roomRaft(page: Page): Promise<{ leader: string; term: number; commit: number }> {
  return page.$eval('#raft', (el) => ({
    leader: el.getAttribute('data-leader') ?? '',
    term: Number(el.getAttribute('data-term')),
    commit: Number(el.getAttribute('data-commit')),
  }));
}

describe('the visualizer fed by a live room, in Chromium', { skip }, () => {
  let server: RunningServer;
  let browser: Browser;
  const people: Person[] = [];
  let viz: Page;
  const vizErrors: string[] = [];
  let ids: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer({ port: 0, server: { logLevel: 'error' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
  });

  after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
    await browser?.close();
    await server?.close();
  });

  it('three peers join a room; the Raft panel opens the live view in a new tab', async () => {
    for (const name of ['Ada', 'Brian', 'Chloé']) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
      const page = await context.newPage();
      const person: Person = { name, context, page, errors: [] };
      watchErrors(page, name, person.errors);
      people.push(person);
      await page.goto(server.url);
      await page.getByLabel('Room', { exact: true }).fill(ROOM);
      await page.getByLabel('Your name').fill(name);
      await page.getByRole('button', { name: 'Join room' }).click();
      await page.waitForSelector('#room-status', WAIT);
    }
    ids = await Promise.all(people.map((p) => p.page.$eval('#peers li:first-child', (li) => li.getAttribute('data-peer-id') ?? '')));
    // The room is ready once every page sees three connected peers, one of them leading.
    for (const p of people) {
      await p.page.waitForFunction(() => {
        const lis = Array.from(document.querySelectorAll('#peers li'));
        return lis.length === 3 && lis.every((li) => ['self', 'connected'].includes(li.getAttribute('data-connection') ?? ''))
          && lis.filter((li) => li.getAttribute('data-role') === 'leader').length === 1;
      }, null, WAIT);
    }

    const ada = people[0]!;
    const [page] = await Promise.all([ada.context.waitForEvent('page'), ada.page.click('#raft-live')]);
    viz = page;
    watchErrors(viz, 'live view', vizErrors);
    await viz.waitForLoadState();
    const url = new URL(viz.url());
    assert.equal(url.pathname, '/visualizer', `the link opens the visualizer: ${viz.url()}`);
    assert.equal(url.searchParams.get('room'), ROOM, 'for this room');
    assert.equal(url.searchParams.get('peer'), ids[0], 'as seen by the peer whose panel was clicked');
  });

  it('shows the three nodes, the room\'s one leader and its term', async () => {
    await viz.waitForFunction((n) => {
      const s = window.__viz?.state();
      return s?.feed === 'live' && s.nodes.length === n && s.nodes.every((x) => x.alive)
        && s.nodes.filter((x) => x.shown === 'leader').length === 1;
    }, ids.length, WAIT);
    // Other peers' statuses arrive about once a second: wait until the view and the room agree.
    await viz.waitForFunction((ids) => {
      const s = window.__viz!.state();
      return JSON.stringify(s.nodes.map((x) => x.id).sort()) === JSON.stringify([...ids].sort());
    }, ids, WAIT);
    const room = await roomRaft(people[0]!.page);
    const handle = await viz.waitForFunction(({ leader, term }) => {
      const s = window.__viz!.state();
      const leaders = s.nodes.filter((x) => x.shown === 'leader').map((x) => x.id);
      return leaders.length === 1 && leaders[0] === leader && s.leader === leader && s.nodes.every((x) => x.term === term) ? s : null;
    }, room, WAIT).catch(async () => {
      assert.fail(`the live view agrees with the room (leader ${room.leader}, term ${room.term}): ${JSON.stringify((await vizState(viz)).nodes.map((n) => [n.id, n.shown, n.term]))}`);
    });
    const state = (await handle.jsonValue()) as VizState;
    assert.equal(state.nodes.filter((n) => n.shown === 'follower').length, 2, 'the two others follow');
    // The page draws the same: three nodes on the ring, the leader crowned, the peers' names.
    assert.equal(await viz.locator('#cluster [data-node]').count(), 3, 'three nodes drawn');
    assert.deepEqual(await viz.$$eval('#cluster [data-node][data-role="leader"]', (els) => els.map((e) => e.getAttribute('data-node'))), [room.leader]);
    assert.deepEqual(state.nodes.map((n) => n.name).sort(), ['Ada', 'Brian', 'Chloé'], 'nodes carry the peers\' names');
    const banner = await viz.textContent('#live-banner');
    assert.match(banner ?? '', new RegExp(`Live: room ${ROOM}, as seen by Ada`), `the banner says whose view it is: ${banner}`);
    assert.equal(await viz.getAttribute('#live-banner', 'data-feed'), 'live');
    assert.equal(await viz.isVisible('#request'), false, 'no simulated client requests on a real room');
    assert.equal(await viz.isVisible('#crash'), false, 'no crash button on a real room');
    assert.equal(await viz.isVisible('#play'), false, 'no time controls on a real room');
  });

  it('follows the chat: commit indexes advance on every node and the messages reach the log tails', async () => {
    const before = await vizState(viz);
    const start = Math.max(...before.nodes.map((n) => n.commit));
    const brian = people[1]!;
    const box = brian.page.getByLabel('Message', { exact: true });
    for (let i = 1; i <= 3; i++) {
      await box.fill(`live ${i}`);
      await box.press('Enter');
    }
    await brian.page.waitForFunction(() => Array.from(document.querySelectorAll('#messages li'))
      .filter((li) => li.getAttribute('data-status') === 'committed').length === 3, null, WAIT);
    const after = await roomRaft(people[0]!.page);
    assert.ok(after.commit >= start + 3, `the room committed three entries: ${start} → ${after.commit}`);
    await viz.waitForFunction(({ commit }) => {
      const s = window.__viz!.state();
      return s.nodes.length === 3 && s.nodes.every((n) => n.commit >= commit);
    }, { commit: after.commit }, WAIT).catch(async () => {
      assert.fail(`every node's commit reaches ${after.commit}: ${JSON.stringify((await vizState(viz)).nodes.map((n) => [n.name, n.commit]))}`);
    });
    // The leader reports how far each follower's log matches its own.
    await viz.waitForFunction(({ commit }) => {
      const s = window.__viz!.state();
      const leader = s.nodes.find((n) => n.id === s.leader);
      const matched = Object.entries(leader?.progress ?? {}).filter(([id]) => id !== s.leader);
      return matched.length === 2 && matched.every(([, p]) => p.match >= commit);
    }, { commit: after.commit }, WAIT);
    const state = await vizState(viz);
    for (const n of state.nodes) {
      const labels = n.entries.map((e) => e.label);
      for (let i = 1; i <= 3; i++) assert.ok(labels.includes(`Brian: live ${i}`), `${n.name}'s log tail holds "Brian: live ${i}": ${labels.join(' | ')}`);
    }
    // The log rows show the same: committed cells up to the commit index, on each of the three rows.
    assert.equal(await viz.locator('#logs [data-node]').count(), 3, 'one log row per node');
    await viz.waitForSelector(`#logs [data-node="${ids[1]}"] .cell.is-committed`, WAIT);
  });

  it('draws the observed peer\'s messages in flight', async () => {
    const handle = await viz.waitForFunction((self) => {
      const flights = window.__viz!.state().flights;
      return flights.length > 0 && flights.every((f) => f.from === self || f.to === self) ? flights : null;
    }, ids[0], WAIT);
    const flights = (await handle.jsonValue()) as VizState['flights'];
    assert.ok(flights.every((f) => ids.includes(f.from) && ids.includes(f.to)), `messages go between the room's peers: ${JSON.stringify(flights.slice(0, 3))}`);
    await viz.waitForSelector('#cluster .messages .msg', WAIT);
    await viz.screenshot({ path: join(ARTIFACTS, 'visualizer-live.png') });
    await viz.setViewportSize({ width: 390, height: 844 });
    await viz.screenshot({ path: join(ARTIFACTS, 'visualizer-live-phone.png'), fullPage: true });
    await viz.setViewportSize({ width: 1280, height: 860 });
  });

  it('follows the room tab through a reload: the feed is lost, then resumes as the same peer', async () => {
    const ada = people[0]!;
    // A reload runs `pagehide` (the client closes and its feed says goodbye), then rejoins as the same peer.
    await ada.page.reload();
    await viz.waitForFunction(() => window.__viz!.state().feed === 'lost', null, WAIT);
    await ada.page.waitForSelector('#room-status', WAIT);
    await viz.waitForFunction((n) => {
      const s = window.__viz!.state();
      return s.feed === 'live' && s.nodes.length === n && s.nodes.filter((x) => x.shown === 'leader').length === 1;
    }, ids.length, WAIT);
    assert.equal(await viz.getAttribute('#live-banner', 'data-feed'), 'live', 'the banner says live again');
  });

  it('says it lost the feed when the room tab closes', async () => {
    const ada = people[0]!;
    // As a person closing the tab: `pagehide` runs, the client closes, and its feed says goodbye.
    await ada.page.close({ runBeforeUnload: false });
    await viz.waitForFunction(() => window.__viz!.state().feed === 'lost', null, WAIT);
    assert.equal(await viz.getAttribute('#live-banner', 'data-feed'), 'lost');
    const banner = await viz.textContent('#live-banner');
    assert.match(banner ?? '', /Lost the feed/, `the banner says so: ${banner}`);
    assert.equal((await vizState(viz)).flights.length, 0, 'nothing is drawn moving any more');
    await viz.waitForFunction(() => Array.from(document.querySelectorAll('#events .event-text'))
      .some((e) => e.textContent?.includes('the live view stopped')), null, WAIT);
    await viz.screenshot({ path: join(ARTIFACTS, 'visualizer-live-lost.png') });
  });

  it('says it is waiting when no room tab publishes', async () => {
    const page = await people[1]!.context.newPage();
    const errors: string[] = [];
    watchErrors(page, 'waiting view', errors);
    await page.goto(`${server.url}visualizer?room=${ROOM}&peer=nobody-here`);
    await page.waitForSelector('#stage-empty:not([hidden])', WAIT);
    assert.match(await page.textContent('#stage-empty') ?? '', /Waiting for the room tab/);
    assert.equal(await page.getAttribute('#live-banner', 'data-feed'), 'waiting');
    assert.match(await page.textContent('#live-banner') ?? '', /Waiting for the room tab/);
    const state = await vizState(page);
    assert.deepEqual([state.feed, state.flights.length], ['waiting', 0], 'nothing is made up');
    assert.deepEqual(state.nodes.map((n) => [n.id, n.shown]), [], 'no nodes before a frame');
    await page.screenshot({ path: join(ARTIFACTS, 'visualizer-live-waiting.png') });
    await page.close();
    assert.deepEqual(errors, [], 'the waiting view logged no error');
  });

  it('logged no error on any page', () => {
    assert.deepEqual(vizErrors, [], 'the live view logged no error');
    for (const p of people) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
  });
});
