/**
 * `npm run bench -- room`: the room app of `npm start` (React UI, RaftNode on IndexedDB, WebRTC) in Debian's
 * Chromium, 3 and 5 peers on one room, each peer a browser context of its own joined through the join screen,
 * as in `packages/app/test/room.e2e.test.ts`. Three measurements:
 *
 * - **latency**: every page sends `--messages` messages through its composer, one at a time (the next once the
 *   last shows committed on its own page), all pages at once; per page, the time from a message's Enter on its
 *   sender's page to its `committed` state on this page, for every message of every sender: p50/p99 per page
 *   and over all pages.
 * - **throughput**: every page keeps `--in-flight` of its own messages uncommitted for `--seconds`; messages
 *   committed per second on each page during that window (the room sustains the slowest page's rate), and the
 *   latency under that load.
 * - **failover**: the leader's renderer is crashed (`--kill=crash`, no goodbye: the others notice through
 *   silence) or its tab closed (`--kill=close`: `pagehide` runs, as a person closing it); per kill, the time until
 *   every surviving page shows a new leader (`leaderMs`) and until a message sent by a survivor right after the
 *   kill shows committed on every survivor (`commitMs`). A fresh peer joins after each kill to keep the size.
 *
 * Messages are sent the way a person sends them, but from a script in the page: the composer's textarea gets
 * the text and an `input` event, then an Enter `keydown` (the app exposes no test hook, and driving each key
 * press from Node would cost two CDP round trips a message, capping the rate this measures). Times are page wall
 * clocks (`performance.timeOrigin + performance.now()`), comparable across the pages of one browser, read by a
 * `MutationObserver` when the DOM changes: what a person would see, React's rendering included.
 *
 * Options: `--peers=3,5 --messages=40 --seconds=10 --in-flight=16 --kills=5 --kill=crash`.
 * WebRTC must stay on loopback: like bench/rtc.ts, the bench re-runs itself inside a fresh loopback-only
 * network namespace (`lib/netns.ts`: `unshare -n`, as root) unless it already runs in one.
 * @module
 */
// Callbacks handed to the pages read the DOM; bench/tsconfig.build.json has no DOM lib of its own.
/// <reference lib="dom" />
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { RunningServer } from '../apps/web/src/server.js';
import { emit, listOption, numberOption, sig, type BenchOptions } from './lib/measure.js';
import { loopbackOnly, rerunIsolated } from './lib/netns.js';
import { median, quantile } from './lib/stats.js';

/** A hang guard for waits on the browser, not a bound on any figure. */
const WAIT = { timeout: 60_000, polling: 20 };

/** Wall clock, comparable with the pages' `performance.timeOrigin + performance.now()`. */
const wall = (): number => performance.timeOrigin + performance.now();

/** What {@link INSTRUMENT} puts on each page as `roomBench`. */
interface RoomBench {
  /** Page wall clock. */
  now(): number;
  /** Message text → when Enter was pressed for it on this page. */
  sent: Map<string, number>;
  /** Message text → when it first showed committed on this page. */
  committed: Map<string, number>;
  /** Every value `#raft[data-leader]` took, with when ('' while no leader is known). */
  leaders: { t: number; leader: string }[];
  send(text: string): Promise<void>;
  /**
   * Sends `<tag>:<i>` for i = 0, 1, … from `startAt` until `count` are sent or `until` passes, keeping at most
   * `inFlight` uncommitted on this page; resolves once all it sent are committed here, with how many.
   */
  run(tag: string, count: number, inFlight: number, startAt: number, until: number): Promise<number>;
}
/** Callbacks run in the page: they reach it as `(globalThis as unknown as InPage).roomBench`, no helper of this module. */
type InPage = { roomBench: RoomBench };

/**
 * Installed in a page once its room screen shows. Plain JavaScript in a string: functions handed to
 * `page.evaluate` are serialised from tsx's output, whose name-keeping helpers do not exist in the page.
 * Committed messages are recorded from mutation records, not by scanning the list, which holds thousands of
 * messages by the end of a throughput run.
 */
const INSTRUMENT = `(() => {
  const now = () => performance.timeOrigin + performance.now();
  const sent = new Map(), committed = new Map(), leaders = [], pending = new Set();
  let wake = null;
  const record = (li) => {
    if (li.getAttribute('data-status') !== 'committed') return;
    const text = li.querySelector('.message-text')?.textContent ?? '';
    if (committed.has(text)) return;
    committed.set(text, now());
    pending.delete(text);
    if (wake) { const w = wake; wake = null; w(); }
  };
  const leader = () => {
    const l = document.querySelector('#raft')?.getAttribute('data-leader') ?? '';
    if (leaders.at(-1)?.leader !== l) leaders.push({ t: now(), leader: l });
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') { if (r.attributeName === 'data-status') record(r.target); else leader(); continue; }
      for (const n of r.addedNodes) {
        if (!(n instanceof Element)) continue;
        if (n.matches('li[data-id]')) record(n);
        else { n.querySelectorAll('li[data-id]').forEach(record); leader(); }
      }
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status', 'data-leader'] });
  document.querySelectorAll('li[data-id]').forEach(record);
  leader();
  // A macrotask without setTimeout's 4 ms clamp: lets React render the composer's new text before Enter.
  const yieldTask = () => new Promise((resolve) => { const c = new MessageChannel(); c.port1.onmessage = resolve; c.port2.postMessage(0); });
  // The prototype's setter, under React's value tracker, so that the input event reads as a change.
  const setValue = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
  const send = async (text) => {
    const box = document.querySelector('[data-testid="composer"]');
    setValue.call(box, text);
    box.dispatchEvent(new Event('input', { bubbles: true }));
    await yieldTask();
    sent.set(text, now());
    box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
  };
  const next = () => new Promise((resolve) => { wake = resolve; });
  const run = async (tag, count, inFlight, startAt, until) => {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - now())));
    let n = 0;
    while (n < count && now() < until) {
      if (pending.size >= inFlight) { await next(); continue; }
      const text = tag + ':' + n++;
      pending.add(text);
      await send(text);
    }
    while (pending.size > 0) await next();
    return n;
  };
  globalThis.roomBench = { now, sent, committed, leaders, send, run };
})()`;

/** One person: the app in its own browser context, joined to a room, instrumented. */
class Peer {
  private constructor(readonly context: BrowserContext, readonly page: Page, readonly id: string) {}

  /** Opens the app, joins `room` through the join form, and installs {@link INSTRUMENT} once the room shows. */
  static async join(browser: Browser, server: RunningServer, room: string, name: string): Promise<Peer> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[bench room] ${name}: ${err.message}`));
    await page.goto(server.url);
    await page.getByLabel('Room', { exact: true }).fill(room);
    await page.getByLabel('Your name').fill(name);
    await page.getByRole('button', { name: 'Join room' }).click();
    await page.waitForSelector('#room-status', WAIT);
    await page.evaluate(INSTRUMENT);
    const id = await page.$eval('#peers li:first-child', (li) => li.getAttribute('data-peer-id') ?? '');
    return new Peer(context, page, id);
  }

  close(): Promise<void> {
    return this.context.close();
  }
}

/** Waits until every page lists exactly these peers, all connected, with one leader named alike; returns it. */
async function waitForOneCluster(peers: readonly Peer[]): Promise<string> {
  const want = peers.map((p) => p.id).sort();
  for (const p of peers) {
    await p.page.waitForFunction((want) => {
      const lis = Array.from(document.querySelectorAll('#peers li'));
      const roles = lis.map((li) => li.getAttribute('data-role'));
      return JSON.stringify(lis.map((li) => li.getAttribute('data-peer-id')).sort()) === JSON.stringify(want)
        && lis.every((li) => ['self', 'connected'].includes(li.getAttribute('data-connection') ?? ''))
        && roles.filter((r) => r === 'leader').length === 1 && roles.filter((r) => r === 'follower').length === want.length - 1
        && lis.find((li) => li.getAttribute('data-role') === 'leader')?.getAttribute('data-peer-id') === document.querySelector('#raft')?.getAttribute('data-leader');
    }, want, WAIT);
  }
  const leaders = new Set(await Promise.all(peers.map((p) => p.page.$eval('#raft', (e) => e.getAttribute('data-leader') ?? ''))));
  if (leaders.size !== 1) throw new Error(`pages disagree on the leader: ${[...leaders].join(', ')}`);
  return [...leaders][0]!;
}

async function joinRoom(browser: Browser, server: RunningServer, room: string, count: number): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let i = 0; i < count; i++) peers.push(await Peer.join(browser, server, room, `p${i}`));
  return peers;
}

/**
 * Every page runs `roomBench.run` with the same arguments (tag `<tag>.<page>`); then every page must show every
 * message committed. Returns, per page, send → committed latencies of all messages sent in `[from, to]`
 * (page wall clock), and how many committed on that page in that window and in its first half.
 */
async function sendFromAll(
  peers: readonly Peer[], tag: string, count: number, inFlight: number, startAt: number, until: number, from: number, to: number,
): Promise<{ latencies: number[]; committedInWindow: number; committedInFirstHalf: number }[]> {
  await Promise.all(peers.map((p, i) => p.page.evaluate(
    ([tag, count, inFlight, startAt, until]) => (globalThis as unknown as InPage).roomBench.run(tag, count, inFlight, startAt, until),
    [`${tag}.${i}`, count, inFlight, startAt, until] as const,
  )));
  const sent = new Map<string, number>();
  for (const p of peers) {
    for (const [text, t] of await p.page.evaluate((tag) => [...(globalThis as unknown as InPage).roomBench.sent].filter(([text]) => text.startsWith(`${tag}.`)), tag)) sent.set(text, t);
  }
  const texts = [...sent.keys()];
  return Promise.all(peers.map(async (p) => {
    await p.page.waitForFunction((texts) => texts.every((t) => (globalThis as unknown as InPage).roomBench.committed.has(t)), texts, { ...WAIT, polling: 200 });
    const committed = new Map(await p.page.evaluate((tag) => [...(globalThis as unknown as InPage).roomBench.committed].filter(([text]) => text.startsWith(`${tag}.`)), tag));
    const latencies = [...sent].filter(([, t]) => t >= from && t <= to).map(([text, t]) => committed.get(text)! - t);
    const inWindow = [...committed.values()].filter((t) => t >= from && t <= to);
    return { latencies, committedInWindow: inWindow.length, committedInFirstHalf: inWindow.filter((t) => t < (from + to) / 2).length };
  }));
}

async function benchLatency(peers: readonly Peer[], leader: string, messages: number): Promise<void> {
  const n = peers.length;
  const perPage = await sendFromAll(peers, 'lat', messages, 1, 0, Infinity, 0, Infinity);
  perPage.forEach(({ latencies }, page) => emit({
    bench: 'room', phase: 'latency', peers: n, page, leader: peers[page]!.id === leader, samples: latencies.length,
    p50Ms: sig(quantile(latencies, 0.5)), p99Ms: sig(quantile(latencies, 0.99)), maxMs: sig(Math.max(...latencies)),
  }));
  const all = perPage.flatMap((p) => p.latencies);
  emit({
    bench: 'room', phase: 'latency', peers: n, summary: true, messages: messages * n, samples: all.length,
    p50Ms: sig(quantile(all, 0.5)), p99Ms: sig(quantile(all, 0.99)), maxMs: sig(Math.max(...all)), load1: sig(loadavg()[0]!),
  });
}

async function benchThroughput(peers: readonly Peer[], leader: string, seconds: number, inFlight: number): Promise<void> {
  const n = peers.length;
  // Every page starts at the same wall-clock instant, a moment after the last one was told to.
  const startAt = wall() + 500;
  const until = startAt + seconds * 1000;
  const perPage = await sendFromAll(peers, 'tput', Infinity, inFlight, startAt, until, startAt, until);
  const rates = perPage.map((p) => p.committedInWindow / seconds);
  perPage.forEach(({ latencies }, page) => emit({
    bench: 'room', phase: 'throughput', peers: n, page, leader: peers[page]!.id === leader, inFlight, seconds,
    committedPerSec: sig(rates[page]!), p50Ms: sig(quantile(latencies, 0.5)), p99Ms: sig(quantile(latencies, 0.99)),
  }));
  const all = perPage.flatMap((p) => p.latencies);
  emit({
    bench: 'room', phase: 'throughput', peers: n, summary: true, inFlight, seconds,
    messagesPerSec: sig(Math.min(...rates)),
    // The list grows by every commit and the room screen renders all of it: the halves show whether that slows the room.
    firstHalfPerSec: sig(Math.min(...perPage.map((p) => p.committedInFirstHalf)) / (seconds / 2)),
    secondHalfPerSec: sig(Math.min(...perPage.map((p) => p.committedInWindow - p.committedInFirstHalf)) / (seconds / 2)),
    p50Ms: sig(quantile(all, 0.5)), p99Ms: sig(quantile(all, 0.99)), load1: sig(loadavg()[0]!),
  });
}

/** Ends the leader's page abruptly: a renderer crash (no `pagehide`, no goodbye) or a closed tab. */
async function kill(victim: Peer, how: string): Promise<void> {
  if (how === 'close') {
    await victim.page.close({ runBeforeUnload: false });
    return;
  }
  const cdp = await victim.context.newCDPSession(victim.page);
  const crashed = victim.page.waitForEvent('crash', WAIT);
  // Not awaited: the session dies with the renderer, so the command is never answered.
  void cdp.send('Page.crash').catch(() => {});
  await crashed;
}

async function benchFailover(browser: Browser, server: RunningServer, room: string, size: number, kills: number, how: string): Promise<void> {
  let peers = await joinRoom(browser, server, room, size);
  const leaderMs: number[] = [];
  const commitMs: number[] = [];
  try {
    for (let k = 0; k < kills; k++) {
      const old = await waitForOneCluster(peers);
      const victim = peers.find((p) => p.id === old)!;
      const rest = peers.filter((p) => p !== victim);
      const probe = `probe.${k}`;
      const killedAt = wall();
      await kill(victim, how);
      await rest[0]!.page.evaluate((text) => (globalThis as unknown as InPage).roomBench.send(text), probe);
      for (const p of rest) {
        await p.page.waitForFunction(([old, probe]) => {
          const b = (globalThis as unknown as InPage).roomBench;
          const now = b.leaders.at(-1)!.leader;
          return now !== '' && now !== old && b.committed.has(probe);
        }, [old, probe] as const, WAIT);
      }
      const seen = await Promise.all(rest.map((p) => p.page.evaluate(([old, probe, after]) => {
        const b = (globalThis as unknown as InPage).roomBench;
        return { leaderAt: b.leaders.find((l) => l.t > after && l.leader !== '' && l.leader !== old)!.t, committedAt: b.committed.get(probe)! };
      }, [old, probe, killedAt] as const)));
      leaderMs.push(Math.max(...seen.map((s) => s.leaderAt)) - killedAt);
      commitMs.push(Math.max(...seen.map((s) => s.committedAt)) - killedAt);
      emit({ bench: 'room', phase: 'failover', peers: size, kill: k, how, leaderMs: sig(leaderMs.at(-1)!), commitMs: sig(commitMs.at(-1)!) });
      await victim.close();
      peers = [...rest, await Peer.join(browser, server, room, `r${k}`)];
    }
  } finally {
    for (const p of peers) await p.close();
  }
  emit({
    bench: 'room', phase: 'failover', peers: size, summary: true, kills, how,
    leaderMsMedian: sig(median(leaderMs)), leaderMsMax: sig(Math.max(...leaderMs)),
    commitMsMedian: sig(median(commitMs)), commitMsMax: sig(Math.max(...commitMs)), load1: sig(loadavg()[0]!),
  });
}

export async function run(options: BenchOptions): Promise<void> {
  // The tsc build (bench/dist, for profiling) cannot load the app's sources, and the work happens in Chromium.
  if (!import.meta.url.endsWith('.ts')) {
    console.error('[bench room] skipped: run it from the sources (npm run bench -- room)');
    return;
  }
  const { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } = await import('../scripts/lib/chromium.js');
  if (chromiumMissing) {
    console.error(`[bench room] skipped: ${chromiumMissing}`);
    return;
  }
  if (!loopbackOnly()) {
    rerunIsolated('room', options);
    return;
  }
  const peerCounts = listOption(options, 'peers', [3, 5]);
  const messages = numberOption(options, 'messages', 40);
  const seconds = numberOption(options, 'seconds', 10);
  const inFlight = numberOption(options, 'in-flight', 16);
  const kills = numberOption(options, 'kills', 5);
  const how = options.kill ?? 'crash';
  if (how !== 'crash' && how !== 'close') throw new RangeError(`--kill is crash or close, not ${how}`);

  const { startServer } = await import('../apps/web/src/server.js');
  const { chromium } = await import('playwright-core');
  // Every join asks for a token: lift the per-address POST rate limit, meant for people, not for a bench.
  const server = await startServer({ port: 0, server: { logLevel: 'error', limits: { httpRequestsPerSecond: 1_000, httpBurst: 1_000 } } });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
  try {
    for (const size of peerCounts) {
      console.error(`[bench room] ${size} peers: latency (${messages} messages a page), throughput (${seconds} s, ${inFlight} in flight a page)`);
      const peers = await joinRoom(browser, server, `bench-${size}`, size);
      try {
        const leader = await waitForOneCluster(peers);
        await benchLatency(peers, leader, messages);
        await benchThroughput(peers, leader, seconds, inFlight);
      } finally {
        for (const p of peers) await p.close();
      }
      if (kills > 0) {
        console.error(`[bench room] ${size} peers: failover x ${kills} (${how})`);
        await benchFailover(browser, server, `bench-failover-${size}`, size, kills, how);
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
}
