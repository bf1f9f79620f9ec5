// Media between two Chromium pages (fake camera and microphone): both enable camera and microphone at the same
// moment after the data channels are up; the remote video decodes on both pages and the channels keep working.
// Needs Debian's chromium and the loopback-only namespace of scripts/test.mjs.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type RaftRtcServer } from '@raftrtc/server';
import { CHROMIUM, CHROMIUM_ARGS, bundleForBrowser, chromiumMissing } from '../../../scripts/lib/chromium.js';
import type { MediaSnapshot, MediaTestApi } from './media-page.ts';
import { token } from './helpers.ts';

const here = dirname(fileURLToPath(import.meta.url));
const missing = chromiumMissing;
const HTML = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/media-page.js"></script>\n';

let browser: Browser | null = null;
let server: RaftRtcServer | null = null;

before(async () => {
  if (missing) return;
  const js = await bundleForBrowser(join(here, 'media-page.ts'));
  server = createServer({
    logLevel: 'error',
    fallback: (req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const body = path === '/' ? HTML : path === '/media-page.js' ? js : null;
      if (body === null) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': path === '/' ? 'text/html' : 'text/javascript' }).end(body);
    },
  });
  await server.listen(0, '127.0.0.1');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, '--use-fake-device-for-media-stream'] });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

type MediaWindow = { mediaTest: MediaTestApi };

async function open(name: string): Promise<{ page: Page; id: string }> {
  const context = await browser!.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] ${e.message}`));
  if (process.env.RTC_DEBUG) page.on('console', (m) => console.error(`[${name}] ${m.text()}`));
  await page.goto(`${server!.url}/`);
  await page.waitForFunction(() => (globalThis as unknown as MediaWindow).mediaTest !== undefined);
  const t = await token(server!, 'media', name);
  await page.evaluate((j) => (globalThis as unknown as MediaWindow).mediaTest.join(j), { url: t.url, room: 'media', peerId: t.peerId, token: t.token, subscriptionToken: t.subscriptionToken });
  return { page, id: t.peerId };
}

const snap = (p: Page): Promise<MediaSnapshot> => p.evaluate(() => (globalThis as unknown as MediaWindow).mediaTest.snapshot());

/** Polls both pages until `cond` holds; a hang guard, not a threshold. */
async function until(pages: [Page, Page], cond: (a: MediaSnapshot, b: MediaSnapshot) => boolean, what: string): Promise<[MediaSnapshot, MediaSnapshot]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const s = await Promise.all([snap(pages[0]), snap(pages[1])]);
    if (cond(...s)) return s;
    if (Date.now() > deadline && process.env.RTC_DEBUG) {
      console.error('A', await pages[0].evaluate(async () => { const w = globalThis as unknown as MediaWindow; return w.mediaTest.debug(w.mediaTest.snapshot().connected[0]!); }));
      console.error('B', await pages[1].evaluate(async () => { const w = globalThis as unknown as MediaWindow; return w.mediaTest.debug(w.mediaTest.snapshot().connected[0]!); }));
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}: a=${JSON.stringify(s[0])} b=${JSON.stringify(s[1])}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('two pages enable camera and microphone at once: each receives the other\'s stream and its video decodes', { skip: missing }, async () => {
  const a = await open('a');
  const b = await open('b');
  const pages: [Page, Page] = [a.page, b.page];
  await until(pages, (sa, sb) => sa.connected.includes(b.id) && sb.connected.includes(a.id), 'the data channels');
  // Both renegotiate at the same moment: negotiationneeded fires on both sides of the one connection.
  // Both at once: each swaps tracks into transceivers every connection has carried from the start, so
  // nothing is renegotiated and nothing can collide.
  await Promise.all(pages.map((p) => p.evaluate(() => (globalThis as unknown as MediaWindow).mediaTest.enable(true, true))));
  const decoded = (s: MediaSnapshot, from: string) => s.streams.some((r) => r.peer === from && r.kinds.join() === 'audio,video' && r.videoWidth > 0);
  await until(pages, (x, y) => decoded(x, b.id) && decoded(y, a.id), 'decoded remote video on both pages');
  assert.ok(await a.page.evaluate((peer) => (globalThis as unknown as MediaWindow).mediaTest.send(peer, 'after media'), b.id), 'a → b sent after renegotiation');
  const [fa, fb] = await until(pages, (_x, y) => y.messages.includes('after media'), 'the message after renegotiation');
  assert.deepEqual([fa.errors, fb.errors], [[], []], 'no warnings on either page');
});
