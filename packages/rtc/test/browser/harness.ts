/**
 * The Node.js side of the room page (`room-page.ts`), shared by the Chromium tests and `bench/rtc.ts`: esbuild
 * bundles the page into memory, the real `@raftrtc/server` serves it through its `fallback` beside the token
 * API and the signaling WebSocket (one origin, so the page needs no URL), and Debian's Chromium opens it, one
 * browser context per peer. WebRTC must stay on loopback: run all of this inside a loopback-only network
 * namespace (`scripts/test.mjs` and `bench/rtc.ts` do).
 * @module
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_ARGS, bundleForBrowser } from '../../../../scripts/lib/chromium.js';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type RaftRtcServer, type ServerOptions } from '@raftrtc/server';
import type { JoinOptions, JoinTimeline, RoomSnapshot, RoomWindow } from './room-api.js';

export { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from '../../../../scripts/lib/chromium.js';

const browserDir = dirname(fileURLToPath(import.meta.url));

const PAGE = '<!doctype html><meta charset="utf-8"><title>RaftRTC room</title><link rel="icon" href="data:,"><script type="module" src="/room-page.js"></script>\n';

/** Bundles `room-page.ts` into memory with the repository's path mappings (the packages' sources). */
export function bundleRoomPage(): Promise<Uint8Array> {
  return bundleForBrowser(join(browserDir, 'room-page.ts'));
}

/**
 * Starts the signaling server on 127.0.0.1 at a free port, serving the room page at `/` through its
 * `fallback`. `options` override the server's defaults (the fallback excepted).
 */
export async function startRoomServer(options: ServerOptions = {}): Promise<RaftRtcServer> {
  const js = await bundleRoomPage();
  const server = createServer({
    logLevel: 'error',
    ...options,
    fallback: (req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const body = path === '/' ? PAGE : path === '/room-page.js' ? js : null;
      if (body === null) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
        return;
      }
      res.writeHead(200, {
        'content-type': path === '/' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8',
        'cache-control': 'no-store',
        // Cross-origin isolation: Chromium then coarsens performance.now() to 5 µs instead of 100 µs, which
        // the benchmark's sub-millisecond round trips need. The page loads nothing from other origins.
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(body);
    },
  });
  await server.listen(0, '127.0.0.1');
  return server;
}

/** Launches headless Chromium with {@link CHROMIUM_ARGS}. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
}

/**
 * One peer: the room page in its own browser context (its own cookies, storage and WebRTC stack state, as a
 * separate user's browser would have), with typed calls into `window.raftRoom`.
 */
export class RoomPage {
  /** Uncaught exceptions and console errors of the page. */
  readonly errors: string[] = [];
  /** Set by {@link join}. */
  peerId = '';
  name = '';

  private constructor(readonly context: BrowserContext, readonly page: Page) {
    page.on('pageerror', (err) => this.errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') this.errors.push(msg.text());
      if (process.env.RTC_DEBUG) console.error(`[page ${this.name || '?'}] ${msg.text()}`);
    });
  }

  /** Opens the room page of `server` in a new context of `browser` and waits for its module to run. */
  static async open(browser: Browser, server: RaftRtcServer): Promise<RoomPage> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const room = new RoomPage(context, page);
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => (globalThis as RoomWindow).raftRoom !== undefined, null, { timeout: 30_000 });
    return room;
  }

  async join(options: JoinOptions): Promise<string> {
    this.name = options.name;
    this.peerId = (await this.page.evaluate((o) => (globalThis as RoomWindow).raftRoom!.join(o), options)).peerId;
    return this.peerId;
  }

  snapshot(): Promise<RoomSnapshot> {
    return this.page.evaluate(() => (globalThis as RoomWindow).raftRoom!.snapshot());
  }

  propose(text: string): Promise<void> {
    return this.page.evaluate((t) => (globalThis as RoomWindow).raftRoom!.propose(t), text);
  }

  timeline(): Promise<JoinTimeline> {
    return this.page.evaluate(() => (globalThis as RoomWindow).raftRoom!.timeline());
  }

  ping(peer: string, samples: number, warmup: number, padBytes: number): Promise<number[]> {
    return this.page.evaluate((a) => (globalThis as RoomWindow).raftRoom!.ping(a.peer, a.samples, a.warmup, a.padBytes), { peer, samples, warmup, padBytes });
  }

  makePayload(bytes: number): Promise<void> {
    return this.page.evaluate((n) => (globalThis as RoomWindow).raftRoom!.makePayload(n), bytes);
  }

  sendFileTimed(peer: string): Promise<number> {
    return this.page.evaluate((p) => (globalThis as RoomWindow).raftRoom!.sendFileTimed(p), peer);
  }

  bareSendTimed(): Promise<number> {
    return this.page.evaluate(() => (globalThis as RoomWindow).raftRoom!.bareSendTimed());
  }

  /** Connects a bare `RTCPeerConnection` from this page to `other`, the test relaying the SDP (no trickle). */
  async connectBare(other: RoomPage): Promise<void> {
    const offer = await this.page.evaluate(() => (globalThis as RoomWindow).raftRoom!.bareOffer());
    const answer = await other.page.evaluate((sdp) => (globalThis as RoomWindow).raftRoom!.bareAnswer(sdp), offer);
    await Promise.all([
      this.page.evaluate((sdp) => (globalThis as RoomWindow).raftRoom!.bareAccept(sdp), answer),
      other.page.evaluate(() => (globalThis as RoomWindow).raftRoom!.bareOpen()),
    ]);
  }

  /** Closes the page without running its unload handlers: to the others, a tab that crashed or was killed. */
  async crash(): Promise<void> {
    await this.page.close({ runBeforeUnload: false });
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}
