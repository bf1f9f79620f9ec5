/**
 * The visualizer in a real browser (Debian's Chromium, driven by playwright-core): the RaftCore cluster
 * runs in the page, elects a leader, survives its crash, commits a client request everywhere, and keeps
 * working across a partition. Everything is observed through the page's DOM, as a user would see it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from '../../../scripts/lib/chromium.js';
import { startServer, type RunningServer } from '../src/server.js';

const skip = chromiumMissing;

/** Generous, for a loaded CI machine: at top speed an election takes well under a second. */
const WAIT = { timeout: 20_000 };

/** Ids of the nodes currently drawn with `role`. */
function nodesWithRole(page: Page, role: string): Promise<string[]> {
  return page.$$eval(`#cluster [data-node][data-role="${role}"]`, (els) => els.map((e) => e.getAttribute('data-node') ?? ''));
}

/** Waits until exactly one node is drawn as leader, other than `not`; returns it. */
async function waitForLeader(page: Page, not?: string): Promise<string> {
  const handle = await page.waitForFunction((not) => {
    const leaders = Array.from(document.querySelectorAll('#cluster [data-node][data-role="leader"]')).map((e) => e.getAttribute('data-node'));
    return leaders.length === 1 && leaders[0] !== not ? leaders[0] : null;
  }, not ?? null, WAIT);
  return (await handle.jsonValue()) as string;
}

/** Waits until `selector`'s text is `text`: the page redraws on its next animation frame, not at once. */
async function waitForText(page: Page, selector: string, text: string): Promise<void> {
  await page.waitForFunction(({ selector, text }) => document.querySelector(selector)?.textContent === text, { selector, text }, WAIT);
}

/** Waits until `selector` has attribute `name` equal to `value` (attached: a level link has an empty box). */
async function waitForAttr(page: Page, selector: string, name: string, value: string): Promise<void> {
  await page.waitForSelector(`${selector}[${name}="${value}"]`, { ...WAIT, state: 'attached' });
}

/** Selects node `id` by clicking it in the diagram. */
async function select(page: Page, id: string): Promise<void> {
  await page.click(`#cluster [data-node="${id}"]`);
  await waitForAttr(page, `#cluster [data-node="${id}"]`, 'data-selected', 'true');
}

/** Sends a client request and returns its log index. */
async function sendRequest(page: Page): Promise<number> {
  const before = await page.textContent('#request-status');
  await page.click('#request');
  // The status is drawn on the next animation frame, not during the click.
  await page.waitForFunction((before) => document.querySelector('#request-status')?.textContent !== before, before, WAIT);
  const index = await page.getAttribute('#request-status', 'data-index');
  assert.ok(index, `request refused: ${await page.textContent('#request-status')}`);
  return Number(index);
}

/** Waits until every live node's log row shows a commit index of at least `index`. */
async function waitForCommitEverywhere(page: Page, index: number): Promise<void> {
  await page.waitForFunction((index) => {
    const rows = Array.from(document.querySelectorAll('#logs [data-node]')).filter((r) => r.getAttribute('data-role') !== 'crashed');
    return rows.length > 0 && rows.every((r) => Number(r.getAttribute('data-commit')) >= index);
  }, index, WAIT);
}

describe('Raft visualizer in Chromium', { skip }, () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    server = await startServer({ port: 0 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(`${server.url}visualizer?seed=2024`);
    // Top speed through the slider, as a keyboard user would set it.
    await page.focus('#speed');
    await page.keyboard.press('End');
    assert.equal(await page.textContent('#speed-out'), '32×');
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('runs the cluster in the page and elects a leader', async () => {
    assert.equal(await page.textContent('#seed'), '2024');
    const leader = await waitForLeader(page);
    assert.equal(await page.textContent('#sum-leader'), leader);
    assert.equal((await nodesWithRole(page, 'follower')).length, 4);
    assert.equal(await page.getAttribute('#sum-safety', 'data-ok'), 'true');
  });

  it('draws messages in flight', async () => {
    await page.waitForSelector('#cluster .messages .msg', WAIT);
  });

  it('elects a new leader when the leader crashes', async () => {
    const old = await waitForLeader(page);
    await select(page, old);
    await waitForText(page, '#crash', `Crash ${old}`);
    await page.click('#crash');
    await waitForAttr(page, `#cluster [data-node="${old}"]`, 'data-role', 'crashed');
    const next = await waitForLeader(page, old);
    assert.notEqual(next, old);
    const terms = await page.$$eval('#cluster [data-node]', (els) => els.map((e) => Number(e.getAttribute('data-term'))));
    assert.ok(Number(await page.getAttribute(`#cluster [data-node="${next}"]`, 'data-term')) >= Math.max(...terms));
  });

  it('commits a client request on every live node, and on the crashed one once it restarts', async () => {
    const index = await sendRequest(page);
    await waitForAttr(page, '#request-status', 'data-state', 'committed');
    await waitForCommitEverywhere(page, index);
    const crashed = await nodesWithRole(page, 'crashed');
    assert.equal(crashed.length, 1);
    await select(page, crashed[0]);
    await waitForText(page, '#crash', `Restart ${crashed[0]}`);
    await page.click('#crash');
    await waitForText(page, '#crash', `Crash ${crashed[0]}`);
    await page.waitForFunction(
      ({ id, index }) => Number(document.querySelector(`#logs [data-node="${id}"]`)?.getAttribute('data-commit')) >= index,
      { id: crashed[0], index }, WAIT,
    );
  });

  it('brings a node that missed a compaction up to date with a snapshot', async () => {
    const leader = await waitForLeader(page);
    const follower = (await nodesWithRole(page, 'follower'))[0];
    await select(page, follower);
    await page.click('#crash');
    await waitForAttr(page, `#cluster [data-node="${follower}"]`, 'data-role', 'crashed');
    // The simulated nodes compact every 16 applied entries.
    let index = 0;
    for (let i = 0; i < 20; i++) index = await sendRequest(page);
    await waitForCommitEverywhere(page, index);
    assert.equal(await waitForLeader(page), leader);
    await page.click('#crash');
    await page.waitForFunction((id) => Array.from(document.querySelectorAll('#events .event-text'))
      .some((e) => e.textContent?.startsWith(`${id} installed a snapshot`)), follower, WAIT);
    await waitForCommitEverywhere(page, index);
    await page.waitForSelector(`#logs [data-node="${follower}"] .cell-snapshot`, WAIT);
  });

  it('cuts and mends a link by clicking it', async () => {
    const link = '#cluster [data-link="n1-n2"]';
    await page.click(link);
    await waitForAttr(page, link, 'data-state', 'cut');
    await page.click(link);
    await waitForAttr(page, link, 'data-state', 'open');
  });

  it('isolates a node and reconnects it', async () => {
    await select(page, 'n3');
    await page.click('#isolate');
    await waitForAttr(page, '#cluster [data-node="n3"]', 'data-isolated', 'true');
    await waitForAttr(page, '#cluster [data-link="n3-n4"]', 'data-state', 'down');
    await page.click('#isolate');
    await waitForAttr(page, '#cluster [data-link="n3-n4"]', 'data-state', 'open');
  });

  it('keeps committing in the majority of a partition, and converges once healed', async () => {
    const old = await waitForLeader(page);
    await page.click('#split');
    // A 2 | 3 split cuts six of the ten links.
    await page.waitForFunction(() => document.querySelectorAll('#cluster [data-link][data-state="cut"]').length === 6, null, WAIT);
    // The old leader is in the minority: the majority elects another, in a higher term.
    await page.waitForFunction((old) => {
      const leaders = Array.from(document.querySelectorAll('#cluster [data-node][data-role="leader"]'));
      return leaders.some((e) => e.getAttribute('data-node') !== old);
    }, old, WAIT);
    const index = await sendRequest(page);
    await waitForAttr(page, '#request-status', 'data-state', 'committed');

    await page.click('#heal');
    await page.waitForFunction(() => document.querySelectorAll('#cluster [data-link][data-state="cut"]').length === 0, null, WAIT);
    await waitForLeader(page);
    await waitForCommitEverywhere(page, index);
    await page.waitForFunction(() => {
      const terms = Array.from(document.querySelectorAll('#cluster [data-node]')).map((e) => e.getAttribute('data-term'));
      return new Set(terms).size === 1;
    }, null, WAIT);
  });

  it('pauses, steps one message event at a time, and resumes', async () => {
    await page.click('#play');
    await waitForText(page, '#play .btn-label', 'Play');
    const clock = await page.textContent('#clock');
    const traffic = await page.textContent('#traffic');
    await page.waitForTimeout(200);
    assert.equal(await page.textContent('#clock'), clock, 'time stands still while paused');
    assert.equal(await page.textContent('#traffic'), traffic);
    // A step sends, delivers or loses at least one message.
    await page.click('#step');
    await page.waitForFunction((before) => document.getElementById('traffic')?.textContent !== before, traffic, WAIT);
    await page.click('#play');
    await waitForText(page, '#play .btn-label', 'Pause');
  });

  it('reported no error and every safety check held', async () => {
    assert.deepEqual(errors, []);
    assert.equal(await page.getAttribute('#sum-safety', 'data-ok'), 'true');
  });
});
