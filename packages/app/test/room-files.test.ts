/**
 * `FileShare` without a browser: two or three peers joined by an in-memory stand-in for the mesh (chunks as
 * progress events, the whole file at the end, control messages as parsed JSON), so the cases a real network
 * rarely produces on demand are deterministic: a damaged copy, a connection lost midway, a queue per
 * receiver, refusals, and what `close()` frees. The real mesh is exercised by `room-media.e2e.test.ts`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import type { FileProgress, FileSendOptions, FileSource, MeshHubListeners, ReceivedFile, SentFile } from '@raftrtc/rtc';
import { FileShare, FileShareError, MAX_SHARE_BYTES, formatBytes, safeBlobType, type FilesView } from '../src/room/files.ts';

const CHUNK = 1000;

/** One peer of the stand-in mesh. */
class FakePeer {
  readonly share: FileShare;
  readonly connected = new Set<string>();
  onFile: ((peer: string, f: ReceivedFile) => void) | null = null;
  onProgress: ((peer: string, p: FileProgress) => void) | null = null;
  readonly listeners = { connected: new Set<MeshHubListeners['connected']>(), disconnected: new Set<MeshHubListeners['disconnected']>() };
  /** Flip a byte of every file this peer sends. */
  corrupt = false;
  /** Hold every send after its first chunk until {@link release} (or the link breaks). */
  hold = false;
  #released: Promise<void> = Promise.resolve();
  release: () => void = () => {};
  #nextId = 0;

  constructor(readonly mesh: Map<string, FakePeer>, readonly id: string) {
    mesh.set(id, this);
    this.share = new FileShare({
      manager: {
        connectedPeers: () => [...this.connected],
        setOnFile: (cb) => { this.onFile = cb; },
        setOnFileProgress: (cb) => { this.onProgress = cb; },
        sendMessage: (peer, text) => {
          if (!this.connected.has(peer)) return false;
          queueMicrotask(() => mesh.get(peer)?.share.handlePeerMessage(this.id, JSON.parse(text)));
          return true;
        },
        sendFile: (peer, source, name, options) => this.#sendFile(peer, source, name, options),
      },
      hub: { on: (event, listener) => { (this.listeners[event as 'connected'] as Set<unknown>).add(listener); return () => {}; } },
      localId: id,
      localName: id.toUpperCase(),
      nameOf: (peer) => peer.toUpperCase(),
    });
  }

  holdSends(): void {
    this.hold = true;
    this.#released = new Promise((resolve) => { this.release = resolve; });
  }

  async #sendFile(peer: string, source: FileSource, name = 'file', options: FileSendOptions = {}): Promise<SentFile> {
    const blob = source as Blob;
    const to = this.mesh.get(peer);
    if (!to || !this.connected.has(peer)) throw new Error(`${peer} is not connected`);
    const id = ++this.#nextId;
    const parts: Uint8Array[] = [];
    for (let at = 0; at < blob.size; at += CHUNK) {
      if (at > 0 && this.hold) await this.#released;
      if (!this.connected.has(peer)) throw new Error('the connection went away');
      const bytes = new Uint8Array(await blob.slice(at, Math.min(blob.size, at + CHUNK)).arrayBuffer());
      parts.push(bytes);
      const progress = { id, name, size: blob.size, bytes: at + bytes.byteLength };
      to.onProgress?.(this.id, progress);
      options.onProgress?.(progress);
    }
    const data = new Uint8Array(blob.size);
    parts.reduce((at, p) => { data.set(p, at); return at + p.byteLength; }, 0);
    if (this.corrupt && data.length > 0) data[0]! ^= 0xff;
    to.onFile?.(this.id, { id, name, mime: options.mime ?? (blob.type || 'application/octet-stream'), size: blob.size, data });
    return { id, size: blob.size };
  }
}

/** Peers linked pairwise, every hub told so, as the mesh does when control channels open. */
function mesh(...ids: string[]): FakePeer[] {
  const all = new Map<string, FakePeer>();
  const peers = ids.map((id) => new FakePeer(all, id));
  for (const a of peers) for (const b of peers) if (a !== b) { a.connected.add(b.id); for (const l of a.listeners.connected) l(b.id); }
  return peers;
}

/** Breaks the link between `a` and `b` on both sides (`failed`: the mesh would try to recover it). */
function cut(a: FakePeer, b: FakePeer): void {
  a.connected.delete(b.id);
  b.connected.delete(a.id);
  for (const l of a.listeners.disconnected) l(b.id, 'failed');
  for (const l of b.listeners.disconnected) l(a.id, 'failed');
}

/** Resolves with the first view of `share` that satisfies `cond` (checked on every change). */
function until(share: FileShare, cond: (v: FilesView) => boolean, what: string): Promise<FilesView> {
  if (cond(share.view)) return Promise.resolve(share.view);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(share.view.files.map(({ blob: _, ...f }) => f))}`)); }, 10_000);
    const off = share.subscribe((v) => {
      if (!cond(v)) return;
      clearTimeout(timer);
      off();
      resolve(v);
    });
  });
}

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const fileOf = (name: string, data: Uint8Array, type = 'application/octet-stream'): File => new File([data as Uint8Array<ArrayBuffer>], name, { type });
const sha = (b: Uint8Array | ArrayBuffer): string => createHash('sha256').update(new Uint8Array(b)).digest('hex');

describe('FileShare', () => {
  it('sends a file to every connected peer; each checks the SHA-256 and says so; the sender sees it delivered', async () => {
    const [a, b, c] = mesh('a', 'b', 'c') as [FakePeer, FakePeer, FakePeer];
    const data = bytes(4_500, 7);
    a.share.share(fileOf('notes.bin', data));
    for (const p of [b, c]) {
      const v = await until(p.share, (v) => v.files[0]?.verified === true, `${p.id} to verify`);
      const f = v.files[0]!;
      assert.deepEqual([f.direction, f.state, f.from, f.bytes, f.total], ['in', 'done', 'a', 4_500, 4_500], `${p.id}'s entry is complete`);
      assert.equal(sha(await f.blob!.arrayBuffer()), sha(data), `${p.id} holds the same bytes`);
      assert.match(f.url ?? '', /^blob:/, `${p.id} has a download URL`);
    }
    const out = (await until(a.share, (v) => v.files[0]?.targets.every((t) => t.state === 'delivered') === true, 'both deliveries')).files[0]!;
    assert.deepEqual(out.targets.map((t) => [t.peerId, t.bytes]), [['b', 4_500], ['c', 4_500]], 'every byte went to each receiver');
    assert.deepEqual([out.state, out.bytes, out.total], ['done', 9_000, 9_000], 'overall progress is 100 %');
  });

  it('a damaged copy is discarded, and the sender is told', async () => {
    const [a, b] = mesh('a', 'b') as [FakePeer, FakePeer];
    a.corrupt = true;
    a.share.share(fileOf('damaged.bin', bytes(2_000, 1)));
    const f = (await until(b.share, (v) => v.files[0]?.state === 'failed', 'the receiver to refuse it')).files[0]!;
    assert.equal(f.verified, false, 'the checksum did not match');
    assert.equal(f.url, null, 'no download link for a damaged file');
    assert.equal(f.blob, null, 'its bytes are dropped');
    const t = (await until(a.share, (v) => v.files[0]?.targets[0]?.state === 'failed', 'the sender to hear it')).files[0]!.targets[0]!;
    assert.match(t.error ?? '', /damaged/, 'the sender says why');
  });

  it('a connection lost midway fails the transfer on both sides; another receiver is not affected', async () => {
    const [a, b, c] = mesh('a', 'b', 'c') as [FakePeer, FakePeer, FakePeer];
    a.holdSends();
    a.share.share(fileOf('big.bin', bytes(5_000, 3)));
    await until(b.share, (v) => v.files[0]?.state === 'receiving', 'b to start receiving');
    cut(a, b);
    a.release();
    const got = (await until(b.share, (v) => v.files[0]?.state === 'failed', 'b to give up')).files[0]!;
    assert.match(got.error ?? '', /broke off/, 'the receiver says the connection broke');
    await until(c.share, (v) => v.files[0]?.verified === true, 'c to receive it whole');
    const out = (await until(a.share, (v) => v.files[0]?.targets.every((t) => t.state === 'failed' || t.state === 'delivered') === true, 'both sends to end')).files[0]!;
    assert.deepEqual(out.targets.map((t) => t.state), ['failed', 'delivered'], 'b failed, c received it');
    assert.equal(out.state, 'done', 'a file some received is done');
  });

  it('files to one receiver go one after another; a cancel stops the one in flight, and the next then goes whole', async () => {
    const [a, b] = mesh('a', 'b') as [FakePeer, FakePeer];
    a.holdSends();
    const first = a.share.share(fileOf('one.bin', bytes(3_000, 1)));
    a.share.share(fileOf('two.bin', bytes(3_000, 2)));
    let v = await until(a.share, (v) => v.files[0]?.targets[0]?.bytes === CHUNK, 'the first chunk of one.bin');
    assert.deepEqual(v.files.map((f) => f.targets[0]!.state), ['sending', 'queued'], 'two.bin waits for one.bin');
    await until(b.share, (v) => v.files.length === 1 && v.files[0]!.state === 'receiving', 'b to receive one.bin');
    a.share.cancel(first);
    a.release();
    v = await until(a.share, (v) => v.files[0]?.state === 'cancelled', 'one.bin cancelled');
    const got = (await until(b.share, (v) => v.files[0]?.state === 'cancelled', 'b to hear of the cancel')).files[0]!;
    assert.match(got.error ?? '', /A cancelled it/, 'the receiver is told who cancelled');
    assert.equal(got.url, null, 'nothing to download');
    const two = (await until(a.share, (v) => v.files[1]?.state === 'done', 'two.bin sent after it')).files[1]!;
    assert.equal(two.targets[0]!.bytes, 3_000, 'the queued file then went whole');
  });

  it('refuses what it cannot send, with the reason, and sends the rest', async () => {
    const [a] = mesh('a') as [FakePeer];
    assert.throws(() => a.share.share(fileOf('x.bin', bytes(10, 0))), (e: unknown) => e instanceof FileShareError && e.code === 'no_peers', 'nobody to send to');
    const [c, d] = mesh('c', 'd') as [FakePeer, FakePeer];
    class Huge extends File {
      override get size(): number { return MAX_SHARE_BYTES + 1; }
    }
    assert.throws(() => c.share.share(new Huge([], 'huge.iso')), (e: unknown) => e instanceof FileShareError && e.code === 'too_large' && /huge\.iso.*256 MiB/.test(e.message), 'over the limit');
    c.share.shareAll([new Huge([], 'huge.iso'), fileOf('fine.txt', bytes(10, 0), 'text/plain')]);
    const v = await until(c.share, (v) => v.files.length === 1 && v.notice !== null, 'the notice');
    assert.match(v.notice!, /huge\.iso/, 'the notice names the refused file');
    assert.equal(v.files[0]!.name, 'fine.txt', 'the other file is sent');
    await until(d.share, (v) => v.files[0]?.verified === true, 'd to receive fine.txt');
    c.share.dismissNotice();
    await until(c.share, (v) => v.notice === null, 'the notice to go');
    c.share.close();
    assert.throws(() => c.share.share(fileOf('late.txt', bytes(1, 0))), (e: unknown) => e instanceof FileShareError && e.code === 'closed', 'closed');
  });

  it('close() revokes every object URL and fails what is still arriving; remove() frees one', async () => {
    const [a, b, c] = mesh('a', 'b', 'c') as [FakePeer, FakePeer, FakePeer];
    a.share.share(fileOf('kept.bin', bytes(100, 1)));
    a.share.share(fileOf('removed.bin', bytes(100, 2)));
    const v = await until(b.share, (v) => v.files.length === 2 && v.files.every((f) => f.verified === true), 'both files');
    c.holdSends();
    c.share.share(fileOf('partial.bin', bytes(5_000, 3)));
    await until(b.share, (v) => v.files[2]?.state === 'receiving', 'partial.bin arriving');
    const revoked: string[] = [];
    const revoke = URL.revokeObjectURL;
    URL.revokeObjectURL = (url: string) => { revoked.push(url); revoke(url); };
    try {
      b.share.remove(v.files[1]!.key);
      assert.deepEqual(revoked, [v.files[1]!.url], 'remove() revoked that file\'s URL');
      b.share.close();
      assert.deepEqual(revoked, [v.files[1]!.url, v.files[0]!.url], 'close() revoked the rest');
    } finally {
      URL.revokeObjectURL = revoke;
    }
    const after = await until(b.share, (v) => v.files.length === 2 && v.files[1]?.state === 'failed', 'the partial file failed');
    assert.equal(after.files[0]!.url, null, 'no URL is left in the view');
    c.release();
  });

  it('tells its own peer messages from others, and ignores malformed ones', () => {
    const [a] = mesh('a', 'b') as [FakePeer, FakePeer];
    assert.equal(a.share.handlePeerMessage('b', { kind: 'hello', name: 'B' }), false, 'a hello is not ours');
    assert.equal(a.share.handlePeerMessage('b', null), false, 'null is not ours');
    for (const m of [{ kind: 'file-hash', id: 1, sha256: 'zz' }, { kind: 'file-ack', id: -1, ok: true }, { kind: 'file-cancel', id: 1.5 }, { kind: 'file-ack', id: 2 }]) {
      assert.equal(a.share.handlePeerMessage('b', m), true, `${JSON.stringify(m)} is ours, and ignored`);
    }
    assert.deepEqual(a.share.view.files, [], 'nothing changed');
  });

  it('gives a received blob a type that cannot render as a page, and sizes in binary units', () => {
    assert.equal(safeBlobType('image/png'), 'image/png');
    assert.equal(safeBlobType('text/html'), 'application/octet-stream');
    assert.equal(safeBlobType('image/svg+xml'), 'application/octet-stream', 'SVG can carry script');
    assert.deepEqual([formatBytes(512), formatBytes(1536), formatBytes(300 * 1024), formatBytes(MAX_SHARE_BYTES)], ['512 B', '1.5 KiB', '300 KiB', '256 MiB']);
  });
});
