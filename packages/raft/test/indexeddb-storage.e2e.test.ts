/**
 * IndexedDBStorage in a real browser (Debian's Chromium, driven by playwright-core): esbuild bundles the
 * browser port of the Storage conformance suite (`browser/storage-conformance.ts`) with IndexedDBStorage
 * into memory, a tiny HTTP server on 127.0.0.1 serves it (IndexedDB needs a real origin; about:blank and
 * file: have none), and every case runs in the page, each reported here as its own test with the page's
 * error. A reload (a new JS context) then reads back what the previous page wrote, and a relaunched
 * browser reads back what a page wrote just before its browser was killed with SIGKILL.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS, bundleForBrowser, chromiumMissing } from '../../../scripts/lib/chromium.js';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { IndexedDBStorage, StorageUnavailableError } from '../src/node/indexeddb-storage.js';
import type { StorageState } from '../src/node/storage.js';
import type { RaftStorageTests } from './browser/indexeddb-page.js';
import { PERSISTED_STATE, freshDbName, indexedDBStorageCases } from './browser/storage-conformance.js';

const skip = chromiumMissing;

const testDir = dirname(fileURLToPath(import.meta.url));

/** A guard against a hung page, not a performance bound: each case takes milliseconds. */
const HANG_GUARD = { timeout: 60_000 };

const ARGS = [...CHROMIUM_ARGS];

const PAGE = '<!doctype html><meta charset="utf-8"><title>IndexedDBStorage conformance</title><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>\n';

/** Bundles the page's entry point into memory. */
function bundlePage(): Promise<Uint8Array> {
  return bundleForBrowser(join(testDir, 'browser', 'indexeddb-page.ts'));
}

/** Serves the page and its bundle on 127.0.0.1 at a free port. */
async function serve(js: Uint8Array): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const body = path === '/' ? PAGE : path === '/page.js' ? js : null;
    if (body === null) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': path === '/' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(body);
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** Waits until the page's module has run and exposed its cases. */
async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => 'raftStorageTests' in globalThis, null, { timeout: 30_000 });
}

/**
 * The pid of the main Chromium process this test launched on `userDataDir` (the one without `--type=`:
 * the others are its renderers and helpers), found through /proc since playwright does not expose it
 * for a persistent context.
 */
async function browserPid(userDataDir: string): Promise<number> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let args: string[];
    try {
      args = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue; // exited meanwhile, or not ours to read
    }
    if (args.includes(`--user-data-dir=${userDataDir}`) && !args.some((a) => a.startsWith('--type='))) found.push(Number(name));
  }
  assert.equal(found.length, 1, `exactly one main Chromium process on ${userDataDir}, found ${found.join(', ') || 'none'}`);
  return found[0]!;
}

/** The case names, computed here without a browser: constructing the cases touches no IndexedDB. */
const caseNames = indexedDBStorageCases().map((c) => c.name);

describe('IndexedDBStorage outside a browser', () => {
  it('throws StorageUnavailableError at construction when there is no IndexedDB (as in Node.js)', () => {
    assert.ok(!('indexedDB' in globalThis), 'this Node.js has no IndexedDB');
    assert.throws(() => new IndexedDBStorage({ name: 'x' }), StorageUnavailableError);
    return assert.rejects(IndexedDBStorage.destroy('x'), StorageUnavailableError);
  });
});

describe('IndexedDBStorage in Chromium', { skip }, () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let url: string;
  const errors: string[] = [];

  before(async () => {
    const served = await serve(await bundlePage());
    server = served.server;
    url = served.url;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
    });
    page = await browser.newPage();
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(url);
    await ready(page);
  });

  after(async () => {
    await browser?.close();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((done) => server!.close(() => done()));
    }
  });

  it('the page lists the same cases as Node.js computes', async () => {
    const names = await page.evaluate(() => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.names);
    assert.deepEqual(names, caseNames);
  });

  for (const name of caseNames) {
    it(name, HANG_GUARD, async () => {
      const outcome = await page.evaluate((n) => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.run(n), name);
      if (!outcome.ok) assert.fail(`in the page: ${outcome.error}`);
    });
  }

  it('what one page saved is loaded by the next after a reload (a new JS context)', HANG_GUARD, async () => {
    const db = freshDbName('reload');
    await page.evaluate((db) => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.writePersisted(db), db);
    // A marker on the old context shows the reload really gave a fresh one.
    await page.evaluate(() => { (globalThis as unknown as { oldContext: boolean }).oldContext = true; });
    await page.reload();
    await ready(page);
    assert.equal(await page.evaluate(() => 'oldContext' in globalThis), false, 'the reload started a new JS context');
    const state: StorageState = await page.evaluate((db) => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.readPersisted(db), db);
    assert.deepEqual(state, PERSISTED_STATE);
    await page.evaluate((db) => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.destroy(db), db);
  });

  it('the page reported no error', () => {
    assert.deepEqual(errors, []);
  });

  it('what resolved saves wrote survives SIGKILL of the whole browser (a persistent profile, relaunched)', HANG_GUARD, async () => {
    const userDataDir = await mkdtemp(join(tmpdir(), 'raftrtc-idb-profile-'));
    const launch = () => chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS });
    const open = async (ctx: BrowserContext): Promise<Page> => {
      const p = ctx.pages()[0] ?? await ctx.newPage();
      await p.goto(url);
      await ready(p);
      return p;
    };
    let ctx: BrowserContext | undefined;
    try {
      ctx = await launch();
      const db = freshDbName('crash');
      const p1 = await open(ctx);
      // The handle stays open: nothing but the resolved saves' own commits may make the data durable.
      await p1.evaluate((db) => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.writePersisted(db, { close: false }), db);
      const closed = new Promise<void>((done) => ctx!.once('close', () => done()));
      process.kill(await browserPid(userDataDir), 'SIGKILL');
      await closed;
      ctx = await launch();
      const p2 = await open(ctx);
      const state: StorageState = await p2.evaluate((db) => (globalThis as unknown as { raftStorageTests: RaftStorageTests }).raftStorageTests.readPersisted(db), db);
      assert.deepEqual(state, PERSISTED_STATE);
    } finally {
      await ctx?.close().catch(() => {});
      await rm(userDataDir, { recursive: true, force: true });
    }
  });
});
