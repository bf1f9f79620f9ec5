/**
 * Files, camera and microphone in the room app, end to end in Debian's Chromium (playwright-core) with a fake
 * camera and microphone: the real server of `npm start`, one browser context per person, everything done
 * and read through the page. Run it through `node scripts/test.mjs` (loopback-only network namespace).
 * Every wait is a generous hang guard, never a performance threshold.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { MAX_SHARE_BYTES } from '../src/room/files.js';
import { startServer, type RunningServer } from '../../../apps/web/src/server.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumMissing } from '../../../scripts/lib/chromium.js';

const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const ROOM = 'e2e-media';
/** A hang guard for a loaded two-core machine; a healthy room needs a small fraction of it. */
const WAIT = { timeout: 60_000 };

/** One person: the app in its own browser context. */
class Person {
  /** Uncaught exceptions and console errors of the page. */
  readonly errors: string[] = [];
  id = '';

  private constructor(readonly name: string, readonly context: BrowserContext, readonly page: Page) {
    page.on('pageerror', (err) => this.errors.push(`${name}: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') this.errors.push(`${name}: ${msg.text()}`);
    });
  }

  /** Opens the app and joins {@link ROOM} through the join form; `denyMedia` makes `getUserMedia` refuse, as a person saying no. */
  static async join(browser: Browser, server: RunningServer, name: string, denyMedia = false): Promise<Person> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    if (denyMedia) {
      await context.addInitScript(() => {
        navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
      });
    }
    const page = await context.newPage();
    const p = new Person(name, context, page);
    await page.goto(server.url);
    await page.getByLabel('Room', { exact: true }).fill(ROOM);
    await page.getByLabel('Your name').fill(name);
    await page.getByRole('button', { name: 'Join room' }).click();
    await page.waitForSelector('#peers li:first-child[data-peer-id]', WAIT);
    p.id = await page.$eval('#peers li:first-child', (li) => li.getAttribute('data-peer-id') ?? '');
    return p;
  }

  /** Waits until this page lists `others` as connected over the mesh (files and media need nothing more). */
  async waitConnected(others: readonly Person[]): Promise<void> {
    await this.page.waitForFunction((ids) => ids.every((id) =>
      document.querySelector(`#peers li[data-peer-id="${id}"]`)?.getAttribute('data-connection') === 'connected'), others.map((o) => o.id), WAIT);
  }

  /** The file item named `name` sent (`out`) or received (`in`) on this page. */
  fileItem(direction: 'in' | 'out', name: string): string {
    return `#files li.file-item[data-direction="${direction}"][data-name="${name}"]`;
  }
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('files, camera and microphone in the room app', { skip: chromiumMissing }, () => {
  let server: RunningServer;
  let browser: Browser;
  const people: Person[] = [];
  let scratch = '';

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    scratch = mkdtempSync(join(tmpdir(), 'raftrtc-media-'));
    server = await startServer({ port: 0, server: { logLevel: 'error' } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, '--use-fake-device-for-media-stream'] });
    for (const name of ['Ada', 'Brian', 'Chloé']) people.push(await Person.join(browser, server, name));
    for (const p of people) await p.waitConnected(people.filter((o) => o !== p));
  });

  after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
    await browser?.close();
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('a file and an image sent by one page arrive intact on the two others, with progress to 100 %', async () => {
    const [ada, brian, chloe] = people as [Person, Person, Person];
    const seed = randomBytes(4).toString('hex');
    const data = randomBytes(300 * 1024 + 17); // not a whole number of chunks
    // A real PNG for the preview: a corner of the page itself.
    const png = await ada.page.screenshot({ clip: { x: 0, y: 0, width: 96, height: 64 } });
    await ada.page.getByTestId('file-input').setInputFiles([
      { name: 'random.bin', mimeType: 'application/octet-stream', buffer: data },
      { name: 'corner.png', mimeType: 'image/png', buffer: png },
    ]);

    // The sender: every receiver got every byte and confirmed the checksum.
    for (const name of ['random.bin', 'corner.png']) {
      const size = name === 'random.bin' ? data.length : png.length;
      await ada.page.waitForFunction(({ sel, size }) => {
        const li = document.querySelector(sel);
        const targets = Array.from(li?.querySelectorAll('.file-targets li') ?? []);
        return li?.getAttribute('data-state') === 'done' && targets.length === 2
          && targets.every((t) => t.getAttribute('data-state') === 'delivered' && t.getAttribute('data-bytes') === String(size));
      }, { sel: ada.fileItem('out', name), size }, WAIT);
    }

    await ada.page.screenshot({ path: join(ARTIFACTS, 'room-files-sent.png'), fullPage: true });

    for (const p of [brian, chloe]) {
      const item = p.fileItem('in', 'random.bin');
      await p.page.waitForSelector(`${item}[data-state="done"][data-verified="true"]`, WAIT);
      const shown = await p.page.$eval(item, (li) => ({ bytes: li.getAttribute('data-bytes'), total: li.getAttribute('data-total'), from: li.getAttribute('data-from') }));
      assert.deepEqual(shown, { bytes: String(data.length), total: String(data.length), from: ada.id }, `${p.name} received every byte from Ada (seed ${seed})`);
      // Downloaded through the link, as a person would: the bytes and the name are the sender's.
      const [download] = await Promise.all([p.page.waitForEvent('download', WAIT), p.page.click(`${item} a.file-download`)]);
      assert.equal(download.suggestedFilename(), 'random.bin', `${p.name}'s download keeps the original name`);
      const got = readFileSync(await download.path());
      assert.equal(sha256(got), sha256(data), `${p.name}'s downloaded file is identical to the sent one (seed ${seed})`);

      const image = p.fileItem('in', 'corner.png');
      await p.page.waitForSelector(`${image}[data-state="done"][data-verified="true"]`, WAIT);
      await p.page.waitForFunction((sel) => {
        const c = document.querySelector<HTMLCanvasElement>(`${sel} canvas.file-preview`);
        return c !== null && !c.hidden && c.width > 0 && c.height > 0;
      }, image, WAIT);
      const meta = await p.page.$eval(`${image} .file-meta`, (el) => el.textContent ?? '');
      assert.match(meta, /image\/png/, `${p.name} sees the image's type`);
      assert.match(meta, /from Ada/, `${p.name} sees who sent it`);
    }
  });

  it('a transfer its sender cancels midway shows as cancelled on every page, with nothing to download', async () => {
    const [ada, brian, chloe] = people as [Person, Person, Person];
    const CHUNK = 128 * 1024; // the mesh's default fileChunkBytes
    // Reads of the file's chunks after each receiver's first wait until the test lets them go, so the cancel
    // lands midway however fast the machine is. (Whole-file reads, for the checksum, are not held.)
    await ada.page.evaluate((chunk) => {
      const w = globalThis as unknown as { releaseReads(): void; restoreReads(): void };
      let release!: () => void;
      const gate = new Promise<void>((resolve) => { release = resolve; });
      const read = Blob.prototype.arrayBuffer;
      let reads = 0;
      Blob.prototype.arrayBuffer = function (this: Blob) {
        return this.size === chunk && ++reads > 2 ? gate.then(() => read.call(this)) : read.call(this);
      };
      w.releaseReads = release;
      w.restoreReads = () => { Blob.prototype.arrayBuffer = read; };
    }, CHUNK);
    await ada.page.getByTestId('file-input').setInputFiles({ name: 'halfway.bin', mimeType: 'application/octet-stream', buffer: randomBytes(8 * CHUNK) });
    const out = ada.fileItem('out', 'halfway.bin');
    await ada.page.waitForFunction(({ sel, chunk }) => {
      const targets = Array.from(document.querySelectorAll(`${sel} .file-targets li`));
      return targets.length === 2 && targets.every((t) => t.getAttribute('data-state') === 'sending' && t.getAttribute('data-bytes') === String(chunk));
    }, { sel: out, chunk: CHUNK }, WAIT);
    for (const p of [brian, chloe]) await p.page.waitForSelector(`${p.fileItem('in', 'halfway.bin')}[data-state="receiving"]`, WAIT);
    await ada.page.screenshot({ path: join(ARTIFACTS, 'room-files-sending.png'), fullPage: true });

    await ada.page.getByRole('button', { name: 'Cancel sending halfway.bin' }).click();
    await ada.page.evaluate(() => (globalThis as unknown as { releaseReads(): void }).releaseReads());
    await ada.page.waitForSelector(`${out}[data-state="cancelled"]`, WAIT);
    const states = await ada.page.$$eval(`${out} .file-targets li`, (lis) => lis.map((li) => li.getAttribute('data-state')));
    assert.deepEqual(states, ['cancelled', 'cancelled'], 'the sender shows the transfer cancelled for both receivers');
    for (const p of [brian, chloe]) {
      const item = p.fileItem('in', 'halfway.bin');
      await p.page.waitForSelector(`${item}[data-state="cancelled"]`, WAIT);
      assert.match(await p.page.$eval(item, (li) => li.textContent ?? ''), /Ada cancelled it/, `${p.name} is told who cancelled`);
      assert.equal(await p.page.$(`${item} a`), null, `${p.name} has no download link for the partial file`);
    }
    await ada.page.evaluate(() => (globalThis as unknown as { restoreReads(): void }).restoreReads());
  });

  it('files dropped onto the chat are shared like attached ones', async () => {
    const [ada, brian] = people as [Person, Person];
    const text = `dropped at seed ${randomBytes(4).toString('hex')}`;
    const dataTransfer = await ada.page.evaluateHandle((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'dropped.txt', { type: 'text/plain' }));
      return dt;
    }, text);
    await ada.page.dispatchEvent('section.chat', 'dragenter', { dataTransfer });
    await ada.page.waitForSelector('section.chat .drop-overlay', WAIT);
    await ada.page.dispatchEvent('section.chat', 'drop', { dataTransfer });
    await ada.page.waitForSelector('section.chat .drop-overlay', { state: 'detached', ...WAIT });
    const item = brian.fileItem('in', 'dropped.txt');
    await brian.page.waitForSelector(`${item}[data-state="done"][data-verified="true"]`, WAIT);
    const [download] = await Promise.all([brian.page.waitForEvent('download', WAIT), brian.page.click(`${item} a.file-download`)]);
    assert.equal(readFileSync(await download.path(), 'utf8'), text, 'the dropped file arrives as it was');
  });

  it('a file over the limit is refused with a message and sent to nobody', async () => {
    const [ada, brian] = people as [Person, Person];
    // Sparse: the size is real, the disk blocks are not.
    const path = join(scratch, 'huge.bin');
    writeFileSync(path, '');
    truncateSync(path, MAX_SHARE_BYTES + 1);
    await ada.page.getByTestId('file-input').setInputFiles(path);
    const notice = await ada.page.waitForSelector('#file-notice', WAIT);
    assert.match(await notice.textContent() ?? '', /huge\.bin.*at most 256 MiB/, 'the refusal names the file and the limit');
    assert.equal(await ada.page.$(ada.fileItem('out', 'huge.bin')), null, 'nothing was sent');
    assert.equal(await brian.page.$(brian.fileItem('in', 'huge.bin')), null, 'nothing arrived');
    await ada.page.getByRole('button', { name: 'Dismiss' }).click();
    await ada.page.waitForSelector('#file-notice', { state: 'detached', ...WAIT });
  });

  it('camera and microphone on: the others see the video playing and get the sound; off: the tile shows the initial and the camera stops', async () => {
    const [ada, brian, chloe] = people as [Person, Person, Person];
    const camera = ada.page.locator('#toggle-camera');
    const microphone = ada.page.locator('#toggle-microphone');
    assert.equal(await camera.getAttribute('aria-pressed'), 'false', 'the camera starts off');
    await camera.click();
    await microphone.click();
    await ada.page.waitForSelector('#toggle-camera[aria-pressed="true"]', WAIT);
    await ada.page.waitForSelector('#toggle-microphone[aria-pressed="true"]', WAIT);
    // The local preview plays, muted.
    await ada.page.waitForFunction(() => {
      const v = document.querySelector<HTMLVideoElement>('.tile-self video');
      return v !== null && v.muted && v.videoWidth > 0 && !v.paused;
    }, null, WAIT);

    for (const p of [brian, chloe]) {
      const tile = `#tiles li[data-peer-id="${ada.id}"]`;
      await p.page.waitForSelector(`${tile}[data-video="on"][data-audio="on"]`, WAIT);
      await p.page.waitForFunction((tile) => {
        const v = document.querySelector<HTMLVideoElement>(`${tile} video`);
        const a = document.querySelector<HTMLAudioElement>(`${tile} audio`);
        const audio = (a?.srcObject as MediaStream | null)?.getAudioTracks() ?? [];
        return v !== null && v.videoWidth > 0 && !v.paused && a !== null && !a.paused
          && audio.length === 1 && audio[0]!.readyState === 'live' && !audio[0]!.muted;
      }, tile, WAIT);
    }
    await brian.page.locator('#toggle-camera').click(); // a second camera, for the screenshots
    await ada.page.waitForFunction((id) => {
      const v = document.querySelector<HTMLVideoElement>(`#tiles li[data-peer-id="${id}"] video`);
      return v !== null && v.videoWidth > 0 && !v.paused;
    }, brian.id, WAIT);

    // Brian's page: his own preview, Ada's video, Chloé's initial.
    await brian.page.waitForFunction(() => {
      const v = document.querySelector<HTMLVideoElement>('.tile-self video');
      return v !== null && v.videoWidth > 0 && !v.paused;
    }, null, WAIT);
    await brian.page.screenshot({ path: join(ARTIFACTS, 'room-media.png'), fullPage: true });
    await brian.page.setViewportSize({ width: 390, height: 844 });
    await brian.page.screenshot({ path: join(ARTIFACTS, 'room-media-phone.png'), fullPage: true });
    await brian.page.emulateMedia({ colorScheme: 'dark' });
    await brian.page.screenshot({ path: join(ARTIFACTS, 'room-media-phone-dark.png'), fullPage: true });
    await brian.page.emulateMedia({ colorScheme: 'light' });
    await brian.page.setViewportSize({ width: 1280, height: 900 });

    // Camera off: the track stops (the camera light goes off) and the others see Ada's initial instead.
    await ada.page.evaluate(() => {
      (globalThis as unknown as { cameraTrack: MediaStreamTrack }).cameraTrack =
        (document.querySelector<HTMLVideoElement>('.tile-self video')!.srcObject as MediaStream).getVideoTracks()[0]!;
    });
    await camera.click();
    await ada.page.waitForSelector('#toggle-camera[aria-pressed="false"]', WAIT);
    assert.equal(
      await ada.page.evaluate(() => (globalThis as unknown as { cameraTrack: MediaStreamTrack }).cameraTrack.readyState), 'ended',
      'turning the camera off stops its track',
    );
    for (const p of [brian, chloe]) {
      const tile = `#tiles li[data-peer-id="${ada.id}"]`;
      await p.page.waitForSelector(`${tile}[data-video="off"][data-audio="on"] .tile-off`, WAIT);
      assert.equal(await p.page.$(`${tile} video`), null, `${p.name} shows no video for Ada once her camera is off`);
      assert.equal(await p.page.$eval(`${tile} .tile-off`, (el) => el.textContent?.trim().charAt(0)), 'A', `${p.name} shows Ada's initial`);
    }
    await microphone.click();
    await brian.page.waitForSelector(`#tiles li[data-peer-id="${ada.id}"][data-audio="off"]`, WAIT);
    await brian.page.locator('#toggle-camera').click();
    await brian.page.waitForSelector('#toggle-camera[aria-pressed="false"]', WAIT);
    for (const p of people) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
  });

  it('a refused camera says so on screen, and the room goes on', async () => {
    const dora = await Person.join(browser, server, 'Dora', true);
    people.push(dora);
    await dora.waitConnected([people[0]!]);
    await dora.page.locator('#toggle-camera').click();
    const alert = await dora.page.waitForSelector('#media-error', WAIT);
    assert.match(await alert.textContent() ?? '', /refused access to your camera/, 'the refusal is explained');
    assert.equal(await dora.page.locator('#toggle-camera').getAttribute('aria-pressed'), 'false', 'the camera stays off');
    // The room still works for Dora: a file from her arrives.
    const data = randomBytes(1000);
    await dora.page.getByTestId('file-input').setInputFiles({ name: 'after-refusal.txt', mimeType: 'text/plain', buffer: data });
    const ada = people[0]!;
    await ada.page.waitForSelector(`${ada.fileItem('in', 'after-refusal.txt')}[data-state="done"][data-verified="true"]`, WAIT);
    assert.deepEqual(dora.errors, [], 'Dora\'s page logged no error');
  });

  it('leaving stops the camera and microphone; the others drop the tile', async () => {
    const [ada, brian] = people as [Person, Person];
    await ada.page.locator('#toggle-camera').click();
    await ada.page.locator('#toggle-microphone').click();
    await brian.page.waitForSelector(`#tiles li[data-peer-id="${ada.id}"][data-video="on"][data-audio="on"]`, WAIT);
    await ada.page.evaluate(() => {
      const self = document.querySelector<HTMLVideoElement>('.tile-self video')!.srcObject as MediaStream;
      (globalThis as unknown as { cameraTrack: MediaStreamTrack }).cameraTrack = self.getVideoTracks()[0]!;
    });
    const links = await ada.page.$$eval('#files a.file-download', (as) => as.map((a) => a.getAttribute('href') ?? ''));
    await ada.page.evaluate(() => {
      const revoked: string[] = [];
      (globalThis as unknown as { revoked: string[] }).revoked = revoked;
      const revoke = URL.revokeObjectURL.bind(URL);
      URL.revokeObjectURL = (url: string) => { revoked.push(url); revoke(url); };
    });
    await ada.page.locator('#leave').click();
    await ada.page.getByRole('button', { name: 'Join room' }).waitFor(WAIT);
    assert.equal(
      await ada.page.evaluate(() => (globalThis as unknown as { cameraTrack: MediaStreamTrack }).cameraTrack.readyState), 'ended',
      'leaving stops the camera',
    );
    assert.ok(links.length > 0, 'Ada had a received file to download');
    const revoked = await ada.page.evaluate(() => (globalThis as unknown as { revoked: string[] }).revoked);
    assert.deepEqual(revoked.filter((u) => links.includes(u)).sort(), [...links].sort(), 'leaving revoked the object URL of every received file');
    await brian.page.waitForSelector(`#tiles li[data-peer-id="${ada.id}"]`, { state: 'detached', ...WAIT });
    for (const p of people) assert.deepEqual(p.errors, [], `${p.name}'s page logged no error`);
  });
});
