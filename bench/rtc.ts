/**
 * `npm run bench -- rtc`: the WebRTC mesh in real Chromium (Debian's `chromium` through playwright-core),
 * every peer the room page of the Chromium tests (`packages/rtc/test/browser/`) in its own browser context,
 * joined through the real signaling server that also serves the page. Mesh only: no Raft node runs, so
 * nothing but the measured traffic uses the channels. Three measurements:
 *
 * - **join**: 3 and 6 pages join one room at once; per run, the time from the first page's join (token
 *   request) until every control channel among them is open (`meshMs`), and per page from its own join to its
 *   last channel open (`peerMs`, median and max over the pages) and to its subscription (`signalingMs`).
 * - **rtt**: round trips of a small message (`{ ping, pad }`, about 150 bytes once framed) sent with
 *   `sendRaftMessage` and answered from the other page's Raft-slot listener, one at a time: p50, p99, mean.
 * - **bulk**: the same random bytes sent between the same two pages with `sendFile` (timed until the receiver
 *   reports the whole file) and over a bare `RTCDataChannel` of a second, plain `RTCPeerConnection` between
 *   them (timed until the receiver reports every byte), with the manager's chunk size and buffer watermarks.
 *   The two alternate, starting side swapped every repeat, so a slow patch of machine time hits both; `ratio`
 *   is the median over repeats of sendFile MB/s over bare MB/s (the goal: above 0.9).
 *
 * Options: `--peers=3,6 --runs=5 --rtt-samples=2000 --rtt-warmup=200 --mib=8 --repeats=15`. Many short
 * transfers rather than a few long ones: on a shared machine the ratio of neighbours is what holds still.
 * Summaries carry the 1-minute load average (`load1`) to tell a busy machine's figures from an idle one's.
 *
 * WebRTC must stay on loopback (../shared/notes/webrtc-testing.md): outside a loopback-only network namespace
 * the bench re-runs itself inside a fresh one (`unshare -n`, as root), as `scripts/test.mjs` does for tests.
 * @module
 */
import { loadavg } from 'node:os';
import type { Browser } from 'playwright-core';
import type { RaftRtcServer } from '@raftrtc/server';
import type { RoomPage } from '../packages/rtc/test/browser/harness.js';
import type { RoomWindow } from '../packages/rtc/test/browser/room-api.js';
import { emit, listOption, numberOption, sig, type BenchOptions } from './lib/measure.js';
import { loopbackOnly, rerunIsolated } from './lib/netns.js';
import { median, quantile } from './lib/stats.js';

/**
 * The room page's harness, imported by {@link run} once it knows it runs from the sources: the harness pulls
 * in the signaling server, whose package points at TypeScript, which the tsc build cannot load.
 */
type Harness = typeof import('../packages/rtc/test/browser/harness.js');
let harness: Harness;

/** A hang guard for waits on the browser, not a bound on any figure. */
const HANG_MS = 60_000;

/** A ping's padding: framed, the ping is about 150 bytes, the size of a small Raft message (a heartbeat). */
const PING_PAD_CHARS = 100;

async function openPages(browser: Browser, server: RaftRtcServer, count: number): Promise<RoomPage[]> {
  const pages: RoomPage[] = [];
  for (let i = 0; i < count; i++) pages.push(await harness.RoomPage.open(browser, server));
  return pages;
}

async function closePages(pages: readonly RoomPage[]): Promise<void> {
  for (const p of pages) await p.close();
}

/** Waits until each page has had a control channel open to `others` peers. */
async function waitForMesh(pages: readonly RoomPage[], others: number): Promise<void> {
  await Promise.all(pages.map((p) => p.page.waitForFunction(
    (n) => Object.keys((globalThis as RoomWindow).raftRoom!.timeline().openedAt).length >= n, others, { timeout: HANG_MS, polling: 50 },
  )));
}

async function benchJoin(browser: Browser, server: RaftRtcServer, peers: number, runs: number): Promise<void> {
  const meshes: number[] = [];
  const perPeer: number[] = [];
  const signaling: number[] = [];
  for (let run = 0; run < runs; run++) {
    // Pages are loaded before the clock starts: a join is the token request onwards, not the page load.
    const pages = await openPages(browser, server, peers);
    try {
      const room = `join-${peers}-${run}`;
      await Promise.all(pages.map((p, i) => p.join({ room, name: `p${i}`, raft: false })));
      await waitForMesh(pages, peers - 1);
      const lines = await Promise.all(pages.map((p) => p.timeline()));
      const start = Math.min(...lines.map((t) => t.startedAt));
      const lastOpen = lines.map((t) => Math.max(...Object.values(t.openedAt)));
      const peerMs = lines.map((t, i) => lastOpen[i]! - t.startedAt);
      const signalingMs = lines.map((t) => t.subscribedAt! - t.startedAt);
      const meshMs = Math.max(...lastOpen) - start;
      meshes.push(meshMs);
      perPeer.push(...peerMs);
      signaling.push(...signalingMs);
      emit({
        bench: 'rtc', phase: 'join', peers, run, meshMs: sig(meshMs),
        peerMsMedian: sig(median(peerMs)), peerMsMax: sig(Math.max(...peerMs)), signalingMsMedian: sig(median(signalingMs)),
      });
    } finally {
      await closePages(pages);
    }
  }
  emit({
    bench: 'rtc', phase: 'join', peers, runs, summary: true,
    meshMsMedian: sig(median(meshes)), peerMsMedian: sig(median(perPeer)), signalingMsMedian: sig(median(signaling)), load1: sig(loadavg()[0]!),
  });
}

async function benchRtt(a: RoomPage, b: RoomPage, samples: number, warmup: number): Promise<void> {
  const rtts = await a.ping(b.peerId, samples, warmup, PING_PAD_CHARS);
  const mean = rtts.reduce((s, x) => s + x, 0) / rtts.length;
  emit({
    bench: 'rtc', phase: 'rtt', samples: rtts.length,
    p50Ms: sig(quantile(rtts, 0.5)), p99Ms: sig(quantile(rtts, 0.99)), meanMs: sig(mean), maxMs: sig(Math.max(...rtts)), load1: sig(loadavg()[0]!),
  });
}

async function benchBulk(a: RoomPage, b: RoomPage, mib: number, repeats: number): Promise<void> {
  const bytes = Math.round(mib * 1024 * 1024);
  await a.makePayload(bytes);
  await a.connectBare(b);
  const mbps = (ms: number): number => bytes / 1e6 / (ms / 1000);
  const sends = { sendFile: () => a.sendFileTimed(b.peerId), bare: () => a.bareSendTimed() };
  // One unrecorded transfer each: the first pays for JIT, buffer growth and SCTP's slow start.
  await sends.sendFile();
  await sends.bare();
  const rates: Record<keyof typeof sends, number[]> = { sendFile: [], bare: [] };
  const ratios: number[] = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const order: (keyof typeof sends)[] = repeat % 2 === 0 ? ['sendFile', 'bare'] : ['bare', 'sendFile'];
    for (const channel of order) {
      const ms = await sends[channel]();
      rates[channel].push(mbps(ms));
      emit({ bench: 'rtc', phase: 'bulk', channel, repeat, bytes, ms: sig(ms), mbPerSec: sig(mbps(ms)) });
    }
    ratios.push(rates.sendFile[repeat]! / rates.bare[repeat]!);
  }
  const ratio = median(ratios);
  emit({
    bench: 'rtc', phase: 'bulk', summary: true, bytes, repeats,
    sendFileMbPerSec: sig(median(rates.sendFile)), bareMbPerSec: sig(median(rates.bare)),
    ratio: sig(ratio), overhead: sig(1 - ratio), load1: sig(loadavg()[0]!),
  });
}

export async function run(options: BenchOptions): Promise<void> {
  // The tsc build (bench/dist, for profiling) has no room page to bundle, and nothing of this bench runs in
  // this process worth profiling: the work happens in Chromium.
  if (!import.meta.url.endsWith('.ts')) {
    console.error('[bench rtc] skipped: run it from the sources (npm run bench -- rtc)');
    return;
  }
  harness = await import('../packages/rtc/test/browser/harness.js');
  if (harness.chromiumMissing) {
    console.error(`[bench rtc] skipped: ${harness.chromiumMissing}`);
    return;
  }
  if (!loopbackOnly()) {
    rerunIsolated('rtc', options);
    return;
  }
  const peerCounts = listOption(options, 'peers', [3, 6]);
  const runs = numberOption(options, 'runs', 5);
  const rttSamples = numberOption(options, 'rtt-samples', 2000);
  const rttWarmup = numberOption(options, 'rtt-warmup', 200);
  const mib = numberOption(options, 'mib', 8);
  const repeats = numberOption(options, 'repeats', 15);

  // Every page asks for a token: lift the per-address POST rate limit, meant for people, not for a bench.
  const server = await harness.startRoomServer({ limits: { httpRequestsPerSecond: 1_000, httpBurst: 1_000 } });
  const browser = await harness.launchChromium();
  try {
    for (const peers of peerCounts) {
      console.error(`[bench rtc] join: ${peers} pages x ${runs} runs`);
      await benchJoin(browser, server, peers, runs);
    }
    const [a, b] = (await openPages(browser, server, 2)) as [RoomPage, RoomPage];
    await Promise.all([a.join({ room: 'pair', name: 'a', raft: false }), b.join({ room: 'pair', name: 'b', raft: false })]);
    await waitForMesh([a, b], 1);
    console.error(`[bench rtc] rtt: ${rttSamples} samples`);
    await benchRtt(a, b, rttSamples, rttWarmup);
    console.error(`[bench rtc] bulk: ${mib} MiB x ${repeats} repeats per channel`);
    await benchBulk(a, b, mib, repeats);
  } finally {
    await browser.close();
    await server.close();
  }
}
